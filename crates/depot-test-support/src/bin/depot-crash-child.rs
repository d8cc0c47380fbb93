//! Test helper for the crash loop (tests/crash_loop.rs): commits numbered transactions to a file
//! store and prints the number of each one acknowledged, until it is killed.
//! Usage: depot-crash-child DIR FIRST

use std::io::Write;
use std::sync::Arc;

use depot::{FileStore, FileStoreOptions, PageStore};
use depot_client::{Database, OpenOptions};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(&args[1]);
    let first: u64 = args[2].parse().expect("FIRST");
    let store: Arc<dyn PageStore> =
        Arc::new(FileStore::open(&dir, FileStoreOptions::default()).expect("store"));
    let db = Database::open(store, "crash", OpenOptions::default()).expect("open");
    db.exec("CREATE TABLE IF NOT EXISTS t(k INTEGER PRIMARY KEY, v BLOB); CREATE TABLE IF NOT EXISTS meta(id INTEGER PRIMARY KEY, last INTEGER); INSERT OR IGNORE INTO meta VALUES (1, 0);").expect("schema");
    let mut out = std::io::stdout().lock();
    for i in first.. {
        // Sizes vary so that some transactions span many pages.
        let size = (i * 7919) % 3_000;
        db.exec(&format!(
            "BEGIN; INSERT INTO t VALUES ({i}, randomblob({size})); UPDATE meta SET last = {i}; COMMIT;"
        ))
        .expect("commit");
        writeln!(out, "{i}").unwrap();
        out.flush().unwrap();
    }
}
