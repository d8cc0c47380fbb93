//! Interactive transactions, cancellation, deadlines and cursors on the worker.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use crossbeam_channel::unbounded;
use depot::{MemoryStore, PageStore};
use depot_client::{
    Behavior, CallOptions, CancelToken, Command, Database, Error, Params, TransactionId, Value,
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

const FOREVER_CTE: &str =
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";

#[test]
fn other_calls_wait_behind_an_open_transaction_in_order() {
    let store: Arc<dyn PageStore> = Arc::new(MemoryStore::new());
    let db = open(&store, "tx");
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
    let db = open(&store, "tx-timeout");
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
