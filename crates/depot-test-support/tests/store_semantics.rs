//! Round trips, fencing, failed commits and storage bounds, through SQL.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use common::*;
use depot::fault::FaultStore;
use depot::{FileStore, FileStoreOptions, MemoryStore, PageStore};
use depot_client::{CallOptions, Command, Database, OpenOptions, Params, Value};

#[test]
fn write_transaction_of_any_size_is_one_commit() {
    for b in backends() {
        let db = open(&b.store, "rt");
        db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)").unwrap();
        for rows in [1, 10, 1000, 20_000] {
            let before = db.metrics().counters.commits;
            db.exec(&format!(
                "BEGIN; WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < {rows}) INSERT INTO t(v) SELECT 'row ' || x FROM c; COMMIT;"
            ))
            .unwrap();
            assert_eq!(db.metrics().counters.commits - before, 1, "{}: {rows} rows", b.name);
        }
        db.close().unwrap();
    }
}

#[test]
fn warm_reread_of_a_hot_row_costs_no_store_round_trip() {
    for b in backends() {
        let db = open(&b.store, "hot");
        db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'x');").unwrap();
        db.close().unwrap();
        let db = open(&b.store, "hot");
        db.query("SELECT v FROM t WHERE id = 1", Params::None).unwrap();
        let before = db.metrics().counters.get_pages_calls;
        for _ in 0..50 {
            db.query("SELECT v FROM t WHERE id = 1", Params::None).unwrap();
        }
        assert_eq!(db.metrics().counters.get_pages_calls, before, "{}", b.name);
        db.close().unwrap();
    }
}

#[test]
fn hundred_autocommit_updates_are_hundred_commits_and_no_fetch() {
    for b in backends() {
        let db = open(&b.store, "upd");
        db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, n INTEGER); INSERT INTO t VALUES (1, 0);").unwrap();
        let m0 = db.metrics();
        for _ in 0..100 {
            db.run("UPDATE t SET n = n + 1 WHERE id = 1", Params::None).unwrap();
        }
        let m1 = db.metrics();
        assert_eq!(
            (
                m1.counters.commits - m0.counters.commits,
                m1.counters.get_pages_calls - m0.counters.get_pages_calls
            ),
            (100, 0),
            "{}",
            b.name
        );
        assert_eq!(int(&db, "SELECT n FROM t"), 100);
        db.close().unwrap();
    }
}

#[test]
fn newer_generation_fences_the_old_writer() {
    for b in backends() {
        let a =
            Database::open(b.store.clone(), "f", OpenOptions { generation: Some(1), ..Default::default() })
                .unwrap();
        a.exec("CREATE TABLE t(v); INSERT INTO t VALUES ('a1');").unwrap();
        let b2 =
            Database::open(b.store.clone(), "f", OpenOptions { generation: Some(2), ..Default::default() })
                .unwrap();
        assert_eq!(code(a.exec("INSERT INTO t VALUES ('a2')")), "ERR_FENCED", "{}", b.name);
        assert_eq!(code(a.exec("SELECT 1")), "ERR_FENCED", "{}: the fenced handle fails closed", b.name);
        b2.exec("INSERT INTO t VALUES ('b1')").unwrap();
        let (_, rows) = b2.query("SELECT v FROM t ORDER BY rowid", Params::None).unwrap();
        assert_eq!(rows, vec![vec![Value::Text("a1".into())], vec![Value::Text("b1".into())]], "{}", b.name);
        assert_integrity(&b2);
        a.close().unwrap();
        b2.close().unwrap();
    }
}

#[test]
fn failed_commit_leaves_the_previous_state_and_a_usable_database() {
    let faulty = Arc::new(FaultStore::new(Arc::new(MemoryStore::new())));
    let store: Arc<dyn PageStore> = faulty.clone();
    let db = open(&store, "fail");
    db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'kept');").unwrap();
    faulty.faults.fail_commits_before.store(100, Ordering::SeqCst);
    let e =
        db.exec("BEGIN; INSERT INTO t VALUES (2, 'lost'); UPDATE t SET v = 'changed' WHERE id = 1; COMMIT;");
    assert_eq!(code(e), "ERR_STORE_UNAVAILABLE");
    faulty.faults.fail_commits_before.store(0, Ordering::SeqCst);
    let _ = db.exec("ROLLBACK");
    let (_, rows) = db.query("SELECT id, v FROM t", Params::None).unwrap();
    assert_eq!(rows, vec![vec![Value::Integer(1), Value::Text("kept".into())]]);
    db.exec("INSERT INTO t VALUES (3, 'after')").unwrap();
    assert_eq!(int(&db, "SELECT count(*) FROM t"), 2);
    assert_integrity(&db);
    db.close().unwrap();
    let db = open(&store, "fail");
    assert_eq!(int(&db, "SELECT count(*) FROM t"), 2, "the store holds exactly the acknowledged commits");
    db.close().unwrap();
}

