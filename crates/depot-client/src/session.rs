//! What the worker thread owns: the VFS registration and the connection over it.

use std::sync::Arc;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use depot::{PageNo, PageStore};
use rusqlite::Connection;

use crate::connection::{self, Denial};
use crate::control::{Control, Running};
use crate::cursor::Cursor;
use crate::metrics::Metrics;
use crate::stmt::StatementCache;
use crate::vfs::{PageSource, RegisteredVfs, VfsContext};
use crate::{exec, Error, ErrorCode, ExecuteResult, OpenOptions, Params, Statement};

/// Pages fetched in the open's round trip, so a cold open never blocks in a VFS callback for page 1
/// (and the first few b-tree pages usually come along).
const PRELOAD_PAGES: PageNo = 16;

/// Identifies an interactive transaction or a cursor of one database.
pub type TxId = u64;

/// How an interactive transaction begins (SQLite's BEGIN DEFERRED / IMMEDIATE / EXCLUSIVE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Behavior {
    #[default]
    Deferred,
    Immediate,
    Exclusive,
}

struct OpenTx {
    id: TxId,
    deadline: Option<Instant>,
}

/// Prepared statements kept per database.
const STATEMENT_CACHE: usize = 256;

/// Transactions that ended by timing out, remembered so their late commands get ERR_TIMEOUT.
const EXPIRED_KEEP: usize = 1024;

pub struct Session {
    // Field order matters: cursors, then the connection, must be dropped before the VFS they use
    // is unregistered.
    cursors: HashMap<TxId, Cursor>,
    statements: StatementCache,
    conn: Option<Connection>,
    vfs: Option<RegisteredVfs>,
    pub ctx: Arc<VfsContext>,
    denial: Denial,
    running: Running,
    metrics: Arc<crate::metrics::Metrics>,
    open_tx: Option<OpenTx>,
    expired: HashSet<TxId>,
    next_id: TxId,
}

impl Session {
    /// Runs on the worker thread: store open (with preload) first, then the VFS, then SQLite.
    pub fn open(
        store: Arc<dyn PageStore>,
        database: &str,
        opts: &OpenOptions,
        metrics: Arc<Metrics>,
    ) -> Result<Session, Error> {
        let preload: Vec<PageNo> = (1..=PRELOAD_PAGES).collect();
        let opened = store.open(database, opts.generation, &preload)?;
        if let Some(bad) = opened.pages.iter().find(|p| !p.verify()) {
            return Err(
                depot::StoreError::Corrupt(format!("page {} fails its checksum at open", bad.no)).into()
            );
        }
        let cache_pages = (opts.cache_bytes / depot::PAGE_SIZE).max(16);
        let mut source = PageSource::new(
            store,
            database.to_string(),
            opened.head,
            opened.pages,
            cache_pages,
            metrics.clone(),
        );
        source.set_max_commit_bytes(opts.max_commit_bytes);
        let ctx = VfsContext::new(database.to_string(), source);
        let vfs = RegisteredVfs::register(ctx.clone())?;
        let running = Running::default();
        let (conn, denial) = connection::open(database, vfs.name(), running.clone()).map_err(|e| {
            let failure = ctx.source().take_failure();
            failure.map(Error::from).unwrap_or(e)
        })?;
        Ok(Session {
            cursors: HashMap::new(),
            statements: StatementCache::new(STATEMENT_CACHE),
            conn: Some(conn),
            vfs: Some(vfs),
            ctx,
            denial,
            running,
            metrics,
            open_tx: None,
            expired: HashSet::new(),
            next_id: 1,
        })
    }

    fn conn(&self) -> &Connection {
        self.conn.as_ref().expect("connection is open while the session runs")
    }

    /// The error to report for a failed call: a store failure behind an I/O error wins over SQLite's
    /// generic code; an authorizer refusal gets its reason.
    pub fn map_err(&self, e: rusqlite::Error) -> Error {
        if let Some(f) = self.ctx.source().take_failure() {
            return f.into();
        }
        if let rusqlite::Error::ToSqlConversionFailure(inner) = &e {
            if let Some(ours) = inner.downcast_ref::<Error>() {
                return ours.clone();
            }
        }
        let mut err = Error::from(e);
        if err.code == ErrorCode::Sqlite("SQLITE_AUTH") {
            if let Some(why) = self.denial.lock().unwrap().take() {
                err.message = why;
            }
        }
        err
    }

    /// Fails fast once the writer was fenced or lost track of a commit.
    pub fn check_poison(&self) -> Result<(), Error> {
        match self.ctx.source().poisoned() {
            Some(e) => Err(e.clone().into()),
            None => Ok(()),
        }
    }

    pub fn exec(&mut self, sql: &str) -> Result<(), Error> {
        self.conn().execute_batch(sql).map_err(|e| self.map_err(e))
    }

    pub fn execute(&mut self, sql: &str, params: &Params) -> Result<ExecuteResult, Error> {
        let conn = self.conn.as_ref().expect("connection is open while the session runs");
        let r = exec::execute(conn, &mut self.statements, sql, params);
        self.count_statements();
        r.map_err(|e| self.map_err(e))
    }

