//! The vocabulary of one call: what the worker is asked to do ([`Command`]), what it answers
//! ([`Answer`]), the per-call options and the responder that receives the answer.
//!
//! Every call of a database goes through one entry point, [`crate::Database::call`], with one of
//! these commands; the blocking helpers (`crate::blocking`) are that same path with a channel.

use std::time::Duration;

use crate::admission::Admission;
use crate::control::CancelToken;
use crate::{Error, ExecuteResult, Params, Statement, Value};

/// Identifies an interactive transaction of one database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TransactionId(pub u64);

/// Identifies a streaming cursor of one database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CursorId(pub u64);

/// How an interactive transaction begins (SQLite's BEGIN DEFERRED / IMMEDIATE / EXCLUSIVE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Behavior {
    #[default]
    Deferred,
    Immediate,
    Exclusive,
}

/// What the worker is asked to do.
pub enum Command {
    /// Runs `;`-separated statements without parameters; answers [`Answer::Done`].
    Exec { sql: String },
    /// Runs `;`-separated statements without parameters; answers [`Answer::Statements`], one
    /// result per statement (SQLite splits the text: each statement is prepared from the previous
    /// one's tail).
    Script { sql: String },
    /// Runs one statement; answers [`Answer::Statement`].
    Execute { sql: String, params: Params },
    /// Runs statements atomically (a transaction, or a savepoint inside an open one); answers
    /// [`Answer::Statements`].
    Batch { statements: Vec<Statement> },
    /// Begins an interactive transaction pinned to the worker; answers [`Answer::Transaction`].
    /// After `timeout` it is rolled back and its later commands fail with ERR_TIMEOUT.
    Begin { behavior: Behavior, timeout: Option<Duration> },
    /// Commits (`commit = true`) or rolls back an interactive transaction; answers [`Answer::Done`].
    End { transaction: TransactionId, commit: bool },
    /// Opens a streaming cursor; answers [`Answer::Cursor`].
    CursorOpen { sql: String, params: Params },
    /// Up to `max_rows` more rows of a cursor; answers [`Answer::Rows`] (`done` once exhausted: the
    /// cursor is then closed).
    CursorNext { cursor: CursorId, max_rows: usize },
    /// Finalizes a cursor before it is exhausted; answers [`Answer::Done`].
    CursorClose { cursor: CursorId },
    /// Test hook: runs a closure on the worker (to block it, or to make it panic).
    #[cfg(feature = "test-hooks")]
    Hook(Box<dyn FnOnce() + Send>),
}

/// What the worker answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Done,
    Statement(ExecuteResult),
    Statements(Vec<ExecuteResult>),
    Transaction(TransactionId),
    Cursor { id: CursorId, columns: Vec<String> },
    Rows { rows: Vec<Vec<Value>>, done: bool },
}

/// Options of one call.
#[derive(Clone, Default, Debug)]
pub struct CallOptions {
    /// Abort the call (ERR_ABORTED) when this token is cancelled.
    pub cancel: Option<CancelToken>,
    /// Fail the call (ERR_TIMEOUT) when it has not finished this long after it was submitted.
    pub timeout: Option<Duration>,
    /// Run the call inside this interactive transaction (which exempts it from admission).
    pub transaction: Option<TransactionId>,
    /// How many calls of the same caller on this database are still waiting for their answers
    /// (0 when unknown). From [`crate::CALLER_BURST`] on, the caller is busy settling answers: a
    /// read then goes where it was routed instead of running on the caller's thread
    /// (`OpenOptions::reads_on_caller`).
    pub in_flight: usize,
}

/// Receives the answer of one call, exactly once: from the worker thread or a snapshot reader,
/// or at once on the caller's thread when the call is refused up front (ERR_OVERLOADED, ERR_CLOSED,
/// ERR_WORKER_DEAD) or is a read answered there from the page cache (`OpenOptions::reads_on_caller`).
/// The [`Admission`] holds the call's place until the receiver drops it.
pub type Responder = Box<dyn FnOnce(Result<Answer, Error>, Admission) + Send + 'static>;

impl Answer {
    /// The error for an answer of another kind than its command's: a bug in the worker, reported
    /// as a dead worker rather than hidden.
    pub fn unexpected(self) -> Error {
        Error::new(
            crate::ErrorCode::WorkerDead,
            format!("the worker answered {self:?} to a call that expects another kind"),
        )
    }
}

impl Command {
    /// The transaction this command must run in, given the call's options: `End` names its own.
    pub(crate) fn transaction(&self, options: &CallOptions) -> Option<TransactionId> {
        match self {
            Command::End { transaction, .. } => Some(*transaction),
            _ => options.transaction,
        }
    }
}
