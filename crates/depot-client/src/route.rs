//! Which statements a snapshot reader may run: decided from the SQL text at admission, on the
//! caller's thread, before any connection has seen it.
//!
//! A reader's connection is read-only and sees only committed pages, so a statement may go there
//! only if SQLite will find it read-only (`sqlite3_stmt_readonly`) *and* its answer does not depend
//! on the writer's connection. The test is lexical and conservative: a statement that begins with
//! `SELECT` or `VALUES` (or a `WITH` that names no writing keyword) and names nothing that lives in
//! a connection (`temp` objects, `last_insert_rowid()`, `changes()`, `total_changes()`, the
//! `pragma_*` table functions that read connection settings). Anything else keeps its place in the
//! writer's queue, which is always correct, only not concurrent. A statement sent to a reader that
//! is not read-only after all fails there with `SQLITE_READONLY` rather than writing.

/// Whether `sql` may run on a snapshot reader (see the module docs).
pub fn reader_may_run(sql: &str) -> bool {
    let mut words = Words::new(sql);
    let first = match words.next() {
        Some(w) => w,
        None => return false,
    };
    let with = first.eq_ignore_ascii_case("with");
    if !(with || first.eq_ignore_ascii_case("select") || first.eq_ignore_ascii_case("values")) {
        return false;
    }
    // Compared in place, ignoring ASCII case: this runs on the caller's thread for every call, and
    // lowering each word into a new string cost an allocation per word.
    let is = |word: &str, list: &[&str]| list.iter().any(|w| w.eq_ignore_ascii_case(word));
    for word in words {
        let pragma_function = word.get(..7).is_some_and(|head| head.eq_ignore_ascii_case("pragma_"));
        if pragma_function || is(word, CONNECTION_WORDS) || (with && is(word, WRITING_WORDS)) {
            return false;
        }
    }
    true
}

/// Words whose meaning depends on the connection that runs the statement.
const CONNECTION_WORDS: &[&str] = &[
    "temp",
    "temporary",
    "sqlite_temp_master",
    "sqlite_temp_schema",
    "last_insert_rowid",
    "changes",
    "total_changes",
];

/// Keywords that make a `WITH` statement a write.
const WRITING_WORDS: &[&str] = &["insert", "update", "delete", "replace", "upsert"];

/// The identifiers and keywords of SQL text, skipping comments, string literals and punctuation.
/// Quoted identifiers ("x", [x], `x`) count as words: a table named "temp" is still a word to avoid.
struct Words<'a> {
    rest: &'a str,
}

impl<'a> Words<'a> {
    fn new(sql: &'a str) -> Words<'a> {
        Words { rest: sql }
    }
}

impl<'a> Iterator for Words<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        loop {
            let s = self.rest;
            let c = s.chars().next()?;
            if s.starts_with("--") {
                self.rest = s.find('\n').map_or("", |i| &s[i + 1..]);
            } else if let Some(body) = s.strip_prefix("/*") {
                self.rest = body.find("*/").map_or("", |i| &body[i + 2..]);
            } else if c == '\'' {
                // A string literal ('' inside is an escaped quote: two literals back to back).
                self.rest = s[1..].find('\'').map_or("", |i| &s[i + 2..]);
            } else if let Some(close) = match c {
                '"' => Some('"'),
                '`' => Some('`'),
                '[' => Some(']'),
                _ => None,
            } {
                let end = s[1..].find(close).map_or(s.len(), |i| i + 1);
                self.rest = s.get(end + 1..).unwrap_or("");
                return Some(&s[1..end]);
            } else if c.is_alphanumeric() || c == '_' || c == '$' {
                let end = s.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$')).unwrap_or(s.len());
                self.rest = &s[end..];
                return Some(&s[..end]);
            } else {
                self.rest = &s[c.len_utf8()..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::reader_may_run;

    #[test]
    fn plain_selects_go_to_readers() {
        assert!(reader_may_run("SELECT v FROM t WHERE id = ?"));
        assert!(reader_may_run("  -- a comment\n /* another */ select count(*) from t"));
        assert!(reader_may_run("VALUES (1), (2)"));
        assert!(reader_may_run("WITH x AS (SELECT 1) SELECT * FROM x"));
        assert!(reader_may_run("SELECT 'insert into temp' AS s"), "words inside strings do not count");
    }

    #[test]
    fn writes_and_connection_state_stay_on_the_writer() {
        for sql in [
            "INSERT INTO t VALUES (1)",
            "UPDATE t SET v = 1",
            "PRAGMA table_info(t)",
            "BEGIN",
            "EXPLAIN SELECT 1",
            "WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x",
            "WITH x AS (SELECT 1) DELETE FROM t",
            "SELECT last_insert_rowid()",
            "SELECT changes()",
            "SELECT total_changes()",
            "SELECT * FROM temp.t",
            "SELECT * FROM \"temp\".t",
            "SELECT * FROM sqlite_temp_master",
            "SELECT * FROM pragma_foreign_keys",
            "SELECT * FROM Pragma_Table_Info('t')",
            "SELECT * FROM TEMP.t",
            "select Last_Insert_Rowid()",
            "with x as (select 1) Insert into t select * from x",
            "",
            "   ",
            "-- only a comment",
        ] {
            assert!(!reader_may_run(sql), "{sql:?} must stay on the writer");
        }
    }
}
