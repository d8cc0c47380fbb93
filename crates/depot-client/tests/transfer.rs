//! Export to and import from plain SQLite database files, on the memory and file stores (both
//! keeping an hour of history, so that exports at an older point and undoing an import work).

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use depot::{
    CommitInfo, CommitOutcome, CommitRequest, FileStore, FileStoreOptions, LeaseId, MemoryStore, Opened,
    Page, PageNo, PageStore, StoreError, Txid,
};
use depot_client::{export_database, import_database, Database, Error, OpenOptions, Params, Value};
use rusqlite::Connection;

const HOUR_MS: u64 = 3_600_000;

struct Backend {
    name: &'static str,
    store: Arc<dyn PageStore>,
    _dir: Option<tempfile::TempDir>,
}

fn backends() -> Vec<Backend> {
    let dir = tempfile::tempdir().unwrap();
    let options = FileStoreOptions { history_ms: HOUR_MS, history_txids: 0 };
    let file = FileStore::open(dir.path(), options).unwrap();
    vec![
        Backend { name: "memory", store: Arc::new(MemoryStore::with_history(1_000)), _dir: None },
        Backend { name: "file", store: Arc::new(file), _dir: Some(dir) },
    ]
}

fn open(store: &Arc<dyn PageStore>, name: &str) -> Database {
    Database::open(store.clone(), name, OpenOptions::default()).unwrap()
}

/// The rows of `t` through the depot, as (id, text) pairs.
fn depot_rows(db: &Database) -> Vec<(i64, String)> {
    db.query("SELECT id, v FROM t ORDER BY id", Params::None)
        .unwrap()
        .1
        .into_iter()
        .map(|row| match (&row[0], &row[1]) {
            (Value::Integer(id), Value::Text(v)) => (*id, v.clone()),
            other => panic!("unexpected row {other:?}"),
        })
        .collect()
}

/// The rows of `t` in a plain SQLite file, read by rusqlite on the ordinary file system.
fn file_rows(path: &Path) -> Vec<(i64, String)> {
    let conn = Connection::open(path).unwrap();
    let mut stmt = conn.prepare("SELECT id, v FROM t ORDER BY id").unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().collect::<Result<_, _>>().unwrap()
}

fn integrity(db: &Database) -> Value {
    db.query("PRAGMA integrity_check", Params::None).unwrap().1[0][0].clone()
}

/// Rows large enough that the database spans many export batches (over 256 pages).
fn fill(db: &Database, from: i64, count: i64) {
    db.execute(
        "WITH RECURSIVE n(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1 + ?2 - 1)
         INSERT INTO t(id, v) SELECT i, printf('%d-', i) || hex(zeroblob(600)) FROM n",
        Params::Positional(vec![Value::Integer(from), Value::Integer(count)]),
    )
    .unwrap();
}

fn code(r: Result<impl std::fmt::Debug, Error>) -> &'static str {
    r.expect_err("expected an error").code()
}

#[test]
fn export_then_import_round_trips_a_database_across_many_batches() {
    for b in backends() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(&b.store, "source");
        db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); CREATE INDEX t_v ON t(v)").unwrap();
        fill(&db, 1, 1_000);
        let rows = depot_rows(&db);
        let file = dir.path().join("out.db");
        let exported = export_database(&*b.store, "source", &file, None, false).unwrap();
        assert!(exported.size_pages > 3 * 256, "{}: {} pages", b.name, exported.size_pages);
        assert_eq!(std::fs::metadata(&file).unwrap().len(), exported.size_pages as u64 * 4096);
        assert_eq!(file_rows(&file), rows, "{}: the file holds the rows", b.name);

        let imported = import_database(&*b.store, &file, "copy", false).unwrap();
        assert_eq!(imported.previous, 0, "{}: a new database", b.name);
        // SQLite copies the file (VACUUM INTO), which may pack it tighter; the rows are the same.
        assert!(imported.size_pages > 256 && imported.size_pages <= exported.size_pages, "{}", b.name);
        let copy = open(&b.store, "copy");
        assert_eq!(depot_rows(&copy), rows, "{}: the import holds the rows", b.name);
        assert_eq!(integrity(&copy), Value::Text("ok".into()), "{}", b.name);
        // The imported database is an ordinary one: it takes writes.
        fill(&copy, 5_000, 10);
        assert_eq!(depot_rows(&copy).len(), rows.len() + 10);
        copy.close().unwrap();
        db.close().unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "{}: no temporary file left", b.name);
    }
}

