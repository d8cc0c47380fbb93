//! Snapshot readers: a read never waits behind the writer, sees one committed state, and keeps
//! program order with the handle's writes. Run on every store of `common::backends()` and, with
//! `DEPOT_TEST_PG_URL`, on PostgreSQL.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{p, submit};
use depot::PageStore;
use depot_client::{
    Admission, Answer, Behavior, CallOptions, CancelToken, Command, Database, Error, OpenOptions, Params,
    Statement, Value,
};

fn stores() -> Vec<(String, Arc<dyn PageStore>, Option<tempfile::TempDir>)> {
    let mut all: Vec<_> =
        common::backends().into_iter().map(|b| (b.name.to_string(), b.store, b.dir)).collect();
    if let Ok(url) = std::env::var("DEPOT_TEST_PG_URL") {
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let schema = format!("readers_{}_{nanos}", std::process::id());
        let options = depot::PostgresStoreOptions { schema, ..Default::default() };
        all.push(("postgres".into(), Arc::new(depot::PostgresStore::open(&url, options).unwrap()), None));
    }
    all
}

/// A database whose reads leave the writer's queue for a reader whenever they may (not for the
/// idle writer): these tests are about what readers do.
fn open(store: &Arc<dyn PageStore>, name: &str, readers: usize) -> Database {
    let opts = OpenOptions { readers, idle: None, reads_on_idle_writer: false, ..Default::default() };
    Database::open(store.clone(), name, opts).unwrap()
}

/// A database with the default routing: a read that finds the writer idle runs there.
fn open_default(store: &Arc<dyn PageStore>, name: &str, readers: usize) -> Database {
    Database::open(store.clone(), name, OpenOptions { readers, idle: None, ..Default::default() }).unwrap()
}

fn int(answer: Result<Answer, Error>) -> i64 {
    match common::statement(answer).unwrap().rows[0][0] {
        Value::Integer(i) => i,
        ref other => panic!("expected an integer, got {other:?}"),
    }
}

fn query(sql: &str) -> Command {
    Command::Execute { sql: sql.into(), params: Params::None }
}

const ANSWER: Duration = Duration::from_secs(20);

/// Asserts that a point read (`SELECT v FROM t`, 7) answers while the read `slow` still runs.
fn point_read_answers_while_running(
    db: &Database,
    slow: &crossbeam_channel::Receiver<Result<Answer, Error>>,
) {
    let point = submit(db, query("SELECT v FROM t"), &CallOptions::default());
    assert_eq!(int(point.recv_timeout(ANSWER).expect("the point read waited for the long one")), 7);
    assert!(slow.try_recv().is_err(), "the long read is still running");
}

/// A read that runs until cancelled: its answer, and the token that cancels it.
fn endless_read(db: &Database) -> (crossbeam_channel::Receiver<Result<Answer, Error>>, CancelToken) {
    let cancel = CancelToken::new();
    let options = CallOptions { cancel: Some(cancel.clone()), ..Default::default() };
    let endless = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT max(i) FROM n";
    (submit(db, query(endless), &options), cancel)
}

#[test]
fn a_read_is_answered_while_an_interactive_transaction_is_held_open() {
    for (name, store, _dir) in stores() {
        // Default routing: a read that finds the writer idle runs there, one issued while a
        // transaction is open runs on a reader.
        let db = open_default(&store, "held", 1);
        db.exec("CREATE TABLE t(v); INSERT INTO t VALUES (1)").unwrap();
        assert_eq!(
            int(submit(&db, query("SELECT count(*) FROM t"), &CallOptions::default()).recv().unwrap()),
            1
        );
        assert_eq!(db.metrics().counters.reader_calls, 0, "{name}: the idle writer answered");
        assert_eq!(db.metrics().counters.readers, 0, "{name}: no reader thread was started for it");
        let tx = db.begin(Behavior::Immediate, None).unwrap();
        let in_tx = CallOptions { transaction: Some(tx), ..Default::default() };
        common::statement(submit(&db, query("INSERT INTO t VALUES (2)"), &in_tx).recv().unwrap()).unwrap();
        // The transaction stays open until the read has answered: the read cannot be waiting for it.
        let read = submit(&db, query("SELECT count(*) FROM t"), &CallOptions::default());
        let count = int(read.recv_timeout(ANSWER).expect("the read waited for the transaction"));
        assert_eq!(count, 1, "{name}: the read sees the last commit, not the open transaction");
        db.end(tx, true).unwrap();
        assert_eq!(
            int(submit(&db, query("SELECT count(*) FROM t"), &CallOptions::default()).recv().unwrap()),
            2
        );
        let m = db.metrics().counters;
        assert_eq!(
            m.reader_calls, 1,
            "{name}: only the read inside the transaction's time ran on a reader: {m:?}"
        );
        db.close().unwrap();
    }
}

