//! Reads on the caller's thread: a read that would wake a parked thread (the idle writer, or a
//! snapshot reader while the writer is busy) runs on the calling thread from the page cache, and
//! anything it cannot do there (a page not cached, a read past its budget) goes where it was routed
//! with nothing answered twice. Run on the memory and file stores with
//! an hour of history (with a shorter window, pins need store leases and no read runs there).

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use depot::{FileStore, FileStoreOptions, MemoryStore, PageStore, Retention};
use depot_client::{Behavior, CallOptions, CancelToken, Command, Database, OpenOptions, Params, Value};

const HOUR_MS: u64 = 3_600_000;

fn stores() -> Vec<(&'static str, Arc<dyn PageStore>, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let file =
        FileStore::open(dir.path(), FileStoreOptions { history_ms: HOUR_MS, ..Default::default() }).unwrap();
    vec![
        ("memory", Arc::new(MemoryStore::with_retention(Retention { ms: HOUR_MS, txids: 0 })), None),
        ("file", Arc::new(file), Some(dir)),
    ]
}

fn open(store: &Arc<dyn PageStore>, name: &str) -> Database {
    Database::open(store.clone(), name, OpenOptions { readers: 1, idle: None, ..Default::default() }).unwrap()
}

/// Waits until the writer parks (it spins a moment after each call first).
fn wait_parked(db: &Database) {
    let awake = db.awake_flag();
    let until = Instant::now() + Duration::from_secs(20);
    while awake.load(Ordering::SeqCst) {
        assert!(Instant::now() < until, "the idle writer never parked");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Reads `sql` (an integer) after the writer parked until the caller's thread answers it (a read
/// there may also give up on a loaded machine, when its thread is descheduled past its budget, and
/// go to the writer); asserts every answer, returns the one from the caller's thread.
fn int_on_caller(db: &Database, sql: &str) -> i64 {
    on_caller(db, sql, false)
}

/// Like [`int_on_caller`], for a read that finds the writer busy (so it is routed to a reader): the
/// writer is not waited for, only the writer's spin after the previous read on the caller.
fn int_on_caller_beside_the_writer(db: &Database, sql: &str) -> i64 {
    on_caller(db, sql, true)
}

fn on_caller(db: &Database, sql: &str, writer_busy: bool) -> i64 {
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(2));
        if !writer_busy {
            wait_parked(db);
        }
        let (before, readers_before) = (caller_reads(db), reader_calls(db));
        let v = common::int(db, sql);
        let here = caller_reads(db) == before + 1;
        // Answered once: here, or where it was routed (a reader, when the writer is busy).
        assert_eq!(caller_reads(db), before + u64::from(here), "one read, at most one answer on the caller");
        assert_eq!(reader_calls(db), readers_before + u64::from(writer_busy && !here), "answered once");
        if here {
            return v;
        }
    }
    panic!("no read of {sql} was answered on the caller's thread");
}

fn reader_calls(db: &Database) -> u64 {
    db.metrics().counters.reader_calls
}

fn caller_reads(db: &Database) -> u64 {
    db.metrics().counters.caller_reads
}

fn text(db: &Database, sql: &str, params: Params) -> String {
    match &db.query(sql, params).unwrap().1[0][0] {
        Value::Text(t) => t.clone(),
        other => panic!("{sql}: expected text, got {other:?}"),
    }
}

#[test]
fn a_read_that_would_wake_the_parked_writer_runs_on_the_caller_from_the_cache() {
    for (name, store, _dir) in stores() {
        let db = open(&store, "hot");
        db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER); INSERT INTO t VALUES (1, 10), (2, 20)")
            .unwrap();
        assert_eq!(common::int(&db, "SELECT v FROM t WHERE id = 1"), 10, "{name}");
        let fetched = db.metrics().counters.get_pages_calls;
        assert_eq!(int_on_caller(&db, "SELECT v FROM t WHERE id = 2"), 20, "{name}");
        assert!(db.has_caller_session(), "{name}");
        // Opening that connection nudged the writer once (to give its wait a deadline); with the
        // connection open, a read leaves the parked writer parked.
        assert_eq!(int_on_caller(&db, "SELECT v FROM t WHERE id = 1"), 10, "{name}");
        assert!(!db.awake_flag().load(Ordering::SeqCst), "{name}: the writer was not woken");
        assert_eq!(db.metrics().counters.get_pages_calls, fetched, "{name}: from the cache");
        db.close().unwrap();
        assert!(!db.has_caller_session(), "{name}: close drops the caller's connection");
    }
}

