//! Values and parameters as they cross the handle: the five SQLite storage classes.

/// One SQLite value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Integer(i64),
    Real(f64),
    /// May contain NUL characters; they round-trip.
    Text(String),
    /// An empty blob stays an empty blob (never NULL).
    Blob(Vec<u8>),
}

/// Statement parameters.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Params {
    #[default]
    None,
    /// `?` and `?NNN`: value `i` binds parameter index `i + 1`.
    Positional(Vec<Value>),
    /// `:name`, `@name`, `$name`; keys given with or without the prefix.
    Named(Vec<(String, Value)>),
}

/// One statement of a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sql: String,
    pub params: Params,
}

/// What one statement produced.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExecuteResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
    /// Rows changed by this statement (0 for statements that change none).
    pub changes: u64,
    /// The rowid this statement inserted, if it inserted one.
    pub last_insert_rowid: Option<i64>,
}