#[test]
fn transient_commit_failure_is_retried_with_the_same_commit_id() {
    let faulty = Arc::new(FaultStore::new(Arc::new(MemoryStore::new())));
    let store: Arc<dyn PageStore> = faulty.clone();
    let db = open(&store, "retry");
    db.exec("CREATE TABLE t(v)").unwrap();
    faulty.faults.lose_commit_replies.store(1, Ordering::SeqCst);
    db.exec("INSERT INTO t VALUES (1)").unwrap();
    assert_eq!(int(&db, "SELECT count(*) FROM t"), 1);
    db.exec("INSERT INTO t VALUES (2)").unwrap();
    db.close().unwrap();
    let db = open(&store, "retry");
    assert_eq!(int(&db, "SELECT count(*) FROM t"), 2, "applied once, not twice");
    assert_integrity(&db);
    db.close().unwrap();
}

#[test]
fn failed_read_is_an_error_not_zeroes() {
    let faulty = Arc::new(FaultStore::new(Arc::new(MemoryStore::new())));
    let store: Arc<dyn PageStore> = faulty.clone();
    let db = open(&store, "read");
    db.exec("CREATE TABLE t(v); WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 3000) INSERT INTO t SELECT randomblob(400) FROM c").unwrap();
    db.close().unwrap();
    let db = Database::open(
        store.clone(),
        "read",
        OpenOptions { generation: Some(1), cache_bytes: 0, ..Default::default() },
    )
    .unwrap();
    faulty.faults.fail_reads.store(100, Ordering::SeqCst);
    assert_eq!(code(db.query("SELECT count(*) FROM t", Params::None)), "ERR_STORE_UNAVAILABLE");
    faulty.faults.fail_reads.store(0, Ordering::SeqCst);
    assert_eq!(int(&db, "SELECT count(*) FROM t"), 3000, "usable once the store answers again");
    db.close().unwrap();
}

#[test]
fn hundred_thousand_updates_leave_the_store_about_the_size_of_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let file = Arc::new(FileStore::open(dir.path(), FileStoreOptions::default()).unwrap());
    let store: Arc<dyn PageStore> = file.clone();
    let db = open(&store, "bounded");
    db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, n INTEGER, pad TEXT); INSERT INTO t VALUES (1, 0, hex(randomblob(1000)));").unwrap();
    let stmts: Vec<_> = (0..100)
        .map(|_| depot_client::Statement {
            sql: "UPDATE t SET n = n + 1 WHERE id = 1".into(),
            params: Params::None,
        })
        .collect();
    // 100,000 autocommit updates, sent 100 at a time without waiting for each.
    let (tx, rx) = crossbeam_channel::unbounded();
    for _ in 0..1000 {
        for s in &stmts {
            let tx = tx.clone();
            db.call(
                Command::Execute { sql: s.sql.clone(), params: Params::None },
                &CallOptions::default(),
                Box::new(move |r, _| tx.send(r.map(|_| ())).unwrap()),
            );
        }
        for _ in 0..100 {
            rx.recv().unwrap().unwrap();
        }
    }
    assert_eq!(int(&db, "SELECT n FROM t"), 100_000);
    let pages = db.metrics().counters.size_pages;
    db.close().unwrap();
    file.checkpoint().unwrap();
    let bytes = file.disk_bytes();
    eprintln!("store after 100,000 updates: {bytes} bytes on disk for a database of {pages} pages");
    // The history would be 100,000 versions of 4 KiB (400 MB); what stays is the data, the fixed
    // tables and the bounded commit log.
    assert!(bytes < 512 * 1024, "store is {bytes} bytes");
}

