//! Raw prepared statements and the worker's statement cache.
//!
//! The hot path (prepare once, bind, step, read columns) runs on `sqlite3_stmt` directly: rusqlite's
//! `Rows` resets its statement when dropped (a streaming cursor must outlive a command) and its
//! statement cache has no hit or miss counters. One type serves both the cache and cursors.

use std::collections::HashMap;
use std::ffi::{c_int, CStr};
use std::ptr::NonNull;

use rusqlite::{ffi, Connection};

use crate::exec::Binder;
use crate::Value;

/// One prepared statement of a connection; finalized on drop (always before the connection).
pub struct RawStatement {
    stmt: NonNull<ffi::sqlite3_stmt>,
    db: *mut ffi::sqlite3,
}

// SAFETY: a statement is used only on the worker thread that owns its connection; it moves there
// inside the session, never concurrently.
unsafe impl Send for RawStatement {}

/// An error of the connection, as rusqlite reports it (so the worker maps it in one place).
pub fn error_of(db: *mut ffi::sqlite3, rc: c_int) -> rusqlite::Error {
    // SAFETY: `db` is the live connection the statement belongs to.
    let (code, msg) = unsafe {
        let code = ffi::sqlite3_extended_errcode(db);
        let msg = CStr::from_ptr(ffi::sqlite3_errmsg(db)).to_string_lossy().into_owned();
        (if code == 0 { rc } else { code }, msg)
    };
    rusqlite::Error::SqliteFailure(ffi::Error::new(code), Some(msg))
}

impl RawStatement {
    /// Prepares exactly one statement (a second one in `sql` is an error).
    pub fn prepare(conn: &Connection, sql: &str) -> Result<RawStatement, rusqlite::Error> {
        // SAFETY: the handle is valid while `conn` lives; statements are finalized before it closes.
        let db = unsafe { conn.handle() };
        let mut raw = std::ptr::null_mut();
        let mut tail = std::ptr::null();
        let rc = unsafe {
            ffi::sqlite3_prepare_v2(db, sql.as_ptr() as *const _, sql.len() as c_int, &mut raw, &mut tail)
        };
        if rc != ffi::SQLITE_OK {
            return Err(error_of(db, rc));
        }
        let Some(stmt) = NonNull::new(raw) else {
            return Err(rusqlite::Error::ToSqlConversionFailure(Box::new(crate::Error::invalid(
                "the SQL text holds no statement",
            ))));
        };
        let statement = RawStatement { stmt, db };
        let consumed = tail as usize - sql.as_ptr() as usize;
        if !sql[consumed..].trim_start_matches(|c: char| c.is_whitespace() || c == ';').is_empty() {
            return Err(rusqlite::Error::MultipleStatement);
        }
        Ok(statement)
    }

    fn raw(&self) -> *mut ffi::sqlite3_stmt {
        self.stmt.as_ptr()
    }

    /// Column names (read after the first step when the statement may have been re-prepared).
    pub fn column_names(&self) -> Vec<String> {
        let n = unsafe { ffi::sqlite3_column_count(self.raw()) };
        (0..n)
            .map(|i| unsafe {
                let p = ffi::sqlite3_column_name(self.raw(), i);
                if p.is_null() {
                    String::new()
                } else {
                    CStr::from_ptr(p).to_string_lossy().into_owned()
                }
            })
            .collect()
    }

    /// Whether the statement cannot write.
    pub fn readonly(&self) -> bool {
        unsafe { ffi::sqlite3_stmt_readonly(self.raw()) != 0 }
    }

    /// Steps once: `Ok(true)` with a row to read, `Ok(false)` when done.
    pub fn step(&mut self) -> Result<bool, rusqlite::Error> {
        match unsafe { ffi::sqlite3_step(self.raw()) } {
            ffi::SQLITE_ROW => Ok(true),
            ffi::SQLITE_DONE => Ok(false),
            rc => Err(error_of(self.db, rc)),
        }
    }

    /// The current row's values.
    pub fn row(&self) -> Vec<Value> {
        let n = unsafe { ffi::sqlite3_column_count(self.raw()) };
        (0..n).map(|i| unsafe { column(self.raw(), i) }).collect()
    }

    /// Ready for the next use: reset, bindings cleared.
    pub fn reset(&mut self) {
        unsafe {
            ffi::sqlite3_reset(self.raw());
            ffi::sqlite3_clear_bindings(self.raw());
        }
    }
}