#[test]
fn a_point_read_is_answered_while_a_long_read_runs_on_another_reader() {
    for (name, store, _dir) in stores() {
        let db = open(&store, "long-read", 2);
        db.exec("CREATE TABLE t(v); INSERT INTO t VALUES (7)").unwrap();
        let (slow, cancel) = endless_read(&db);
        // Wait until the long read runs on a reader, so that the point read comes after it.
        let deadline = Instant::now() + ANSWER;
        while db.metrics().counters.readers < 1 {
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(1));
        }
        point_read_answers_while_running(&db, &slow);
        cancel.cancel();
        assert_eq!(slow.recv_timeout(ANSWER).unwrap().unwrap_err().code(), "ERR_ABORTED");
        assert_eq!(db.metrics().counters.readers, 2, "{name}");
        db.close().unwrap();
    }
}

#[test]
fn a_long_read_on_the_idle_writer_does_not_hold_back_a_later_read() {
    for (name, store, _dir) in stores() {
        let db = open_default(&store, "long-on-writer", 1);
        db.exec("CREATE TABLE t(v); INSERT INTO t VALUES (7)").unwrap();
        let (slow, cancel) = endless_read(&db);
        // The long read found the writer idle and runs there; the point read finds it busy.
        point_read_answers_while_running(&db, &slow);
        assert_eq!(db.metrics().counters.reader_calls, 1, "{name}: a reader answered the point read");
        cancel.cancel();
        assert_eq!(slow.recv_timeout(ANSWER).unwrap().unwrap_err().code(), "ERR_ABORTED");
        assert_eq!(db.metrics().counters.reader_calls, 1, "{name}: the long read ran on the writer");
        db.close().unwrap();
    }
}

#[test]
fn a_point_read_goes_to_a_free_writer_while_the_only_reader_runs_a_long_read() {
    let store: Arc<dyn PageStore> = Arc::new(depot::MemoryStore::new());
    let db = open(&store, "busy-reader", 1);
    db.exec("CREATE TABLE t(v); INSERT INTO t VALUES (7)").unwrap();
    let (slow, cancel) = endless_read(&db);
    let deadline = Instant::now() + ANSWER;
    while db.metrics().counters.readers < 1 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(1));
    }
    // Time for the reader thread to take the long read off its queue.
    std::thread::sleep(Duration::from_millis(300));
    let before = db.metrics().counters.reader_calls;
    point_read_answers_while_running(&db, &slow);
    assert_eq!(db.metrics().counters.reader_calls, before, "answered by the writer");
    cancel.cancel();
    assert_eq!(slow.recv_timeout(ANSWER).unwrap().unwrap_err().code(), "ERR_ABORTED");
    db.close().unwrap();
}

#[test]
fn a_read_issued_after_an_unawaited_write_sees_it() {
    for (name, store, _dir) in stores() {
        let db = open(&store, "order", 1);
        db.exec("CREATE TABLE t(v)").unwrap();
        let none = CallOptions::default();
        for i in 1..=100i64 {
            let write = submit(
                &db,
                Command::Execute { sql: "INSERT INTO t VALUES (?)".into(), params: p(&[Value::Integer(i)]) },
                &none,
            );
            let read = submit(&db, query("SELECT count(*) FROM t"), &none);
            assert_eq!(int(read.recv().unwrap()), i, "{name}: write {i}");
            common::statement(write.recv().unwrap()).unwrap();
            // Awaited this time: the next read goes to a reader, which must see it too.
            assert_eq!(int(submit(&db, query("SELECT count(*) FROM t"), &none).recv().unwrap()), i, "{name}");
        }
        assert!(db.metrics().counters.reader_calls >= 100, "{name}: {:?}", db.metrics());
        db.close().unwrap();
    }
}

