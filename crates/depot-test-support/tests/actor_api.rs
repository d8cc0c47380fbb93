//! Interactive transactions, cancellation, deadlines and cursors on the worker.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use crossbeam_channel::unbounded;
use depot::{Clock, DeadlineStore, MemoryStore, PageStore, VirtualClock};
use depot_client::{
    Behavior, CallOptions, CancelToken, Command, Database, Error, OpenOptions, Params, TransactionId, Value,
};

fn begin(db: &Database, timeout: Option<Duration>) -> TransactionId {
    db.begin(Behavior::Immediate, timeout).unwrap()
}

fn in_tx(tx: TransactionId) -> CallOptions {
    CallOptions { transaction: Some(tx), ..Default::default() }
}

fn tx_exec(db: &Database, tx: TransactionId, sql: &str) -> Result<(), Error> {
    db.call_blocking(Command::Exec { sql: sql.into() }, &in_tx(tx)).map(drop)
}

/// A database whose every call runs on the writer (`readers: 0`): the tests of the writer's queue.
/// With snapshot readers, reads do not wait behind a transaction at all (tests/readers.rs).
fn writer_only(store: &Arc<dyn PageStore>, name: &str) -> Database {
    Database::open(store.clone(), name, OpenOptions { generation: Some(1), readers: 0, ..Default::default() })
        .unwrap()
}

const FOREVER_CTE: &str =
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";

#[test]
fn other_calls_wait_behind_an_open_transaction_in_order() {
    let store: Arc<dyn PageStore> = Arc::new(MemoryStore::new());
    let db = writer_only(&store, "tx");
    db.exec("CREATE TABLE t(v)").unwrap();
    let tx = begin(&db, None);
    tx_exec(&db, tx, "INSERT INTO t VALUES ('in tx 1')").unwrap();
    let (out, seen) = unbounded();
    for i in 0..10i64 {
        let out = out.clone();
        db.call(
            Command::Execute { sql: "SELECT count(*) FROM t".into(), params: Params::None },
            &CallOptions::default(),
            Box::new(move |r, _| out.send((i, statement(r).unwrap().rows[0][0].clone())).unwrap()),
        );
    }
    std::thread::sleep(Duration::from_millis(100));
    assert!(seen.try_recv().is_err(), "no call ran inside the open transaction");
    tx_exec(&db, tx, "INSERT INTO t VALUES ('in tx 2')").unwrap();
    db.end(tx, true).unwrap();
    let got: Vec<_> = (0..10).map(|_| seen.recv().unwrap()).collect();
    assert_eq!(
        got,
        (0..10).map(|i| (i, Value::Integer(2))).collect::<Vec<_>>(),
        "in order, after the commit, seeing all of it"
    );
    db.close().unwrap();
}

#[test]
fn transaction_timeout_rolls_back_and_releases_the_waiters() {
    let store: Arc<dyn PageStore> = Arc::new(MemoryStore::new());
    let db = writer_only(&store, "tx-timeout");
    db.exec("CREATE TABLE t(v)").unwrap();
    let tx = begin(&db, Some(Duration::from_millis(200)));
    tx_exec(&db, tx, "INSERT INTO t VALUES (1)").unwrap();
    assert_eq!(int(&db, "SELECT count(*) FROM t"), 0, "waited for the timeout, then saw nothing");
    assert_eq!(tx_exec(&db, tx, "INSERT INTO t VALUES (2)").unwrap_err().code(), "ERR_TIMEOUT");
    assert_eq!(db.end(tx, true).unwrap_err().code(), "ERR_TIMEOUT");
    db.exec("INSERT INTO t VALUES (3)").unwrap();
    assert_eq!(int(&db, "SELECT count(*) FROM t"), 1);
    db.close().unwrap();
}

#[test]
fn transaction_timeout_follows_a_simulated_clock() {
    // An hour of simulated time: the test would hang if the worker waited it out for real.
    let clock = Arc::new(VirtualClock::new());
    let store: Arc<dyn PageStore> = Arc::new(DeadlineStore::with_clock(
        Arc::new(MemoryStore::new()),
        Duration::from_secs(5),
        clock.clone(),
    ));
    let db = writer_only(&store, "tx-virtual-timeout");
    db.exec("CREATE TABLE t(v)").unwrap();
    let hour = Duration::from_secs(3600);

    // Within its timeout, a transaction commits however much simulated time passed.
    let tx = begin(&db, Some(hour));
    tx_exec(&db, tx, "INSERT INTO t VALUES ('kept')").unwrap();
    clock.sleep(hour - Duration::from_secs(1));
    db.end(tx, true).unwrap();

    // Past it: rolled back when the next call arrives; a call that waited behind it runs first.
    let tx = begin(&db, Some(hour));
    tx_exec(&db, tx, "INSERT INTO t VALUES ('lost')").unwrap();
    let behind = submit(
        &db,
        Command::Execute { sql: "SELECT count(*) FROM t".into(), params: Params::None },
        &CallOptions::default(),
    );
    clock.sleep(hour);
    assert_eq!(tx_exec(&db, tx, "INSERT INTO t VALUES ('late')").unwrap_err().code(), "ERR_TIMEOUT");
    let waited = statement(behind.recv().unwrap()).unwrap();
    assert_eq!(waited.rows, vec![vec![Value::Integer(1)]], "the waiting call saw the rollback");
    assert_eq!(db.end(tx, true).unwrap_err().code(), "ERR_TIMEOUT");
    assert_eq!(int(&db, "SELECT count(*) FROM t"), 1);
    assert_eq!(clock.elapsed(), hour * 2 - Duration::from_secs(1));
    db.close().unwrap();
    clock.finish();
}