#[test]
fn a_read_on_the_caller_sees_every_commit_acknowledged_before_it() {
    for (name, store, _dir) in stores() {
        let db = open(&store, "order");
        db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER)").unwrap();
        for i in 1..=5 {
            db.exec(&format!("INSERT INTO t VALUES ({i}, {i})")).unwrap();
            assert_eq!(
                int_on_caller(&db, "SELECT sum(v) FROM t"),
                i * (i + 1) / 2,
                "{name}: after insert {i}"
            );
        }
        db.close().unwrap();
    }
}

#[test]
fn a_read_that_misses_the_cache_goes_to_the_writer() {
    for (name, store, _dir) in stores() {
        let db = open(&store, "cold");
        db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)").unwrap();
        db.exec("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000) INSERT INTO t SELECT x, printf('%.1000c', 'a') || x FROM c").unwrap();
        db.close().unwrap();
        // Open again: the cache holds the preloaded first pages, not the table's last leaf.
        let db = open(&store, "cold");
        wait_parked(&db);
        let before = db.metrics().counters;
        let v = text(&db, "SELECT substr(v, 1000) FROM t WHERE id = 2000", Params::None);
        assert_eq!(v, "a2000", "{name}");
        let after = db.metrics().counters;
        assert_eq!(after.caller_reads, before.caller_reads, "{name}: not answered on the caller");
        assert!(after.get_pages_calls > before.get_pages_calls, "{name}: the writer fetched the pages");
        db.close().unwrap();
    }
}

#[test]
fn a_read_past_its_budget_on_the_caller_is_answered_by_the_writer() {
    for (name, store, _dir) in stores() {
        let db = open(&store, "long");
        db.exec("CREATE TABLE t(v)").unwrap();
        wait_parked(&db);
        let before = caller_reads(&db);
        // Millions of steps and no page: it passes the budget and starts over on the writer.
        let count = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000) SELECT count(*) FROM c";
        assert_eq!(common::int(&db, count), 2_000_000, "{name}");
        assert_eq!(caller_reads(&db), before, "{name}: not answered on the caller");
        db.close().unwrap();
    }
}

#[test]
fn hibernating_drops_the_connection_of_the_reads_on_the_caller() {
    for (name, store, _dir) in stores() {
        let opts = OpenOptions { readers: 1, idle: Some(Duration::from_millis(500)), ..Default::default() };
        let db = Database::open(store.clone(), "sleepy", opts).unwrap();
        db.exec("CREATE TABLE t(v); INSERT INTO t VALUES (7)").unwrap();
        assert_eq!(int_on_caller(&db, "SELECT v FROM t"), 7, "{name}");
        assert!(db.has_caller_session(), "{name}");
        let until = Instant::now() + Duration::from_secs(20);
        while db.metrics().counters.hibernating == 0 {
            assert!(Instant::now() < until, "{name}: never hibernated");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(!db.has_caller_session(), "{name}: an idle database keeps no connection");
        db.close().unwrap();
    }
}

#[test]
fn without_readers_or_with_reads_on_caller_off_no_read_runs_on_the_caller() {
    for (name, store, _dir) in stores() {
        for opts in [
            OpenOptions { readers: 0, idle: None, ..Default::default() },
            OpenOptions { readers: 1, idle: None, reads_on_caller: false, ..Default::default() },
        ] {
            let db = Database::open(store.clone(), "off", opts).unwrap();
            db.exec("CREATE TABLE IF NOT EXISTS t(v); INSERT INTO t VALUES (1)").unwrap();
            wait_parked(&db);
            assert!(common::int(&db, "SELECT count(*) FROM t") >= 1, "{name}");
            assert_eq!(caller_reads(&db), 0, "{name}");
            db.close().unwrap();
        }
    }
}

#[test]
fn reads_on_the_caller_count_as_calls_for_hibernation() {
    for (name, store, _dir) in stores() {
        let idle = Duration::from_millis(1000);
        let opts = OpenOptions { readers: 1, idle: Some(idle), ..Default::default() };
        let db = Database::open(store.clone(), "busy-reader", opts).unwrap();
        db.exec("CREATE TABLE t(v); INSERT INTO t VALUES (7)").unwrap();
        let until = Instant::now() + idle * 5 / 2;
        let mut reads = 0;
        while Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
            assert_eq!(common::int(&db, "SELECT v FROM t"), 7, "{name}");
            reads += 1;
        }
        let m = db.metrics().counters;
        assert!(m.caller_reads * 2 >= reads, "{name}: {} of {reads} reads on the caller", m.caller_reads);
        assert_eq!(m.hibernations, 0, "{name}: reads every 20 ms keep it awake");
        // Left alone, it hibernates after `idle`.
        let until = Instant::now() + Duration::from_secs(20);
        while db.metrics().counters.hibernating == 0 {
            assert!(Instant::now() < until, "{name}: never hibernated");
            std::thread::sleep(Duration::from_millis(10));
        }
        db.close().unwrap();
    }
}