#[test]
fn a_transaction_over_the_commit_limit_fails_too_large_and_changes_nothing() {
    for b in backends() {
        let opts = OpenOptions { generation: Some(1), max_commit_bytes: 1 << 20, ..Default::default() };
        let db = Database::open(b.store.clone(), "limit", opts.clone()).unwrap();
        db.exec("CREATE TABLE t(v BLOB); INSERT INTO t VALUES (x'01');").unwrap();
        let e = db.exec("INSERT INTO t SELECT zeroblob(4096) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 400) SELECT x FROM c)");
        assert_eq!(code(e), "ERR_TOO_LARGE", "{}", b.name);
        assert_eq!(int(&db, "SELECT count(*) FROM t"), 1, "{}: nothing of it stays", b.name);
        db.exec("INSERT INTO t VALUES (x'02')").unwrap();
        db.close().unwrap();
        let db = Database::open(b.store.clone(), "limit", opts).unwrap();
        assert_eq!(int(&db, "SELECT count(*) FROM t"), 2);
        assert_integrity(&db);
        db.close().unwrap();
    }
}

#[test]
fn a_hung_store_fails_the_call_at_its_deadline_and_close_still_completes() {
    use std::time::{Duration, Instant};
    let faulty = Arc::new(FaultStore::new(Arc::new(MemoryStore::new())));
    let store: Arc<dyn PageStore> =
        Arc::new(depot::DeadlineStore::new(faulty.clone(), Duration::from_millis(150)));
    let db = open(&store, "hang");
    db.exec("CREATE TABLE t(v); WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 3000) INSERT INTO t SELECT randomblob(300) FROM c").unwrap();
    db.close().unwrap();
    let db = Database::open(
        store.clone(),
        "hang",
        OpenOptions { generation: Some(1), cache_bytes: 0, ..Default::default() },
    )
    .unwrap();
    // Every attempt (the client retries transient failures) hangs for 2 s.
    faulty.faults.hang_ms.store(2_000, Ordering::SeqCst);
    faulty.faults.hang_calls.store(100, Ordering::SeqCst);
    let started = Instant::now();
    assert_eq!(code(db.query("SELECT count(*) FROM t", Params::None)), "ERR_STORE_UNAVAILABLE");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "failed at the deadline, not after the hang: {:?}",
        started.elapsed()
    );
    let started = Instant::now();
    db.close().unwrap();
    assert!(started.elapsed() < Duration::from_secs(1), "close did not wait for the hung call");
    faulty.faults.hang_calls.store(0, Ordering::SeqCst);
    let db = open(&store, "hang");
    assert_eq!(int(&db, "SELECT count(*) FROM t"), 3000);
    db.close().unwrap();
}

#[test]
fn a_commit_that_hangs_past_its_deadline_is_applied_once() {
    use std::time::Duration;
    let faulty = Arc::new(FaultStore::new(Arc::new(MemoryStore::new())));
    let store: Arc<dyn PageStore> =
        Arc::new(depot::DeadlineStore::new(faulty.clone(), Duration::from_millis(100)));
    let db = open(&store, "hang-commit");
    db.exec("CREATE TABLE t(v)").unwrap();
    faulty.faults.hang_ms.store(300, Ordering::SeqCst);
    faulty.faults.hang_calls.store(1, Ordering::SeqCst);
    // The first attempt hangs and times out; the retry with the same commit id applies it; the
    // hung attempt, when it wakes, finds it applied.
    db.exec("INSERT INTO t VALUES (1)").unwrap();
    std::thread::sleep(Duration::from_millis(400));
    db.exec("INSERT INTO t VALUES (2)").unwrap();
    db.close().unwrap();
    let db = open(&store, "hang-commit");
    assert_eq!(int(&db, "SELECT count(*) FROM t"), 2);
    assert_integrity(&db);
    db.close().unwrap();
}

#[test]
fn a_cold_full_scan_reads_ahead_in_few_round_trips() {
    for b in backends() {
        let db = open(&b.store, "scan");
        db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB); WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 10000) INSERT INTO t(v) SELECT randomblob(1000) FROM c").unwrap();
        let pages = db.metrics().counters.size_pages;
        db.close().unwrap();
        let db = open(&b.store, "scan");
        let before = db.metrics();
        assert_eq!(int(&db, "SELECT sum(length(v)) FROM t"), 10_000_000);
        let m = db.metrics();
        let trips = m.counters.get_pages_calls - before.counters.get_pages_calls;
        eprintln!("{}: cold scan of {pages} pages in {trips} get_pages round trips", b.name);
        // Doubling read-ahead up to 512 pages: about log2(512) + pages / 512 round trips.
        assert!(trips <= 9 + pages / 512 + 8, "{}: {trips} round trips for {pages} pages", b.name);
        db.close().unwrap();
    }
}

