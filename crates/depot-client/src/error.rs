//! Errors with stable codes: the same strings reach JavaScript as `error.code`.

use std::fmt;

use depot::StoreError;

/// A stable error code. `Sqlite` carries SQLite's extended result code name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorCode {
    Sqlite(&'static str),
    Overloaded,
    Closed,
    WorkerDead,
    Fenced,
    StoreUnavailable,
    StoreCorrupt,
    CloseTimeout,
    Timeout,
    Aborted,
    InvalidArgument,
    IntegerOverflow,
    TooLarge,
    HistoryUnavailable,
    WouldDeadlock,
}

impl ErrorCode {
    /// The code as JavaScript sees it.
    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorCode::Sqlite(name) => name,
            ErrorCode::Overloaded => "ERR_OVERLOADED",
            ErrorCode::Closed => "ERR_CLOSED",
            ErrorCode::WorkerDead => "ERR_WORKER_DEAD",
            ErrorCode::Fenced => "ERR_FENCED",
            ErrorCode::StoreUnavailable => "ERR_STORE_UNAVAILABLE",
            ErrorCode::StoreCorrupt => "ERR_STORE_CORRUPT",
            ErrorCode::CloseTimeout => "ERR_CLOSE_TIMEOUT",
            ErrorCode::Timeout => "ERR_TIMEOUT",
            ErrorCode::Aborted => "ERR_ABORTED",
            ErrorCode::InvalidArgument => "ERR_INVALID_ARGUMENT",
            ErrorCode::IntegerOverflow => "ERR_INTEGER_OVERFLOW",
            ErrorCode::TooLarge => "ERR_TOO_LARGE",
            ErrorCode::HistoryUnavailable => "ERR_HISTORY_UNAVAILABLE",
            ErrorCode::WouldDeadlock => "ERR_WOULD_DEADLOCK",
        }
    }
}

/// An error of the database handle: a stable code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
    /// For ERR_OVERLOADED: calls in flight and the limit, so callers can back off knowingly.
    pub overload: Option<(u64, u64)>,
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Error {
        Error { code, message: message.into(), overload: None }
    }

    pub fn invalid(message: impl Into<String>) -> Error {
        Error::new(ErrorCode::InvalidArgument, message)
    }

    pub fn closed(database: &str) -> Error {
        Error::new(ErrorCode::Closed, format!("database '{database}' is closed"))
    }

    pub fn dead(database: &str) -> Error {
        Error::new(ErrorCode::WorkerDead, format!("the worker of database '{database}' died"))
    }

    /// The code as JavaScript sees it.
    pub fn code(&self) -> &'static str {
        self.code.as_str()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for Error {}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Error {
        let code = match &e {
            StoreError::Fenced { .. } | StoreError::HeadMoved { .. } => ErrorCode::Fenced,
            StoreError::Unavailable(_) => ErrorCode::StoreUnavailable,
            StoreError::Corrupt(_) => ErrorCode::StoreCorrupt,
            StoreError::InvalidArgument(_) => ErrorCode::InvalidArgument,
            StoreError::TooLarge { .. } => ErrorCode::TooLarge,
            StoreError::HistoryUnavailable(_) => ErrorCode::HistoryUnavailable,
        };
        Error::new(code, e.to_string())
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        match &e {
            rusqlite::Error::SqliteFailure(f, msg) => {
                let text = msg.clone().unwrap_or_else(|| f.to_string());
                Error::new(ErrorCode::Sqlite(sqlite_code_name(f.extended_code)), text)
            }
            rusqlite::Error::MultipleStatement => {
                Error::invalid("several statements given where one was expected (use exec)")
            }
            rusqlite::Error::InvalidParameterName(name) => {
                Error::invalid(format!("unknown parameter {name}"))
            }
            rusqlite::Error::InvalidParameterCount(given, wanted) => {
                Error::invalid(format!("{given} parameters given, the statement takes {wanted}"))
            }
            rusqlite::Error::NulError(_) | rusqlite::Error::Utf8Error(..) => Error::invalid(e.to_string()),
            other => Error::new(ErrorCode::Sqlite("SQLITE_ERROR"), other.to_string()),
        }
    }
}

