//! Running statements on the worker's connection: binding, stepping, collecting rows.

use std::collections::HashMap;

use rusqlite::{ffi, Connection};

use crate::stmt::{RawStatement, StatementCache};

use crate::{Error, ExecuteResult, Params, Statement, Value};

/// Runs one statement with its parameters, through the worker's statement cache.
pub fn execute(
    conn: &Connection,
    cache: &mut StatementCache,
    sql: &str,
    params: &Params,
) -> Result<ExecuteResult, rusqlite::Error> {
    let (key, mut stmt) = cache.take(conn, sql)?;
    let result = run(conn, &mut stmt, params);
    cache.put(key, stmt);
    result
}

fn run(
    conn: &Connection,
    stmt: &mut RawStatement,
    params: &Params,
) -> Result<ExecuteResult, rusqlite::Error> {
    bind_params(stmt, params)?;
    let writes = !stmt.readonly();
    let previous_rowid = conn.last_insert_rowid();
    let changes_before = conn.total_changes();
    if writes {
        // A sentinel tells whether *this* statement inserted a row.
        unsafe { ffi::sqlite3_set_last_insert_rowid(conn.handle(), i64::MIN) };
    }
    let mut rows = Vec::new();
    let stepped = (|| {
        while stmt.step()? {
            rows.push(stmt.row());
        }
        Ok::<_, rusqlite::Error>(())
    })();
    // Read after stepping: a cached statement prepared before a schema change is re-prepared by
    // its first step, and `SELECT *` may then have more columns than before.
    let columns = stmt.column_names();
    let mut last_insert_rowid = None;
    if writes {
        let now = conn.last_insert_rowid();
        if now == i64::MIN {
            // Restore what SQL's last_insert_rowid() would have shown.
            unsafe { ffi::sqlite3_set_last_insert_rowid(conn.handle(), previous_rowid) };
        } else {
            last_insert_rowid = Some(now);
        }
    }
    stepped?;
    let changes = if writes && conn.total_changes() != changes_before { conn.changes() } else { 0 };
    Ok(ExecuteResult { columns, rows, changes, last_insert_rowid })
}

fn bare(name: &str) -> &str {
    name.strip_prefix([':', '@', '$']).unwrap_or(name)
}

/// What parameter binding needs of a statement.
pub trait Binder {
    fn count(&self) -> usize;
    fn name(&self, i: usize) -> Option<String>;
    fn bind(&mut self, i: usize, v: &Value) -> rusqlite::Result<()>;
}

/// Binds every parameter or fails naming the one that is wrong.
pub fn bind_params(stmt: &mut impl Binder, params: &Params) -> Result<(), rusqlite::Error> {
    let count = stmt.count();
    let label = |stmt: &dyn Fn(usize) -> Option<String>, i: usize| stmt(i).unwrap_or(format!("?{i}"));
    match params {
        Params::None if count == 0 => Ok(()),
        Params::None => Err(invalid(format!("missing value for parameter {}", label(&|i| stmt.name(i), 1)))),
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
                    label(&|i| stmt.name(i), values.len() + 1)
                )));
            }
            for (i, v) in values.iter().enumerate() {
                stmt.bind(i + 1, v)?;
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
                let Some(name) = stmt.name(i) else {
                    return Err(invalid(format!(
                        "parameter ?{i} is positional; pass an array, or name it (:name)"
                    )));
                };
                match by_name.get(bare(&name)) {
                    Some(v) => {
                        stmt.bind(i, v)?;
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

/// Marks an argument error so the worker reports it as ERR_INVALID_ARGUMENT.
fn invalid(message: String) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(Error::invalid(message)))
}

/// Runs statements as one unit: all applied or none (a savepoint inside an open transaction).
pub fn execute_batch(
    conn: &Connection,
    cache: &mut StatementCache,
    statements: &[Statement],
) -> Result<Vec<ExecuteResult>, (usize, rusqlite::Error)> {
    let outer = conn.is_autocommit();
    let (begin, commit, rollback) = if outer {
        ("BEGIN", "COMMIT", "ROLLBACK")
    } else {
        ("SAVEPOINT depot_batch", "RELEASE depot_batch", "ROLLBACK TO depot_batch; RELEASE depot_batch")
    };
    conn.execute_batch(begin).map_err(|e| (0, e))?;
    let mut out = Vec::with_capacity(statements.len());
    for (i, s) in statements.iter().enumerate() {
        match execute(conn, cache, &s.sql, &s.params) {
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

fn undo(conn: &Connection, outer: bool, rollback: &str) {
    // A failed COMMIT may already have rolled back (store error); only roll back what is still open.
    if !outer || !conn.is_autocommit() {
        let _ = conn.execute_batch(rollback);
    }
}
