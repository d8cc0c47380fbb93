//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::sync::Arc;

use depot::{FileStore, FileStoreOptions, MemoryStore, PageStore};
use depot_client::{Database, Error, OpenOptions, Params, Value};

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

pub fn open(store: &Arc<dyn PageStore>, name: &str) -> Database {
    Database::open(store.clone(), name, OpenOptions { generation: Some(1), ..Default::default() }).unwrap()
}

pub fn int(db: &Database, sql: &str) -> i64 {
    match db.query(sql, Params::None).unwrap().1[0][0] {
        Value::Integer(i) => i,
        ref other => panic!("{sql}: expected an integer, got {other:?}"),
    }
}

pub fn assert_integrity(db: &Database) {
    let (_, rows) = db.query("PRAGMA integrity_check", Params::None).unwrap();
    assert_eq!(rows, vec![vec![Value::Text("ok".into())]]);
}

pub fn code(r: Result<impl std::fmt::Debug, Error>) -> &'static str {
    r.expect_err("expected an error").code()
}

pub fn p(values: &[Value]) -> Params {
    Params::Positional(values.to_vec())
}

/// Submits `command` without waiting; the answer arrives on the returned channel.
pub fn submit(
    db: &Database,
    command: depot_client::Command,
    options: &depot_client::CallOptions,
) -> crossbeam_channel::Receiver<Result<depot_client::Answer, Error>> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    db.call(
        command,
        options,
        Box::new(move |r, _admission| {
            let _ = tx.send(r);
        }),
    );
    rx
}

/// The result of an `Execute` answer.
pub fn statement(answer: Result<depot_client::Answer, Error>) -> Result<depot_client::ExecuteResult, Error> {
    match answer? {
        depot_client::Answer::Statement(r) => Ok(r),
        other => panic!("expected a statement result, got {other:?}"),
    }
}
