//! The worker's seed semantics: queue, close, drop, panic, open failure.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use crossbeam_channel::{bounded, unbounded, Receiver};
use depot::fault::FaultStore;
use depot::{MemoryStore, PageStore};
use depot_client::{Admission, Answer, CallOptions, Command, Database, Error, OpenOptions, Params, Value};

fn opts(max_queue: usize) -> OpenOptions {
    OpenOptions { generation: Some(1), max_queue, ..Default::default() }
}

/// Blocks the worker until the returned sender is dropped or sent to; returns once it is blocked.
fn block_worker(db: &Database) -> crossbeam_channel::Sender<()> {
    let (release, gate) = bounded::<()>(0);
    let (started_tx, started) = bounded::<()>(1);
    db.call(
        Command::Hook(Box::new(move || {
            started_tx.send(()).unwrap();
            let _ = gate.recv();
        })),
        &CallOptions::default(),
        Box::new(|_, _| {}),
    );
    started.recv_timeout(Duration::from_secs(5)).expect("worker picked up the blocking job");
    release
}

fn submit_many(db: &Database, n: usize) -> Receiver<Result<Answer, Error>> {
    let (tx, rx) = unbounded();
    for _ in 0..n {
        let tx = tx.clone();
        db.call(
            Command::Exec { sql: "SELECT 1".into() },
            &CallOptions::default(),
            Box::new(move |r, _| tx.send(r).unwrap()),
        );
    }
    rx
}

#[test]
fn full_queue_rejects_with_overloaded_at_once() {
    let store: Arc<dyn PageStore> = Arc::new(MemoryStore::new());
    let db = Database::open(store, "q", opts(8)).unwrap();
    let release = block_worker(&db);
    let rx = submit_many(&db, 20);
    // The blocking call and 7 more fill the 8 slots (every accepted, unanswered call counts); the
    // 13 that did not fit were answered already, on this thread, before anything ran.
    let early: Vec<_> = rx.try_iter().collect();
    assert_eq!(early.len(), 13);
    assert!(early.iter().all(|r| r.as_ref().unwrap_err().code() == "ERR_OVERLOADED"));
    assert!(early[0].as_ref().unwrap_err().message.contains("limit 8"));
    drop(release);
    let rest: Vec<_> = (0..7).map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap()).collect();
    assert!(rest.iter().all(|r| r.is_ok()), "the 7 queued calls ran");
    let m = db.metrics();
    assert_eq!((m.counters.rejected, m.queue_depth), (13, 0));
    db.close().unwrap();
}

#[test]
fn an_answered_call_holds_its_place_until_its_admission_is_dropped() {
    let store: Arc<dyn PageStore> = Arc::new(MemoryStore::new());
    let db = Database::open(store, "held", opts(2)).unwrap();
    let (tx, rx) = unbounded::<(Result<Answer, Error>, Admission)>();
    for _ in 0..2 {
        let tx = tx.clone();
        db.call(
            Command::Exec { sql: "SELECT 1".into() },
            &CallOptions::default(),
            Box::new(move |r, admission| tx.send((r, admission)).unwrap()),
        );
    }
    let held: Vec<_> = (0..2).map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap()).collect();
    assert!(held.iter().all(|(r, admission)| r.is_ok() && admission.is_held()));
    assert_eq!(db.metrics().queue_depth, 2, "answered but not delivered still counts");
    assert_eq!(code(db.exec("SELECT 1")), "ERR_OVERLOADED");
    drop(held);
    assert_eq!(db.metrics().queue_depth, 0);
    db.exec("SELECT 1").unwrap();
    db.close().unwrap();
}

#[test]
fn a_blocking_call_gives_its_place_back_before_it_returns() {
    let store: Arc<dyn PageStore> = Arc::new(MemoryStore::new());
    let db = Database::open(store, "one-place", opts(1)).unwrap();
    // With one place, a call made right after a blocking call returned is refused if that call
    // still held its place then (the worker used to release it after handing the answer over).
    for i in 0..20_000 {
        db.exec("SELECT 1").unwrap_or_else(|e| panic!("call {i}: {e}"));
    }
    assert_eq!(db.metrics().counters.rejected, 0);
    db.close().unwrap();
}