#[test]
fn export_at_an_older_txid_holds_that_content_while_the_writer_goes_on() {
    for b in backends() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(&b.store, "old");
        db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)").unwrap();
        fill(&db, 1, 5);
        let then = db.metrics().counters.head_txid;
        let rows_then = depot_rows(&db);
        db.exec("DELETE FROM t WHERE id > 2").unwrap();
        fill(&db, 100, 400);
        let exported =
            export_database(&*b.store, "old", &dir.path().join("then.db"), Some(then), false).unwrap();
        assert_eq!(exported.txid, then);
        assert_eq!(file_rows(&dir.path().join("then.db")), rows_then, "{}", b.name);
        let now = export_database(&*b.store, "old", &dir.path().join("now.db"), None, false).unwrap();
        assert_eq!(now.txid, db.metrics().counters.head_txid, "{}: the default is the newest commit", b.name);
        assert_eq!(file_rows(&dir.path().join("now.db")), depot_rows(&db), "{}", b.name);
        db.close().unwrap();
    }
}

#[test]
fn export_refuses_an_existing_file_unless_overwrite_and_a_database_without_commits() {
    for b in backends() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(&b.store, "x");
        db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'one')").unwrap();
        let file = dir.path().join("x.db");
        std::fs::write(&file, b"keep me").unwrap();
        assert_eq!(code(export_database(&*b.store, "x", &file, None, false)), "ERR_INVALID_ARGUMENT");
        assert_eq!(std::fs::read(&file).unwrap(), b"keep me", "{}: untouched", b.name);
        export_database(&*b.store, "x", &file, None, true).unwrap();
        assert_eq!(file_rows(&file), [(1, "one".to_string())], "{}", b.name);

        let _empty = open(&b.store, "empty");
        let missing = dir.path().join("empty.db");
        assert_eq!(code(export_database(&*b.store, "empty", &missing, None, false)), "ERR_INVALID_ARGUMENT");
        assert_eq!(code(export_database(&*b.store, "nobody", &missing, None, false)), "ERR_INVALID_ARGUMENT");
        assert!(!missing.exists(), "{}: a failed export leaves no file", b.name);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "{}: nor a temporary one", b.name);
        db.close().unwrap();
    }
}

#[test]
fn import_refuses_an_existing_database_unless_replace_which_fences_its_writer_and_can_be_undone() {
    for b in backends() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("in.db");
        let conn = Connection::open(&file).unwrap();
        conn.execute_batch(
            "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (7, 'seven')",
        )
        .unwrap();
        drop(conn);

        let db = open(&b.store, "live");
        db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'one')").unwrap();
        assert_eq!(code(import_database(&*b.store, &file, "live", false)), "ERR_INVALID_ARGUMENT");
        // The refusal claimed nothing: the writer goes on.
        db.exec("INSERT INTO t VALUES (2, 'two')").unwrap();
        let before = db.metrics().counters.head_txid;

        let imported = import_database(&*b.store, &file, "live", true).unwrap();
        assert_eq!(imported.previous, before, "{}", b.name);
        assert_eq!(code(db.exec("INSERT INTO t VALUES (3, 'three')")), "ERR_FENCED", "{}", b.name);
        db.close().unwrap();
        let db = open(&b.store, "live");
        assert_eq!(depot_rows(&db), [(7, "seven".to_string())], "{}: replaced", b.name);
        db.close().unwrap();

        // The state before the import stays in the history: what a restore to `previous` brings back.
        let before = dir.path().join("before.db");
        export_database(&*b.store, "live", &before, Some(imported.previous), false).unwrap();
        let rows = [(1, "one".to_string()), (2, "two".to_string())];
        assert_eq!(file_rows(&before), rows, "{}", b.name);
    }
}

#[test]
fn import_takes_wal_files_and_other_page_sizes_into_the_depots_layout() {
    for b in backends() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("wal.db");
        let conn = Connection::open(&file).unwrap();
        conn.execute_batch(
            "PRAGMA page_size = 1024; PRAGMA journal_mode = WAL;
             CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
             INSERT INTO t SELECT i, 'row ' || i FROM n;",
        )
        .unwrap();
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        let rows = file_rows(&file);
        // The connection stays open: the last rows are still only in the -wal file.
        import_database(&*b.store, &file, "converted", false).unwrap();
        drop(conn);
        let db = open(&b.store, "converted");
        assert_eq!(depot_rows(&db), rows, "{}", b.name);
        assert_eq!(rows.len(), 300);
        let size: i64 = match db.query("PRAGMA page_size", Params::None).unwrap().1[0][0] {
            Value::Integer(n) => n,
            ref other => panic!("{other:?}"),
        };
        assert_eq!(size, 4096, "{}", b.name);
        assert_eq!(integrity(&db), Value::Text("ok".into()));
        db.close().unwrap();
    }
}

