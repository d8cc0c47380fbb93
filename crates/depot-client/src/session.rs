//! What the worker thread owns: the VFS registration and the connection over it.

use std::sync::Arc;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use depot::{PageNo, PageStore};
use rusqlite::Connection;

use crate::command::{Answer, Behavior, Command, CursorId, TransactionId};
use crate::connection::{self, Denial, MinRowidWatch};
use crate::control::{Control, Running};
use crate::cursor::Cursor;
use crate::exec::Runner;
use crate::metrics::Metrics;
use crate::stmt::StatementCache;
use crate::vfs::{PageSource, RegisteredVfs, SharedPages, VfsContext};
use crate::{Error, ErrorCode, ExecuteResult, OpenOptions, Params, Statement};

/// Pages fetched in the open's round trip, so a cold open never blocks in a VFS callback for page 1
/// (and the first few b-tree pages usually come along).
const PRELOAD_PAGES: PageNo = 16;

struct OpenTx {
    id: TransactionId,
    deadline: Option<Instant>,
}

/// Prepared statements kept per database.
const STATEMENT_CACHE: usize = 256;

/// Transactions that ended by timing out, remembered so their late commands get ERR_TIMEOUT.
const EXPIRED_KEEP: usize = 1024;

pub struct Session {
    // Field order matters: cursors, then the connection, must be dropped before the VFS they use
    // is unregistered, and the connection before the watch its update hook points at.
    cursors: HashMap<CursorId, Cursor>,
    statements: StatementCache,
    conn: Option<Connection>,
    min_rowid: MinRowidWatch,
    vfs: Option<RegisteredVfs>,
    pub ctx: Arc<VfsContext>,
    denial: Denial,
    local_objects: Arc<std::sync::atomic::AtomicBool>,
    read_settings: Arc<std::sync::atomic::AtomicBool>,
    running: Running,
    metrics: Arc<crate::metrics::Metrics>,
    open_tx: Option<OpenTx>,
    expired: HashSet<TransactionId>,
    /// The store stack's clock: transaction deadlines are read on it.
    clock: Arc<dyn depot::Clock>,
    /// Transaction and cursor ids are drawn from one sequence, so neither is ever reused.
    next_id: u64,
}

impl Session {
    /// Runs on the worker thread: store open (with preload) first, then the VFS, then SQLite. A
    /// writer's page cache is `shared` with the database's snapshot readers; a handle on a point of
    /// the history (`opts.at`) keeps one of its own.
    pub fn open(
        store: Arc<dyn PageStore>,
        database: &str,
        opts: &OpenOptions,
        metrics: Arc<Metrics>,
        shared: &Arc<SharedPages>,
    ) -> Result<Session, Error> {
        let preload: Vec<PageNo> = (1..=PRELOAD_PAGES).collect();
        let (opened, lease) = match opts.at {
            None => (store.open(database, opts.generation, &preload)?, None),
            // A reader at a point: nothing claimed; a lease keeps the point readable for the
            // handle's life; the pages and size of that point.
            Some(at) => {
                let lease = store.lease(database, at)?;
                let (size_pages, pages) = store.read_at(database, &preload, at).inspect_err(|_| {
                    store.release(database, lease);
                })?;
                let head =
                    depot::Head { txid: at, size_pages, page_size: depot::PAGE_SIZE as u32, generation: 0 };
                (depot::Opened { head, pages: pages.into_iter().flatten().collect() }, Some(lease))
            }
        };
        if let Some(bad) = opened.pages.iter().find(|p| !p.verify()) {
            if let Some(lease) = lease {
                store.release(database, lease);
            }
            return Err(
                depot::StoreError::Corrupt(format!("page {} fails its checksum at open", bad.no)).into()
            );
        }
        let cache_pages = cache_pages(opts);
        let cache = match lease {
            Some(_) => SharedPages::new(cache_pages, opened.head),
            None => {
                shared.opened(opened.head);
                shared.clone()
            }
        };
        let mut source = PageSource::new(
            store.clone(),
            database.to_string(),
            opened.head,
            opened.pages,
            cache,
            cache_pages,
            metrics.clone(),
        );
        source.set_max_commit_bytes(opts.max_commit_bytes);
        if let Some(lease) = lease {
            source.pin(lease);
        }
        Self::over(source, store, database, opts.at.is_some(), metrics)
    }

