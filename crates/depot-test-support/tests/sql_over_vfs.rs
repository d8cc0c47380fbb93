//! SQL through the depot VFS on every backend.

mod common;

use common::*;
use depot_client::{Database, OpenOptions, Params, Statement, Value};

#[test]
fn crud_round_trips_every_value_kind() {
    for b in backends() {
        let db = open(&b.store, "crud");
        db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, i INTEGER, r REAL, s TEXT, x BLOB)").unwrap();
        let r = db
            .execute(
                "INSERT INTO t(i, r, s, x) VALUES (?, ?, ?, ?)",
                p(&[
                    Value::Integer(i64::MAX),
                    Value::Real(1.5),
                    Value::Text("a\0b".into()),
                    Value::Blob(vec![]),
                ]),
            )
            .unwrap();
        assert_eq!((r.changes, r.last_insert_rowid), (1, Some(1)), "{}", b.name);
        let (cols, rows) = db
            .query(
                "SELECT i, r, s, x, typeof(x) FROM t WHERE id = :id",
                Params::Named(vec![("id".into(), Value::Integer(1))]),
            )
            .unwrap();
        assert_eq!(cols, ["i", "r", "s", "x", "typeof(x)"]);
        assert_eq!(
            rows[0],
            vec![
                Value::Integer(i64::MAX),
                Value::Real(1.5),
                Value::Text("a\0b".into()),
                Value::Blob(vec![]),
                Value::Text("blob".into())
            ],
            "{}: NUL in text and the empty blob round-trip",
            b.name
        );
        let u = db.execute("UPDATE t SET s = 'z' WHERE id = 1", Params::None).unwrap();
        assert_eq!((u.changes, u.last_insert_rowid), (1, None), "{}: update inserts no rowid", b.name);
        let c = db.execute("CREATE TABLE u(a)", Params::None).unwrap();
        assert_eq!(c.changes, 0, "{}: changes belong to the statement that ran", b.name);
        assert_eq!(db.run("DELETE FROM t", Params::None).unwrap().0, 1);
        assert_eq!(int(&db, "SELECT count(*) FROM t"), 0);
        assert_integrity(&db);
        db.close().unwrap();
    }
}

#[test]
fn rows_larger_than_a_page_survive_reopen() {
    for b in backends() {
        let db = open(&b.store, "big-rows");
        db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)").unwrap();
        let blob: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
        db.execute("INSERT INTO t(v) VALUES (?)", p(&[Value::Blob(blob.clone())])).unwrap();
        db.close().unwrap();
        let db = open(&b.store, "big-rows");
        assert_eq!(
            db.query("SELECT v FROM t", Params::None).unwrap().1[0][0],
            Value::Blob(blob),
            "{}",
            b.name
        );
        assert_integrity(&db);
        db.close().unwrap();
    }
}

#[test]
fn ten_megabyte_transaction_is_one_store_commit() {
    for b in backends() {
        let db = open(&b.store, "ten-mb");
        db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)").unwrap();
        let before = db.metrics().counters.commits;
        db.exec("INSERT INTO t(v) SELECT randomblob(10000) FROM generate_series(1, 1000)")
            .or_else(|_| db.exec("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000) INSERT INTO t(v) SELECT randomblob(10000) FROM c"))
            .unwrap();
        let m = db.metrics();
        assert_eq!(m.counters.commits - before, 1, "{}: one transaction, one commit", b.name);
        assert!(m.counters.bytes_committed > 10_000_000, "{}: {} bytes", b.name, m.counters.bytes_committed);
        assert_eq!(
            m.counters.unbatched_writes, 0,
            "{}: every write went through the batch-atomic path",
            b.name
        );
        db.close().unwrap();
        let db = open(&b.store, "ten-mb");
        assert_eq!(int(&db, "SELECT count(*) FROM t WHERE length(v) = 10000"), 1000);
        assert_integrity(&db);
        db.close().unwrap();
    }
}

