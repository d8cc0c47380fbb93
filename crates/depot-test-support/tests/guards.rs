//! Invariants pinned-durability and no-local-files (ARCHITECTURE.md): user SQL cannot switch off durability or reach local files.

mod common;

use std::sync::Arc;

use common::*;
use depot::{MemoryStore, PageStore};
use depot_client::Params;

#[test]
fn pinned_pragmas_are_refused_with_sqlite_auth() {
    let store: Arc<dyn PageStore> = Arc::new(MemoryStore::new());
    let db = open(&store, "guards");
    for sql in [
        "PRAGMA journal_mode = WAL",
        "PRAGMA journal_mode = DELETE",
        "PRAGMA main.journal_mode = OFF",
        "PRAGMA locking_mode = NORMAL",
        "PRAGMA page_size = 8192",
        "PRAGMA cache_spill = ON",
        "PRAGMA writable_schema = ON",
        "PRAGMA mmap_size = 1000000",
        "PRAGMA synchronous = OFF",
    ] {
        let err = db.exec(sql).expect_err(sql);
        assert_eq!(err.code(), "SQLITE_AUTH", "{sql}: {err}");
        assert!(err.message.contains("refused") || err.message.contains("pinned"), "{sql}: {err}");
    }
    // Reading them is fine, and they still hold the pinned values.
    assert_eq!(
        db.query("PRAGMA journal_mode", Params::None).unwrap().1[0][0],
        depot_client::Value::Text("memory".into())
    );
    db.exec("PRAGMA synchronous = FULL").unwrap();
    db.close().unwrap();
}

#[test]
fn attach_of_a_file_is_refused_but_memory_is_allowed() {
    let store: Arc<dyn PageStore> = Arc::new(MemoryStore::new());
    let db = open(&store, "attach");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.db");
    let err = db.exec(&format!("ATTACH '{}' AS x", path.display())).unwrap_err();
    assert_eq!(err.code(), "SQLITE_AUTH", "{err}");
    assert!(!path.exists(), "no local file was created");
    let err = db.exec("ATTACH 'file:/tmp/evil.db?vfs=unix' AS y").unwrap_err();
    assert_eq!(err.code(), "SQLITE_AUTH");
    db.exec("ATTACH ':memory:' AS m; CREATE TABLE m.t(a); INSERT INTO m.t VALUES (1);").unwrap();
    assert_eq!(int(&db, "SELECT count(*) FROM m.t"), 1);
    db.close().unwrap();
}

#[test]
fn extension_loading_is_off() {
    let store: Arc<dyn PageStore> = Arc::new(MemoryStore::new());
    let db = open(&store, "ext");
    let err = db.exec("SELECT load_extension('/tmp/nothing.so')").unwrap_err();
    // Compiled out (SQLITE_OMIT_LOAD_EXTENSION): the function does not exist.
    assert!(err.message.contains("no such function: load_extension"), "{err}");
    db.close().unwrap();
}

#[test]
fn vacuum_into_a_file_is_refused() {
    let store: Arc<dyn PageStore> = Arc::new(MemoryStore::new());
    let db = open(&store, "vinto");
    db.exec("CREATE TABLE t(a); INSERT INTO t VALUES (1);").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("copy.db");
    let err = db.exec(&format!("VACUUM INTO '{}'", path.display())).unwrap_err();
    assert_eq!(err.code(), "SQLITE_AUTH", "{err}");
    assert!(!path.exists(), "no local file was written");
    db.close().unwrap();
}
