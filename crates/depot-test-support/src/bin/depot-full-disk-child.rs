//! Test helper for tests/full_disk.rs: commits to a file store until the disk is "full" (a file size
//! limit, RLIMIT_FSIZE, set just above the store's files), reports the failure, checks the database
//! still reads, lifts the limit, and commits again. Prints one line per event:
//! `ack N`, `failed CODE MESSAGE`, `count N`, `ack N` ...
//! Usage: depot-full-disk-child DIR

use std::sync::Arc;

use depot::{FileStore, FileStoreOptions, PageStore};
use depot_client::{Database, OpenOptions, Params, Value};

fn set_file_size_limit(bytes: libc::rlim_t) {
    let hard = libc::RLIM_INFINITY;
    let limit = libc::rlimit { rlim_cur: bytes, rlim_max: hard };
    // SAFETY: plain libc calls with a valid struct; SIGXFSZ is ignored so that a write past the
    // limit fails with EFBIG instead of killing the process.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0, "setrlimit");
    }
}

fn count(db: &Database) -> i64 {
    match db.query("SELECT count(*) FROM t", Params::None).expect("count").1[0][0] {
        Value::Integer(n) => n,
        ref other => panic!("count: {other:?}"),
    }
}

fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).expect("DIR"));
    let store: Arc<dyn PageStore> =
        Arc::new(FileStore::open(&dir, FileStoreOptions::default()).expect("store"));
    let db = Database::open(store, "full", OpenOptions::default()).expect("open");
    db.exec("CREATE TABLE t(k INTEGER PRIMARY KEY, v BLOB)").expect("schema");
    let insert = |k: u64| db.exec(&format!("INSERT INTO t VALUES ({k}, randomblob(65536))"));
    for k in 1..=5 {
        insert(k).expect("insert before the limit");
        println!("ack {k}");
    }
    // The log may not grow past its current preallocated size (plus a little): the disk is full.
    let biggest = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .max()
        .unwrap();
    set_file_size_limit(biggest + 4096);
    let mut k = 6;
    loop {
        match insert(k) {
            Ok(()) => println!("ack {k}"),
            Err(e) => {
                println!("failed {} {}", e.code(), e.message);
                break;
            }
        }
        k += 1;
        assert!(k < 10_000, "the limit never stopped a commit");
    }
    // A second failing commit, then reads: the handle stays usable.
    if let Err(e) = insert(k) {
        println!("failed {} {}", e.code(), e.message);
    }
    println!("count {}", count(&db));
    set_file_size_limit(libc::RLIM_INFINITY);
    for k in k..k + 5 {
        insert(k).expect("insert after space returned");
        println!("ack {k}");
    }
    println!("count {}", count(&db));
    db.close().expect("close");
}
