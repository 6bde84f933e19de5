//! The statement parser: ksqlDB's statement grammar on top of sqlparser's tokenizer and
//! expression parser (through [`KsqlDialect`]).

mod admin;
mod dialect;
mod query;
pub mod types;
pub mod vars;

use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer, Whitespace};

pub use dialect::KsqlDialect;
pub use types::{norm_ident, parse_duration, parse_type, parse_type_str};
pub use vars::{substitute, Variables};

use crate::ast::*;
use crate::error::{PlanError, Result};

/// One statement: its text (for messages and the command log) and its syntax tree.
#[derive(Debug, Clone)]
pub struct ParsedStatement {
    /// The statement's text, without the trailing `;`.
    pub text: String,
    /// What it says.
    pub statement: Statement,
}

/// Splits `sql` into statement texts at top-level semicolons (strings and comments respected).
/// A trailing statement without `;` is included.
pub fn split_statements(sql: &str) -> Result<Vec<String>> {
    Ok(split_tokens(sql)?.into_iter().map(|(text, _)| text).collect())
}

/// True when `sql` holds at least one statement and ends with `;` (outside strings and comments):
/// what the REPL waits for before running input.
pub fn is_complete(sql: &str) -> bool {
    let dialect = KsqlDialect::default();
    match Tokenizer::new(&dialect, sql).tokenize() {
        Ok(tokens) => tokens.iter().rev().find(|t| !matches!(t, Token::Whitespace(_))) == Some(&Token::SemiColon),
        Err(_) => false,
    }
}

/// Parses every statement in `sql`.
pub fn parse(sql: &str) -> Result<Vec<ParsedStatement>> {
    let mut out = Vec::new();
    for (text, tokens) in split_tokens(sql)? {
        let statement = parse_tokens(tokens).map_err(|e| match e {
            PlanError::Parse(m) => PlanError::Parse(format!("{m} (in statement: {text})")),
            other => other,
        })?;
        out.push(ParsedStatement { text, statement });
    }
    Ok(out)
}

/// The session property that turns variable substitution off (`'false'`).
pub const SUBSTITUTION_ENABLE: &str = "ksql.variable.substitution.enable";

/// Parses every statement in `sql` as a session with variables `vars` runs them: each
/// statement's `${name}` references are substituted (unless `enabled` is false) with the
/// variables as the statements before it leave them (`DEFINE`, `UNDEFINE`, and `SET` of
/// [`SUBSTITUTION_ENABLE`] take effect for the statements after them). The statements' texts
/// are the substituted ones.
pub fn parse_script(sql: &str, vars: &Variables, enabled: bool) -> Result<Vec<ParsedStatement>> {
    if !sql.contains("${") {
        return parse(sql);
    }
    let mut vars = vars.clone();
    let mut enabled = enabled;
    let mut out = Vec::new();
    for text in split_statements(sql)? {
        let text = if enabled { substitute(&text, &vars)? } else { text };
        for st in parse(&text)? {
            match &st.statement {
                Statement::Define { name, value } => vars.define(name, value),
                Statement::Undefine(name) => {
                    vars.undefine(name);
                }
                Statement::Set { name, value } if name.eq_ignore_ascii_case(SUBSTITUTION_ENABLE) => {
                    enabled = !value.eq_ignore_ascii_case("false");
                }
                _ => {}
            }
            out.push(st);
        }
    }
    Ok(out)
}

