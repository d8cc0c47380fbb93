//! A depot written by an older build opens with this one: the file store migrates the SQLite-based
//! layout's schema in place, imports it into its log-structured files, and every page reads back as
//! it was committed.

mod support;

use depot::{page_checksum, FileStore, FileStoreOptions, PageStore, PAGE_SIZE};
use rusqlite::{params, Connection};
use support::{commit, page};

/// The file store's schema at version 4 (pages keyed by `(db, page, txid)`), as that build left it.
const SCHEMA_V4: &str = "
    CREATE TABLE databases(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, generation INTEGER NOT NULL,
        head_txid INTEGER NOT NULL, size_pages INTEGER NOT NULL, page_size INTEGER NOT NULL);
    CREATE TABLE pages(db INTEGER NOT NULL, page INTEGER NOT NULL, txid INTEGER NOT NULL,
        checksum INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY(db, page, txid));
    CREATE TABLE commits(db INTEGER NOT NULL, commit_id BLOB NOT NULL, txid INTEGER NOT NULL,
        page_count INTEGER NOT NULL, committed_at_ms INTEGER NOT NULL, PRIMARY KEY(db, commit_id)) WITHOUT ROWID;
    CREATE TABLE shrinks(db INTEGER NOT NULL, txid INTEGER NOT NULL, size_pages INTEGER NOT NULL,
        PRIMARY KEY(db, txid)) WITHOUT ROWID;
    CREATE TABLE hints(db INTEGER PRIMARY KEY, pages BLOB NOT NULL);
    PRAGMA user_version = 4;";

/// Writes a version-4 depot: database `old` (3 pages, page 2 rewritten at txids 2 and 3) and
/// database `other` (1 page), as rows of the old `pages` table.
fn write_v4(dir: &std::path::Path) {
    let c = Connection::open(dir.join("depot.sqlite3")).unwrap();
    c.execute_batch("PRAGMA page_size = 8192; PRAGMA journal_mode = WAL;").unwrap();
    c.execute_batch(SCHEMA_V4).unwrap();
    c.execute("INSERT INTO databases VALUES (1, 'old', 1, 3, 3, ?1)", [PAGE_SIZE as i64]).unwrap();
    c.execute("INSERT INTO databases VALUES (2, 'other', 1, 1, 1, ?1)", [PAGE_SIZE as i64]).unwrap();
    let mut put = c.prepare("INSERT INTO pages VALUES (?1, ?2, ?3, ?4, ?5)").unwrap();
    for (db, no, txid, fill) in
        [(1, 1, 1, 11u8), (1, 2, 1, 21), (1, 3, 1, 31), (1, 2, 2, 22), (1, 2, 3, 23), (2, 1, 1, 99)]
    {
        let data = vec![fill; PAGE_SIZE];
        put.execute(params![db, no, txid, page_checksum(no, &data), data]).unwrap();
    }
}

fn fills(store: &FileStore, db: &str, pages: &[u32], at: u64) -> Vec<u8> {
    store.get_pages(db, pages, at).unwrap().iter().map(|p| p.as_ref().unwrap().data[0]).collect()
}

#[test]
fn a_version_4_depot_migrates_and_reads_back_the_newest_versions() {
    let dir = tempfile::tempdir().unwrap();
    write_v4(dir.path());
    let store =
        FileStore::open(dir.path(), FileStoreOptions { history_txids: 10, ..Default::default() }).unwrap();
    let opened = store.open("old", Some(1), &[2]).unwrap();
    assert_eq!((opened.head.txid, opened.head.size_pages), (3, 3));
    assert_eq!(opened.pages[0].data[0], 23, "the newest version of page 2");
    assert_eq!(fills(&store, "old", &[1, 2, 3], 3), [11, 23, 31]);
    assert_eq!(store.version_count("old"), 3 + 2, "3 newest versions, 2 superseded ones kept for the window");
    store.open("other", Some(1), &[]).unwrap();
    assert_eq!(fills(&store, "other", &[1], 1), [99]);
    assert!(!dir.path().join("depot.sqlite3").exists(), "the imported SQLite file is removed");
    // The migrated store takes commits like a new one.
    store.commit(&commit("old", 1, 3, 77, vec![page(3, 32)], 3)).unwrap();
    assert_eq!(fills(&store, "old", &[1, 2, 3], 4), [11, 23, 32]);
    drop(store);
    // Opened without a window, the superseded versions are dropped; the newest stay.
    let store = FileStore::open(dir.path(), FileStoreOptions::default()).unwrap();
    store.open("old", Some(1), &[]).unwrap();
    assert_eq!(fills(&store, "old", &[1, 2, 3], 4), [11, 23, 32]);
    assert_eq!(store.version_count("old"), 3);
}