#[test]
fn the_connection_of_the_reads_on_the_caller_closes_after_two_idle_seconds() {
    for (name, store, _dir) in stores() {
        // Never hibernates: the connection goes by itself, as an idle reader thread does.
        let db = open(&store, "unused");
        db.exec("CREATE TABLE t(v); INSERT INTO t VALUES (7)").unwrap();
        assert_eq!(int_on_caller(&db, "SELECT v FROM t"), 7, "{name}");
        assert!(db.has_caller_session(), "{name}");
        let opened = Instant::now();
        let until = opened + Duration::from_secs(20);
        while db.has_caller_session() {
            assert!(Instant::now() < until, "{name}: the connection stayed open");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            opened.elapsed() >= Duration::from_millis(1900),
            "{name}: closed after {:?}",
            opened.elapsed()
        );
        assert_eq!(db.metrics().counters.hibernating, 0, "{name}");
        db.close().unwrap();
    }
}

#[test]
fn a_read_on_the_caller_never_sees_a_partial_transaction_while_the_writer_commits() {
    for (name, store, _dir) in stores() {
        let db = Arc::new(open(&store, "torn"));
        db.exec("CREATE TABLE a(v INTEGER); CREATE TABLE b(v INTEGER); INSERT INTO a VALUES (0); INSERT INTO b VALUES (0)")
            .unwrap();
        // Every commit changes both tables (two pages): a read sees both changes or neither.
        let acknowledged = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let writer = {
            let (db, acknowledged) = (db.clone(), acknowledged.clone());
            std::thread::spawn(move || {
                for i in 1..=300i64 {
                    db.script(&format!("BEGIN; UPDATE a SET v = {i}; UPDATE b SET v = {i}; COMMIT")).unwrap();
                    acknowledged.store(i, Ordering::SeqCst);
                    // Long enough, now and then, for the writer to park between commits.
                    std::thread::sleep(Duration::from_micros(if i % 3 == 0 { 300 } else { 20 }));
                }
            })
        };
        let mut last = 0;
        while !writer.is_finished() {
            let floor = acknowledged.load(Ordering::SeqCst);
            let (_, rows) = db.query("SELECT (SELECT v FROM a), (SELECT v FROM b)", Params::None).unwrap();
            let (a, b) = match (&rows[0][0], &rows[0][1]) {
                (Value::Integer(a), Value::Integer(b)) => (*a, *b),
                other => panic!("{name}: {other:?}"),
            };
            assert_eq!(a, b, "{name}: a partial transaction was visible");
            assert!(a >= floor, "{name}: read {a}, older than the acknowledged {floor}");
            assert!(a >= last, "{name}: went back from {last} to {a}");
            last = a;
            std::thread::sleep(Duration::from_micros(100));
        }
        writer.join().unwrap();
        assert!(caller_reads(&db) > 0, "{name}: no read ran on the caller");
        db.close().unwrap();
    }
}

#[test]
fn a_count_of_a_big_cached_table_stops_at_the_budget_on_the_caller() {
    for (name, store, _dir) in stores() {
        let opts = OpenOptions { readers: 1, idle: None, cache_bytes: 64 << 20, ..Default::default() };
        let db = Database::open(store.clone(), "count", opts).unwrap();
        db.exec("CREATE TABLE t(v TEXT)").unwrap();
        db.exec("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000) INSERT INTO t SELECT printf('%.1000c', 'a') FROM c").unwrap();
        // About 5,000 pages, every one in the page cache: SQLite counts them in one step, where its
        // progress handler does not run, so the budget is checked at each page read instead.
        let before = db.metrics().counters;
        wait_parked(&db);
        assert_eq!(common::int(&db, "SELECT count(*) FROM t"), 20_000, "{name}");
        let after = db.metrics().counters;
        assert_eq!(after.caller_reads, before.caller_reads, "{name}: answered on the caller past its budget");
        assert_eq!(after.get_pages_calls, before.get_pages_calls, "{name}: every page was cached");
        db.close().unwrap();
    }
}