#[test]
fn vacuum_shrinks_then_database_regrows() {
    for b in backends() {
        let db = open(&b.store, "vacuum");
        db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)").unwrap();
        db.exec("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 500) INSERT INTO t(v) SELECT randomblob(3000) FROM c").unwrap();
        let grown = int(&db, "PRAGMA page_count");
        db.exec("DELETE FROM t WHERE id > 10").unwrap();
        db.exec("VACUUM").unwrap();
        let shrunk = int(&db, "PRAGMA page_count");
        assert!(shrunk < grown / 10, "{}: {shrunk} pages after VACUUM, {grown} before", b.name);
        assert_eq!(db.metrics().counters.size_pages, shrunk as u64, "{}: {:?}", b.name, db.metrics());
        db.exec("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300) INSERT INTO t(v) SELECT randomblob(3000) FROM c").unwrap();
        assert_integrity(&db);
        db.close().unwrap();
        let db = open(&b.store, "vacuum");
        assert_eq!(int(&db, "SELECT count(*) FROM t"), 310, "{}", b.name);
        assert_integrity(&db);
        db.close().unwrap();
    }
}

#[test]
fn temp_tables_live_in_memory_and_vanish_on_close() {
    for b in backends() {
        let db = open(&b.store, "temp");
        db.exec("CREATE TEMP TABLE scratch(a); INSERT INTO scratch VALUES (1), (2);").unwrap();
        db.exec("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000) INSERT INTO scratch SELECT x FROM c").unwrap();
        assert_eq!(int(&db, "SELECT count(*) FROM scratch"), 20002);
        assert_eq!(db.metrics().counters.commits, 0, "{}: temp data never reaches the store", b.name);
        db.close().unwrap();
        let db = open(&b.store, "temp");
        let gone = db.query("SELECT * FROM scratch", Params::None).unwrap_err();
        assert!(gone.message.contains("no such table"), "{gone}");
        db.close().unwrap();
    }
}

#[test]
fn savepoints_and_foreign_keys() {
    for b in backends() {
        let db = open(&b.store, "fk");
        db.exec("CREATE TABLE parent(id INTEGER PRIMARY KEY); CREATE TABLE child(id INTEGER PRIMARY KEY, p INTEGER REFERENCES parent(id));").unwrap();
        db.exec("INSERT INTO parent VALUES (1)").unwrap();
        let e = db.execute("INSERT INTO child VALUES (1, 99)", Params::None);
        assert_eq!(code(e), "SQLITE_CONSTRAINT_FOREIGNKEY", "{}: foreign keys are on", b.name);
        db.exec("BEGIN; INSERT INTO child VALUES (1, 1); SAVEPOINT s; INSERT INTO parent VALUES (2); ROLLBACK TO s; RELEASE s; COMMIT;").unwrap();
        assert_eq!(int(&db, "SELECT count(*) FROM parent"), 1);
        assert_eq!(int(&db, "SELECT count(*) FROM child"), 1);
        assert_integrity(&db);
        db.close().unwrap();
    }
}

#[test]
fn twenty_close_reopen_cycles_keep_every_row() {
    for b in backends() {
        for i in 0..20 {
            let db = open(&b.store, "cycles");
            db.exec("CREATE TABLE IF NOT EXISTS t(i INTEGER)").unwrap();
            db.execute("INSERT INTO t VALUES (?)", p(&[Value::Integer(i)])).unwrap();
            assert_eq!(int(&db, "SELECT count(*) FROM t"), i + 1, "{} cycle {i}", b.name);
            assert_integrity(&db);
            db.close().unwrap();
        }
    }
}

#[test]
fn execute_batch_is_all_or_nothing() {
    for b in backends() {
        let db = open(&b.store, "batch");
        db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY)").unwrap();
        let st = |sql: &str| Statement { sql: sql.into(), params: Params::None };
        let out = db
            .execute_batch(vec![
                st("INSERT INTO t VALUES (1)"),
                st("INSERT INTO t VALUES (2)"),
                st("SELECT count(*) FROM t"),
            ])
            .unwrap();
        assert_eq!(out[2].rows[0][0], Value::Integer(2));
        let commits = db.metrics().counters.commits;
        let e = db.execute_batch(vec![st("INSERT INTO t VALUES (3)"), st("INSERT INTO t VALUES (1)")]);
        assert_eq!(code(e), "SQLITE_CONSTRAINT_PRIMARYKEY", "{}", b.name);
        assert_eq!(int(&db, "SELECT count(*) FROM t"), 2, "{}: nothing of the failed batch stays", b.name);
        assert_eq!(db.metrics().counters.commits, commits, "{}: a failed batch commits nothing", b.name);
        db.close().unwrap();
    }
}

