//! Streaming cursors: a statement kept open on the worker and stepped a chunk at a time.
//!
//! rusqlite's `Rows` resets its statement when dropped, so a cursor that lives across commands holds
//! the raw statement instead. It is finalized when exhausted, closed, or when the session closes
//! (always before the connection).

use std::ffi::{c_int, CStr};
use std::ptr::NonNull;

use rusqlite::{ffi, Connection};

use crate::exec::{bind_params, Binder};
use crate::{Params, Value};

pub struct Cursor {
    stmt: NonNull<ffi::sqlite3_stmt>,
    db: *mut ffi::sqlite3,
    pub columns: Vec<String>,
    done: bool,
}

fn error_of(db: *mut ffi::sqlite3, rc: c_int) -> rusqlite::Error {
    // SAFETY: `db` is the live connection the statement belongs to.
    let (code, msg) = unsafe {
        let code = ffi::sqlite3_extended_errcode(db);
        let msg = CStr::from_ptr(ffi::sqlite3_errmsg(db)).to_string_lossy().into_owned();
        (if code == 0 { rc } else { code }, msg)
    };
    rusqlite::Error::SqliteFailure(ffi::Error::new(code), Some(msg))
}

impl Cursor {
    pub fn open(conn: &Connection, sql: &str, params: &Params) -> Result<Cursor, rusqlite::Error> {
        // SAFETY: the handle is valid while `conn` lives; the cursor is finalized before it closes.
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
            return Err(rusqlite::Error::InvalidQuery);
        };
        let mut cursor = Cursor { stmt, db, columns: Vec::new(), done: false };
        let consumed = tail as usize - sql.as_ptr() as usize;
        if !sql[consumed..].trim().trim_start_matches(';').trim().is_empty() {
            return Err(rusqlite::Error::MultipleStatement);
        }
        let n = unsafe { ffi::sqlite3_column_count(stmt.as_ptr()) };
        cursor.columns = (0..n)
            .map(|i| unsafe { CStr::from_ptr(ffi::sqlite3_column_name(stmt.as_ptr(), i)).to_string_lossy().into_owned() })
            .collect();
        bind_params(&mut cursor, params)?;
        Ok(cursor)
    }

    /// Up to `max_rows` more rows, and whether the statement is exhausted.
    pub fn next_chunk(&mut self, max_rows: usize) -> Result<(Vec<Vec<Value>>, bool), rusqlite::Error> {
        let mut rows = Vec::with_capacity(max_rows.min(4096));
        while !self.done && rows.len() < max_rows.max(1) {
            let s = self.stmt.as_ptr();
            match unsafe { ffi::sqlite3_step(s) } {
                ffi::SQLITE_ROW => rows.push((0..self.columns.len() as c_int).map(|i| unsafe { column(s, i) }).collect()),
                ffi::SQLITE_DONE => self.done = true,
                rc => {
                    self.done = true;
                    return Err(error_of(self.db, rc));
                }
            }
        }
        Ok((rows, self.done))
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

impl Binder for Cursor {
    fn count(&self) -> usize {
        unsafe { ffi::sqlite3_bind_parameter_count(self.stmt.as_ptr()) as usize }
    }

    fn name(&self, i: usize) -> Option<String> {
        let p = unsafe { ffi::sqlite3_bind_parameter_name(self.stmt.as_ptr(), i as c_int) };
        (!p.is_null()).then(|| unsafe { CStr::from_ptr(p).to_string_lossy().into_owned() })
    }

    fn bind(&mut self, i: usize, v: &Value) -> rusqlite::Result<()> {
        let s = self.stmt.as_ptr();
        let i = i as c_int;
        let rc = unsafe {
            match v {
                Value::Null => ffi::sqlite3_bind_null(s, i),
                Value::Integer(n) => ffi::sqlite3_bind_int64(s, i, *n),
                Value::Real(f) => ffi::sqlite3_bind_double(s, i, *f),
                Value::Text(t) => ffi::sqlite3_bind_text64(
                    s, i, t.as_ptr() as *const _, t.len() as u64, ffi::SQLITE_TRANSIENT(), ffi::SQLITE_UTF8 as u8,
                ),
                // A non-null pointer even for an empty blob: a null one would bind NULL.
                Value::Blob(b) => ffi::sqlite3_bind_blob64(
                    s, i, if b.is_empty() { [0u8; 1].as_ptr() } else { b.as_ptr() } as *const _, b.len() as u64, ffi::SQLITE_TRANSIENT(),
                ),
            }
        };
        if rc == ffi::SQLITE_OK { Ok(()) } else { Err(error_of(self.db, rc)) }
    }
}

impl Drop for Cursor {
    fn drop(&mut self) {
        unsafe { ffi::sqlite3_finalize(self.stmt.as_ptr()) };
    }
}