#[test]
fn close_bypasses_full_queue_and_fails_queued_work() {
    let store: Arc<dyn PageStore> = Arc::new(MemoryStore::new());
    let db = Database::open(store, "c", opts(8)).unwrap();
    let release = block_worker(&db);
    let rx = submit_many(&db, 7);
    let closer = {
        let db = db.clone();
        std::thread::spawn(move || db.close())
    };
    std::thread::sleep(Duration::from_millis(50));
    // New calls are refused as soon as close starts, even though the queue is full.
    assert_eq!(code(db.exec("SELECT 1")), "ERR_CLOSED");
    drop(release);
    closer.join().unwrap().unwrap();
    let answers: Vec<_> = (0..7).map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap()).collect();
    assert!(answers.iter().all(|r| r.as_ref().unwrap_err().code() == "ERR_CLOSED"), "{answers:?}");
    assert_eq!(db.metrics().queue_depth, 0, "every waiter was answered");
}

#[test]
fn closing_twice_is_fine_and_calls_after_close_fail_closed() {
    let store: Arc<dyn PageStore> = Arc::new(MemoryStore::new());
    let db = Database::open(store, "twice", opts(8)).unwrap();
    db.close().unwrap();
    db.close().unwrap();
    assert_eq!(code(db.execute("SELECT 1", Params::None)), "ERR_CLOSED");
}

#[test]
fn close_that_times_out_reports_it_and_the_worker_finishes_later() {
    let store: Arc<dyn PageStore> = Arc::new(MemoryStore::new());
    let db = Database::open(store.clone(), "slow-close", opts(8)).unwrap();
    let release = block_worker(&db);
    assert_eq!(code(db.close_within(Duration::from_millis(100))), "ERR_CLOSE_TIMEOUT");
    drop(release);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Arc::strong_count(&store) > 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(Arc::strong_count(&store), 1, "the worker closed and released the store");
    db.close().unwrap();
}

#[test]
fn dropped_handle_without_close_is_closed_in_the_background() {
    let store: Arc<dyn PageStore> = Arc::new(MemoryStore::new());
    let db = Database::open(store.clone(), "dropped", opts(8)).unwrap();
    db.exec("CREATE TABLE t(a); INSERT INTO t VALUES (1)").unwrap();
    drop(db);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Arc::strong_count(&store) > 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(Arc::strong_count(&store), 1, "the worker exited and released the store");
    let db = open(&store, "dropped");
    assert_eq!(int(&db, "SELECT count(*) FROM t"), 1);
    db.close().unwrap();
}

#[test]
fn worker_panic_kills_one_database_not_the_process() {
    let store: Arc<dyn PageStore> = Arc::new(MemoryStore::new());
    let a = Database::open(store.clone(), "a", opts(8)).unwrap();
    let b = Database::open(store.clone(), "b", opts(8)).unwrap();
    let release = block_worker(&a);
    let queued = submit_many(&a, 3);
    let rx = submit(&a, Command::Hook(Box::new(|| panic!("boom"))), &CallOptions::default());
    drop(release);
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap().unwrap_err().code(), "ERR_WORKER_DEAD");
    for _ in 0..3 {
        assert!(
            queued.recv_timeout(Duration::from_secs(5)).unwrap().is_ok(),
            "calls queued before the panic ran"
        );
    }
    assert_eq!(code(a.exec("SELECT 1")), "ERR_WORKER_DEAD");
    b.exec("CREATE TABLE t(x)").unwrap();
    assert_eq!(int(&b, "SELECT count(*) FROM t"), 0, "the other database keeps working");
    a.close().unwrap();
    b.close().unwrap();
}

#[test]
fn panic_inside_the_store_is_caught_at_the_vfs_boundary() {
    let memory: Arc<dyn PageStore> = Arc::new(MemoryStore::new());
    let faulty = Arc::new(FaultStore::new(memory.clone()));
    let store: Arc<dyn PageStore> = faulty.clone();
    {
        let db = open(&store, "p");
        db.exec("CREATE TABLE t(v); WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 2000) INSERT INTO t SELECT randomblob(500) FROM c").unwrap();
        db.close().unwrap();
    }
    // Every call on the writer: a panic there ends the database.
    let db = Database::open(
        store.clone(),
        "p",
        OpenOptions { generation: Some(1), cache_bytes: 0, readers: 0, ..Default::default() },
    )
    .unwrap();
    faulty.faults.panic_reads.store(1, Ordering::SeqCst);
    assert_eq!(code(db.query("SELECT count(*) FROM t", Params::None)), "ERR_WORKER_DEAD");
    assert_eq!(code(db.exec("SELECT 1")), "ERR_WORKER_DEAD");
    db.close().unwrap();

    // On a reader, the panic costs that call and the reader's connection, not the database.
    let db = Database::open(
        store,
        "p",
        OpenOptions {
            generation: Some(2),
            cache_bytes: 0,
            readers: 1,
            reads_on_idle_writer: false,
            ..Default::default()
        },
    )
    .unwrap();
    db.exec("SELECT 1").unwrap();
    faulty.faults.panic_reads.store(1, Ordering::SeqCst);
    assert_eq!(code(db.query("SELECT count(*) FROM t", Params::None)), "ERR_WORKER_DEAD");
    assert_eq!(int(&db, "SELECT count(*) FROM t"), 2000, "a new reader connection answers");
    assert_eq!(db.metrics().counters.reader_calls, 2);
    db.exec("INSERT INTO t VALUES (1)").unwrap();
    db.close().unwrap();
}