/// SQLite's name for an extended result code, as `sqlite3_errstr` does not give names.
pub fn sqlite_code_name(code: i32) -> &'static str {
    use rusqlite::ffi::*;
    match code {
        SQLITE_CONSTRAINT_UNIQUE => "SQLITE_CONSTRAINT_UNIQUE",
        SQLITE_CONSTRAINT_PRIMARYKEY => "SQLITE_CONSTRAINT_PRIMARYKEY",
        SQLITE_CONSTRAINT_FOREIGNKEY => "SQLITE_CONSTRAINT_FOREIGNKEY",
        SQLITE_CONSTRAINT_NOTNULL => "SQLITE_CONSTRAINT_NOTNULL",
        SQLITE_CONSTRAINT_CHECK => "SQLITE_CONSTRAINT_CHECK",
        SQLITE_CONSTRAINT_TRIGGER => "SQLITE_CONSTRAINT_TRIGGER",
        SQLITE_CONSTRAINT_ROWID => "SQLITE_CONSTRAINT_ROWID",
        SQLITE_CONSTRAINT_DATATYPE => "SQLITE_CONSTRAINT_DATATYPE",
        SQLITE_CONSTRAINT_FUNCTION => "SQLITE_CONSTRAINT_FUNCTION",
        SQLITE_CONSTRAINT_VTAB => "SQLITE_CONSTRAINT_VTAB",
        SQLITE_CONSTRAINT_COMMITHOOK => "SQLITE_CONSTRAINT_COMMITHOOK",
        SQLITE_CONSTRAINT_PINNED => "SQLITE_CONSTRAINT_PINNED",
        SQLITE_READONLY_DBMOVED => "SQLITE_READONLY_DBMOVED",
        SQLITE_ERROR_MISSING_COLLSEQ => "SQLITE_ERROR_MISSING_COLLSEQ",
        SQLITE_ERROR_RETRY => "SQLITE_ERROR_RETRY",
        SQLITE_ERROR_SNAPSHOT => "SQLITE_ERROR_SNAPSHOT",
        SQLITE_IOERR_READ => "SQLITE_IOERR_READ",
        SQLITE_IOERR_SHORT_READ => "SQLITE_IOERR_SHORT_READ",
        SQLITE_IOERR_WRITE => "SQLITE_IOERR_WRITE",
        SQLITE_IOERR_FSYNC => "SQLITE_IOERR_FSYNC",
        SQLITE_IOERR_TRUNCATE => "SQLITE_IOERR_TRUNCATE",
        SQLITE_IOERR_NOMEM => "SQLITE_IOERR_NOMEM",
        SQLITE_LOCKED_SHAREDCACHE => "SQLITE_LOCKED_SHAREDCACHE",
        SQLITE_BUSY_RECOVERY => "SQLITE_BUSY_RECOVERY",
        SQLITE_BUSY_SNAPSHOT => "SQLITE_BUSY_SNAPSHOT",
        SQLITE_BUSY_TIMEOUT => "SQLITE_BUSY_TIMEOUT",
        SQLITE_CANTOPEN_NOTEMPDIR => "SQLITE_CANTOPEN_NOTEMPDIR",
        SQLITE_CANTOPEN_ISDIR => "SQLITE_CANTOPEN_ISDIR",
        SQLITE_CANTOPEN_FULLPATH => "SQLITE_CANTOPEN_FULLPATH",
        SQLITE_CORRUPT_VTAB => "SQLITE_CORRUPT_VTAB",
        SQLITE_CORRUPT_SEQUENCE => "SQLITE_CORRUPT_SEQUENCE",
        SQLITE_CORRUPT_INDEX => "SQLITE_CORRUPT_INDEX",
        SQLITE_READONLY_RECOVERY => "SQLITE_READONLY_RECOVERY",
        SQLITE_READONLY_CANTLOCK => "SQLITE_READONLY_CANTLOCK",
        SQLITE_READONLY_ROLLBACK => "SQLITE_READONLY_ROLLBACK",
        SQLITE_ABORT_ROLLBACK => "SQLITE_ABORT_ROLLBACK",
        SQLITE_AUTH_USER => "SQLITE_AUTH_USER",
        other => match other & 0xff {
            SQLITE_ERROR => "SQLITE_ERROR",
            SQLITE_INTERNAL => "SQLITE_INTERNAL",
            SQLITE_PERM => "SQLITE_PERM",
            SQLITE_ABORT => "SQLITE_ABORT",
            SQLITE_BUSY => "SQLITE_BUSY",
            SQLITE_LOCKED => "SQLITE_LOCKED",
            SQLITE_NOMEM => "SQLITE_NOMEM",
            SQLITE_READONLY => "SQLITE_READONLY",
            SQLITE_INTERRUPT => "SQLITE_INTERRUPT",
            SQLITE_IOERR => "SQLITE_IOERR",
            SQLITE_CORRUPT => "SQLITE_CORRUPT",
            SQLITE_NOTFOUND => "SQLITE_NOTFOUND",
            SQLITE_FULL => "SQLITE_FULL",
            SQLITE_CANTOPEN => "SQLITE_CANTOPEN",
            SQLITE_PROTOCOL => "SQLITE_PROTOCOL",
            SQLITE_SCHEMA => "SQLITE_SCHEMA",
            SQLITE_TOOBIG => "SQLITE_TOOBIG",
            SQLITE_CONSTRAINT => "SQLITE_CONSTRAINT",
            SQLITE_MISMATCH => "SQLITE_MISMATCH",
            SQLITE_MISUSE => "SQLITE_MISUSE",
            SQLITE_NOLFS => "SQLITE_NOLFS",
            SQLITE_AUTH => "SQLITE_AUTH",
            SQLITE_RANGE => "SQLITE_RANGE",
            SQLITE_NOTADB => "SQLITE_NOTADB",
            _ => "SQLITE_ERROR",
        },
    }
}