#[test]
fn the_next_open_preloads_the_pages_the_last_session_used_first() {
    for b in backends() {
        let db = open(&b.store, "preload");
        db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB); WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 5000) INSERT INTO t(v) SELECT randomblob(500) FROM c").unwrap();
        db.close().unwrap();
        let lookup = "SELECT length(v) FROM t WHERE id = 4321";
        let db = open(&b.store, "preload");
        let before = db.metrics().counters.get_pages_calls;
        assert_eq!(int(&db, lookup), 500);
        assert!(
            db.metrics().counters.get_pages_calls > before,
            "{}: a cold lookup deep in the table reads from the store",
            b.name
        );
        db.close().unwrap();
        let db = open(&b.store, "preload");
        let before = db.metrics().counters.get_pages_calls;
        assert_eq!(int(&db, lookup), 500);
        assert_eq!(
            db.metrics().counters.get_pages_calls,
            before,
            "{}: the open preloaded what the last session read first",
            b.name
        );
        db.close().unwrap();
    }
}

#[test]
fn a_page_that_fails_its_checksum_is_an_error_never_data() {
    let faulty = Arc::new(FaultStore::new(Arc::new(MemoryStore::new())));
    let store: Arc<dyn PageStore> = faulty.clone();
    let db = open(&store, "rot");
    db.exec("CREATE TABLE t(v); WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 3000) INSERT INTO t SELECT randomblob(400) FROM c").unwrap();
    db.close().unwrap();
    let db = Database::open(
        store.clone(),
        "rot",
        OpenOptions { generation: Some(1), cache_bytes: 0, ..Default::default() },
    )
    .unwrap();
    faulty.faults.corrupt_reads.store(1, Ordering::SeqCst);
    assert_eq!(code(db.query("SELECT count(*) FROM t", Params::None)), "ERR_STORE_CORRUPT");
    assert_eq!(int(&db, "SELECT count(*) FROM t"), 3000, "the next, intact answer is used");
    db.close().unwrap();
}

#[test]
fn a_handle_at_a_past_point_reads_it_while_the_writer_goes_on_and_refuses_writes() {
    let hour = depot::Retention { ms: 3_600_000, txids: 0 };
    let dir = tempfile::tempdir().unwrap();
    let options = FileStoreOptions { history_ms: hour.ms, ..Default::default() };
    let stores: [(&str, Arc<dyn PageStore>); 2] = [
        ("memory", Arc::new(depot::MemoryStore::with_retention(hour))),
        ("file", Arc::new(FileStore::open(dir.path(), options).unwrap())),
    ];
    for (name, store) in stores {
        let writer = open(&store, "past");
        writer.exec("CREATE TABLE t(v); INSERT INTO t SELECT randomblob(3000) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200) SELECT x FROM c)").unwrap();
        let at = writer.metrics().counters.head_txid;
        let past = Database::open(
            store.clone(),
            "past",
            OpenOptions { at: Some(at), cache_bytes: 64 << 10, ..Default::default() },
        )
        .unwrap();
        // The writer goes on: more rows, a rewrite of every page, a schema change.
        writer
            .exec("INSERT INTO t VALUES (1); UPDATE t SET v = zeroblob(10); ALTER TABLE t ADD COLUMN w")
            .unwrap();
        assert_eq!(int(&past, "SELECT count(*) FROM t"), 200, "{name}");
        assert_eq!(
            int(&past, "SELECT sum(length(v)) FROM t"),
            600_000,
            "{name}: the old bytes, read from the store"
        );
        assert_eq!(int(&past, "SELECT count(*) FROM pragma_table_info('t')"), 1, "{name}");
        assert_integrity(&past);
        let refused = past.exec("INSERT INTO t VALUES (2)").unwrap_err();
        assert_eq!(refused.code(), "SQLITE_READONLY", "{name}: {refused}");
        assert_eq!(int(&writer, "SELECT count(*) FROM t"), 201, "{name}");
        past.close().unwrap();
        writer.close().unwrap();
        // A point the store does not retain is refused, not read.
        let none = Arc::new(depot::MemoryStore::new()) as Arc<dyn PageStore>;
        let w = open(&none, "gone");
        w.exec("CREATE TABLE t(v); INSERT INTO t VALUES (1)").unwrap();
        let opened = Database::open(none.clone(), "gone", OpenOptions { at: Some(1), ..Default::default() });
        assert_eq!(opened.err().map(|e| e.code()), Some("ERR_HISTORY_UNAVAILABLE"), "{name}");
    }
}