fn split_tokens(sql: &str) -> Result<Vec<(String, Vec<TokenWithSpan>)>> {
    let dialect = KsqlDialect::default();
    let tokens = Tokenizer::new(&dialect, sql).tokenize_with_location().map_err(|e| PlanError::Parse(e.to_string()))?;
    let lines = LineIndex::new(sql);
    let mut out = Vec::new();
    let mut cur: Vec<TokenWithSpan> = Vec::new();
    let flush = |cur: &mut Vec<TokenWithSpan>, out: &mut Vec<(String, Vec<TokenWithSpan>)>| {
        let meaningful: Vec<&TokenWithSpan> = cur.iter().filter(|t| !matches!(t.token, Token::Whitespace(_))).collect();
        if let (Some(first), Some(last)) = (meaningful.first(), meaningful.last()) {
            let a = lines.offset(sql, first.span.start);
            let b = lines.offset(sql, last.span.end);
            out.push((sql[a..b.max(a)].to_string(), std::mem::take(cur)));
        }
        cur.clear();
    };
    for t in tokens {
        if t.token == Token::SemiColon {
            flush(&mut cur, &mut out);
        } else if !matches!(t.token, Token::Whitespace(Whitespace::SingleLineComment { .. } | Whitespace::MultiLineComment(_))) {
            cur.push(t);
        }
    }
    flush(&mut cur, &mut out);
    Ok(out)
}

/// Maps sqlparser locations (1-based line and character column) to byte offsets.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(s: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(s.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    fn offset(&self, s: &str, loc: Location) -> usize {
        let Some(&start) = self.starts.get((loc.line as usize).saturating_sub(1)) else { return s.len() };
        let col = (loc.column as usize).saturating_sub(1);
        s[start..].char_indices().nth(col).map(|(i, _)| start + i).unwrap_or(s.len())
    }
}

fn parse_tokens(tokens: Vec<TokenWithSpan>) -> Result<Statement> {
    let dialect = KsqlDialect::for_tokens(tokens.len());
    let parser = Parser::new(&dialect).with_tokens_with_locations(tokens);
    let mut p = P { p: parser };
    let s = p.statement()?;
    let t = p.p.peek_token();
    if t.token != Token::EOF {
        return Err(PlanError::Parse(format!("unexpected {} at line {}, column {}", t.token, t.span.start.line, t.span.start.column)));
    }
    Ok(s)
}

/// A statement parser over sqlparser's `Parser`.
pub(crate) struct P<'a> {
    pub(crate) p: Parser<'a>,
}

impl<'a> P<'a> {
    pub(crate) fn peek_kw(&self, kw: &str) -> bool {
        self.peek_nth_kw(0, kw)
    }

    pub(crate) fn peek_nth_kw(&self, n: usize, kw: &str) -> bool {
        matches!(&self.p.peek_nth_token_ref(n).token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(kw))
    }

    pub(crate) fn eat_kw(&mut self, kw: &str) -> bool {
        if self.peek_kw(kw) {
            self.p.advance_token();
            true
        } else {
            false
        }
    }

    pub(crate) fn eat_kws(&mut self, kws: &[&str]) -> bool {
        if kws.iter().enumerate().all(|(i, k)| self.peek_nth_kw(i, k)) {
            for _ in kws {
                self.p.advance_token();
            }
            true
        } else {
            false
        }
    }