#[test]
fn import_refuses_what_is_not_a_sqlite_database_and_leaves_the_depot_untouched() {
    for b in backends() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.db");
        std::fs::write(&junk, vec![b'x'; 8192]).unwrap();
        let error = import_database(&*b.store, &junk, "j", false).unwrap_err();
        assert_eq!(error.code(), "ERR_INVALID_ARGUMENT", "{}: {error}", b.name);
        assert!(error.message.contains("not a SQLite database"), "{}: {error}", b.name);
        let missing = dir.path().join("missing.db");
        assert_eq!(code(import_database(&*b.store, &missing, "j", false)), "ERR_INVALID_ARGUMENT");
        assert!(!missing.exists(), "{}: the import created no file", b.name);
        assert!(b.store.history("j", 1, None).is_err(), "{}: no database was created", b.name);
        assert_eq!(code(import_database(&*b.store, &junk, "bad/name", false)), "ERR_INVALID_ARGUMENT");
    }
}

/// A memory store without history that runs `during` when an export asks for its first batch of
/// pages, so that a writer commits in the middle of the export.
#[derive(Default)]
struct Interleaved {
    inner: MemoryStore,
    reads: AtomicUsize,
    during: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl PageStore for Interleaved {
    fn open(
        &self,
        database: &str,
        generation: Option<u64>,
        preload: &[PageNo],
    ) -> Result<Opened, StoreError> {
        self.inner.open(database, generation, preload)
    }
    fn get_pages(&self, database: &str, pages: &[PageNo], at: Txid) -> Result<Vec<Option<Page>>, StoreError> {
        self.inner.get_pages(database, pages, at)
    }
    fn commit(&self, request: &CommitRequest) -> Result<CommitOutcome, StoreError> {
        self.inner.commit(request)
    }
    fn describe(&self) -> String {
        "interleaved".into()
    }
    fn databases(&self) -> Result<Vec<String>, StoreError> {
        self.inner.databases()
    }
    fn history(
        &self,
        database: &str,
        limit: usize,
        before: Option<Txid>,
    ) -> Result<Vec<CommitInfo>, StoreError> {
        self.inner.history(database, limit, before)
    }
    fn read_at(
        &self,
        database: &str,
        pages: &[PageNo],
        at: Txid,
    ) -> Result<(u32, Vec<Option<Page>>), StoreError> {
        // Call 0 asks for the size only; call 1 is the first batch.
        if self.reads.fetch_add(1, Ordering::SeqCst) == 1 {
            let during = self.during.lock().unwrap().take();
            if let Some(during) = during {
                during();
            }
        }
        self.inner.read_at(database, pages, at)
    }
    fn lease(&self, database: &str, at: Txid) -> Result<LeaseId, StoreError> {
        self.inner.lease(database, at)
    }
    fn release(&self, database: &str, lease: LeaseId) {
        self.inner.release(database, lease)
    }
}

#[test]
fn export_holds_its_point_while_a_writer_commits_without_a_history_window() {
    let interleaved = Arc::new(Interleaved::default());
    let store: Arc<dyn PageStore> = interleaved.clone();
    let db = Arc::new(open(&store, "busy"));
    db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)").unwrap();
    fill(&db, 1, 1_000);
    let rows = depot_rows(&db);
    let writer = db.clone();
    *interleaved.during.lock().unwrap() = Some(Box::new(move || {
        writer.exec("UPDATE t SET v = 'changed'; DELETE FROM t WHERE id > 10").unwrap();
    }));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("busy.db");
    let exported = export_database(&*store, "busy", &file, None, false).unwrap();
    assert!(interleaved.during.lock().unwrap().is_none(), "the writer committed during the export");
    assert!(db.metrics().counters.head_txid > exported.txid);
    assert_eq!(file_rows(&file), rows, "the file holds the point the export started at");
    assert_eq!(depot_rows(&db).len(), 10);
    db.close().unwrap();
}