    /// A snapshot reader's session: a read-only connection over `shared`, the writer's page cache,
    /// pinned to a point per statement ([`Session::repin`]). Opening it asks the store nothing.
    /// `cache_only`: for reads on the caller's thread, its reads come from the page cache only (a
    /// miss fails the statement; [`Session::take_missed`] tells).
    pub fn open_reader(
        store: Arc<dyn PageStore>,
        database: &str,
        opts: &OpenOptions,
        metrics: Arc<Metrics>,
        shared: &Arc<SharedPages>,
        cache_only: bool,
    ) -> Result<Session, Error> {
        let mut source = PageSource::reader(
            store.clone(),
            database.to_string(),
            shared.clone(),
            cache_pages(opts),
            metrics.clone(),
        );
        if cache_only {
            source.set_cache_only();
        }
        let session = Self::over(source, store, database, true, metrics)?;
        if cache_only {
            // It lives on, mostly unused, between sporadic reads: the lighter the better.
            connection::without_lookaside(session.conn());
        }
        Ok(session)
    }

    /// Whether a read of a cache-only session could not be served (a page not cached, or past
    /// its deadline) since the last look.
    pub fn take_missed(&self) -> bool {
        self.ctx.source().take_missed()
    }

    /// Points a snapshot reader's session at `head` for its next statement.
    pub fn repin(&self, head: depot::Head, deadline: Option<std::time::Instant>) {
        self.ctx.source().repin(head, deadline);
    }