#[test]
fn parameters_positional_numbered_and_named() {
    let b = &backends()[0];
    let db = open(&b.store, "params");
    let one = |sql: &str, params| db.query(sql, params).unwrap().1[0].clone();
    assert_eq!(
        one("SELECT ?2, ?1", p(&[Value::Integer(1), Value::Integer(2)])),
        vec![Value::Integer(2), Value::Integer(1)]
    );
    for key in ["a", ":a", "@a", "$a"] {
        let named = Params::Named(vec![(key.into(), Value::Text("x".into()))]);
        assert_eq!(one("SELECT :a", named.clone()), vec![Value::Text("x".into())], "{key}");
        assert_eq!(one("SELECT @a", named.clone())[0], Value::Text("x".into()));
        assert_eq!(one("SELECT $a", named)[0], Value::Text("x".into()));
    }
    let missing = db.query("SELECT :a, :b", Params::Named(vec![("a".into(), Value::Null)]));
    let err = missing.unwrap_err();
    assert_eq!((err.code(), err.message.contains(":b")), ("ERR_INVALID_ARGUMENT", true), "{err}");
    let extra = db.query("SELECT ?", p(&[Value::Null, Value::Null])).unwrap_err();
    assert_eq!(extra.code(), "ERR_INVALID_ARGUMENT");
    let unknown = db
        .query("SELECT :a", Params::Named(vec![("a".into(), Value::Null), ("zz".into(), Value::Null)]))
        .unwrap_err();
    assert!(unknown.message.contains("zz"), "{unknown}");
    assert_eq!(code(db.query("SELECT 1; SELECT 2", Params::None)), "ERR_INVALID_ARGUMENT");
    db.close().unwrap();
}

#[test]
fn open_refuses_a_bad_name() {
    let b = &backends()[0];
    let r = Database::open(b.store.clone(), "../x", OpenOptions::default());
    assert_eq!(code(r.map(|_| ())), "ERR_INVALID_ARGUMENT");
}

#[test]
fn select_star_after_alter_table_sees_the_new_column() {
    // Found by the chaos harness: a cached `SELECT *` prepared before ALTER TABLE is re-prepared by
    // SQLite on its next step; the columns must be read after that step.
    let b = &backends()[0];
    let db = open(&b.store, "alter");
    db.exec("CREATE TABLE t(a); INSERT INTO t VALUES (1)").unwrap();
    assert_eq!(db.query("SELECT * FROM t", Params::None).unwrap().1[0].len(), 1);
    db.exec("ALTER TABLE t ADD COLUMN b DEFAULT 7").unwrap();
    let (cols, rows) = db.query("SELECT * FROM t", Params::None).unwrap();
    assert_eq!(cols, ["a", "b"]);
    assert_eq!(rows[0], vec![Value::Integer(1), Value::Integer(7)]);
    db.close().unwrap();
}

#[test]
fn repeated_statements_hit_the_statement_cache() {
    let b = &backends()[0];
    let db = open(&b.store, "stmt-cache");
    db.exec("CREATE TABLE t(a)").unwrap();
    let before = db.metrics();
    for i in 0..10 {
        db.execute("INSERT INTO t VALUES (?)", p(&[Value::Integer(i)])).unwrap();
    }
    let m = db.metrics();
    assert_eq!(
        (
            m.counters.statement_cache_misses - before.counters.statement_cache_misses,
            m.counters.statement_cache_hits - before.counters.statement_cache_hits
        ),
        (1, 9)
    );
    assert_eq!(code(db.execute("SELECT nope FROM t", Params::None)), "SQLITE_ERROR");
    assert_eq!(int(&db, "SELECT count(*) FROM t"), 10);
    db.close().unwrap();
}

