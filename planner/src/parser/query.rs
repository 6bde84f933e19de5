//! Parsing ksqlDB's SELECT: `SELECT items FROM source [JOIN ... [WITHIN ...] ON ...]* [WINDOW ...]
//! [WHERE ...] [GROUP BY ...] [HAVING ...] [PARTITION BY ...] [EMIT CHANGES|FINAL] [LIMIT n]`.

use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;

use super::types::parse_duration;
use super::P;
use crate::ast::*;
use crate::error::{PlanError, Result};

/// Words that end a source reference (so they are not taken as its alias).
const CLAUSE_WORDS: &[&str] = &[
    "ORDER", "WINDOW", "WHERE", "GROUP", "HAVING", "PARTITION", "EMIT", "LIMIT", "JOIN", "INNER", "LEFT", "RIGHT", "FULL",
    "OUTER", "ON", "WITHIN", "CROSS",
];

impl P<'_> {
    pub(crate) fn query(&mut self) -> Result<Query> {
        self.expect_kw("SELECT")?;
        let select = self.p.parse_comma_separated(Parser::parse_select_item)?;
        self.expect_kw("FROM")?;
        let from = self.source_ref()?;
        let mut joins = Vec::new();
        loop {
            let kind = if self.eat_kw("JOIN") || self.eat_kws(&["INNER", "JOIN"]) {
                JoinKind::Inner
            } else if self.eat_kws(&["LEFT", "JOIN"]) || self.eat_kws(&["LEFT", "OUTER", "JOIN"]) {
                JoinKind::Left
            } else if self.eat_kws(&["RIGHT", "JOIN"]) || self.eat_kws(&["RIGHT", "OUTER", "JOIN"]) {
                JoinKind::Right
            } else if self.eat_kws(&["FULL", "JOIN"]) || self.eat_kws(&["FULL", "OUTER", "JOIN"]) || self.eat_kws(&["OUTER", "JOIN"]) {
                JoinKind::Full
            } else {
                break;
            };
            let source = self.source_ref()?;
            let within = if self.eat_kw("WITHIN") { Some(self.within()?) } else { None };
            self.expect_kw("ON")?;
            let on = self.p.parse_expr()?;
            joins.push(Join { kind, source, within, on });
        }
        let mut q = Query::new(select, from, joins);
        loop {
            if q.window.is_none() && self.eat_kw("WINDOW") {
                q.window = Some(self.window()?);
            } else if q.selection.is_none() && self.eat_kw("WHERE") {
                q.selection = Some(self.p.parse_expr()?);
            } else if q.group_by.is_empty() && self.eat_kws(&["GROUP", "BY"]) {
                q.group_by = self.p.parse_comma_separated(Parser::parse_expr)?;
            } else if q.having.is_none() && self.eat_kw("HAVING") {
                q.having = Some(self.p.parse_expr()?);
            } else if q.partition_by.is_empty() && self.eat_kws(&["PARTITION", "BY"]) {
                q.partition_by = self.p.parse_comma_separated(Parser::parse_expr)?;
            } else if q.emit.is_none() && self.eat_kw("EMIT") {
                q.emit = Some(if self.eat_kw("CHANGES") {
                    Emit::Changes
                } else if self.eat_kw("FINAL") {
                    Emit::Final
                } else {
                    return Err(self.error("expected CHANGES or FINAL after EMIT"));
                });
            } else if q.order_by.is_empty() && self.eat_kws(&["ORDER", "BY"]) {
                loop {
                    let expr = self.p.parse_expr()?;
                    let asc = if self.eat_kw("DESC") {
                        false
                    } else {
                        self.eat_kw("ASC");
                        true
                    };
                    let nulls_first = if self.eat_kws(&["NULLS", "FIRST"]) {
                        true
                    } else if self.eat_kws(&["NULLS", "LAST"]) {
                        false
                    } else {
                        !asc
                    };
                    q.order_by.push(OrderItem { expr, asc, nulls_first });
                    if !self.p.consume_token(&Token::Comma) {
                        break;
                    }
                }
            } else if q.limit.is_none() && self.eat_kw("LIMIT") {
                q.limit = Some(self.p.parse_literal_uint()?);
            } else {
                break;
            }
        }
        Ok(q)
    }

    fn source_ref(&mut self) -> Result<SourceRef> {
        if self.p.peek_token_ref().token == Token::LParen {
            return Err(PlanError::Unsupported { feature: "a subquery in FROM".into() });
        }
        let name = self.ident()?;
        let explicit = self.eat_kw("AS");
        let alias = match &self.p.peek_token_ref().token {
            Token::Word(w) if explicit || w.quote_style.is_some() || !CLAUSE_WORDS.iter().any(|k| w.value.eq_ignore_ascii_case(k)) => {
                Some(self.ident()?)
            }
            _ if explicit => return Err(self.error("expected an alias after AS")),
            _ => None,
        };
        Ok(SourceRef { name, alias })
    }

    fn within(&mut self) -> Result<Within> {
        let (before, after) = if self.p.consume_token(&Token::LParen) {
            let b = parse_duration(&mut self.p)?;
            self.expect(Token::Comma)?;
            let a = parse_duration(&mut self.p)?;
            self.expect(Token::RParen)?;
            (b, a)
        } else {
            let d = parse_duration(&mut self.p)?;
            (d, d)
        };
        let grace = if self.eat_kws(&["GRACE", "PERIOD"]) { Some(parse_duration(&mut self.p)?) } else { None };
        Ok(Within { before, after, grace })
    }

    fn window(&mut self) -> Result<WindowSpec> {
        let kind_word = self.ident()?;
        self.expect(Token::LParen)?;
        let mut size = None;
        let mut advance = None;
        let mut gap = None;
        let mut retention = None;
        let mut grace = None;
        let kind = kind_word.as_str();
        if kind == "SESSION" {
            gap = Some(parse_duration(&mut self.p)?);
            let _ = self.p.consume_token(&Token::Comma);
        }
        while self.p.peek_token_ref().token != Token::RParen {
            // `TUMBLING (7 DAYS)`, as ksqlDB's reference writes it: a size without SIZE.
            let bare_size = kind != "SESSION" && size.is_none() && matches!(self.p.peek_token_ref().token, Token::Number(_, _));
            if bare_size || self.eat_kw("SIZE") {
                size = Some(parse_duration(&mut self.p)?);
            } else if self.eat_kws(&["ADVANCE", "BY"]) {
                advance = Some(parse_duration(&mut self.p)?);
            } else if self.eat_kw("RETENTION") {
                retention = Some(parse_duration(&mut self.p)?);
            } else if self.eat_kws(&["GRACE", "PERIOD"]) {
                grace = Some(parse_duration(&mut self.p)?);
            } else {
                return Err(self.error("expected SIZE, ADVANCE BY, RETENTION or GRACE PERIOD"));
            }
            if !self.p.consume_token(&Token::Comma) {
                break;
            }
        }
        self.expect(Token::RParen)?;
        let kind = match kind {
            "TUMBLING" => {
                if advance.is_some() {
                    return Err(PlanError::Parse("a TUMBLING window has no ADVANCE BY: use HOPPING".into()));
                }
                WindowKind::Tumbling { size: size.ok_or_else(|| PlanError::Parse("a TUMBLING window needs SIZE".into()))? }
            }
            "HOPPING" => WindowKind::Hopping {
                size: size.ok_or_else(|| PlanError::Parse("a HOPPING window needs SIZE".into()))?,
                advance: advance.ok_or_else(|| PlanError::Parse("a HOPPING window needs ADVANCE BY".into()))?,
            },
            "SESSION" => WindowKind::Session { gap: gap.expect("parsed above") },
            other => {
                return Err(PlanError::Parse(format!("unknown window type {other}: expected TUMBLING, HOPPING or SESSION")))
            }
        };
        Ok(WindowSpec { kind, retention, grace })
    }
}