#[test]
fn readers_follow_schema_changes_and_shrinks() {
    for (name, store, _dir) in stores() {
        let db = open(&store, "schema", 1);
        let none = CallOptions::default();
        db.exec("CREATE TABLE t(a); INSERT INTO t VALUES (1)").unwrap();
        assert_eq!(int(submit(&db, query("SELECT a FROM t"), &none).recv().unwrap()), 1);
        db.exec("ALTER TABLE t ADD COLUMN b DEFAULT 5").unwrap();
        assert_eq!(int(submit(&db, query("SELECT b FROM t"), &none).recv().unwrap()), 5, "{name}");
        db.exec(
            "CREATE TABLE big(x);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
             INSERT INTO big SELECT randomblob(3000) FROM n",
        )
        .unwrap();
        assert_eq!(int(submit(&db, query("SELECT count(*) FROM big"), &none).recv().unwrap()), 500);
        db.exec("DROP TABLE big; VACUUM").unwrap();
        let tables = submit(&db, query("SELECT count(*) FROM sqlite_schema WHERE name = 'big'"), &none);
        assert_eq!(int(tables.recv().unwrap()), 0, "{name}");
        db.exec("CREATE TABLE big(y); INSERT INTO big VALUES (9)").unwrap();
        assert_eq!(int(submit(&db, query("SELECT y FROM big"), &none).recv().unwrap()), 9, "{name}");
        let integrity = common::statement(
            submit(&db, query("SELECT * FROM pragma_integrity_check"), &none).recv().unwrap(),
        );
        assert_eq!(integrity.unwrap().rows, vec![vec![Value::Text("ok".into())]]);
        assert!(db.metrics().counters.reader_calls >= 4, "{name}: {:?}", db.metrics());
        db.close().unwrap();
    }
}

#[test]
fn a_reader_never_sees_a_partial_transaction() {
    for (name, store, _dir) in stores() {
        let db = open(&store, "transfers", 1);
        // Rows spread over many pages, so that one transfer changes pages far apart.
        db.exec(
            "CREATE TABLE acct(id INTEGER PRIMARY KEY, bal INTEGER, pad BLOB);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400)
             INSERT INTO acct SELECT i, 100, randomblob(1000) FROM n;",
        )
        .unwrap();
        let writer = db.clone();
        let transfers = std::thread::spawn(move || {
            for i in 0..150i64 {
                let tx = writer.begin(Behavior::Immediate, None).unwrap();
                let in_tx = CallOptions { transaction: Some(tx), ..Default::default() };
                let (from, to) = (1 + i % 400, 1 + (i * 7 + 200) % 400);
                for (id, delta) in [(from, -3i64), (to, 3)] {
                    let sql = "UPDATE acct SET bal = bal + ? WHERE id = ?".to_string();
                    let params = p(&[Value::Integer(delta), Value::Integer(id)]);
                    common::statement(
                        submit(&writer, Command::Execute { sql, params }, &in_tx).recv().unwrap(),
                    )
                    .unwrap();
                }
                writer.end(tx, true).unwrap();
            }
        });
        let none = CallOptions::default();
        while !transfers.is_finished() {
            assert_eq!(
                int(submit(&db, query("SELECT sum(bal) FROM acct"), &none).recv().unwrap()),
                40_000,
                "{name}"
            );
        }
        transfers.join().unwrap();
        assert!(db.metrics().counters.reader_calls > 0, "{name}");
        db.close().unwrap();
    }
}

#[test]
fn a_read_only_batch_runs_on_a_reader_at_one_point() {
    for (name, store, _dir) in stores() {
        let db = open(&store, "batch", 1);
        db.exec("CREATE TABLE t(v); INSERT INTO t VALUES (1), (2)").unwrap();
        let tx = db.begin(Behavior::Immediate, None).unwrap();
        let statements = vec![
            Statement { sql: "SELECT count(*) FROM t".into(), params: Params::None },
            Statement { sql: "SELECT sum(v) FROM t".into(), params: Params::None },
        ];
        let batch = submit(&db, Command::Batch { statements }, &CallOptions::default());
        match batch.recv_timeout(ANSWER).expect("the batch waited for the transaction").unwrap() {
            Answer::Statements(results) => {
                assert_eq!(results[0].rows[0][0], Value::Integer(2), "{name}");
                assert_eq!(results[1].rows[0][0], Value::Integer(3), "{name}");
            }
            other => panic!("{other:?}"),
        }
        db.end(tx, false).unwrap();
        db.close().unwrap();
    }
}

