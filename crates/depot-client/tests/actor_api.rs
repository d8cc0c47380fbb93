//! Interactive transactions, cancellation, deadlines and cursors on the worker.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use crossbeam_channel::{bounded, unbounded};
use depot_client::{
    Behavior, CallOptions, CancelToken, Error, MemoryStore, NativeDatabaseHandle, PageStore, Params, TxId,
    Value,
};

fn wait<T: Send + 'static, A>(f: impl FnOnce(depot_client::Responder<T>) -> A) -> Result<T, Error> {
    let (tx, rx) = bounded(1);
    f(Box::new(move |r| tx.send(r).unwrap()));
    rx.recv_timeout(Duration::from_secs(30)).expect("answered")
}

fn begin(db: &NativeDatabaseHandle, timeout: Option<Duration>) -> TxId {
    wait(|r| db.begin_with(Behavior::Immediate, timeout, r)).unwrap()
}

fn tx_exec(db: &NativeDatabaseHandle, tx: TxId, sql: &str) -> Result<(), Error> {
    wait(|r| db.exec_opts(sql.into(), Some(tx), &CallOptions::default(), r))
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
        db.execute_with(
            "SELECT count(*) FROM t".into(),
            Params::None,
            Box::new(move |r| out.send((i, r.unwrap().rows[0][0].clone())).unwrap()),
        );
    }
    std::thread::sleep(Duration::from_millis(100));
    assert!(seen.try_recv().is_err(), "no call ran inside the open transaction");
    tx_exec(&db, tx, "INSERT INTO t VALUES ('in tx 2')").unwrap();
    wait(|r| db.end_with(tx, true, r)).unwrap();
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
    assert_eq!(wait(|r| db.end_with(tx, true, r)).unwrap_err().code(), "ERR_TIMEOUT");
    db.exec("INSERT INTO t VALUES (3)").unwrap();
    assert_eq!(int(&db, "SELECT count(*) FROM t"), 1);
    db.close().unwrap();
}

#[test]
fn abort_stops_a_running_statement_and_the_database_answers_next() {
    let store: Arc<dyn PageStore> = Arc::new(MemoryStore::new());
    let db = open(&store, "abort");
    let token = CancelToken::new();
    let (tx, rx) = bounded(1);
    db.execute_opts(
        FOREVER_CTE.into(),
        Params::None,
        None,
        &CallOptions { cancel: Some(token.clone()), timeout: None },
        Box::new(move |r| tx.send(r).unwrap()),
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
    let err = wait(|r| {
        db.exec_opts(
            "BEGIN; INSERT INTO t VALUES (1); WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) INSERT INTO t SELECT x FROM c; COMMIT;".into(),
            None,
            &CallOptions { cancel: None, timeout: Some(Duration::from_millis(200)) },
            r,
        )
    })
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
    let (done, rx) = bounded(1);
    db.exec_opts(
        "INSERT INTO t VALUES (1)".into(),
        None,
        &CallOptions { cancel: Some(token.clone()), timeout: None },
        Box::new(move |r| done.send(r).unwrap()),
    );
    token.cancel();
    wait(|r| db.end_with(tx, false, r)).unwrap();
    assert_eq!(rx.recv().unwrap().unwrap_err().code(), "ERR_ABORTED");
    assert_eq!(int(&db, "SELECT count(*) FROM t"), 0);
    db.close().unwrap();
}

#[test]
fn cursor_streams_in_chunks_and_closing_early_finalizes_it() {
    let store: Arc<dyn PageStore> = Arc::new(MemoryStore::new());
    let db = open(&store, "cursor");
    db.exec("CREATE TABLE t(x INTEGER, b BLOB); WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2500) INSERT INTO t SELECT x, x'' FROM c").unwrap();
    let (id, columns) = wait(|r| {
        db.cursor_open_with(
            "SELECT x, b FROM t WHERE x > ? ORDER BY x".into(),
            p(&[Value::Integer(0)]),
            None,
            &CallOptions::default(),
            r,
        )
    })
    .unwrap();
    assert_eq!(columns, ["x", "b"]);
    let mut total = 0;
    loop {
        let (rows, done) = wait(|r| db.cursor_next_with(id, 1000, None, &CallOptions::default(), r)).unwrap();
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
    assert_eq!(
        wait(|r| db.cursor_next_with(id, 10, None, &CallOptions::default(), r)).unwrap_err().code(),
        "ERR_CLOSED"
    );
    let (early, _) = wait(|r| {
        db.cursor_open_with("SELECT x FROM t".into(), Params::None, None, &CallOptions::default(), r)
    })
    .unwrap();
    wait(|r| db.cursor_next_with(early, 10, None, &CallOptions::default(), r)).unwrap();
    wait(|r| db.cursor_close_with(early, None, r)).unwrap();
    db.exec("DROP TABLE t").expect("no statement is left open on the table");
    db.close().unwrap();
}
