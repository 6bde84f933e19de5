//! Statements of Eddy's SQL dialect (ksqlDB's), as parsed. Expressions are sqlparser's `Expr`.

use std::time::Duration;

use datafusion::sql::sqlparser::ast::{Expr, SelectItem};

use crate::types::SqlType;

/// Stream or table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SourceType {
    /// A stream: every record is an event.
    Stream,
    /// A table: the latest value per key.
    Table,
}

impl SourceType {
    /// "stream" or "table".
    pub fn noun(self) -> &'static str {
        match self {
            SourceType::Stream => "stream",
            SourceType::Table => "table",
        }
    }
}

/// What a declared column is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ColumnKind {
    /// A value column.
    Value,
    /// A key column (`KEY` on streams, `PRIMARY KEY` on tables).
    Key,
    /// All record headers (`HEADERS`).
    Headers,
    /// One record header (`HEADER('k')`).
    Header(String),
}

/// A column in `CREATE STREAM s (...)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDef {
    /// Normalised name (upper-case unless quoted).
    pub name: String,
    /// Declared type.
    pub data_type: SqlType,
    /// Key, value or header column.
    pub kind: ColumnKind,
}

/// A `WITH (...)` property value.
#[derive(Debug, Clone, PartialEq)]
pub enum PropValue {
    /// A quoted string.
    String(String),
    /// A number, as written.
    Number(String),
    /// TRUE / FALSE.
    Bool(bool),
}

impl PropValue {
    /// The value as text (strings unquoted).
    pub fn text(&self) -> String {
        match self {
            PropValue::String(s) | PropValue::Number(s) => s.clone(),
            PropValue::Bool(b) => b.to_string(),
        }
    }
}

/// `WITH (name = value, ...)`: names upper-cased, in order.
pub type Props = Vec<(String, PropValue)>;

/// `CREATE [OR REPLACE] [SOURCE] STREAM|TABLE [IF NOT EXISTS] name (columns) WITH (...)`.
#[derive(Debug, Clone)]
pub struct CreateSource {
    /// Stream or table.
    pub source_type: SourceType,
    /// Name.
    pub name: String,
    /// Columns, in order.
    pub columns: Vec<ColumnDef>,
    /// WITH properties.
    pub props: Props,
    /// `OR REPLACE`.
    pub or_replace: bool,
    /// `IF NOT EXISTS`.
    pub if_not_exists: bool,
    /// `SOURCE`: read-only, materialized.
    pub is_source: bool,
}

/// `CREATE STREAM|TABLE name [WITH (...)] AS SELECT ...`.
#[derive(Debug, Clone)]
pub struct CreateAsSelect {
    /// Stream or table.
    pub source_type: SourceType,
    /// Name.
    pub name: String,
    /// WITH properties.
    pub props: Props,
    /// The query.
    pub query: Box<Query>,
    /// `OR REPLACE`.
    pub or_replace: bool,
    /// `IF NOT EXISTS`.
    pub if_not_exists: bool,
}

/// `INSERT INTO name [(cols)] VALUES (...)`.
#[derive(Debug, Clone)]
pub struct InsertValues {
    /// Target.
    pub target: String,
    /// Named columns; empty means all columns in order (key columns first).
    pub columns: Vec<String>,
    /// The values.
    pub values: Vec<Expr>,
}

/// Join types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    /// `[INNER] JOIN`
    Inner,
    /// `LEFT [OUTER] JOIN`
    Left,
    /// `RIGHT [OUTER] JOIN`
    Right,
    /// `FULL [OUTER] JOIN`
    Full,
}

/// `WITHIN n unit` or `WITHIN (before, after)`, with an optional `GRACE PERIOD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Within {
    /// How far the right side may be before the left.
    pub before: Duration,
    /// How far the right side may be after the left.
    pub after: Duration,
    /// Grace period.
    pub grace: Option<Duration>,
}

/// A source in FROM or JOIN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRef {
    /// Source name (normalised).
    pub name: String,
    /// Alias (normalised), if any.
    pub alias: Option<String>,
}

/// One `JOIN` clause.
#[derive(Debug, Clone)]
pub struct Join {
    /// Join type.
    pub kind: JoinKind,
    /// Right side.
    pub source: SourceRef,
    /// Stream-stream join window.
    pub within: Option<Within>,
    /// Join condition.
    pub on: Expr,
}

/// Window types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowKind {
    /// `TUMBLING (SIZE n unit)`
    Tumbling {
        /// Window size.
        size: Duration,
    },
    /// `HOPPING (SIZE n unit, ADVANCE BY n unit)`
    Hopping {
        /// Window size.
        size: Duration,
        /// Advance.
        advance: Duration,
    },
    /// `SESSION (n unit)`
    Session {
        /// Inactivity gap.
        gap: Duration,
    },
}

/// `WINDOW ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowSpec {
    /// Window type and sizes.
    pub kind: WindowKind,
    /// `RETENTION n unit`.
    pub retention: Option<Duration>,
    /// `GRACE PERIOD n unit`.
    pub grace: Option<Duration>,
}

/// `EMIT CHANGES` / `EMIT FINAL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emit {
    /// Every change.
    Changes,
    /// Each window once, when it closes.
    Final,
}