/// SAFETY: `s` has a current row and `i` is a valid column.
unsafe fn column(s: *mut ffi::sqlite3_stmt, i: c_int) -> Value {
    match ffi::sqlite3_column_type(s, i) {
        ffi::SQLITE_INTEGER => Value::Integer(ffi::sqlite3_column_int64(s, i)),
        ffi::SQLITE_FLOAT => Value::Real(ffi::sqlite3_column_double(s, i)),
        ffi::SQLITE_TEXT => {
            let p = ffi::sqlite3_column_text(s, i);
            let n = ffi::sqlite3_column_bytes(s, i) as usize;
            let bytes = if p.is_null() { &[][..] } else { std::slice::from_raw_parts(p, n) };
            Value::Text(String::from_utf8_lossy(bytes).into_owned())
        }
        ffi::SQLITE_BLOB => {
            let p = ffi::sqlite3_column_blob(s, i) as *const u8;
            let n = ffi::sqlite3_column_bytes(s, i) as usize;
            Value::Blob(if p.is_null() { Vec::new() } else { std::slice::from_raw_parts(p, n).to_vec() })
        }
        _ => Value::Null,
    }
}

impl Binder for RawStatement {
    fn count(&self) -> usize {
        unsafe { ffi::sqlite3_bind_parameter_count(self.raw()) as usize }
    }

    fn name(&self, i: usize) -> Option<String> {
        let p = unsafe { ffi::sqlite3_bind_parameter_name(self.raw(), i as c_int) };
        (!p.is_null()).then(|| unsafe { CStr::from_ptr(p).to_string_lossy().into_owned() })
    }

    fn bind(&mut self, i: usize, v: &Value) -> rusqlite::Result<()> {
        let (s, i) = (self.raw(), i as c_int);
        let rc = unsafe {
            match v {
                Value::Null => ffi::sqlite3_bind_null(s, i),
                Value::Integer(n) => ffi::sqlite3_bind_int64(s, i, *n),
                Value::Real(f) => ffi::sqlite3_bind_double(s, i, *f),
                Value::Text(t) => ffi::sqlite3_bind_text64(
                    s,
                    i,
                    t.as_ptr() as *const _,
                    t.len() as u64,
                    ffi::SQLITE_TRANSIENT(),
                    ffi::SQLITE_UTF8 as u8,
                ),
                // A non-null pointer even for an empty blob: a null one would bind NULL.
                Value::Blob(b) => ffi::sqlite3_bind_blob64(
                    s,
                    i,
                    if b.is_empty() { [0u8; 1].as_ptr() } else { b.as_ptr() } as *const _,
                    b.len() as u64,
                    ffi::SQLITE_TRANSIENT(),
                ),
            }
        };
        if rc == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(error_of(self.db, rc))
        }
    }
}

impl Drop for RawStatement {
    fn drop(&mut self) {
        unsafe { ffi::sqlite3_finalize(self.raw()) };
    }
}

/// Prepared statements keyed by SQL text, least recently used evicted past `capacity`.
pub struct StatementCache {
    entries: HashMap<String, (RawStatement, u64)>,
    capacity: usize,
    tick: u64,
    pub hits: u64,
    pub misses: u64,
}

impl StatementCache {
    pub fn new(capacity: usize) -> StatementCache {
        StatementCache { entries: HashMap::new(), capacity: capacity.max(1), tick: 0, hits: 0, misses: 0 }
    }

    /// The statement for `sql`: taken out of the cache (a hit) or prepared (a miss), with its key.
    /// Give both back with [`Self::put`] once done, so that a statement is never used twice at once
    /// and a hit allocates nothing.
    pub fn take(&mut self, conn: &Connection, sql: &str) -> Result<(String, RawStatement), rusqlite::Error> {
        if let Some((key, (stmt, _))) = self.entries.remove_entry(sql) {
            self.hits += 1;
            return Ok((key, stmt));
        }
        self.misses += 1;
        Ok((sql.to_string(), RawStatement::prepare(conn, sql)?))
    }

    pub fn put(&mut self, key: String, mut stmt: RawStatement) {
        stmt.reset();
        if self.entries.len() >= self.capacity {
            if let Some(oldest) = self.entries.iter().min_by_key(|(_, (_, t))| *t).map(|(k, _)| k.clone()) {
                self.entries.remove(&oldest);
            }
        }
        self.tick += 1;
        self.entries.insert(key, (stmt, self.tick));
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }
}
