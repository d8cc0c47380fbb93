//! Why one attempt at the server failed, and whether trying again can help.

use crate::StoreError;

/// Why one attempt failed, before it becomes a [`StoreError`].
pub(crate) enum Fail {
    /// A final answer (fenced, corrupt, pool exhausted...): returned as is, never retried.
    Store(StoreError),
    /// Making a connection failed: nothing was sent. `transient` is false when the server refused
    /// us for good (bad password, no such database), so retrying cannot help.
    Connect { message: String, transient: bool },
    /// The server or the connection failed a statement.
    Pg(tokio_postgres::Error),
    /// The statement did not finish within `statement_timeout`.
    Timeout,
}

impl From<tokio_postgres::Error> for Fail {
    fn from(e: tokio_postgres::Error) -> Fail {
        Fail::Pg(e)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Fail {
        Fail::Store(e)
    }
}

/// SQLSTATEs after which the same statement may succeed on a retry (and was not applied).
pub(crate) fn retryable_state(code: &str) -> bool {
    code.starts_with("08") // connection exception
        || matches!(code, "40001" | "40P01" | "57P01" | "57P02" | "57P03" | "53300")
}

impl Fail {
    /// Whether a read may retry after this.
    pub(crate) fn transient(&self) -> bool {
        match self {
            Fail::Store(_) => false,
            Fail::Connect { transient, .. } => *transient,
            Fail::Timeout => true,
            Fail::Pg(e) => e.code().is_none_or(|c| retryable_state(c.code())),
        }
    }

    /// Whether the server said it did not apply the statement and a retry may succeed.
    pub(crate) fn refused_transiently(&self) -> bool {
        match self {
            Fail::Connect { transient, .. } => *transient,
            Fail::Pg(e) => e.code().is_some_and(|c| retryable_state(c.code())),
            _ => false,
        }
    }

    pub(crate) fn into_error(self, describe: &str) -> StoreError {
        match self {
            Fail::Store(e) => e,
            Fail::Connect { message, .. } => StoreError::Unavailable(format!("{describe}: {message}")),
            Fail::Pg(e) => StoreError::Unavailable(format!("{describe}: {}", pg_message(&e))),
            Fail::Timeout => StoreError::Unavailable(format!("{describe}: statement timed out")),
        }
    }
}

/// The driver's error with its causes ("error connecting to server: Connection refused"). Neither
/// carries the password: the driver never puts it in a message.
pub(crate) fn pg_message(e: &tokio_postgres::Error) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let more = s.to_string();
        if !out.contains(&more) {
            out.push_str(": ");
            out.push_str(&more);
        }
        source = s.source();
    }
    out
}
