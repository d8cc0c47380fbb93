//! The file store's log and base files: what survives a torn write, what is refused as corrupt, and
//! that a compaction (in the foreground or beside live traffic) changes nothing a reader sees.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use depot::{FileStore, FileStoreOptions, PageStore, StoreError};
use support::{commit, page};

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    out.sort();
    out
}

fn fill(store: &FileStore, db: &str, no: u32, at: u64) -> u8 {
    store.get_pages(db, &[no], at).unwrap()[0].as_ref().unwrap().data[0]
}

fn open(dir: &Path, history_txids: u64) -> Result<FileStore, StoreError> {
    FileStore::open(dir, FileStoreOptions { history_txids, ..Default::default() })
}

/// Commits txids 1..=n to `db`, each rewriting page 1 with the txid as its bytes and page 2 once.
fn commits(store: &FileStore, db: &str, from: u64, to: u64) {
    for txid in from..=to {
        let mut pages = vec![page(1, txid as u8)];
        if txid == 1 {
            pages.push(page(2, 200));
        }
        store.commit(&commit(db, 1, txid - 1, txid as u128, pages, 2)).unwrap();
    }
}

/// A store in `dir` with txids 1..=n of `db` written, closed again; its newest log file.
fn written(dir: &Path, n: u64) -> PathBuf {
    let s = open(dir, 0).unwrap();
    s.open("db", Some(1), &[]).unwrap();
    commits(&s, "db", 1, n);
    drop(s);
    files(dir, "log").pop().unwrap()
}

/// The position of the last byte of `bytes` that is not zero.
fn last_nonzero(bytes: &[u8]) -> usize {
    bytes.iter().rposition(|&b| b != 0).unwrap()
}

#[test]
fn a_torn_last_frame_is_dropped_and_the_store_takes_commits_again() {
    let dir = tempfile::tempdir().unwrap();
    let log = written(dir.path(), 4);
    // Tear the last commit: the end of its frame never reached the disk.
    let mut bytes = std::fs::read(&log).unwrap();
    let end = last_nonzero(&bytes);
    bytes[end - 100..=end].fill(0);
    std::fs::write(&log, &bytes).unwrap();

    let s = open(dir.path(), 0).unwrap();
    let o = s.open("db", Some(1), &[1]).unwrap();
    assert_eq!(o.head.txid, 3, "the torn commit was never acknowledged: it is gone whole");
    assert_eq!(fill(&s, "db", 1, 3), 3);
    s.commit(&commit("db", 1, 3, 99, vec![page(1, 44)], 2)).unwrap();
    drop(s);
    let s = open(dir.path(), 0).unwrap();
    assert_eq!(s.open("db", Some(1), &[]).unwrap().head.txid, 4);
    assert_eq!((fill(&s, "db", 1, 4), fill(&s, "db", 2, 4)), (44, 200));
}