#[test]
fn a_read_while_a_transaction_holds_the_writer_runs_on_the_caller_with_the_last_commit() {
    for (name, store, _dir) in stores() {
        let db = open(&store, "held");
        db.exec("CREATE TABLE t(v); INSERT INTO t VALUES (1)").unwrap();
        assert_eq!(common::int(&db, "SELECT count(*) FROM t"), 1, "{name}: pages cached");
        let tx = db.begin(Behavior::Immediate, None).unwrap();
        let in_tx = CallOptions { transaction: Some(tx), ..Default::default() };
        let insert = Command::Execute { sql: "INSERT INTO t VALUES (2)".into(), params: Params::None };
        common::statement(common::submit(&db, insert, &in_tx).recv().unwrap()).unwrap();
        // Routed to a reader (the writer holds a transaction), answered here without waking one.
        assert_eq!(int_on_caller_beside_the_writer(&db, "SELECT count(*) FROM t"), 1, "{name}");
        // A read answered on the caller starts no reader thread. (An earlier try that ran past
        // its budget on a loaded machine went to a reader, which may still be running.)
        if reader_calls(&db) == 0 {
            assert_eq!(db.metrics().counters.readers, 0, "{name}: no reader thread was started");
        }
        db.end(tx, true).unwrap();
        assert_eq!(int_on_caller(&db, "SELECT count(*) FROM t"), 2, "{name}: the commit is seen");
        db.close().unwrap();
    }
}

#[test]
fn a_read_in_a_burst_of_calls_goes_to_a_reader_and_not_to_the_caller() {
    for (name, store, _dir) in stores() {
        let db = open(&store, "burst");
        db.exec("CREATE TABLE t(v); INSERT INTO t VALUES (1)").unwrap();
        assert_eq!(common::int(&db, "SELECT count(*) FROM t"), 1, "{name}: pages cached");
        let tx = db.begin(Behavior::Immediate, None).unwrap();
        // Routed to a reader (the writer holds a transaction). A caller with fewer calls in flight
        // than a burst has it answered on its thread (see the test above); in a burst, never.
        assert_eq!(int_on_caller_beside_the_writer(&db, "SELECT count(*) FROM t"), 1, "{name}");
        let burst = CallOptions { in_flight: depot_client::CALLER_BURST, ..Default::default() };
        for _ in 0..20 {
            std::thread::sleep(Duration::from_millis(1));
            let (here, there) = (caller_reads(&db), reader_calls(&db));
            let count = Command::Execute { sql: "SELECT count(*) FROM t".into(), params: Params::None };
            let rows = common::statement(common::submit(&db, count, &burst).recv().unwrap()).unwrap().rows;
            assert_eq!(rows, vec![vec![Value::Integer(1)]], "{name}");
            assert_eq!((caller_reads(&db), reader_calls(&db)), (here, there + 1), "{name}: on a reader");
        }
        db.end(tx, false).unwrap();
        db.close().unwrap();
    }
}

#[test]
fn a_read_while_a_long_query_runs_on_the_writer_runs_on_the_caller() {
    for (name, store, _dir) in stores() {
        let db = open(&store, "long");
        db.exec("CREATE TABLE t(v); INSERT INTO t VALUES (7)").unwrap();
        assert_eq!(common::int(&db, "SELECT v FROM t"), 7, "{name}: pages cached");
        let cancel = CancelToken::new();
        let options = CallOptions { cancel: Some(cancel.clone()), ..Default::default() };
        let endless = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT max(i) FROM n";
        let slow =
            common::submit(&db, Command::Execute { sql: endless.into(), params: Params::None }, &options);
        assert_eq!(int_on_caller_beside_the_writer(&db, "SELECT v FROM t"), 7, "{name}");
        assert!(slow.try_recv().is_err(), "{name}: the long query still runs");
        cancel.cancel();
        let stopped = slow.recv_timeout(Duration::from_secs(20)).unwrap();
        assert_eq!(common::code(stopped), "ERR_ABORTED", "{name}");
        db.close().unwrap();
    }
}
