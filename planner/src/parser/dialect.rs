//! `KsqlDialect`: sqlparser's generic dialect plus ksqlDB's expression syntax:
//! - backtick and double-quote delimited identifiers;
//! - `struct->field` dereference, binding tighter than any operator; `struct->*` in a projection;
//! - lambdas `x => body` and `(x, y) => body`;
//! - `CAST(x AS <ksqlDB type>)` with `ARRAY<..>`, `MAP<..>`, `STRUCT<..>` and custom types;
//! - `STRUCT(name := value)` and `MAP(key := value)` constructors (named arguments).
//!
//! Dereference is returned as `BinaryOp { op: Arrow, right: Identifier(field) }`; a cast to a
//! ksqlDB type as `Cast { data_type: Custom(<type text>) }`, re-parsed by the binder.

use datafusion::sql::sqlparser::ast::{
    AccessExpr, BinaryOperator, CastKind, DataType, Expr, Ident, LambdaFunction, LambdaFunctionParameter, LambdaSyntax,
    ObjectName, OneOrManyWithParens, Subscript,
};
use datafusion::sql::sqlparser::dialect::{Dialect, Precedence};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;

use std::cell::Cell;

use super::types::parse_type;

/// ksqlDB's SQL dialect on top of sqlparser.
///
/// sqlparser backtracks: where a form can be read two ways it tries one and, when that fails,
/// parses the same tokens again the other way. Nested, that takes time exponential in the depth
/// (the fuzz targets found three such forms; two are closed below). As a bound on every such
/// path, a dialect made by [`KsqlDialect::for_tokens`] allows a number of expression parses
/// proportional to the statement's length, then fails the statement as too complex.
#[derive(Debug)]
pub struct KsqlDialect {
    /// Expression parses left.
    budget: Cell<u64>,
}

impl Default for KsqlDialect {
    /// A dialect without a parse budget (for tokenizing, and texts Eddy wrote itself).
    fn default() -> Self {
        KsqlDialect { budget: Cell::new(u64::MAX) }
    }
}

impl KsqlDialect {
    /// A dialect for parsing a statement of `tokens` tokens: legitimate statements parse each
    /// expression a few times at most, far within the budget.
    pub fn for_tokens(tokens: usize) -> Self {
        KsqlDialect { budget: Cell::new(10_000 + 64 * tokens as u64) }
    }
}

fn is_word(t: &Token) -> bool {
    matches!(t, Token::Word(_))
}

