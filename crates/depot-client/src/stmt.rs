//! Raw prepared statements, parameter binding, and the worker's statement cache.
//!
//! The hot path (prepare once, bind, step, read columns) runs on `sqlite3_stmt` directly: rusqlite's
//! `Rows` resets its statement when dropped (a streaming cursor must outlive a command) and its
//! statement cache has no hit or miss counters. One type serves the cache, scripts and cursors.

use std::collections::HashMap;
use std::ffi::{c_int, CStr};
use std::ptr::NonNull;

use hashlink::LruCache;
use rusqlite::{ffi, Connection};

use crate::{Error, Params, Value};

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
        match RawStatement::prepare_first(conn, sql)? {
            (Some(statement), tail) if holds_no_statement(conn, &sql[tail..]) => Ok(statement),
            (Some(_), _) => Err(rusqlite::Error::MultipleStatement),
            (None, _) => Err(rusqlite::Error::ToSqlConversionFailure(Box::new(Error::invalid(
                "the SQL text holds no statement",
            )))),
        }
    }

    /// Prepares the first statement of `sql` and says where the rest begins (SQLite's tail).
    /// `None` when only whitespace and comments are left.
    pub fn prepare_first(
        conn: &Connection,
        sql: &str,
    ) -> Result<(Option<RawStatement>, usize), rusqlite::Error> {
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
        let consumed = if tail.is_null() { sql.len() } else { tail as usize - sql.as_ptr() as usize };
        Ok((NonNull::new(raw).map(|stmt| RawStatement { stmt, db }), consumed))
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

impl RawStatement {
    fn parameter_count(&self) -> usize {
        unsafe { ffi::sqlite3_bind_parameter_count(self.raw()) as usize }
    }

    fn parameter_name(&self, i: usize) -> Option<String> {
        let p = unsafe { ffi::sqlite3_bind_parameter_name(self.raw(), i as c_int) };
        (!p.is_null()).then(|| unsafe { CStr::from_ptr(p).to_string_lossy().into_owned() })
    }

    fn bind_one(&mut self, i: usize, v: &Value) -> rusqlite::Result<()> {
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

    /// Binds every parameter or fails naming the one that is wrong.
    pub fn bind(&mut self, params: &Params) -> Result<(), rusqlite::Error> {
        let count = self.parameter_count();
        let label = |stmt: &RawStatement, i: usize| stmt.parameter_name(i).unwrap_or(format!("?{i}"));
        match params {
            Params::None if count == 0 => Ok(()),
            Params::None => Err(invalid(format!("missing value for parameter {}", label(self, 1)))),
            Params::Positional(values) => {
                if values.len() > count {
                    return Err(invalid(format!(
                        "too many parameters: {} given, the statement takes {count}",
                        values.len()
                    )));
                }
                if values.len() < count {
                    return Err(invalid(format!(
                        "missing value for parameter {}",
                        label(self, values.len() + 1)
                    )));
                }
                for (i, v) in values.iter().enumerate() {
                    self.bind_one(i + 1, v)?;
                }
                Ok(())
            }
            Params::Named(pairs) => {
                let mut by_name: HashMap<&str, &Value> = HashMap::with_capacity(pairs.len());
                for (k, v) in pairs {
                    if by_name.insert(bare(k), v).is_some() {
                        return Err(invalid(format!("parameter {k} is given twice")));
                    }
                }
                let mut used = Vec::with_capacity(count);
                for i in 1..=count {
                    let Some(name) = self.parameter_name(i) else {
                        return Err(invalid(format!(
                            "parameter ?{i} is positional; pass an array, or name it (:name)"
                        )));
                    };
                    match by_name.get(bare(&name)) {
                        Some(v) => {
                            self.bind_one(i, v)?;
                            used.push(bare(&name).to_string());
                        }
                        None => return Err(invalid(format!("missing value for parameter {name}"))),
                    }
                }
                let mut extra: Vec<&str> =
                    by_name.keys().copied().filter(|k| !used.iter().any(|u| u == k)).collect();
                if !extra.is_empty() {
                    extra.sort();
                    return Err(invalid(format!(
                        "unknown parameter(s) {}: the statement does not use them",
                        extra.join(", ")
                    )));
                }
                Ok(())
            }
        }
    }
}

impl Drop for RawStatement {
    fn drop(&mut self) {
        unsafe { ffi::sqlite3_finalize(self.raw()) };
    }
}

/// Prepared statements keyed by SQL text, the least recently used evicted past the capacity.
pub struct StatementCache {
    entries: LruCache<String, RawStatement>,
    pub hits: u64,
    pub misses: u64,
}

impl StatementCache {
    pub fn new(capacity: usize) -> StatementCache {
        StatementCache { entries: LruCache::new(capacity.max(1)), hits: 0, misses: 0 }
    }

    /// The statement for `sql`: taken out of the cache (a hit) or prepared (a miss), with its key.
    /// Give both back with [`Self::put`] once done, so that a statement is never used twice at once
    /// and a hit allocates nothing.
    pub fn take(&mut self, conn: &Connection, sql: &str) -> Result<(String, RawStatement), rusqlite::Error> {
        if let Some(entry) = self.entries.remove_entry(sql) {
            self.hits += 1;
            return Ok(entry);
        }
        self.misses += 1;
        Ok((sql.to_string(), RawStatement::prepare(conn, sql)?))
    }

    /// Returns a statement taken with [`Self::take`], as the most recently used.
    pub fn put(&mut self, key: String, mut stmt: RawStatement) {
        stmt.reset();
        self.entries.insert(key, stmt);
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

/// Whether `rest` is only separators, whitespace and comments (SQLite decides when it is not
/// plainly blank).
fn holds_no_statement(conn: &Connection, rest: &str) -> bool {
    rest.trim_start_matches(|c: char| c.is_whitespace() || c == ';').is_empty()
        || matches!(RawStatement::prepare_first(conn, rest), Ok((None, _)))
}

fn bare(name: &str) -> &str {
    name.strip_prefix([':', '@', '$']).unwrap_or(name)
}

/// Marks an argument error so the worker reports it as ERR_INVALID_ARGUMENT.
fn invalid(message: String) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(Error::invalid(message)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_cache_evicts_the_least_recently_used() {
        let conn = Connection::open_in_memory().unwrap();
        let mut cache = StatementCache::new(2);
        for sql in ["SELECT 1", "SELECT 2", "SELECT 1", "SELECT 3"] {
            let (key, stmt) = cache.take(&conn, sql).unwrap();
            cache.put(key, stmt);
        }
        // "SELECT 1" was used after "SELECT 2", so "SELECT 2" made room for "SELECT 3".
        assert_eq!((cache.hits, cache.misses), (1, 3));
        let (key, stmt) = cache.take(&conn, "SELECT 1").unwrap();
        cache.put(key, stmt);
        let (key, stmt) = cache.take(&conn, "SELECT 2").unwrap();
        cache.put(key, stmt);
        assert_eq!((cache.hits, cache.misses), (2, 4));
    }

    #[test]
    fn prepare_refuses_a_second_statement_and_empty_text() {
        let conn = Connection::open_in_memory().unwrap();
        assert!(matches!(
            RawStatement::prepare(&conn, "SELECT 1; SELECT 2"),
            Err(rusqlite::Error::MultipleStatement)
        ));
        assert!(RawStatement::prepare(&conn, "SELECT 1; ; -- done").is_ok());
        assert!(RawStatement::prepare(&conn, "  -- nothing").is_err());
    }
}