#[test]
fn pages_allocated_and_freed_in_one_transaction_read_back_as_zeros() {
    // Found by the chaos soak: SQLite never writes a page that becomes a free-list leaf in the
    // transaction that allocated it; the file grows past it, and the store must hold it (zeros).
    for b in backends() {
        let db = open(&b.store, "holes");
        db.exec("CREATE TABLE t(k INTEGER PRIMARY KEY, v BLOB); INSERT INTO t VALUES (1, x'01');").unwrap();
        db.exec("BEGIN; INSERT INTO t VALUES (2, zeroblob(20000)); INSERT INTO t VALUES (3, zeroblob(9000)); DELETE FROM t WHERE k = 2; COMMIT;").unwrap();
        assert_eq!(db.metrics().counters.unbatched_writes, 0);
        db.close().unwrap();
        let db = open(&b.store, "holes");
        assert_integrity(&db);
        assert_eq!(int(&db, "SELECT count(*) FROM t"), 2, "{}", b.name);
        db.exec("INSERT INTO t VALUES (4, zeroblob(30000))").unwrap();
        assert_integrity(&db);
        db.close().unwrap();
    }
}

#[test]
fn every_rowid_of_the_i64_range_comes_back_exactly() {
    for b in backends() {
        let db = open(&b.store, "rowids");
        db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); CREATE TABLE log(x)").unwrap();
        for rowid in [i64::MIN, i64::MIN + 1, -1, 0, 1, (1 << 53) + 1, i64::MAX] {
            let (changes, last) =
                db.run("INSERT INTO t(id, v) VALUES (?, 'x')", p(&[Value::Integer(rowid)])).unwrap();
            assert_eq!((changes, last), (1, Some(rowid)), "{}: rowid {rowid}", b.name);
            assert_eq!(int(&db, "SELECT last_insert_rowid()"), rowid, "{}: SQL sees it too", b.name);
        }
        // A statement that inserts nothing answers no rowid, and leaves SQL's value as it was.
        let (changes, last) = db.run("UPDATE t SET v = 'y' WHERE id = 0", Params::None).unwrap();
        assert_eq!((changes, last), (1, None), "{}", b.name);
        assert_eq!(int(&db, "SELECT last_insert_rowid()"), i64::MAX, "{}", b.name);
        let (changes, last) = db.run("DELETE FROM t WHERE id = ?", p(&[Value::Integer(i64::MIN)])).unwrap();
        assert_eq!((changes, last), (1, None), "{}: deleting i64::MIN inserts nothing", b.name);
        db.close().unwrap();
    }
}

#[test]
fn script_runs_statements_split_by_sqlite_and_answers_each() {
    for b in backends() {
        let db = open(&b.store, "script");
        let results = db
            .script(
                "CREATE TABLE t(a TEXT); -- a comment; with a semicolon
                 INSERT INTO t VALUES ('x;y'); /* ; */ INSERT INTO t VALUES ('z');
                 SELECT a FROM t ORDER BY a;",
            )
            .unwrap();
        assert_eq!(results.len(), 4, "{}", b.name);
        assert_eq!(results[1].last_insert_rowid, Some(1));
        assert_eq!(results[3].columns, ["a"]);
        assert_eq!(results[3].rows, vec![vec![Value::Text("x;y".into())], vec![Value::Text("z".into())]]);
        // Stops at the first error; what ran before it stays (each statement is its own transaction).
        let err =
            db.script("INSERT INTO t VALUES ('w'); INSERT INTO nope VALUES (1); INSERT INTO t VALUES ('v')");
        assert_eq!(err.unwrap_err().code(), "SQLITE_ERROR");
        assert_eq!(int(&db, "SELECT count(*) FROM t"), 3, "{}", b.name);
        assert!(db.script("  ; -- nothing\n").unwrap().is_empty());
        db.close().unwrap();
    }
}