impl Dialect for KsqlDialect {
    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        ch == '`' || ch == '"'
    }

    fn is_identifier_start(&self, ch: char) -> bool {
        ch.is_alphabetic() || ch == '_' || ch == '@' || ch == '$'
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        ch.is_alphanumeric() || ch == '_' || ch == '@' || ch == '$'
    }

    /// ksqlDB's identifiers may start with digits (`AS 1R`).
    fn supports_numeric_prefix(&self) -> bool {
        true
    }

    // Named function arguments are off: `k := v` (MAP, STRUCT) parses as a binary operation
    // (`parse_infix`), and `x => e` as a lambda (`parse_prefix`). With names as expressions on,
    // sqlparser parsed every function argument twice (first as a name, then as a value), so
    // nested unclosed calls took time exponential in their depth: a 130-byte statement parsed
    // for 40 s (found by the `sql` fuzz target, kept in planner/tests/fuzz_regressions.rs).
    fn supports_named_fn_args_with_assignment_operator(&self) -> bool {
        false
    }

    fn supports_named_fn_args_with_expr_name(&self) -> bool {
        false
    }

    fn supports_named_fn_args_with_rarrow_operator(&self) -> bool {
        false
    }

    fn get_next_precedence(&self, parser: &Parser) -> Option<Result<u8, ParserError>> {
        match parser.peek_token_ref().token {
            Token::Arrow | Token::LBracket => Some(Ok(self.prec_value(Precedence::Period))),
            // `k := v` in MAP(...) and STRUCT(...): looser than any operator.
            Token::Assignment => Some(Ok(1)),
            _ => None,
        }
    }

    fn parse_infix(&self, parser: &mut Parser, expr: &Expr, _precedence: u8) -> Option<Result<Expr, ParserError>> {
        if parser.peek_token_ref().token == Token::Assignment {
            parser.advance_token();
            return Some(parser.parse_expr().map(|right| Expr::BinaryOp {
                left: Box::new(expr.clone()),
                op: BinaryOperator::Assignment,
                right: Box::new(right),
            }));
        }
        // `x[i]` after any expression (e.g. `s->field[1]`).
        if parser.peek_token_ref().token == Token::LBracket {
            parser.advance_token();
            return Some((|| {
                let index = parser.parse_expr()?;
                parser.expect_token(&Token::RBracket)?;
                Ok(Expr::CompoundFieldAccess {
                    root: Box::new(expr.clone()),
                    access_chain: vec![AccessExpr::Subscript(Subscript::Index { index })],
                })
            })());
        }
        if parser.peek_token_ref().token != Token::Arrow {
            return None;
        }
        parser.advance_token();
        // `struct->*`: every field (expanded by the planner in a projection).
        if parser.consume_token(&Token::Mul) {
            return Some(Ok(Expr::BinaryOp {
                left: Box::new(expr.clone()),
                op: BinaryOperator::Arrow,
                right: Box::new(Expr::Wildcard(datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken::empty())),
            }));
        }
        Some(parser.parse_identifier().map(|field| Expr::BinaryOp {
            left: Box::new(expr.clone()),
            op: BinaryOperator::Arrow,
            right: Box::new(Expr::Identifier(field)),
        }))
    }

    fn parse_prefix(&self, parser: &mut Parser) -> Option<Result<Expr, ParserError>> {
        match self.budget.get() {
            0 => return Some(Err(ParserError::ParserError("statement too complex to parse: its expressions nest too deeply".into()))),
            n => self.budget.set(n - 1),
        }
        let t0 = parser.peek_nth_token_ref(0).token.clone();
        let t1 = parser.peek_nth_token_ref(1).token.clone();
        // x => body
        if is_word(&t0) && t1 == Token::RArrow {
            let name = match parser.parse_identifier() {
                Ok(n) => n,
                Err(e) => return Some(Err(e)),
            };
            parser.advance_token();
            return Some(lambda(parser, OneOrManyWithParens::One(param(name))));
        }
        // (x, y) => body
        if t0 == Token::LParen && is_word(&t1) {
            let mut n = 1;
            loop {
                let t = &parser.peek_nth_token_ref(n).token;
                if !is_word(t) {
                    break;
                }
                match &parser.peek_nth_token_ref(n + 1).token {
                    Token::Comma => n += 2,
                    Token::RParen if parser.peek_nth_token_ref(n + 2).token == Token::RArrow => {
                        parser.advance_token();
                        let mut names = Vec::new();
                        loop {
                            match parser.parse_identifier() {
                                Ok(id) => names.push(param(id)),
                                Err(e) => return Some(Err(e)),
                            }
                            if !parser.consume_token(&Token::Comma) {
                                break;
                            }
                        }
                        parser.advance_token(); // )
                        parser.advance_token(); // =>
                        return Some(lambda(parser, OneOrManyWithParens::Many(names)));
                    }
                    _ => break,
                }
            }
        }
        // Words sqlparser parses in a form of their own and, when that fails, parses again as a
        // function name: nested, each retry parsed everything inside again, in time exponential
        // in the depth (found by the `sql` fuzz target). ksqlDB has none of these forms, so they
        // are plain function calls here; CASE and NOT keep their meaning and never retry.
        if let Token::Word(w) = &t0 {
            if w.quote_style.is_none() && t1 == Token::LParen {
                match w.keyword {
                    Keyword::CEIL
                    | Keyword::FLOOR
                    | Keyword::CONVERT
                    | Keyword::TRY_CAST
                    | Keyword::SAFE_CAST
                    | Keyword::TRY_CONVERT
                    | Keyword::EXTRACT
                    | Keyword::POSITION
                    | Keyword::SUBSTRING
                    | Keyword::SUBSTR
                    | Keyword::OVERLAY
                    | Keyword::TRIM
                    | Keyword::EXISTS
                    | Keyword::ARRAY
                    | Keyword::INTERVAL => {
                        let name = ObjectName::from(vec![Ident::new(w.value.clone())]);
                        parser.advance_token();
                        return Some(parser.parse_function(name));
                    }
                    Keyword::NOT => {
                        parser.advance_token();
                        return Some(parser.parse_not());
                    }
                    Keyword::CASE => {
                        parser.advance_token();
                        return Some(parser.parse_case_expr());
                    }
                    _ => {}
                }
            }
        }
        // CAST(expr AS type) with ksqlDB types.
        if let Token::Word(w) = &t0 {
            if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("CAST") && t1 == Token::LParen {
                parser.advance_token();
                parser.advance_token();
                return Some((|| {
                    let e = parser.parse_expr()?;
                    parser.expect_keyword_is(datafusion::sql::sqlparser::keywords::Keyword::AS)?;
                    let t = parse_type(parser)?;
                    parser.expect_token(&Token::RParen)?;
                    Ok(Expr::Cast {
                        kind: CastKind::Cast,
                        expr: Box::new(e),
                        data_type: DataType::Custom(ObjectName::from(vec![Ident::new(t.to_string())]), vec![]),
                        array: false,
                        format: None,
                    })
                })());
            }
        }
        None
    }
}

fn param(name: Ident) -> LambdaFunctionParameter {
    LambdaFunctionParameter { name, data_type: None }
}

fn lambda(parser: &mut Parser, params: OneOrManyWithParens<LambdaFunctionParameter>) -> Result<Expr, ParserError> {
    let body = parser.parse_expr()?;
    Ok(Expr::Lambda(LambdaFunction { params, body: Box::new(body), syntax: LambdaSyntax::Arrow }))
}
