//! Parsing ksqlDB type syntax and durations (`10 SECONDS`) from sqlparser tokens.

use std::time::Duration;

use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;

use crate::types::SqlType;

/// Normalises an identifier: upper-case unless it was quoted.
pub fn norm_ident(id: &datafusion::sql::sqlparser::ast::Ident) -> String {
    if id.quote_style.is_some() {
        id.value.clone()
    } else {
        id.value.to_uppercase()
    }
}

/// Parses a type: `INT`, `DECIMAL(4, 2)`, `ARRAY<STRUCT<A INT>>`, a custom type name...
pub fn parse_type(p: &mut Parser) -> Result<SqlType, ParserError> {
    let mut tp = TypeParser { p, pending_gt: 0 };
    let t = tp.parse()?;
    if tp.pending_gt > 0 {
        return Err(ParserError::ParserError("unexpected '>' after type".into()));
    }
    Ok(t)
}

/// Parses a type from its text (as produced by `SqlType`'s `Display`).
pub fn parse_type_str(text: &str) -> Result<SqlType, ParserError> {
    let dialect = super::dialect::KsqlDialect::default();
    let mut p = Parser::new(&dialect).try_with_sql(text)?;
    let t = parse_type(&mut p)?;
    if p.peek_token_ref().token != Token::EOF {
        return Err(ParserError::ParserError(format!("unexpected text after type in {text}")));
    }
    Ok(t)
}

struct TypeParser<'p, 'a> {
    p: &'p mut Parser<'a>,
    /// A `>>` token closes two brackets; the second one is remembered here.
    pending_gt: u32,
}

impl TypeParser<'_, '_> {
    fn expect_lt(&mut self) -> Result<(), ParserError> {
        self.p.expect_token(&Token::Lt).map(|_| ())
    }

    fn expect_gt(&mut self) -> Result<(), ParserError> {
        if self.pending_gt > 0 {
            self.pending_gt -= 1;
            return Ok(());
        }
        let t = self.p.next_token();
        match t.token {
            Token::Gt => Ok(()),
            Token::ShiftRight => {
                self.pending_gt += 1;
                Ok(())
            }
            _ => self.p.expected("'>'", t),
        }
    }

    fn at_gt(&self) -> bool {
        self.pending_gt > 0 || matches!(self.p.peek_token_ref().token, Token::Gt | Token::ShiftRight)
    }

    fn number(&mut self) -> Result<u64, ParserError> {
        self.p.parse_literal_uint()
    }

    fn parse(&mut self) -> Result<SqlType, ParserError> {
        let id = self.p.parse_identifier()?;
        if id.quote_style.is_some() {
            return Ok(SqlType::Custom(id.value));
        }
        let name = id.value.to_uppercase();
        Ok(match name.as_str() {
            "BOOLEAN" | "BOOL" => SqlType::Boolean,
            "INT" | "INTEGER" => SqlType::Int,
            "BIGINT" => SqlType::Bigint,
            "DOUBLE" => SqlType::Double,
            "STRING" => SqlType::String,
            "VARCHAR" => {
                // VARCHAR(n) is accepted; the length is ignored, as in ksqlDB.
                if self.p.consume_token(&Token::LParen) {
                    self.number()?;
                    self.p.expect_token(&Token::RParen)?;
                }
                SqlType::String
            }
            "BYTES" => SqlType::Bytes,
            "TIMESTAMP" => SqlType::Timestamp,
            "DATE" => SqlType::Date,
            "TIME" => SqlType::Time,
            "DECIMAL" => {
                self.p.expect_token(&Token::LParen)?;
                let precision = self.number()?;
                let scale = if self.p.consume_token(&Token::Comma) { self.number()? } else { 0 };
                self.p.expect_token(&Token::RParen)?;
                if precision > 255 || scale > 127 {
                    return Err(ParserError::ParserError(format!("invalid DECIMAL({precision}, {scale})")));
                }
                SqlType::Decimal(precision as u8, scale as i8)
            }
            "ARRAY" => {
                self.expect_lt()?;
                let t = self.parse()?;
                self.expect_gt()?;
                SqlType::Array(Box::new(t))
            }
            "MAP" => {
                self.expect_lt()?;
                let k = self.parse()?;
                self.p.expect_token(&Token::Comma)?;
                let v = self.parse()?;
                self.expect_gt()?;
                SqlType::Map(Box::new(k), Box::new(v))
            }
            "STRUCT" => {
                self.expect_lt()?;
                let mut fields = Vec::new();
                if !self.at_gt() {
                    loop {
                        let f = self.p.parse_identifier()?;
                        let t = self.parse()?;
                        fields.push((norm_ident(&f), t));
                        // A `>>` that closed the field's type closed this struct too.
                        if self.pending_gt > 0 || !self.p.consume_token(&Token::Comma) {
                            break;
                        }
                    }
                }
                self.expect_gt()?;
                SqlType::Struct(fields)
            }
            _ => SqlType::Custom(name),
        })
    }
}

/// Parses `n unit`, e.g. `10 SECONDS`, `1 HOUR`, `500 MILLISECONDS`.
pub fn parse_duration(p: &mut Parser) -> Result<Duration, ParserError> {
    let n = p.parse_literal_uint()?;
    let unit = p.parse_identifier()?;
    let ms_per = match unit.value.to_uppercase().as_str() {
        "MILLISECOND" | "MILLISECONDS" => 1,
        "SECOND" | "SECONDS" => 1_000,
        "MINUTE" | "MINUTES" => 60_000,
        "HOUR" | "HOURS" => 3_600_000,
        "DAY" | "DAYS" => 86_400_000,
        "WEEK" | "WEEKS" => 7 * 86_400_000,
        other => {
            return Err(ParserError::ParserError(format!(
                "invalid time unit {other}: expected MILLISECONDS, SECONDS, MINUTES, HOURS or DAYS"
            )))
        }
    };
    n.checked_mul(ms_per)
        .map(Duration::from_millis)
        .ok_or_else(|| ParserError::ParserError(format!("duration {n} {} is too large", unit.value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_struct_ends_before_the_next_column() {
        let dialect = crate::parser::KsqlDialect::default();
        let mut p = Parser::new(&dialect).try_with_sql("STRUCT<P STRUCT<N STRING>>, COL2 INT").unwrap();
        let t = parse_type(&mut p).unwrap();
        assert_eq!(t, SqlType::Struct(vec![("P".into(), SqlType::Struct(vec![("N".into(), SqlType::String)]))]));
        assert_eq!(p.peek_token_ref().token, Token::Comma);
    }

    #[test]
    fn nested_types_with_shift_right_tokens() {
        let t = parse_type_str("MAP<STRING, ARRAY<STRUCT<a INT, `b` DECIMAL(4,2)>>>").unwrap();
        assert_eq!(
            t,
            SqlType::Map(
                Box::new(SqlType::String),
                Box::new(SqlType::Array(Box::new(SqlType::Struct(vec![
                    ("A".into(), SqlType::Int),
                    ("b".into(), SqlType::Decimal(4, 2))
                ]))))
            )
        );
        assert_eq!(parse_type_str(&t.to_string()).unwrap(), t);
        assert!(parse_type_str("ARRAY<INT>>").is_err());
        assert!(parse_type_str("ARRAY<INT").is_err());
    }
}
