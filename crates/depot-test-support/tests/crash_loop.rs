//! The file store under SIGKILL: a child commits numbered transactions and prints each one
//! acknowledged; the parent kills it at random moments, 100 times, and after each kill reopens the
//! store: every acknowledged transaction is there, nothing partial, integrity_check ok.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use depot::{FileStore, FileStoreOptions, PageStore};
use depot_client::{Database, OpenOptions, Params, Value};

#[test]
fn hundred_sigkills_lose_no_acknowledged_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let child = env!("CARGO_BIN_EXE_depot-crash-child");
    let mut acknowledged = 0u64;
    let mut seed = 0x2545_F491u64;
    let mut kills = 0;
    for round in 0..100 {
        let mut proc = Command::new(child)
            .args([dir.path().to_str().unwrap(), &(acknowledged + 1).to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(20 + (seed >> 33) % 130));
        proc.kill().unwrap(); // SIGKILL
        proc.wait().unwrap();
        kills += 1;
        let lines: Vec<u64> = BufReader::new(proc.stdout.take().unwrap())
            .lines()
            .map(|l| l.unwrap().parse().unwrap())
            .collect();
        if let Some(&last) = lines.last() {
            acknowledged = last;
        }
        let store: Arc<dyn PageStore> =
            Arc::new(FileStore::open(dir.path(), FileStoreOptions::default()).unwrap());
        let db = Database::open(store, "crash", OpenOptions::default()).unwrap();
        if acknowledged > 0 {
            let (_, rows) = db
                .query(
                    "SELECT (SELECT last FROM meta), (SELECT max(k) FROM t), (SELECT count(*) FROM t)",
                    Params::None,
                )
                .unwrap();
            let [Value::Integer(last), Value::Integer(max), Value::Integer(count)] = rows[0][..] else {
                panic!("{rows:?}")
            };
            assert!(
                last as u64 >= acknowledged,
                "round {round}: acknowledged {acknowledged}, store has {last}"
            );
            assert_eq!(last, max, "round {round}: a transaction is partial");
            assert_eq!(count, max, "round {round}: every transaction is there once");
            // The child restarts after what the store holds, not after what it printed.
            acknowledged = last as u64;
        }
        assert_integrity(&db);
        db.close().unwrap();
    }
    eprintln!("crash loop: {kills} kills survived, {acknowledged} transactions committed");
    assert!(acknowledged > 100, "the child made progress: {acknowledged}");
}