#[test]
fn a_damaged_frame_with_frames_after_it_is_refused_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let log = written(dir.path(), 3);
    let mut bytes = std::fs::read(&log).unwrap();
    // A byte inside the page of txid 2 (4,096 bytes of 2s) rots.
    let at = bytes.windows(4096).position(|w| w.iter().all(|&b| b == 2)).unwrap();
    bytes[at + 100] ^= 0xFF;
    std::fs::write(&log, &bytes).unwrap();
    match open(dir.path(), 0) {
        Err(StoreError::Corrupt(why)) => assert!(why.contains("checksum"), "{why}"),
        other => panic!("expected a corrupt store, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn a_compaction_keeps_every_readable_version_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), 5).unwrap();
    for db in ["a", "b"] {
        s.open(db, Some(1), &[]).unwrap();
        commits(&s, db, 1, 20);
    }
    s.save_hints("a", 1, &[2, 1]).unwrap();
    let versions = s.version_count("a");
    assert_eq!(versions, 6 + 1, "page 1 at txids 15..=20, page 2");
    s.checkpoint().unwrap();
    assert_eq!(files(dir.path(), "base").len(), 1);
    assert_eq!(files(dir.path(), "log").len(), 1, "only the new, empty log is left");
    assert_eq!(s.version_count("a"), versions);
    assert_eq!((fill(&s, "a", 1, 20), fill(&s, "a", 2, 20), fill(&s, "b", 1, 20)), (20, 200, 20));
    let older = |s: &FileStore, at| s.read_at("a", &[1], at).unwrap().1[0].as_ref().unwrap().data[0];
    assert_eq!(older(&s, 16), 16, "versions inside the window stay readable at their txid");
    // A retry of a commit applied before the compaction is still recognised.
    let again = s.commit(&commit("a", 1, 19, 20, vec![page(1, 20)], 2)).unwrap();
    assert_eq!((again.txid, again.replayed), (20, true));
    commits(&s, "a", 21, 23);
    drop(s);

    let s = open(dir.path(), 5).unwrap();
    let o = s.open("a", Some(1), &[]).unwrap();
    assert_eq!(o.head.txid, 23);
    let mut hinted: Vec<u32> = o.pages.iter().map(|p| p.no).collect();
    hinted.sort();
    assert_eq!(hinted, [1, 2], "hints survive the compaction");
    assert_eq!((fill(&s, "a", 1, 23), fill(&s, "a", 2, 23)), (23, 200));
    assert_eq!(s.version_count("a"), 6 + 1);
    assert_eq!(older(&s, 19), 19);
    s.open("b", Some(1), &[]).unwrap();
    assert_eq!(fill(&s, "b", 1, 20), 20);
}

#[test]
fn reads_and_commits_go_on_while_compactions_run() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(open(dir.path(), 0).unwrap());
    s.open("db", Some(1), &[]).unwrap();
    commits(&s, "db", 1, 1);
    let compactor = {
        let s = s.clone();
        std::thread::spawn(move || {
            for _ in 0..20 {
                s.checkpoint().unwrap();
            }
        })
    };
    for txid in 2..=300u64 {
        s.commit(&commit("db", 1, txid - 1, txid as u128, vec![page(1, txid as u8)], 2)).unwrap();
        assert_eq!(fill(&s, "db", 1, txid), txid as u8);
        assert_eq!(fill(&s, "db", 2, txid), 200);
    }
    compactor.join().unwrap();
    drop(s);
    let s = open(dir.path(), 0).unwrap();
    assert_eq!(s.open("db", Some(1), &[]).unwrap().head.txid, 300);
    assert_eq!((fill(&s, "db", 1, 300), fill(&s, "db", 2, 300)), (300u64 as u8, 200));
    assert_eq!(s.version_count("db"), 2);
}

#[test]
fn a_compaction_that_stopped_halfway_leaves_the_store_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    written(dir.path(), 5);
    let old_logs: Vec<(PathBuf, Vec<u8>)> =
        files(dir.path(), "log").into_iter().map(|p| (p.clone(), std::fs::read(&p).unwrap())).collect();
    {
        let s = open(dir.path(), 0).unwrap();
        s.open("db", Some(1), &[]).unwrap();
        s.checkpoint().unwrap();
    }
    // The process died after renaming the base, before deleting the logs it replaced, while
    // writing a second base.
    for (path, bytes) in &old_logs {
        std::fs::write(path, bytes).unwrap();
    }
    std::fs::write(dir.path().join("99999999.base.tmp"), b"half a base").unwrap();
    let s = open(dir.path(), 0).unwrap();
    assert!(!dir.path().join("99999999.base.tmp").exists());
    for (path, _) in &old_logs {
        assert!(!path.exists(), "{} was replaced by the base", path.display());
    }
    assert_eq!(s.open("db", Some(1), &[]).unwrap().head.txid, 5);
    assert_eq!(fill(&s, "db", 1, 5), 5);
    s.commit(&commit("db", 1, 5, 6, vec![page(1, 6)], 2)).unwrap();
    assert_eq!(fill(&s, "db", 1, 6), 6);
}