/// A `SELECT` statement in ksqlDB's shape.
#[derive(Debug, Clone)]
pub struct Query {
    /// Projection.
    pub select: Vec<SelectItem>,
    /// First source.
    pub from: SourceRef,
    /// Joins, in order.
    pub joins: Vec<Join>,
    /// Window clause.
    pub window: Option<WindowSpec>,
    /// WHERE.
    pub selection: Option<Expr>,
    /// GROUP BY expressions.
    pub group_by: Vec<Expr>,
    /// HAVING.
    pub having: Option<Expr>,
    /// PARTITION BY expressions.
    pub partition_by: Vec<Expr>,
    /// EMIT clause.
    pub emit: Option<Emit>,
    /// ORDER BY (pull queries only).
    pub order_by: Vec<OrderItem>,
    /// LIMIT.
    pub limit: Option<u64>,
}

impl Query {
    /// `SELECT select FROM from joins`, with no other clause.
    pub fn new(select: Vec<SelectItem>, from: SourceRef, joins: Vec<Join>) -> Self {
        Query {
            select,
            from,
            joins,
            window: None,
            selection: None,
            group_by: Vec::new(),
            having: None,
            partition_by: Vec::new(),
            emit: None,
            order_by: Vec::new(),
            limit: None,
        }
    }
}

/// One ORDER BY item.
#[derive(Debug, Clone)]
pub struct OrderItem {
    /// The expression.
    pub expr: Expr,
    /// Ascending (default) or descending.
    pub asc: bool,
    /// NULLS FIRST (default for DESC) or NULLS LAST (default for ASC).
    pub nulls_first: bool,
}

/// What `SHOW` / `LIST` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShowWhat {
    /// Streams.
    Streams,
    /// Tables.
    Tables,
    /// Topics.
    Topics,
    /// Queries.
    Queries,
    /// Session properties.
    Properties,
    /// Functions.
    Functions,
    /// Custom types.
    Types,
    /// Session variables (DEFINE).
    Variables,
}

/// A parsed statement.
#[derive(Debug, Clone)]
pub enum Statement {
    /// CREATE STREAM/TABLE with columns.
    CreateSource(CreateSource),
    /// CREATE STREAM/TABLE AS SELECT.
    CreateAsSelect(CreateAsSelect),
    /// INSERT INTO ... VALUES.
    InsertValues(InsertValues),
    /// INSERT INTO ... SELECT.
    InsertSelect {
        /// Target stream.
        target: String,
        /// The query.
        query: Box<Query>,
        /// WITH properties.
        props: Props,
    },
    /// A push or pull query.
    Query(Box<Query>),
    /// DROP STREAM/TABLE.
    Drop {
        /// Stream or table.
        source_type: SourceType,
        /// Name.
        name: String,
        /// IF EXISTS.
        if_exists: bool,
        /// DELETE TOPIC.
        delete_topic: bool,
    },
    /// SHOW / LIST.
    Show {
        /// What.
        what: ShowWhat,
        /// EXTENDED.
        extended: bool,
    },
    /// DESCRIBE [EXTENDED] name.
    Describe {
        /// Name.
        name: String,
        /// EXTENDED.
        extended: bool,
    },
    /// DESCRIBE STREAMS|TABLES [EXTENDED].
    DescribeAll {
        /// Streams or tables.
        what: SourceType,
        /// EXTENDED.
        extended: bool,
    },
    /// DESCRIBE FUNCTION name.
    DescribeFunction(String),
    /// PRINT topic.
    Print {
        /// Topic name as written.
        topic: String,
        /// FROM BEGINNING.
        from_beginning: bool,
        /// LIMIT.
        limit: Option<u64>,
        /// INTERVAL (print every n-th record).
        interval: Option<u64>,
    },
    /// SET 'name' = 'value'.
    Set {
        /// Property name.
        name: String,
        /// Value.
        value: String,
    },
    /// UNSET 'name'.
    Unset(String),
    /// EXPLAIN a statement.
    Explain(Box<Statement>),
    /// EXPLAIN a running query.
    ExplainQuery(String),
    /// TERMINATE id | ALL.
    Terminate(Option<String>),
    /// CREATE TYPE name AS type.
    CreateType {
        /// Name.
        name: String,
        /// Definition.
        data_type: SqlType,
        /// IF NOT EXISTS.
        if_not_exists: bool,
    },
    /// DROP TYPE name.
    DropType {
        /// Name.
        name: String,
        /// IF EXISTS.
        if_exists: bool,
    },
    /// DEFINE name = 'value'.
    Define {
        /// Variable.
        name: String,
        /// Value.
        value: String,
    },
    /// UNDEFINE name.
    Undefine(String),
    /// PAUSE id | ALL: stop processing, keeping state and position.
    Pause(Option<String>),
    /// RESUME id | ALL: continue a paused query where it stopped.
    Resume(Option<String>),
    /// `ASSERT [NOT EXISTS] TOPIC name [WITH (...)] [TIMEOUT n unit]`.
    AssertTopic {
        /// The topic, as written.
        topic: String,
        /// False for `NOT EXISTS`.
        exists: bool,
        /// Properties to check (PARTITIONS, REPLICAS).
        props: Props,
        /// How long to wait for the assertion to hold.
        timeout: Option<Duration>,
    },
    /// `ASSERT [NOT EXISTS] SCHEMA [SUBJECT name] [ID n] [TIMEOUT n unit]`.
    AssertSchema {
        /// The subject.
        subject: Option<String>,
        /// The schema id.
        id: Option<i64>,
        /// False for `NOT EXISTS`.
        exists: bool,
        /// How long to wait for the assertion to hold.
        timeout: Option<Duration>,
    },
    /// `RUN SCRIPT 'path'`: the statements of a file (run by the CLI).
    RunScript(String),
}
