//! Streaming cursors: a statement kept open on the worker and stepped a chunk at a time. It is
//! finalized when exhausted, closed, or when the session closes (always before the connection).

use rusqlite::Connection;

use crate::stmt::RawStatement;
use crate::{Params, Value};

pub struct Cursor {
    stmt: RawStatement,
    pub columns: Vec<String>,
    done: bool,
}

impl Cursor {
    pub fn open(conn: &Connection, sql: &str, params: &Params) -> Result<Cursor, rusqlite::Error> {
        let mut stmt = RawStatement::prepare(conn, sql)?;
        stmt.bind(params)?;
        let columns = stmt.column_names();
        Ok(Cursor { stmt, columns, done: false })
    }

    /// Up to `max_rows` more rows, and whether the statement is exhausted.
    pub fn next_chunk(&mut self, max_rows: usize) -> Result<(Vec<Vec<Value>>, bool), rusqlite::Error> {
        let mut rows = Vec::with_capacity(max_rows.min(4096));
        while !self.done && rows.len() < max_rows.max(1) {
            match self.stmt.step() {
                Ok(true) => rows.push(self.stmt.row()),
                Ok(false) => self.done = true,
                Err(e) => {
                    self.done = true;
                    return Err(e);
                }
            }
        }
        Ok((rows, self.done))
    }
}
