//! Point selects and inserts through the handle on the file store, against rusqlite on a plain local
//! file (WAL, synchronous=FULL), in the same run. `cargo bench -p depot-client --bench handle`.
//!
//! Prints each figure and the ratio ours/theirs (for throughput, higher is better for us).

use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::unbounded;
use depot::{FileStore, FileStoreOptions, PageStore};
use depot_client::{CallOptions, Command, Database, OpenOptions, Params, Value};

const ROWS: i64 = 10_000;

fn ids(n: usize) -> Vec<i64> {
    // A fixed LCG: the same keys for both sides, no dependency.
    let mut x: u64 = 42;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 33) as i64 % ROWS + 1
        })
        .collect()
}

fn rate(n: usize, start: Instant) -> f64 {
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn PageStore> =
        Arc::new(FileStore::open(&dir.path().join("depot"), FileStoreOptions::default()).unwrap());
    let db = Database::open(store, "bench", OpenOptions::default()).unwrap();
    let plain = rusqlite::Connection::open(dir.path().join("plain.db")).unwrap();
    plain.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;").unwrap();
    let setup = format!(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
         WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {ROWS})
         INSERT INTO t SELECT x, printf('value %d %s', x, hex(randomblob(20))) FROM c;
         CREATE TABLE ins(id INTEGER PRIMARY KEY, v TEXT);"
    );
    db.exec(&setup).unwrap();
    plain.execute_batch(&setup).unwrap();

    let mut rows: Vec<(String, f64, f64)> = Vec::new();
    let keys = ids(20_000);

    // Point select, one awaited at a time.
    let start = Instant::now();
    for &k in &keys {
        db.query("SELECT v FROM t WHERE id = ?", Params::Positional(vec![Value::Integer(k)])).unwrap();
    }
    let ours = rate(keys.len(), start);
    let start = Instant::now();
    for &k in &keys {
        let mut s = plain.prepare_cached("SELECT v FROM t WHERE id = ?").unwrap();
        let _: String = s.query_row([k], |r| r.get(0)).unwrap();
    }
    let theirs = rate(keys.len(), start);
    rows.push(("point select, 1 at a time (ops/s)".into(), ours, theirs));

    // Point select, 64 in flight.
    let start = Instant::now();
    let (tx, rx) = unbounded();
    for chunk in keys.chunks(64) {
        for &k in chunk {
            let tx = tx.clone();
            db.call(
                Command::Execute {
                    sql: "SELECT v FROM t WHERE id = ?".into(),
                    params: Params::Positional(vec![Value::Integer(k)]),
                },
                &CallOptions::default(),
                Box::new(move |r, _| tx.send(r.map(|_| ())).unwrap()),
            );
        }
        for _ in chunk {
            rx.recv().unwrap().unwrap();
        }
    }
    let ours = rate(keys.len(), start);
    rows.push(("point select, 64 in flight (ops/s)".into(), ours, theirs));

    // Single-row insert in autocommit (one durable commit each).
    let n = 2_000;
    let start = Instant::now();
    for i in 0..n {
        db.run("INSERT INTO ins(v) VALUES (?)", Params::Positional(vec![Value::Text(format!("row {i}"))]))
            .unwrap();
    }
    let ours = rate(n, start);
    let start = Instant::now();
    for i in 0..n {
        plain.prepare_cached("INSERT INTO ins(v) VALUES (?)").unwrap().execute([format!("row {i}")]).unwrap();
    }
    let theirs = rate(n, start);
    rows.push(("insert, autocommit (ops/s)".into(), ours, theirs));

    // 10,000-row insert in one transaction (rows/s).
    let n = 10_000;
    let start = Instant::now();
    db.exec(&format!("BEGIN; WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) INSERT INTO ins(v) SELECT 'bulk ' || x FROM c; COMMIT;")).unwrap();
    let ours = rate(n, start);
    let start = Instant::now();
    plain.execute_batch(&format!("BEGIN; WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) INSERT INTO ins(v) SELECT 'bulk ' || x FROM c; COMMIT;")).unwrap();
    let theirs = rate(n, start);
    rows.push(("insert, 10,000 rows in 1 transaction (rows/s)".into(), ours, theirs));

    let m = db.metrics();
    println!("depot-client handle (file store) vs rusqlite (local file, WAL, synchronous=FULL)\n");
    println!("| workload | ours | rusqlite | ours/rusqlite |");
    println!("|---|---:|---:|---:|");
    for (name, ours, theirs) in rows {
        println!("| {name} | {ours:.0} | {theirs:.0} | {:.2} |", ours / theirs);
    }
    println!(
        "\nstore round trips: get_pages {}, commits {}, cache hits {}, misses {}",
        m.counters.get_pages_calls, m.counters.commits, m.counters.cache_hits, m.counters.cache_misses
    );
    db.close().unwrap();
}