#[test]
fn a_fenced_writer_still_ends_its_transaction_and_answers_the_calls_behind_it() {
    let store: Arc<dyn PageStore> = Arc::new(MemoryStore::new());
    // A cache far smaller than the table, so that a read inside the transaction reaches the store.
    let opts = OpenOptions { cache_bytes: 64 << 10, ..Default::default() };
    let old = Database::open(store.clone(), "fenced-tx", opts).unwrap();
    old.exec("PRAGMA cache_size = 16; CREATE TABLE t(v)").unwrap();
    old.exec("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000) INSERT INTO t SELECT randomblob(1000) FROM c").unwrap();
    let newer = open(&store, "fenced-tx");
    newer.exec("INSERT INTO t VALUES ('moved the head')").unwrap();

    let tx = begin(&old, None);
    let read = tx_exec(&old, tx, "SELECT sum(length(v)) FROM t");
    assert_eq!(read.unwrap_err().code(), "ERR_FENCED", "the read found the head moved");
    // Queued behind the open transaction until it ends.
    let behind = submit(&old, Command::Exec { sql: "SELECT 1".into() }, &CallOptions::default());
    assert_eq!(old.end(tx, false).unwrap_err().code(), "ERR_FENCED");
    let answer = behind.recv_timeout(Duration::from_secs(30)).expect("the queued call was answered");
    assert_eq!(answer.unwrap_err().code(), "ERR_FENCED");
    old.close().unwrap();
    assert_eq!(int(&newer, "SELECT count(*) FROM t"), 2001);
    newer.close().unwrap();
}

#[test]
fn abort_stops_a_running_statement_and_the_database_answers_next() {
    let store: Arc<dyn PageStore> = Arc::new(MemoryStore::new());
    let db = open(&store, "abort");
    let token = CancelToken::new();
    let rx = submit(
        &db,
        Command::Execute { sql: FOREVER_CTE.into(), params: Params::None },
        &CallOptions { cancel: Some(token.clone()), ..Default::default() },
    );
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    token.cancel();
    let err = rx.recv_timeout(Duration::from_secs(10)).unwrap().unwrap_err();
    assert_eq!(err.code(), "ERR_ABORTED", "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(int(&db, "SELECT 41 + 1"), 42);
    db.close().unwrap();
}

#[test]
fn deadline_interrupts_a_write_transaction_and_rolls_it_back() {
    let store: Arc<dyn PageStore> = Arc::new(MemoryStore::new());
    let db = open(&store, "deadline");
    db.exec("CREATE TABLE t(x)").unwrap();
    let err = db
        .call_blocking(
            Command::Exec { sql: "BEGIN; INSERT INTO t VALUES (1); WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) INSERT INTO t SELECT x FROM c; COMMIT;".into() },
            &CallOptions { timeout: Some(Duration::from_millis(200)), ..Default::default() },
        )
        .unwrap_err();
    assert_eq!(err.code(), "ERR_TIMEOUT", "{err}");
    let _ = db.exec("ROLLBACK");
    assert_eq!(int(&db, "SELECT count(*) FROM t"), 0, "the interrupted transaction left nothing");
    assert_integrity(&db);
    db.close().unwrap();
}

#[test]
fn a_queued_call_that_is_aborted_never_runs() {
    let store: Arc<dyn PageStore> = Arc::new(MemoryStore::new());
    let db = open(&store, "queued-abort");
    db.exec("CREATE TABLE t(x)").unwrap();
    let tx = begin(&db, None);
    let token = CancelToken::new();
    let rx = submit(
        &db,
        Command::Exec { sql: "INSERT INTO t VALUES (1)".into() },
        &CallOptions { cancel: Some(token.clone()), ..Default::default() },
    );
    token.cancel();
    db.end(tx, false).unwrap();
    assert_eq!(rx.recv().unwrap().unwrap_err().code(), "ERR_ABORTED");
    assert_eq!(int(&db, "SELECT count(*) FROM t"), 0);
    db.close().unwrap();
}

#[test]
fn cursor_streams_in_chunks_and_closing_early_finalizes_it() {
    let store: Arc<dyn PageStore> = Arc::new(MemoryStore::new());
    let db = open(&store, "cursor");
    db.exec("CREATE TABLE t(x INTEGER, b BLOB); WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2500) INSERT INTO t SELECT x, x'' FROM c").unwrap();
    let (id, columns) = db
        .cursor_open(
            "SELECT x, b FROM t WHERE x > ? ORDER BY x",
            p(&[Value::Integer(0)]),
            &CallOptions::default(),
        )
        .unwrap();
    assert_eq!(columns, ["x", "b"]);
    let mut total = 0;
    loop {
        let (rows, done) = db.cursor_next(id, 1000).unwrap();
        assert!(rows.len() <= 1000);
        if let Some(first) = rows.first() {
            assert_eq!(first[1], Value::Blob(vec![]), "empty blob stays a blob");
        }
        total += rows.len();
        if done {
            break;
        }
    }
    assert_eq!(total, 2500);
    assert_eq!(db.cursor_next(id, 10).unwrap_err().code(), "ERR_CLOSED");
    let (early, _) = db.cursor_open("SELECT x FROM t", Params::None, &CallOptions::default()).unwrap();
    db.cursor_next(early, 10).unwrap();
    db.cursor_close(early).unwrap();
    db.exec("DROP TABLE t").expect("no statement is left open on the table");
    db.close().unwrap();
}
