//! The file store on a full disk: a child process commits under a file size limit (RLIMIT_FSIZE)
//! until a commit fails, then the limit is lifted. The failing commit reports the store as
//! unavailable with the operating system's reason, nothing acknowledged is lost, the database
//! reads throughout, and commits work again once there is space, on the same handle.

mod common;

use std::process::Command;
use std::sync::Arc;

use common::*;
use depot::{FileStore, FileStoreOptions, PageStore};
use depot_client::{Database, OpenOptions};

#[test]
fn a_full_disk_fails_the_commit_loses_nothing_and_writes_resume_when_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_depot-full-disk-child")).arg(dir.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    let acked: Vec<u64> =
        lines.iter().filter_map(|l| l.strip_prefix("ack ")).map(|n| n.parse().unwrap()).collect();
    let failures: Vec<&str> = lines.iter().filter_map(|l| l.strip_prefix("failed ")).collect();
    let counts: Vec<i64> =
        lines.iter().filter_map(|l| l.strip_prefix("count ")).map(|n| n.parse().unwrap()).collect();
    assert_eq!(failures.len(), 2, "{stdout}");
    for f in &failures {
        assert!(f.starts_with("ERR_STORE_UNAVAILABLE "), "{f}");
        assert!(f.contains("File too large"), "the reason is the operating system's: {f}");
    }
    let before_lift = acked.iter().filter(|&&k| k < acked[acked.len() - 5]).count() as i64;
    assert_eq!(counts, [before_lift, acked.len() as i64], "{stdout}");
    // Everything acknowledged is in the store, read by a new process's view of it.
    let store: Arc<dyn PageStore> =
        Arc::new(FileStore::open(dir.path(), FileStoreOptions::default()).unwrap());
    let db = Database::open(store, "full", OpenOptions::default()).unwrap();
    assert_eq!(int(&db, "SELECT count(*) FROM t"), acked.len() as i64);
    for k in &acked {
        assert_eq!(int(&db, &format!("SELECT length(v) FROM t WHERE k = {k}")), 65536, "row {k}");
    }
    assert_integrity(&db);
    db.close().unwrap();
}
