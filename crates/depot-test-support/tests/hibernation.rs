//! Hibernation: a database with no call for its idle time gives back its thread and connection;
//! the next call wakes it with nothing a caller could tell, except the time it takes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use depot::{MemoryStore, PageStore};
use depot_client::{Behavior, CallOptions, Command, Database, OpenOptions, Params, Value};

fn opts(idle_ms: u64) -> OpenOptions {
    OpenOptions { idle: Some(Duration::from_millis(idle_ms)), ..Default::default() }
}

/// Waits (a few seconds at most) until `db` hibernates, or fails.
fn until_hibernating(db: &Database) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while db.metrics().counters.hibernating == 0 {
        assert!(Instant::now() < deadline, "the database never hibernated: {:?}", db.metrics());
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn one(db: &Database, sql: &str) -> Value {
    db.query(sql, Params::None).unwrap().1.remove(0).remove(0)
}

fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with(prefix))
        .count()
}

#[test]
fn an_idle_database_gives_back_its_thread_and_wakes_on_the_next_call() {
    let store: Arc<dyn PageStore> = Arc::new(MemoryStore::new());
    let db = Database::open(store, "sleepy-one", opts(30)).unwrap();
    db.exec("CREATE TABLE t(v); INSERT INTO t VALUES (1)").unwrap();
    let threads = threads_named("depot-db-sleepy");
    assert_eq!(threads, 1);
    until_hibernating(&db);
    // The thread ends once it parked (the flag is set just before it returns).
    let deadline = Instant::now() + Duration::from_secs(5);
    while threads_named("depot-db-sleepy") > 0 {
        assert!(Instant::now() < deadline, "the worker thread did not end");
        std::thread::sleep(Duration::from_millis(5));
    }
    db.run("INSERT INTO t VALUES (2)", Params::None).unwrap();
    assert_eq!(one(&db, "SELECT sum(v) FROM t"), Value::Integer(3));
    let m = db.metrics().counters;
    assert_eq!((m.hibernating, m.wakes), (0, 1), "{m:?}");
    assert!(m.hibernations >= 1);
    db.close().unwrap();
}

#[test]
fn connection_settings_and_ids_survive_hibernation() {
    let store: Arc<dyn PageStore> = Arc::new(MemoryStore::new());
    let db = Database::open(store, "settings", opts(30)).unwrap();
    db.exec("PRAGMA foreign_keys = ON; PRAGMA recursive_triggers = 1").unwrap();
    let tx = db.begin(Behavior::Deferred, None).unwrap();
    db.end(tx, true).unwrap();
    until_hibernating(&db);
    assert_eq!(one(&db, "PRAGMA foreign_keys"), Value::Integer(1));
    assert_eq!(one(&db, "PRAGMA recursive_triggers"), Value::Integer(1));
    assert_eq!(db.metrics().counters.wakes, 1);
    // A transaction id from before is never handed out again: the old one stays ended.
    let next = db.begin(Behavior::Deferred, None).unwrap();
    assert_ne!(next, tx);
    let stale = CallOptions { transaction: Some(tx), ..Default::default() };
    let err = db.call_blocking(Command::Exec { sql: "SELECT 1".into() }, &stale).unwrap_err();
    assert_eq!(err.code(), "ERR_CLOSED");
    db.end(next, false).unwrap();
    db.close().unwrap();
}

#[test]
fn what_lives_in_the_connection_keeps_the_database_awake() {
    let store: Arc<dyn PageStore> = Arc::new(MemoryStore::new());
    let temp = Database::open(store.clone(), "temp", opts(20)).unwrap();
    temp.exec("CREATE TEMP TABLE scratch(v); INSERT INTO scratch VALUES (7)").unwrap();
    let in_tx = Database::open(store, "in-tx", opts(20)).unwrap();
    let tx = in_tx.begin(Behavior::Immediate, None).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(temp.metrics().counters.hibernations, 0);
    assert_eq!(in_tx.metrics().counters.hibernations, 0);
    assert_eq!(one(&temp, "SELECT v FROM scratch"), Value::Integer(7));
    in_tx.end(tx, true).unwrap();
    until_hibernating(&in_tx);
    temp.exec("DROP TABLE scratch").unwrap();
    until_hibernating(&temp);
    temp.close().unwrap();
    in_tx.close().unwrap();
}

#[test]
fn a_writer_fenced_while_hibernating_fails_its_next_call_with_err_fenced() {
    let store: Arc<dyn PageStore> = Arc::new(MemoryStore::new());
    let db = Database::open(store.clone(), "fenced", opts(20)).unwrap();
    db.exec("CREATE TABLE t(v)").unwrap();
    until_hibernating(&db);
    let newer = Database::open(store, "fenced", OpenOptions::default()).unwrap();
    newer.exec("INSERT INTO t VALUES (1)").unwrap();
    let err = db.exec("INSERT INTO t VALUES (2)").unwrap_err();
    assert_eq!(err.code(), "ERR_FENCED", "{err}");
    assert_eq!(one(&newer, "SELECT count(*) FROM t"), Value::Integer(1));
    db.close().unwrap();
    newer.close().unwrap();
}