#[test]
fn a_flood_of_reads_and_writes_admits_exactly_max_queue() {
    for (name, store, _dir) in stores() {
        let opts = OpenOptions { readers: 2, max_queue: 8, idle: None, ..Default::default() };
        let db = Database::open(store.clone(), "flood", opts).unwrap();
        db.exec("CREATE TABLE t(v)").unwrap();
        // Answers keep their admission until the end, so nothing frees a place during the flood.
        let held: Arc<Mutex<Vec<Admission>>> = Arc::default();
        let mut accepted = 0;
        for i in 0..64 {
            let command =
                if i % 2 == 0 { query("SELECT count(*) FROM t") } else { query("INSERT INTO t VALUES (1)") };
            let keep = held.clone();
            if db.call(
                command,
                &CallOptions::default(),
                Box::new(move |_, admission| {
                    if admission.is_held() {
                        keep.lock().unwrap().push(admission)
                    }
                }),
            ) {
                accepted += 1;
            }
        }
        assert_eq!(accepted, 8, "{name}");
        let deadline = Instant::now() + ANSWER;
        while held.lock().unwrap().len() < 8 {
            assert!(Instant::now() < deadline, "{name}: not every admitted call was answered");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(db.metrics().queue_depth, 8, "{name}");
        held.lock().unwrap().clear();
        assert_eq!(db.metrics().queue_depth, 0);
        db.close().unwrap();
    }
}

#[test]
fn a_fenced_handle_fails_reads_on_readers_too() {
    for (name, store, _dir) in stores() {
        let old = Database::open(
            store.clone(),
            "fenced",
            OpenOptions {
                generation: Some(1),
                readers: 1,
                idle: None,
                reads_on_idle_writer: false,
                ..Default::default()
            },
        )
        .unwrap();
        old.exec("CREATE TABLE t(v); INSERT INTO t VALUES (1)").unwrap();
        let none = CallOptions::default();
        assert_eq!(int(submit(&old, query("SELECT count(*) FROM t"), &none).recv().unwrap()), 1);
        let new = Database::open(
            store.clone(),
            "fenced",
            OpenOptions { generation: Some(2), ..Default::default() },
        )
        .unwrap();
        new.exec("INSERT INTO t VALUES (2)").unwrap();
        assert_eq!(common::code(old.exec("INSERT INTO t VALUES (3)")), "ERR_FENCED", "{name}");
        let read = submit(&old, query("SELECT count(*) FROM t"), &none).recv().unwrap();
        assert_eq!(read.unwrap_err().code(), "ERR_FENCED", "{name}: a reader of a fenced handle");
        old.close().unwrap();
        new.close().unwrap();
    }
}

fn reader_threads(database: &str) -> usize {
    let name = format!("depot-rd-{database}");
    let name = &name[..name.len().min(15)];
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == name)
        .count()
}

#[test]
fn readers_start_on_demand_end_when_idle_and_close_with_the_database() {
    let store: Arc<dyn PageStore> = Arc::new(depot::MemoryStore::new());
    let db = open(&store, "rd-life", 1);
    db.exec("CREATE TABLE t(v)").unwrap();
    assert_eq!(reader_threads("rd-life"), 0, "no reader before a read");
    int(submit(&db, query("SELECT count(*) FROM t"), &CallOptions::default()).recv().unwrap());
    assert_eq!(reader_threads("rd-life"), 1);
    let deadline = Instant::now() + Duration::from_secs(20);
    while db.metrics().counters.readers > 0 || reader_threads("rd-life") > 0 {
        assert!(Instant::now() < deadline, "the idle reader did not end");
        std::thread::sleep(Duration::from_millis(20));
    }
    int(submit(&db, query("SELECT count(*) FROM t"), &CallOptions::default()).recv().unwrap());
    assert_eq!(db.metrics().counters.readers, 1, "started again on demand");
    db.close().unwrap();
    assert_eq!(db.metrics().counters.readers, 0);
    let deadline = Instant::now() + Duration::from_secs(5);
    while reader_threads("rd-life") > 0 {
        assert!(Instant::now() < deadline, "close() left a reader thread running");
        std::thread::sleep(Duration::from_millis(5));
    }
    let after = submit(&db, query("SELECT 1"), &CallOptions::default()).recv().unwrap();
    assert_eq!(after.unwrap_err().code(), "ERR_CLOSED");
}

