//! Parsing ksqlDB's administrative statements: `PAUSE`/`RESUME`, `ASSERT TOPIC`/`ASSERT
//! SCHEMA`, `RUN SCRIPT`, `DEFINE`/`UNDEFINE`, and the statements Eddy knows but does not
//! support (connectors, `ALTER`), which get a message saying so instead of a syntax error.

use datafusion::sql::sqlparser::tokenizer::Token;

use super::types::parse_duration;
use super::vars::is_variable_name;
use super::P;
use crate::ast::*;
use crate::error::{PlanError, Result};

/// Statements of ksqlDB that Eddy does not run, by their first words, with the reason.
const UNSUPPORTED: &[(&[&str], &str)] = &[
    (&["CREATE", "SOURCE", "CONNECTOR"], "CREATE SOURCE CONNECTOR (Eddy runs no Kafka Connect connectors: write the rows with INSERT INTO ... VALUES, `eddy produce` or the HTTP API)"),
    (&["CREATE", "SINK", "CONNECTOR"], "CREATE SINK CONNECTOR (Eddy runs no Kafka Connect connectors: read the topic with `eddy consume`, a push query or the HTTP API)"),
    (&["CREATE", "CONNECTOR"], "CREATE CONNECTOR (Eddy runs no Kafka Connect connectors)"),
    (&["DROP", "CONNECTOR"], "DROP CONNECTOR (Eddy runs no Kafka Connect connectors)"),
    (&["DESCRIBE", "CONNECTOR"], "DESCRIBE CONNECTOR (Eddy runs no Kafka Connect connectors)"),
    (&["SHOW", "CONNECTORS"], "SHOW CONNECTORS (Eddy runs no Kafka Connect connectors)"),
    (&["LIST", "CONNECTORS"], "LIST CONNECTORS (Eddy runs no Kafka Connect connectors)"),
    (&["SHOW", "CONNECTOR"], "SHOW CONNECTOR PLUGINS (Eddy runs no Kafka Connect connectors)"),
    (&["SHOW", "SOURCE", "CONNECTORS"], "SHOW SOURCE CONNECTORS (Eddy runs no Kafka Connect connectors)"),
    (&["SHOW", "SINK", "CONNECTORS"], "SHOW SINK CONNECTORS (Eddy runs no Kafka Connect connectors)"),
    (&["ALTER", "SYSTEM"], "ALTER SYSTEM (Eddy has no cluster-wide settings: use SET for the session)"),
    (&["ALTER", "STREAM"], "ALTER STREAM (drop and create the stream again with the new columns)"),
    (&["ALTER", "TABLE"], "ALTER TABLE (drop and create the table again with the new columns)"),
];

impl P<'_> {
    /// A statement ksqlDB has and Eddy does not run: an error saying so, or `Ok(())` when the
    /// next tokens start no such statement.
    pub(crate) fn refuse_unsupported(&self) -> Result<()> {
        for (words, what) in UNSUPPORTED {
            if words.iter().enumerate().all(|(i, w)| self.peek_nth_kw(i, w)) {
                return Err(PlanError::Unsupported { feature: (*what).to_string() });
            }
        }
        Ok(())
    }

    /// After `PAUSE` or `RESUME`: a query id or `ALL`.
    pub(crate) fn query_id_or_all(&mut self) -> Result<Option<String>> {
        if self.eat_kw("ALL") {
            return Ok(None);
        }
        Ok(Some(self.raw_word()?))
    }

    /// After `DEFINE`: `name = 'value'`.
    pub(crate) fn define(&mut self) -> Result<Statement> {
        let name = self.variable_name()?;
        self.expect(Token::Eq)?;
        let value = self.string()?;
        Ok(Statement::Define { name, value })
    }

    /// A variable name as written (names are matched case-insensitively).
    pub(crate) fn variable_name(&mut self) -> Result<String> {
        let t = self.p.next_token();
        match t.token {
            Token::Word(w) if w.quote_style.is_none() && is_variable_name(&w.value) => Ok(w.value),
            Token::Word(w) => Err(PlanError::Parse(format!(
                "invalid variable name \"{}\": a variable name starts with a letter or an underscore, followed by letters, digits or underscores",
                w.value
            ))),
            _ => {
                self.p.prev_token();
                Err(self.error("expected a variable name"))
            }
        }
    }

    /// After `ASSERT`: `[NOT EXISTS] TOPIC ...` or `[NOT EXISTS] SCHEMA ...`.
    pub(crate) fn assert(&mut self) -> Result<Statement> {
        let exists = !self.eat_kws(&["NOT", "EXISTS"]);
        if self.eat_kw("TOPIC") {
            let topic = match self.p.next_token().token {
                Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => s,
                Token::Word(w) => w.value,
                _ => {
                    self.p.prev_token();
                    return Err(self.error("expected a topic name"));
                }
            };
            let props = self.with_props()?;
            let timeout = self.timeout()?;
            return Ok(Statement::AssertTopic { topic, exists, props, timeout });
        }
        if self.eat_kw("SCHEMA") {
            let mut subject = None;
            let mut id = None;
            loop {
                if subject.is_none() && self.eat_kw("SUBJECT") {
                    subject = Some(match self.p.next_token().token {
                        Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => s,
                        Token::Word(w) => w.value,
                        _ => {
                            self.p.prev_token();
                            return Err(self.error("expected a subject name"));
                        }
                    });
                } else if id.is_none() && self.eat_kw("ID") {
                    let n = self.p.parse_literal_uint()?;
                    id = Some(n as i64);
                } else {
                    break;
                }
            }
            if subject.is_none() && id.is_none() {
                return Err(PlanError::Parse("ASSERT SCHEMA statements must include a subject name or an id".into()));
            }
            let timeout = self.timeout()?;
            return Ok(Statement::AssertSchema { subject, id, exists, timeout });
        }
        Err(self.error("expected TOPIC or SCHEMA after ASSERT"))
    }

    fn timeout(&mut self) -> Result<Option<std::time::Duration>> {
        if !self.eat_kw("TIMEOUT") {
            return Ok(None);
        }
        Ok(Some(parse_duration(&mut self.p)?))
    }

    /// After `RUN`: `SCRIPT 'path'`.
    pub(crate) fn run_script(&mut self) -> Result<Statement> {
        self.expect_kw("SCRIPT")?;
        Ok(Statement::RunScript(self.string()?))
    }
}
