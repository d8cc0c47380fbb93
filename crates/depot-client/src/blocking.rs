//! Blocking helpers for Rust callers and tests: [`Database::call`] with a channel, waiting for the
//! answer on the calling thread (never use them on a thread that must not block, such as the JS
//! thread). The admission of each call is released as soon as its answer arrives.

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::bounded;
use depot::PageStore;

use crate::command::{Answer, Behavior, CallOptions, Command, CursorId, TransactionId};
use crate::{Database, Error, ExecuteResult, OpenOptions, Params, Statement, Value};

/// Columns and rows of a query.
pub type Rows = (Vec<String>, Vec<Vec<Value>>);

impl Database {
    /// Opens `name` and waits until its connection is ready.
    pub fn open(store: Arc<dyn PageStore>, name: &str, opts: OpenOptions) -> Result<Database, Error> {
        let (tx, rx) = bounded(1);
        Database::open_with(
            store,
            name.to_string(),
            opts,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.recv().unwrap_or_else(|_| Err(Error::dead(name)))
    }

    /// Runs `command` and waits for its answer.
    pub fn call_blocking(&self, command: Command, options: &CallOptions) -> Result<Answer, Error> {
        let (tx, rx) = bounded(1);
        self.call(
            command,
            options,
            Box::new(move |r, admission| {
                // Released before the answer is handed over: a caller that has its answer has its
                // place back (a call it makes next is never refused for this one).
                drop(admission);
                let _ = tx.send(r);
            }),
        );
        rx.recv().unwrap_or_else(|_| Err(Error::dead(self.name())))
    }

    fn plain(&self, command: Command) -> Result<Answer, Error> {
        self.call_blocking(command, &CallOptions::default())
    }

    /// Runs `;`-separated statements without parameters.
    pub fn exec(&self, sql: &str) -> Result<(), Error> {
        self.plain(Command::Exec { sql: sql.into() }).map(drop)
    }

    /// Runs `;`-separated statements; one result per statement.
    pub fn script(&self, sql: &str) -> Result<Vec<ExecuteResult>, Error> {
        match self.plain(Command::Script { sql: sql.into() })? {
            Answer::Statements(results) => Ok(results),
            other => Err(other.unexpected()),
        }
    }

    /// Runs one statement.
    pub fn execute(&self, sql: &str, params: Params) -> Result<ExecuteResult, Error> {
        self.execute_with(sql, params, &CallOptions::default())
    }

    /// Runs one statement with per-call options (cancellation, deadline, transaction).
    pub fn execute_with(
        &self,
        sql: &str,
        params: Params,
        options: &CallOptions,
    ) -> Result<ExecuteResult, Error> {
        match self.call_blocking(Command::Execute { sql: sql.into(), params }, options)? {
            Answer::Statement(result) => Ok(result),
            other => Err(other.unexpected()),
        }
    }

    /// `execute` keeping columns and rows.
    pub fn query(&self, sql: &str, params: Params) -> Result<Rows, Error> {
        self.execute(sql, params).map(|r| (r.columns, r.rows))
    }

    /// `execute` keeping changes and last insert rowid.
    pub fn run(&self, sql: &str, params: Params) -> Result<(u64, Option<i64>), Error> {
        self.execute(sql, params).map(|r| (r.changes, r.last_insert_rowid))
    }

    /// Runs statements atomically: all of them or none.
    pub fn execute_batch(&self, statements: Vec<Statement>) -> Result<Vec<ExecuteResult>, Error> {
        match self.plain(Command::Batch { statements })? {
            Answer::Statements(results) => Ok(results),
            other => Err(other.unexpected()),
        }
    }

    /// Begins an interactive transaction.
    pub fn begin(&self, behavior: Behavior, timeout: Option<Duration>) -> Result<TransactionId, Error> {
        match self.plain(Command::Begin { behavior, timeout })? {
            Answer::Transaction(id) => Ok(id),
            other => Err(other.unexpected()),
        }
    }

    /// Commits (`commit = true`) or rolls back an interactive transaction.
    pub fn end(&self, transaction: TransactionId, commit: bool) -> Result<(), Error> {
        self.plain(Command::End { transaction, commit }).map(drop)
    }

    /// Opens a streaming cursor.
    pub fn cursor_open(
        &self,
        sql: &str,
        params: Params,
        options: &CallOptions,
    ) -> Result<(CursorId, Vec<String>), Error> {
        match self.call_blocking(Command::CursorOpen { sql: sql.into(), params }, options)? {
            Answer::Cursor { id, columns } => Ok((id, columns)),
            other => Err(other.unexpected()),
        }
    }

    /// Up to `max_rows` more rows of a cursor, and whether it is exhausted.
    pub fn cursor_next(&self, cursor: CursorId, max_rows: usize) -> Result<(Vec<Vec<Value>>, bool), Error> {
        match self.plain(Command::CursorNext { cursor, max_rows })? {
            Answer::Rows { rows, done } => Ok((rows, done)),
            other => Err(other.unexpected()),
        }
    }

    /// Finalizes a cursor before it is exhausted.
    pub fn cursor_close(&self, cursor: CursorId) -> Result<(), Error> {
        self.plain(Command::CursorClose { cursor }).map(drop)
    }

    /// Test hook: runs `f` on the worker as a command (to block it, or to make it panic).
    #[cfg(feature = "test-hooks")]
    pub fn run_on_worker(&self, f: impl FnOnce() + Send + 'static) -> Result<(), Error> {
        self.plain(Command::Hook(Box::new(f))).map(drop)
    }
}
