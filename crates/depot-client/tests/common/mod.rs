//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::sync::Arc;

use depot_client::{
    Error, FileStore, FileStoreOptions, MemoryStore, NativeDatabaseHandle, OpenOptions, PageStore, Params,
    Value,
};

/// A store backend under test; the temp dir (file store) lives as long as this.
pub struct Backend {
    pub name: &'static str,
    pub store: Arc<dyn PageStore>,
    pub dir: Option<tempfile::TempDir>,
}

pub fn backends() -> Vec<Backend> {
    let dir = tempfile::tempdir().unwrap();
    let file = FileStore::open(dir.path(), FileStoreOptions::default()).unwrap();
    vec![
        Backend { name: "memory", store: Arc::new(MemoryStore::new()), dir: None },
        Backend { name: "file", store: Arc::new(file), dir: Some(dir) },
    ]
}

pub fn open(store: &Arc<dyn PageStore>, name: &str) -> NativeDatabaseHandle {
    NativeDatabaseHandle::open(store.clone(), name, OpenOptions { generation: Some(1), ..Default::default() })
        .unwrap()
}

pub fn int(db: &NativeDatabaseHandle, sql: &str) -> i64 {
    match db.query(sql, Params::None).unwrap().1[0][0] {
        Value::Integer(i) => i,
        ref other => panic!("{sql}: expected an integer, got {other:?}"),
    }
}

pub fn assert_integrity(db: &NativeDatabaseHandle) {
    let (_, rows) = db.query("PRAGMA integrity_check", Params::None).unwrap();
    assert_eq!(rows, vec![vec![Value::Text("ok".into())]]);
}

pub fn code(r: Result<impl std::fmt::Debug, Error>) -> &'static str {
    r.expect_err("expected an error").code()
}

pub fn p(values: &[Value]) -> Params {
    Params::Positional(values.to_vec())
}