#[test]
fn open_failure_reaches_the_opener() {
    let store: Arc<dyn PageStore> = Arc::new(MemoryStore::new());
    let first = Database::open(store.clone(), "g", OpenOptions { generation: Some(5), ..Default::default() })
        .unwrap();
    let stale = Database::open(store.clone(), "g", OpenOptions { generation: Some(4), ..Default::default() });
    let err = stale.err().expect("an older generation cannot open");
    assert_eq!(err.code(), "ERR_FENCED", "{err}");
    let (tx, rx) = bounded(1);
    Database::open_with(
        store,
        "bad/name".into(),
        OpenOptions::default(),
        Box::new(move |r| tx.send(r.map(|_| ())).unwrap()),
    );
    assert_eq!(rx.recv().unwrap().unwrap_err().code(), "ERR_INVALID_ARGUMENT");
    first.close().unwrap();
}

#[test]
fn replies_arrive_in_order_from_the_worker() {
    let store: Arc<dyn PageStore> = Arc::new(MemoryStore::new());
    // The writer's queue alone: with readers, a read runs on whichever thread is free, so answers
    // of reads issued back to back may arrive in another order (each sees a state at least as
    // new as the one it was issued after; `tests/readers.rs` pins that).
    let db =
        Database::open(store, "order", OpenOptions { generation: Some(1), readers: 0, ..Default::default() })
            .unwrap();
    let (tx, rx) = unbounded();
    for i in 0..100i64 {
        let tx = tx.clone();
        db.call(
            Command::Execute { sql: "SELECT ?".into(), params: p(&[Value::Integer(i)]) },
            &CallOptions::default(),
            Box::new(move |r, _| tx.send(statement(r).unwrap().rows[0][0].clone()).unwrap()),
        );
    }
    let got: Vec<_> = (0..100).map(|_| rx.recv().unwrap()).collect();
    assert_eq!(got, (0..100).map(Value::Integer).collect::<Vec<_>>());
    db.close().unwrap();
}

#[test]
fn a_call_is_counted_in_the_metrics_before_its_answer_arrives() {
    let store: Arc<dyn PageStore> = Arc::new(MemoryStore::new());
    let db = open(&store, "counted");
    let before = db.metrics().counters.calls;
    for i in 1..=50u64 {
        db.exec("SELECT 1").unwrap();
        let m = db.metrics().counters;
        assert_eq!((m.calls - before, m.running), (i, 0), "call {i}");
    }
    db.close().unwrap();
}

#[test]
fn a_sync_call_that_would_wait_behind_an_open_transaction_fails_at_once() {
    let store: Arc<dyn PageStore> = Arc::new(MemoryStore::new());
    let db = Database::open(store, "sync", opts(8)).unwrap();
    let limit = Duration::from_secs(5);
    let select = || Command::Exec { sql: "SELECT 1".into() };
    assert!(db.call_sync(select(), &CallOptions::default(), limit).is_ok());
    let tx = db.begin(depot_client::Behavior::Immediate, None).unwrap();
    let started = Instant::now();
    let err = db.call_sync(select(), &CallOptions::default(), limit).unwrap_err();
    assert_eq!(err.code(), "ERR_WOULD_DEADLOCK");
    assert!(started.elapsed() < limit, "answered at once, not at the deadline");
    // The transaction's own commands go through, and once it ends so does everything.
    let in_tx = CallOptions { transaction: Some(tx), ..Default::default() };
    assert!(db.call_sync(select(), &in_tx, limit).is_ok());
    db.end(tx, true).unwrap();
    assert!(
        db.call_sync(select(), &CallOptions::default(), limit).is_ok(),
        "the flag is cleared before the end is answered"
    );
    db.close().unwrap();
}