#[test]
fn reads_stay_on_the_writer_while_its_connection_holds_what_readers_cannot_see() {
    let store: Arc<dyn PageStore> = Arc::new(depot::MemoryStore::new());
    let db = open(&store, "local", 1);
    let none = CallOptions::default();
    db.exec("CREATE TABLE t(v); INSERT INTO t VALUES (1)").unwrap();
    db.exec("BEGIN; INSERT INTO t VALUES (2)").unwrap();
    assert_eq!(
        int(submit(&db, query("SELECT count(*) FROM t"), &none).recv().unwrap()),
        2,
        "inside BEGIN as SQL"
    );
    db.exec("COMMIT").unwrap();
    assert_eq!(db.metrics().counters.reader_calls, 0);
    db.exec("CREATE TEMP TABLE scratch(x); INSERT INTO scratch VALUES (5)").unwrap();
    assert_eq!(int(submit(&db, query("SELECT x FROM scratch"), &none).recv().unwrap()), 5);
    assert_eq!(db.metrics().counters.reader_calls, 0, "a TEMP table keeps reads on the writer");
    db.close().unwrap();
}

#[test]
fn reads_stay_on_the_writer_once_sql_changed_a_setting_that_changes_answers() {
    let store: Arc<dyn PageStore> = Arc::new(depot::MemoryStore::new());
    let db = open(&store, "like", 1);
    let none = CallOptions::default();
    db.exec("CREATE TABLE t(v); INSERT INTO t VALUES ('apple'), ('Apple')").unwrap();
    let like = "SELECT count(*) FROM t WHERE v LIKE 'a%'";
    assert_eq!(int(submit(&db, query(like), &none).recv().unwrap()), 2);
    assert_eq!(db.metrics().counters.reader_calls, 1);
    db.exec("PRAGMA case_sensitive_like = ON").unwrap();
    assert_eq!(int(submit(&db, query(like), &none).recv().unwrap()), 1, "the writer's setting holds");
    assert_eq!(db.metrics().counters.reader_calls, 1, "answered by the writer");
    db.close().unwrap();
}

#[test]
fn readers_zero_runs_every_call_on_the_writer() {
    let store: Arc<dyn PageStore> = Arc::new(depot::MemoryStore::new());
    let db = open(&store, "no-readers", 0);
    db.exec("CREATE TABLE t(v)").unwrap();
    int(submit(&db, query("SELECT count(*) FROM t"), &CallOptions::default()).recv().unwrap());
    assert_eq!(db.metrics().counters.reader_calls, 0);
    assert_eq!(reader_threads("no-readers"), 0);
    db.close().unwrap();
}

/// Every row a cursor yields, fetched `chunk` at a time, with `between` run after each chunk.
fn drain(db: &Database, cursor: depot_client::CursorId, chunk: usize, mut between: impl FnMut()) -> Vec<i64> {
    let mut seen = Vec::new();
    loop {
        let (rows, done) = db.cursor_next(cursor, chunk).unwrap();
        seen.extend(rows.iter().map(|r| match r[0] {
            Value::Integer(i) => i,
            ref other => panic!("expected an integer, got {other:?}"),
        }));
        if done {
            return seen;
        }
        between();
    }
}

#[test]
fn a_cursor_on_a_reader_keeps_its_snapshot_while_writes_commit() {
    for (name, store, _dir) in stores() {
        let db = open(&store, "cursor-snap", 1);
        db.exec("CREATE TABLE t(v); CREATE TABLE log(round); WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 300) INSERT INTO t SELECT x FROM c").unwrap();
        let none = CallOptions::default();
        let (cursor, columns) = db.cursor_open("SELECT v FROM t ORDER BY v", Params::None, &none).unwrap();
        assert_eq!(columns, vec!["v".to_string()]);
        let mut round = 0;
        let seen = drain(&db, cursor, 25, || {
            // Between fetches the writer rewrites the table and commits.
            round += 1;
            db.exec(&format!("DELETE FROM t WHERE v % 2 = {}; INSERT INTO log VALUES ({round})", round % 2))
                .unwrap();
        });
        assert_eq!(seen, (1..=300).collect::<Vec<_>>(), "{name}: every row of the opening point, no other");
        assert!(round >= 10, "{name}: writes committed while the cursor was open");
        assert!(db.metrics().counters.reader_calls >= 13, "{name}: {:?}", db.metrics().counters);
        // Exhausted: the cursor is gone, and reads see the writes again.
        assert_eq!(common::code(db.cursor_next(cursor, 1)), "ERR_CLOSED", "{name}");
        let count = int(submit(&db, query("SELECT count(*) FROM log"), &none).recv().unwrap());
        assert_eq!(count, round, "{name}");
        assert_eq!(int(submit(&db, query("SELECT count(*) FROM t"), &none).recv().unwrap()), 0, "{name}");
        db.close().unwrap();
    }
}