#[test]
fn calls_that_wake_a_database_are_answered_in_order_and_close_needs_no_thread() {
    let store: Arc<dyn PageStore> = Arc::new(MemoryStore::new());
    let db = Database::open(store, "burst", opts(20)).unwrap();
    db.exec("CREATE TABLE t(i INTEGER PRIMARY KEY, v)").unwrap();
    until_hibernating(&db);
    let (tx, rx) = crossbeam_channel::unbounded();
    for i in 0..100 {
        let tx = tx.clone();
        db.call(
            Command::Execute {
                sql: "INSERT INTO t(v) VALUES (?) RETURNING i".into(),
                params: Params::Positional(vec![Value::Integer(i)]),
            },
            &CallOptions::default(),
            Box::new(move |r, _| tx.send((i, r)).unwrap()),
        );
    }
    let answers: Vec<_> = (0..100).map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap()).collect();
    for (n, (i, r)) in answers.iter().enumerate() {
        assert_eq!(*i, n as i64, "answered in call order");
        assert!(r.is_ok(), "{r:?}");
    }
    assert_eq!(one(&db, "SELECT group_concat(v) = group_concat(i - 1) FROM t"), Value::Integer(1));
    until_hibernating(&db);
    let started = Instant::now();
    db.close().unwrap();
    assert!(started.elapsed() < Duration::from_secs(4), "close waited for a thread that is not there");
    assert_eq!(db.exec("SELECT 1").unwrap_err().code(), "ERR_CLOSED");
}

/// On PostgreSQL a wake is one round trip: the open claims the same generation and brings the
/// pages the database needs first in the same statement.
#[test]
fn waking_on_postgres_takes_one_round_trip() {
    let url = std::env::var("DEPOT_TEST_PG_URL")
        .expect("the postgres feature is on but DEPOT_TEST_PG_URL is not set: export DEPOT_TEST_PG_URL=$(scripts/pg.sh start)");
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let schema = format!("hibernate_{}_{nanos}", std::process::id());
    let options = depot::PostgresStoreOptions { schema, ..Default::default() };
    let pg = Arc::new(depot::PostgresStore::open(&url, options).unwrap());
    let db = Database::open(pg.clone(), "pg-sleepy", opts(30)).unwrap();
    db.exec("CREATE TABLE kv(k INTEGER PRIMARY KEY, v); INSERT INTO kv VALUES (1, 'one')").unwrap();
    assert_eq!(one(&db, "SELECT v FROM kv WHERE k = 1"), Value::Text("one".into()));
    until_hibernating(&db);
    let before = pg.statements_sent();
    assert_eq!(one(&db, "SELECT v FROM kv WHERE k = 1"), Value::Text("one".into()));
    assert_eq!(pg.statements_sent() - before, 1, "the wake and the read: one statement");
    db.close().unwrap();
}

/// What lets a database wake (its opener) holds the store: a closed database must let go of it,
/// awake or hibernating, while its handle is still around (a file store's directory stays locked
/// as long as anything holds the store).
#[test]
fn a_closed_database_no_longer_holds_its_store() {
    for hibernate_first in [false, true] {
        let store = Arc::new(MemoryStore::new());
        let db = Database::open(store.clone(), "let-go", opts(20)).unwrap();
        db.exec("CREATE TABLE t(v)").unwrap();
        if hibernate_first {
            until_hibernating(&db);
        }
        db.close().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Arc::strong_count(&store) > 1 {
            assert!(
                Instant::now() < deadline,
                "hibernated first: {hibernate_first}: the store is still held"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(db);
    }
}

#[test]
fn a_transaction_begun_as_sql_or_an_attached_database_keeps_the_database_awake() {
    let store: Arc<dyn PageStore> = Arc::new(MemoryStore::new());
    let raw = Database::open(store.clone(), "raw-begin", opts(20)).unwrap();
    raw.exec("CREATE TABLE t(v); BEGIN; INSERT INTO t VALUES (1)").unwrap();
    let attached = Database::open(store, "attached", opts(20)).unwrap();
    attached
        .exec("ATTACH ':memory:' AS side; CREATE TABLE side.s(v); INSERT INTO side.s VALUES (5)")
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(raw.metrics().counters.hibernations, 0);
    assert_eq!(attached.metrics().counters.hibernations, 0);
    raw.exec("COMMIT").unwrap();
    assert_eq!(one(&raw, "SELECT count(*) FROM t"), Value::Integer(1));
    assert_eq!(one(&attached, "SELECT v FROM side.s"), Value::Integer(5));
    raw.close().unwrap();
    attached.close().unwrap();
}
