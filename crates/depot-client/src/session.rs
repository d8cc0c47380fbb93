//! What the worker thread owns: the VFS registration and the connection over it.

use std::sync::Arc;

use depot::{PageNo, PageStore};
use rusqlite::Connection;

use crate::connection::{self, Denial};
use crate::metrics::Metrics;
use crate::vfs::{PageSource, RegisteredVfs, VfsContext};
use crate::{exec, Error, ErrorCode, ExecuteResult, OpenOptions, Params, Statement};

/// Pages fetched in the open's round trip, so a cold open never blocks in a VFS callback for page 1
/// (and the first few b-tree pages usually come along).
const PRELOAD_PAGES: PageNo = 16;

pub struct Session {
    // Field order matters: the connection must be dropped before the VFS it uses is unregistered.
    conn: Option<Connection>,
    vfs: Option<RegisteredVfs>,
    pub ctx: Arc<VfsContext>,
    denial: Denial,
}

impl Session {
    /// Runs on the worker thread: store open (with preload) first, then the VFS, then SQLite.
    pub fn open(store: Arc<dyn PageStore>, database: &str, opts: &OpenOptions, metrics: Arc<Metrics>)
        -> Result<Session, Error> {
        let preload: Vec<PageNo> = (1..=PRELOAD_PAGES).collect();
        let opened = store.open(database, opts.generation, &preload)?;
        if let Some(bad) = opened.pages.iter().find(|p| !p.verify()) {
            return Err(depot::StoreError::Corrupt(format!("page {} fails its checksum at open", bad.no)).into());
        }
        let cache_pages = (opts.cache_bytes / depot::PAGE_SIZE).max(16);
        let source = PageSource::new(store, database.to_string(), opened.head, opened.pages, cache_pages, metrics);
        let ctx = VfsContext::new(database.to_string(), source);
        let vfs = RegisteredVfs::register(ctx.clone())?;
        let (conn, denial) = connection::open(database, vfs.name()).map_err(|e| {
            let failure = ctx.source().take_failure();
            failure.map(Error::from).unwrap_or(e)
        })?;
        Ok(Session { conn: Some(conn), vfs: Some(vfs), ctx, denial })
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
        exec::execute(self.conn(), sql, params).map_err(|e| self.map_err(e))
    }

    pub fn execute_batch(&mut self, statements: &[Statement]) -> Result<Vec<ExecuteResult>, Error> {
        exec::execute_batch(self.conn(), statements).map_err(|(i, e)| {
            let mut err = self.map_err(e);
            if i < statements.len() {
                err.message = format!("statement {i} of the batch: {}", err.message);
            }
            err
        })
    }

    /// Drops the connection, then unregisters the VFS (never under a running callback: this thread
    /// is the only one that calls into the connection).
    pub fn close(&mut self) {
        self.conn.take();
        self.vfs.take();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.close();
    }
}