#[test]
fn a_cursor_on_a_reader_is_not_behind_an_open_transaction_and_reads_go_on_while_it_holds() {
    for (name, store, _dir) in stores() {
        let db = open(&store, "cursor-tx", 1);
        db.exec("CREATE TABLE t(v); INSERT INTO t VALUES (1), (2), (3)").unwrap();
        let none = CallOptions::default();
        let tx = db.begin(Behavior::Immediate, None).unwrap();
        let in_tx = CallOptions { transaction: Some(tx), ..Default::default() };
        common::statement(submit(&db, query("INSERT INTO t VALUES (4)"), &in_tx).recv().unwrap()).unwrap();
        let (cursor, _) = db.cursor_open("SELECT v FROM t ORDER BY v", Params::None, &none).unwrap();
        let (rows, done) = db.cursor_next(cursor, 2).unwrap();
        assert_eq!((rows.len(), done), (2, false), "{name}");
        db.end(tx, true).unwrap();
        // The one reader holds the cursor: this read keeps its place on the writer, and sees 4.
        let count = int(submit(&db, query("SELECT count(*) FROM t"), &none).recv_timeout(ANSWER).unwrap());
        assert_eq!(count, 4, "{name}");
        let (rest, done) = db.cursor_next(cursor, 10).unwrap();
        assert_eq!(
            (rest.len(), done),
            (1, true),
            "{name}: the cursor still reads the point before the commit"
        );
        db.close().unwrap();
    }
}

#[test]
fn closing_a_held_cursor_frees_its_reader_and_close_ends_a_cursor_left_open() {
    let store: Arc<dyn PageStore> = Arc::new(depot::MemoryStore::new());
    let db = open(&store, "cursor-close", 1);
    db.exec("CREATE TABLE t(v); INSERT INTO t VALUES (1), (2), (3)").unwrap();
    let none = CallOptions::default();
    let (cursor, _) = db.cursor_open("SELECT v FROM t", Params::None, &none).unwrap();
    db.cursor_next(cursor, 1).unwrap();
    db.cursor_close(cursor).unwrap();
    let before = db.metrics().counters.reader_calls;
    int(submit(&db, query("SELECT count(*) FROM t"), &none).recv().unwrap());
    assert_eq!(db.metrics().counters.reader_calls, before + 1, "the reader serves reads again");
    assert_eq!(common::code(db.cursor_next(cursor, 1)), "ERR_CLOSED");

    let (left_open, _) = db.cursor_open("SELECT v FROM t", Params::None, &none).unwrap();
    db.cursor_next(left_open, 1).unwrap();
    db.close_within(Duration::from_secs(5)).expect("close ends a reader holding a cursor");
    assert_eq!(db.metrics().counters.readers, 0);
    assert_eq!(common::code(db.cursor_next(left_open, 1)), "ERR_CLOSED");
}

#[test]
fn a_snapshot_held_past_its_bound_fails_err_timeout_and_frees_the_reader() {
    let store: Arc<dyn PageStore> = Arc::new(depot::MemoryStore::new());
    let bound = Duration::from_millis(300);
    let opts = OpenOptions {
        readers: 1,
        idle: None,
        snapshot_max_age: bound,
        reads_on_idle_writer: false,
        ..Default::default()
    };
    let db = Database::open(store, "aged", opts).unwrap();
    db.exec("CREATE TABLE t(v); INSERT INTO t VALUES (1), (2), (3)").unwrap();
    let none = CallOptions::default();

    let (cursor, _) = db.cursor_open("SELECT v FROM t", Params::None, &none).unwrap();
    db.cursor_next(cursor, 1).unwrap();
    std::thread::sleep(bound * 2);
    let late = db.cursor_next(cursor, 1).unwrap_err();
    assert_eq!(late.code(), "ERR_TIMEOUT", "{late}");
    db.cursor_close(cursor).expect("closing an expired cursor is fine");

    let endless = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT max(i) FROM n";
    let started = Instant::now();
    let long = submit(&db, query(endless), &none).recv_timeout(ANSWER).expect("the bound stopped the read");
    assert_eq!(long.unwrap_err().code(), "ERR_TIMEOUT");
    assert!(started.elapsed() >= bound);

    let before = db.metrics().counters.reader_calls;
    assert_eq!(int(submit(&db, query("SELECT count(*) FROM t"), &none).recv().unwrap()), 3);
    assert_eq!(db.metrics().counters.reader_calls, before + 1, "the reader serves reads again");
    db.close().unwrap();
}