    pub(crate) fn expect_kw(&mut self, kw: &str) -> Result<()> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.error(&format!("expected {kw}")))
        }
    }

    pub(crate) fn error(&self, msg: &str) -> PlanError {
        let t = self.p.peek_token();
        let found = if t.token == Token::EOF { "end of input".to_string() } else { format!("'{}'", t.token) };
        PlanError::Parse(format!("{msg}, found {found} at line {}, column {}", t.span.start.line, t.span.start.column))
    }

    pub(crate) fn expect(&mut self, tok: Token) -> Result<()> {
        if self.p.consume_token(&tok) {
            Ok(())
        } else {
            Err(self.error(&format!("expected '{tok}'")))
        }
    }

    /// An identifier, normalised.
    pub(crate) fn ident(&mut self) -> Result<String> {
        match self.p.peek_token_ref().token {
            Token::Word(_) => Ok(norm_ident(&self.p.parse_identifier()?)),
            _ => Err(self.error("expected an identifier")),
        }
    }

    pub(crate) fn string(&mut self) -> Result<String> {
        let t = self.p.next_token();
        match t.token {
            Token::SingleQuotedString(s) => Ok(s),
            _ => {
                self.p.prev_token();
                Err(self.error("expected a quoted string"))
            }
        }
    }

    fn statement(&mut self) -> Result<Statement> {
        self.refuse_unsupported()?;
        if self.eat_kw("CREATE") {
            return self.create();
        }
        if self.peek_kw("SELECT") {
            return Ok(Statement::Query(Box::new(self.query()?)));
        }
        if self.eat_kw("INSERT") {
            return self.insert();
        }
        if self.eat_kw("DROP") {
            return self.drop();
        }
        if self.eat_kw("SHOW") || self.eat_kw("LIST") {
            return self.show();
        }
        if self.eat_kw("DESCRIBE") {
            return self.describe();
        }
        if self.eat_kw("PRINT") {
            return self.print();
        }
        if self.eat_kw("SET") {
            let name = self.string()?;
            self.expect(Token::Eq)?;
            let value = self.string()?;
            return Ok(Statement::Set { name, value });
        }
        if self.eat_kw("UNSET") {
            return Ok(Statement::Unset(self.string()?));
        }
        if self.eat_kw("EXPLAIN") {
            if ["SELECT", "CREATE", "INSERT"].iter().any(|k| self.peek_kw(k)) {
                return Ok(Statement::Explain(Box::new(self.statement()?)));
            }
            return Ok(Statement::ExplainQuery(self.raw_word()?));
        }
        if self.eat_kw("TERMINATE") {
            if self.eat_kw("ALL") {
                return Ok(Statement::Terminate(None));
            }
            return Ok(Statement::Terminate(Some(self.raw_word()?)));
        }
        if self.eat_kw("DEFINE") {
            return self.define();
        }
        if self.eat_kw("UNDEFINE") {
            return Ok(Statement::Undefine(self.variable_name()?));
        }
        if self.eat_kw("PAUSE") {
            return Ok(Statement::Pause(self.query_id_or_all()?));
        }
        if self.eat_kw("RESUME") {
            return Ok(Statement::Resume(self.query_id_or_all()?));
        }
        if self.eat_kw("ASSERT") {
            return self.assert();
        }
        if self.eat_kw("RUN") {
            return self.run_script();
        }
        Err(self.error(
            "expected a statement (CREATE, SELECT, INSERT, DROP, SHOW, DESCRIBE, PRINT, SET, UNSET, EXPLAIN, TERMINATE, \
             PAUSE, RESUME, DEFINE, UNDEFINE, ASSERT, RUN SCRIPT)",
        ))
    }

    /// A word as written, upper-cased unless quoted (query ids, variable names).
    pub(crate) fn raw_word(&mut self) -> Result<String> {
        let t = self.p.next_token();
        match t.token {
            Token::Word(w) => Ok(if w.quote_style.is_some() { w.value } else { w.value.to_uppercase() }),
            Token::SingleQuotedString(s) => Ok(s),
            _ => {
                self.p.prev_token();
                Err(self.error("expected a name"))
            }
        }
    }

    fn create(&mut self) -> Result<Statement> {
        let or_replace = self.eat_kws(&["OR", "REPLACE"]);
        let is_source = self.eat_kw("SOURCE");
        if !or_replace && !is_source && self.eat_kw("TYPE") {
            let if_not_exists = self.eat_kws(&["IF", "NOT", "EXISTS"]);
            let name = self.ident()?;
            self.expect_kw("AS")?;
            let data_type = parse_type(&mut self.p)?;
            return Ok(Statement::CreateType { name, data_type, if_not_exists });
        }
        let source_type = if self.eat_kw("STREAM") {
            SourceType::Stream
        } else if self.eat_kw("TABLE") {
            SourceType::Table
        } else {
            return Err(self.error("expected STREAM, TABLE or TYPE after CREATE"));
        };
        let if_not_exists = self.eat_kws(&["IF", "NOT", "EXISTS"]);
        let name = self.ident()?;
        let mut columns = Vec::new();
        if self.p.consume_token(&Token::LParen) {
            loop {
                columns.push(self.column_def(source_type)?);
                if !self.p.consume_token(&Token::Comma) {
                    break;
                }
            }
            self.expect(Token::RParen)?;
        }
        let props = self.with_props()?;
        if self.eat_kw("AS") {
            if !columns.is_empty() {
                return Err(PlanError::Parse(
                    "a CREATE ... AS SELECT statement cannot declare columns: they come from the query".into(),
                ));
            }
            if is_source {
                return Err(PlanError::Parse("CREATE SOURCE cannot be used with AS SELECT".into()));
            }
            let query = self.query()?;
            return Ok(Statement::CreateAsSelect(CreateAsSelect {
                source_type,
                name,
                props,
                query: Box::new(query),
                or_replace,
                if_not_exists,
            }));
        }
        Ok(Statement::CreateSource(CreateSource { source_type, name, columns, props, or_replace, if_not_exists, is_source }))
    }

    fn column_def(&mut self, source_type: SourceType) -> Result<ColumnDef> {
        let name = self.ident()?;
        let data_type = parse_type(&mut self.p)?;
        let kind = if self.eat_kws(&["PRIMARY", "KEY"]) {
            if source_type == SourceType::Stream {
                return Err(PlanError::Parse(format!(
                    "column \"{name}\" is a PRIMARY KEY, but streams have KEY columns: use KEY"
                )));
            }
            ColumnKind::Key
        } else if self.eat_kw("KEY") {
            if source_type == SourceType::Table {
                return Err(PlanError::Parse(format!(
                    "column \"{name}\" is a KEY, but tables have PRIMARY KEY columns: use PRIMARY KEY"
                )));
            }
            ColumnKind::Key
        } else if self.eat_kw("HEADERS") {
            ColumnKind::Headers
        } else if self.eat_kw("HEADER") {
            self.expect(Token::LParen)?;
            let k = self.string()?;
            self.expect(Token::RParen)?;
            ColumnKind::Header(k)
        } else {
            ColumnKind::Value
        };
        Ok(ColumnDef { name, data_type, kind })
    }

    pub(crate) fn with_props(&mut self) -> Result<Props> {
        let mut props = Vec::new();
        if !self.eat_kw("WITH") {
            return Ok(props);
        }
        self.expect(Token::LParen)?;
        loop {
            let name = match self.p.next_token().token {
                Token::Word(w) => w.value.to_uppercase(),
                Token::SingleQuotedString(s) => s.to_uppercase(),
                _ => {
                    self.p.prev_token();
                    return Err(self.error("expected a property name"));
                }
            };
            self.expect(Token::Eq)?;
            let neg = self.p.consume_token(&Token::Minus);
            let t = self.p.next_token();
            let value = match t.token {
                Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => PropValue::String(s),
                Token::Number(n, _) => PropValue::Number(if neg { format!("-{n}") } else { n }),
                Token::Word(w) if w.value.eq_ignore_ascii_case("true") => PropValue::Bool(true),
                Token::Word(w) if w.value.eq_ignore_ascii_case("false") => PropValue::Bool(false),
                _ => {
                    self.p.prev_token();
                    return Err(self.error(&format!("expected a value for property {name}")));
                }
            };
            if props.iter().any(|(n, _)| *n == name) {
                return Err(PlanError::Parse(format!("duplicate property {name} in WITH clause")));
            }
            props.push((name, value));
            if !self.p.consume_token(&Token::Comma) {
                break;
            }
        }
        self.expect(Token::RParen)?;
        Ok(props)
    }

    fn insert(&mut self) -> Result<Statement> {
        self.expect_kw("INTO")?;
        let target = self.ident()?;
        let mut columns = Vec::new();
        if self.p.peek_token_ref().token == Token::LParen {
            self.p.advance_token();
            loop {
                columns.push(self.ident()?);
                if !self.p.consume_token(&Token::Comma) {
                    break;
                }
            }
            self.expect(Token::RParen)?;
        }
        if self.eat_kw("VALUES") {
            self.expect(Token::LParen)?;
            let values = if self.p.peek_token_ref().token == Token::RParen {
                Vec::new()
            } else {
                self.p.parse_comma_separated(Parser::parse_expr)?
            };
            self.expect(Token::RParen)?;
            return Ok(Statement::InsertValues(InsertValues { target, columns, values }));
        }
        if !columns.is_empty() {
            return Err(self.error("expected VALUES after the column list"));
        }
        let props = self.with_props()?;
        let query = self.query()?;
        Ok(Statement::InsertSelect { target, query: Box::new(query), props })
    }

    fn drop(&mut self) -> Result<Statement> {
        if self.eat_kw("TYPE") {
            let if_exists = self.eat_kws(&["IF", "EXISTS"]);
            return Ok(Statement::DropType { if_exists, name: self.ident()? });
        }
        let source_type = if self.eat_kw("STREAM") {
            SourceType::Stream
        } else if self.eat_kw("TABLE") {
            SourceType::Table
        } else {
            return Err(self.error("expected STREAM, TABLE or TYPE after DROP"));
        };
        let if_exists = self.eat_kws(&["IF", "EXISTS"]);
        let name = self.ident()?;
        let delete_topic = self.eat_kws(&["DELETE", "TOPIC"]);
        Ok(Statement::Drop { source_type, name, if_exists, delete_topic })
    }

    fn show(&mut self) -> Result<Statement> {
        self.eat_kw("ALL");
        let what = if self.eat_kw("STREAMS") {
            ShowWhat::Streams
        } else if self.eat_kw("TABLES") {
            ShowWhat::Tables
        } else if self.eat_kw("TOPICS") {
            ShowWhat::Topics
        } else if self.eat_kw("QUERIES") {
            ShowWhat::Queries
        } else if self.eat_kw("PROPERTIES") {
            ShowWhat::Properties
        } else if self.eat_kw("FUNCTIONS") {
            ShowWhat::Functions
        } else if self.eat_kw("TYPES") {
            ShowWhat::Types
        } else if self.eat_kw("VARIABLES") {
            ShowWhat::Variables
        } else {
            return Err(self.error("expected STREAMS, TABLES, TOPICS, QUERIES, PROPERTIES, FUNCTIONS, TYPES or VARIABLES"));
        };
        let extended = self.eat_kw("EXTENDED");
        Ok(Statement::Show { what, extended })
    }

    fn describe(&mut self) -> Result<Statement> {
        if self.eat_kw("FUNCTION") {
            return Ok(Statement::DescribeFunction(self.ident()?));
        }
        let extended = self.eat_kw("EXTENDED");
        for (kw, what) in [("STREAMS", SourceType::Stream), ("TABLES", SourceType::Table)] {
            if self.peek_kw(kw) && matches!(self.p.peek_nth_token_ref(1).token, Token::EOF) || self.peek_kw(kw) && self.peek_nth_kw(1, "EXTENDED") {
                self.p.advance_token();
                let extended = extended || self.eat_kw("EXTENDED");
                return Ok(Statement::DescribeAll { what, extended });
            }
        }
        let name = self.ident()?;
        let extended = extended || self.eat_kw("EXTENDED");
        Ok(Statement::Describe { name, extended })
    }

    fn print(&mut self) -> Result<Statement> {
        let topic = match self.p.next_token().token {
            Token::SingleQuotedString(s) => s,
            Token::Word(w) => w.value,
            _ => {
                self.p.prev_token();
                return Err(self.error("expected a topic name"));
            }
        };
        let mut from_beginning = false;
        let mut limit = None;
        let mut interval = None;
        loop {
            if self.eat_kws(&["FROM", "BEGINNING"]) {
                from_beginning = true;
            } else if self.eat_kw("LIMIT") {
                limit = Some(self.p.parse_literal_uint()?);
            } else if self.eat_kw("INTERVAL") || self.eat_kw("SAMPLE") {
                interval = Some(self.p.parse_literal_uint()?.max(1));
            } else {
                break;
            }
        }
        Ok(Statement::Print { topic, from_beginning, limit, interval })
    }
}

#[cfg(test)]
mod tests;
