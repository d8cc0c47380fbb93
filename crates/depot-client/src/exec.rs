//! Running statements on the worker's connection: one statement, an atomic batch, or a script.

use rusqlite::{ffi, Connection};

use crate::connection::MinRowidWatch;
use crate::stmt::{RawStatement, StatementCache};
use crate::{ExecuteResult, Params, Statement};

/// What running statements needs of the worker's connection.
pub struct Runner<'a> {
    pub conn: &'a Connection,
    pub cache: &'a mut StatementCache,
    pub min_rowid: &'a MinRowidWatch,
}

impl Runner<'_> {
    /// Runs one statement with its parameters, through the worker's statement cache.
    pub fn execute(&mut self, sql: &str, params: &Params) -> Result<ExecuteResult, rusqlite::Error> {
        let (key, mut stmt) = self.cache.take(self.conn, sql)?;
        let result = stmt.bind(params).and_then(|()| self.run(&mut stmt, true));
        self.cache.put(key, stmt);
        result
    }

    /// Steps a bound statement to its end; keeps its rows when `keep_rows`.
    fn run(&self, stmt: &mut RawStatement, keep_rows: bool) -> Result<ExecuteResult, rusqlite::Error> {
        let conn = self.conn;
        let writes = !stmt.readonly();
        let previous_rowid = conn.last_insert_rowid();
        let changes_before = conn.total_changes();
        if writes {
            // `i64::MIN` marks "no row inserted"; the watch tells a real insert of that rowid apart.
            // (The update hook cannot tell a trigger's insert from the statement's own: a statement
            // that inserts nothing but fires a trigger inserting rowid i64::MIN answers that rowid.)
            self.min_rowid.arm();
            unsafe { ffi::sqlite3_set_last_insert_rowid(conn.handle(), i64::MIN) };
        }
        let mut rows = Vec::new();
        let stepped = (|| {
            while stmt.step()? {
                if keep_rows {
                    rows.push(stmt.row());
                }
            }
            Ok::<_, rusqlite::Error>(())
        })();
        // Read after stepping: a cached statement prepared before a schema change is re-prepared by
        // its first step, and `SELECT *` may then have more columns than before.
        let columns = if keep_rows { stmt.column_names() } else { Vec::new() };
        let mut last_insert_rowid = None;
        if writes {
            let now = conn.last_insert_rowid();
            if now != i64::MIN || self.min_rowid.seen() {
                last_insert_rowid = Some(now);
            } else {
                // Restore what SQL's last_insert_rowid() would have shown.
                unsafe { ffi::sqlite3_set_last_insert_rowid(conn.handle(), previous_rowid) };
            }
        }
        stepped?;
        let changes = if writes && conn.total_changes() != changes_before { conn.changes() } else { 0 };
        Ok(ExecuteResult { columns, rows, changes, last_insert_rowid })
    }

    /// Runs statements as one unit: all applied or none (a savepoint inside an open transaction).
    /// On failure, says which statement failed (`statements.len()` for the commit).
    pub fn batch(
        &mut self,
        statements: &[Statement],
    ) -> Result<Vec<ExecuteResult>, (usize, rusqlite::Error)> {
        let conn = self.conn;
        let outer = conn.is_autocommit();
        let (begin, commit, rollback) = if outer {
            ("BEGIN", "COMMIT", "ROLLBACK")
        } else {
            ("SAVEPOINT depot_batch", "RELEASE depot_batch", "ROLLBACK TO depot_batch; RELEASE depot_batch")
        };
        conn.execute_batch(begin).map_err(|e| (0, e))?;
        let mut out = Vec::with_capacity(statements.len());
        for (i, s) in statements.iter().enumerate() {
            match self.execute(&s.sql, &s.params) {
                Ok(r) => out.push(r),
                Err(e) => {
                    undo(conn, outer, rollback);
                    return Err((i, e));
                }
            }
        }
        if let Err(e) = conn.execute_batch(commit) {
            undo(conn, outer, rollback);
            return Err((statements.len(), e));
        }
        Ok(out)
    }

    /// Runs `;`-separated statements in order, each prepared from the previous one's tail (SQLite
    /// splits the text, so strings, comments and triggers holding `;` stay whole). Each statement is
    /// its own autocommit transaction unless the script opens one; it stops at the first error.
    /// Results are kept when `keep_rows`.
    pub fn script(&mut self, sql: &str, keep_rows: bool) -> Result<Vec<ExecuteResult>, rusqlite::Error> {
        let mut results = Vec::new();
        let mut rest = sql;
        loop {
            let (stmt, tail) = RawStatement::prepare_first(self.conn, rest)?;
            let Some(mut stmt) = stmt else { return Ok(results) };
            results.push(self.run(&mut stmt, keep_rows)?);
            rest = &rest[tail..];
        }
    }
}

fn undo(conn: &Connection, outer: bool, rollback: &str) {
    // A failed COMMIT may already have rolled back (store error); only roll back what is still open.
    if !outer || !conn.is_autocommit() {
        let _ = conn.execute_batch(rollback);
    }
}

/// Whether `sql` ends with a complete statement, as SQLite's own shell decides when to run what was
/// typed (a `;` outside any string, comment or trigger body). Text with a NUL is not SQL: false.
pub fn statement_complete(sql: &str) -> bool {
    match std::ffi::CString::new(sql) {
        // SAFETY: a valid NUL-terminated string for the duration of the call; sqlite3_complete
        // only reads it.
        Ok(text) => unsafe { rusqlite::ffi::sqlite3_complete(text.as_ptr()) != 0 },
        Err(_) => false,
    }
}

#[cfg(test)]
mod complete_tests {
    use super::statement_complete;

    #[test]
    fn a_statement_is_complete_at_a_semicolon_outside_strings_comments_and_triggers() {
        assert!(statement_complete("SELECT 1;"));
        assert!(!statement_complete("SELECT 1"));
        assert!(!statement_complete("SELECT ';"));
        assert!(!statement_complete("SELECT 1 -- ;"));
        assert!(!statement_complete("CREATE TRIGGER t AFTER INSERT ON x BEGIN SELECT 1;"));
        assert!(statement_complete("CREATE TRIGGER t AFTER INSERT ON x BEGIN SELECT 1; END;"));
        assert!(!statement_complete("SELECT 1;\0"));
    }
}