    fn count_statements(&self) {
        let m = &self.metrics;
        crate::metrics::Metrics::set(&m.statement_cache_hits, self.statements.hits);
        crate::metrics::Metrics::set(&m.statement_cache_misses, self.statements.misses);
    }

    pub fn execute_batch(&mut self, statements: &[Statement]) -> Result<Vec<ExecuteResult>, Error> {
        let conn = self.conn.as_ref().expect("connection is open while the session runs");
        let r = exec::execute_batch(conn, &mut self.statements, statements);
        self.count_statements();
        r.map_err(|(i, e)| {
            let mut err = self.map_err(e);
            if i < statements.len() {
                err.message = format!("statement {i} of the batch: {}", err.message);
            }
            err
        })
    }

    /// The call running now, for the progress handler.
    pub fn set_running(&self, control: Option<Arc<Control>>) {
        *self.running.lock().unwrap() = control;
    }

    /// The open interactive transaction and its deadline.
    pub fn open_transaction(&self) -> Option<(TxId, Option<Instant>)> {
        self.open_tx.as_ref().map(|t| (t.id, t.deadline))
    }

    /// Begins an interactive transaction; until it ends only its commands run.
    pub fn begin(&mut self, behavior: Behavior, timeout: Option<Duration>) -> Result<TxId, Error> {
        let sql = match behavior {
            Behavior::Deferred => "BEGIN DEFERRED",
            Behavior::Immediate => "BEGIN IMMEDIATE",
            Behavior::Exclusive => "BEGIN EXCLUSIVE",
        };
        self.exec(sql)?;
        let id = self.next_id();
        self.open_tx = Some(OpenTx { id, deadline: timeout.map(|t| Instant::now() + t) });
        Ok(id)
    }

    /// Commits or rolls back the open transaction `id`. A failed COMMIT rolls back, so the
    /// transaction always ends here.
    pub fn end(&mut self, id: TxId, commit: bool) -> Result<(), Error> {
        if self.open_tx.as_ref().map(|t| t.id) != Some(id) {
            return Err(self.transaction_gone(id));
        }
        self.open_tx = None;
        let r = self.exec(if commit { "COMMIT" } else { "ROLLBACK" });
        if r.is_err() && !self.conn().is_autocommit() {
            let _ = self.conn().execute_batch("ROLLBACK");
        }
        r
    }

    /// The open transaction ran past its deadline: roll it back and release the waiting calls.
    pub fn expire_transaction(&mut self) {
        if let Some(t) = self.open_tx.take() {
            tracing::warn!(database = %self.ctx.database, "interactive transaction timed out; rolled back");
            if !self.conn().is_autocommit() {
                let _ = self.conn().execute_batch("ROLLBACK");
            }
            if self.expired.len() >= EXPIRED_KEEP {
                self.expired.clear();
            }
            self.expired.insert(t.id);
        }
    }

    /// The error for a command of a transaction that is not open.
    pub fn transaction_gone(&self, id: TxId) -> Error {
        if self.expired.contains(&id) {
            Error::new(ErrorCode::Timeout, format!("transaction {id} timed out and was rolled back"))
        } else {
            Error::new(ErrorCode::Closed, format!("transaction {id} has ended"))
        }
    }

    fn next_id(&mut self) -> TxId {
        self.next_id += 1;
        self.next_id
    }

    /// Prepares a streaming cursor.
    pub fn cursor_open(&mut self, sql: &str, params: &Params) -> Result<(TxId, Vec<String>), Error> {
        let cursor = Cursor::open(self.conn(), sql, params).map_err(|e| self.map_err(e))?;
        let id = self.next_id();
        let columns = cursor.columns.clone();
        self.cursors.insert(id, cursor);
        Ok((id, columns))
    }

    /// The next rows of a cursor; the cursor is finalized once exhausted or failed.
    pub fn cursor_next(
        &mut self,
        id: TxId,
        max_rows: usize,
    ) -> Result<(Vec<Vec<crate::Value>>, bool), Error> {
        let cursor = self
            .cursors
            .get_mut(&id)
            .ok_or_else(|| Error::new(ErrorCode::Closed, format!("cursor {id} is closed")))?;
        let r = cursor.next_chunk(max_rows);
        if !matches!(r, Ok((_, false))) {
            self.cursors.remove(&id);
        }
        r.map_err(|e| self.map_err(e))
    }

    pub fn cursor_close(&mut self, id: TxId) {
        self.cursors.remove(&id);
    }

    /// Drops the connection, then unregisters the VFS (never under a running callback: this thread
    /// is the only one that calls into the connection).
    pub fn close(&mut self) {
        if self.conn.is_some() && !self.ctx.panicked.load(std::sync::atomic::Ordering::SeqCst) {
            self.ctx.source().save_hints();
        }
        self.cursors.clear();
        self.statements.clear();
        self.conn.take();
        self.vfs.take();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.close();
    }
}