    /// The VFS and the connection over `source`.
    fn over(
        source: PageSource,
        store: Arc<dyn PageStore>,
        database: &str,
        read_only: bool,
        metrics: Arc<Metrics>,
    ) -> Result<Session, Error> {
        let clock = store.clock();
        let ctx = VfsContext::new(database.to_string(), source);
        let vfs = RegisteredVfs::register(ctx.clone())?;
        let running = Running::default();
        let opened = connection::open(database, vfs.name(), running.clone(), read_only).map_err(|e| {
            let failure = ctx.source().take_failure();
            failure.map(Error::from).unwrap_or(e)
        })?;
        Ok(Session {
            cursors: HashMap::new(),
            statements: StatementCache::new(STATEMENT_CACHE),
            conn: Some(opened.conn),
            min_rowid: opened.min_rowid,
            vfs: Some(vfs),
            ctx,
            denial: opened.denial,
            local_objects: opened.local_objects,
            read_settings: opened.read_settings,
            running,
            metrics,
            open_tx: None,
            expired: HashSet::new(),
            clock,
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

    /// Runs one command on the connection.
    pub fn run(&mut self, command: Command) -> Result<Answer, Error> {
        match command {
            Command::Exec { sql } => self.script(&sql, false).map(|_| Answer::Done),
            Command::Script { sql } => self.script(&sql, true).map(Answer::Statements),
            Command::Execute { sql, params } => self.execute(&sql, &params).map(Answer::Statement),
            Command::Batch { statements } => self.batch(&statements).map(Answer::Statements),
            Command::Begin { behavior, timeout } => self.begin(behavior, timeout).map(Answer::Transaction),
            Command::End { transaction, commit } => self.end(transaction, commit).map(|()| Answer::Done),
            Command::CursorOpen { sql, params } => {
                self.cursor_open(&sql, &params).map(|(id, columns)| Answer::Cursor { id, columns })
            }
            Command::CursorNext { cursor, max_rows } => {
                self.cursor_next(cursor, max_rows).map(|(rows, done)| Answer::Rows { rows, done })
            }
            Command::CursorClose { cursor } => {
                self.close_cursor(cursor);
                Ok(Answer::Done)
            }
            #[cfg(feature = "test-hooks")]
            Command::Hook(f) => {
                f();
                Ok(Answer::Done)
            }
        }
    }

    /// Runs a read given by reference, so that it can still be sent elsewhere when it stops
    /// here (see `crate::readers`): `Execute` and `Batch` only, `None` for anything else.
    pub fn run_read(&mut self, command: &Command) -> Option<Result<Answer, Error>> {
        match command {
            Command::Execute { sql, params } => Some(self.execute(sql, params).map(Answer::Statement)),
            Command::Batch { statements } => Some(self.batch(statements).map(Answer::Statements)),
            _ => None,
        }
    }

    fn runner(&mut self) -> Runner<'_> {
        Runner {
            conn: self.conn.as_ref().expect("connection is open while the session runs"),
            cache: &mut self.statements,
            min_rowid: &self.min_rowid,
        }
    }

    /// Runs SQL without parameters through the same path as user scripts (internal BEGIN/COMMIT).
    fn exec(&mut self, sql: &str) -> Result<(), Error> {
        self.script(sql, false).map(drop)
    }

    fn execute(&mut self, sql: &str, params: &Params) -> Result<ExecuteResult, Error> {
        let r = self.runner().execute(sql, params);
        self.count_statements();
        r.map_err(|e| self.map_err(e))
    }

    fn count_statements(&self) {
        let m = &self.metrics;
        Metrics::set(&m.statement_cache_hits, self.statements.hits);
        Metrics::set(&m.statement_cache_misses, self.statements.misses);
    }

    fn batch(&mut self, statements: &[Statement]) -> Result<Vec<ExecuteResult>, Error> {
        let r = self.runner().batch(statements);
        self.count_statements();
        r.map_err(|(i, e)| {
            // `i == statements.len()`: the commit failed, not a statement.
            let mut err = self.map_err(e);
            if i < statements.len() {
                err.message = format!("statement {i} of the batch: {}", err.message);
            }
            err
        })
    }

    fn script(&mut self, sql: &str, keep_rows: bool) -> Result<Vec<ExecuteResult>, Error> {
        self.runner().script(sql, keep_rows).map_err(|e| self.map_err(e))
    }

    /// The call running now, for the progress handler.
    pub fn set_running(&self, control: Option<Arc<Control>>) {
        *self.running.lock().unwrap() = control;
    }

    /// The clock deadlines of this session are read on.
    pub fn clock(&self) -> &dyn depot::Clock {
        &*self.clock
    }

    /// The open interactive transaction and its deadline.
    pub fn open_transaction(&self) -> Option<(TransactionId, Option<Instant>)> {
        self.open_tx.as_ref().map(|t| (t.id, t.deadline))
    }

    /// Begins an interactive transaction; until it ends only its commands run.
    fn begin(&mut self, behavior: Behavior, timeout: Option<Duration>) -> Result<TransactionId, Error> {
        let sql = match behavior {
            Behavior::Deferred => "BEGIN DEFERRED",
            Behavior::Immediate => "BEGIN IMMEDIATE",
            Behavior::Exclusive => "BEGIN EXCLUSIVE",
        };
        self.exec(sql)?;
        let id = TransactionId(self.next_id());
        self.open_tx = Some(OpenTx { id, deadline: timeout.map(|t| self.clock.now() + t) });
        Ok(id)
    }

    /// Commits or rolls back the open transaction `id`. A failed COMMIT rolls back, so the
    /// transaction always ends here.
    fn end(&mut self, id: TransactionId, commit: bool) -> Result<(), Error> {
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
    pub fn transaction_gone(&self, id: TransactionId) -> Error {
        if self.expired.contains(&id) {
            Error::new(ErrorCode::Timeout, format!("transaction {} timed out and was rolled back", id.0))
        } else {
            Error::new(ErrorCode::Closed, format!("transaction {} has ended", id.0))
        }
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Prepares a streaming cursor.
    fn cursor_open(&mut self, sql: &str, params: &Params) -> Result<(CursorId, Vec<String>), Error> {
        let cursor = Cursor::open(self.conn(), sql, params).map_err(|e| self.map_err(e))?;
        let id = CursorId(self.next_id());
        let columns = cursor.columns.clone();
        self.cursors.insert(id, cursor);
        Ok((id, columns))
    }

    /// The next rows of a cursor; the cursor is finalized once exhausted or failed.
    fn cursor_next(
        &mut self,
        id: CursorId,
        max_rows: usize,
    ) -> Result<(Vec<Vec<crate::Value>>, bool), Error> {
        let cursor = self
            .cursors
            .get_mut(&id)
            .ok_or_else(|| Error::new(ErrorCode::Closed, format!("cursor {} is closed", id.0)))?;
        let r = cursor.next_chunk(max_rows);
        if !matches!(r, Ok((_, false))) {
            self.cursors.remove(&id);
        }
        r.map_err(|e| self.map_err(e))
    }

    /// Whether the cursor `id` is still open (not yet exhausted, failed or closed).
    pub fn has_cursor(&self, id: CursorId) -> bool {
        self.cursors.contains_key(&id)
    }

    /// Finalizes the cursor `id`, if it is open.
    pub fn close_cursor(&mut self, id: CursorId) {
        self.cursors.remove(&id);
    }

    /// Whether reads must run on this connection rather than on a snapshot reader: it holds a
    /// transaction begun in SQL (not an interactive one, whose uncommitted writes other calls must
    /// not see anyway), a TEMP object, an attached database, or a changed setting that changes
    /// what reads answer.
    pub fn reads_need_writer(&self) -> bool {
        let Some(conn) = self.conn.as_ref() else { return false };
        if self.open_tx.is_none() && !conn.is_autocommit() {
            return true;
        }
        // A setting that changes what reads answer (`PRAGMA case_sensitive_like`, ...) was set on
        // this connection: readers' connections would answer differently, for good.
        if self.read_settings.load(std::sync::atomic::Ordering::Relaxed) {
            return true;
        }
        // The authorizer flags every CREATE TEMP and ATTACH (VACUUM attaches a database of its own
        // for a moment): only then are they counted, and the flag drops once none is left.
        let flagged = &self.local_objects;
        if flagged.load(std::sync::atomic::Ordering::Relaxed) {
            if self.local_objects_left() {
                return true;
            }
            flagged.store(false, std::sync::atomic::Ordering::Relaxed);
        }
        false
    }

    /// Whether a TEMP object or an attached database lives in the connection now.
    fn local_objects_left(&self) -> bool {
        let temp: rusqlite::Result<i64> =
            self.conn().query_row("SELECT count(*) FROM temp.sqlite_schema", [], |r| r.get(0));
        let attached: rusqlite::Result<i64> = self.conn().query_row(
            "SELECT count(*) FROM pragma_database_list WHERE name NOT IN ('main', 'temp')",
            [],
            |r| r.get(0),
        );
        !matches!((temp, attached), (Ok(0), Ok(0)))
    }

    /// Whether the session can be put away and reopened later with nothing a caller could tell:
    /// no transaction open (interactive, or a BEGIN sent as SQL), no cursor, no TEMP object and no
    /// attached database (they live in the connection), a writer still in good standing, and not a
    /// reader at a point (its lease would lapse meanwhile).
    pub fn can_hibernate(&self) -> bool {
        if self.open_tx.is_some() || !self.cursors.is_empty() || self.conn.is_none() {
            return false;
        }
        if !self.conn().is_autocommit() {
            return false;
        }
        {
            let source = self.ctx.source();
            if source.poisoned().is_some() || source.is_pinned() {
                return false;
            }
        }
        !self.local_objects_left()
    }

    /// Closes the session for hibernation, keeping what the next one needs to go on as this one
    /// would have: the generation it holds, its id sequence and its connection settings.
    pub fn suspend(mut self) -> Resume {
        let mut settings = Vec::new();
        for name in CONNECTION_SETTINGS {
            let value: rusqlite::Result<i64> =
                self.conn().query_row(&format!("PRAGMA {name}"), [], |r| r.get(0));
            if let Ok(v) = value {
                settings.push((*name, v));
            }
        }
        let resume = Resume { generation: self.ctx.source().generation(), next_id: self.next_id, settings };
        self.close();
        self.ctx.source().forget_cache();
        resume
    }

    /// Takes up where a hibernated session left off (see [`Session::suspend`]).
    pub fn resume(&mut self, from: &Resume) -> Result<(), Error> {
        self.next_id = self.next_id.max(from.next_id);
        for (name, value) in &from.settings {
            let now: i64 =
                self.conn().query_row(&format!("PRAGMA {name}"), [], |r| r.get(0)).map_err(Error::from)?;
            if now != *value {
                self.conn()
                    .execute_batch(&format!("PRAGMA {name} = {value}"))
                    .map_err(|e| self.map_err(e))?;
            }
        }
        Ok(())
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

/// Pages of the VFS page cache `opts` asks for.
fn cache_pages(opts: &OpenOptions) -> usize {
    (opts.cache_bytes / depot::PAGE_SIZE).max(16)
}

/// Connection settings a user may change that a reopened connection would not have: read before
/// hibernating and set again after.
const CONNECTION_SETTINGS: &[&str] = &[
    "foreign_keys",
    "recursive_triggers",
    "automatic_index",
    "reverse_unordered_selects",
    "query_only",
    "cell_size_check",
    "legacy_alter_table",
    "ignore_check_constraints",
    "trusted_schema",
    "cache_size",
    "temp_store",
    "busy_timeout",
    "secure_delete",
    "max_page_count",
];

/// What a hibernated session leaves for the next one (see [`Session::suspend`]).
pub struct Resume {
    /// The generation the database's writer holds: the next session claims the same one, so a
    /// newer writer that took over meanwhile fences it.
    pub generation: u64,
    next_id: u64,
    settings: Vec<(&'static str, i64)>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.close();
    }
}
