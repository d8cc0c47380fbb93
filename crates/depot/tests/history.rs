//! History at the store level, on every store (memory, file, PostgreSQL): the commit log, the
//! commit at a time, reads at a past point without an open, restore (a new commit, undoable,
//! fencing the writer) and fork (isolated both ways, sharing versions), also through the deadline
//! wrapper. The file store keeps all of it across a restart and a compaction.

mod support;

use std::sync::Arc;
use std::time::Duration;

use depot::{
    random_commit_id, DeadlineStore, FileStore, FileStoreOptions, MemoryStore, PageStore, Retention,
    StoreError,
};
use support::{commit, page};

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// The stores that keep history, with `retention`.
fn stores(retention: Retention) -> Vec<(&'static str, Arc<dyn PageStore>, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let options = FileStoreOptions { history_txids: retention.txids, history_ms: retention.ms };
    let file = FileStore::open(dir.path(), options).unwrap();
    let memory = || Arc::new(MemoryStore::with_retention(retention));
    let bounded = DeadlineStore::new(memory(), Duration::from_secs(30));
    #[allow(unused_mut)]
    let mut all: Vec<(&'static str, Arc<dyn PageStore>, tempfile::TempDir)> = vec![
        ("memory", memory(), tempfile::tempdir().unwrap()),
        ("file", Arc::new(file), dir),
        ("memory behind a deadline", Arc::new(bounded), tempfile::tempdir().unwrap()),
    ];
    #[cfg(feature = "postgres")]
    all.push(("postgres", Arc::new(pg_store(retention)), tempfile::tempdir().unwrap()));
    all
}

#[cfg(feature = "postgres")]
fn pg_store(retention: Retention) -> depot::PostgresStore {
    use support::pg;
    let options = depot::PostgresStoreOptions { retention, ..pg::options(&pg::fresh_schema()) };
    depot::PostgresStore::open(&pg::url(), options).unwrap()
}

const HOUR: Retention = Retention { ms: 3_600_000, txids: 0 };

/// Commits txids 1..=n: page 1 holds the txid, page 2 is written once; commit 3 grows the
/// database to 3 pages and commit 4 shrinks it back to 2.
fn write(s: &dyn PageStore, db: &str, n: u64) -> Vec<u64> {
    s.open(db, Some(1), &[]).unwrap();
    let mut times = Vec::new();
    for txid in 1..=n {
        let mut pages = vec![page(1, txid as u8)];
        if txid == 1 {
            pages.push(page(2, 200));
        }
        if txid == 3 {
            pages.push(page(3, 33));
        }
        let size = if txid == 3 { 3 } else { 2 };
        s.commit(&commit(db, 1, txid - 1, txid as u128, pages, size)).unwrap();
        times.push(now_ms());
        std::thread::sleep(std::time::Duration::from_millis(3));
    }
    times
}

/// Page 1's byte and the size of `db` at `at`.
fn state_at(s: &dyn PageStore, db: &str, at: u64) -> (u8, u32) {
    let (size, pages) = s.read_at(db, &[1], at).unwrap();
    (pages[0].as_ref().unwrap().data[0], size)
}

#[test]
fn history_lists_commits_newest_first_and_finds_the_commit_at_any_time() {
    for (name, s, _dir) in stores(HOUR) {
        let times = write(&*s, "h", 5);
        let h = s.history("h", 10, None).unwrap();
        assert_eq!(h.iter().map(|c| c.txid).collect::<Vec<_>>(), [5, 4, 3, 2, 1], "{name}");
        assert_eq!((h[2].pages, h[2].size_pages, h[4].pages), (2, 3, 2), "{name}");
        assert_eq!(h[0].bytes(), 4096, "{name}");
        let older: Vec<u64> = s.history("h", 2, Some(4)).unwrap().iter().map(|c| c.txid).collect();
        assert_eq!(older, [3, 2], "{name}: a page of history before a point");
        for (i, &t) in times.iter().enumerate() {
            assert_eq!(s.txid_at_time("h", t).unwrap(), i as u64 + 1, "{name}: exact to the commit");
        }
        assert!(
            matches!(s.txid_at_time("h", times[0] - 60_000), Err(StoreError::HistoryUnavailable(_))),
            "{name}"
        );
    }
}

#[test]
fn reads_at_a_past_point_need_no_open_and_stop_at_the_window() {
    for (name, s, _dir) in stores(Retention { ms: 0, txids: 3 }) {
        write(&*s, "r", 10);
        assert_eq!(state_at(&*s, "r", 7), (7, 2), "{name}");
        assert_eq!(state_at(&*s, "r", 10), (10, 2), "{name}");
        assert!(
            matches!(s.read_at("r", &[1], 6), Err(StoreError::HistoryUnavailable(_))),
            "{name}: outside the window"
        );
        assert!(
            matches!(s.read_at("r", &[1], 11), Err(StoreError::InvalidArgument(_))),
            "{name}: past the head"
        );
    }
}

#[test]
fn a_restore_is_a_new_commit_that_fences_the_writer_and_can_be_undone() {
    for (name, s, _dir) in stores(HOUR) {
        write(&*s, "u", 5);
        let r = s.restore("u", 3, None, random_commit_id()).unwrap();
        assert_eq!((r.txid, r.previous, r.generation), (6, 5, 2), "{name}");
        assert_eq!(state_at(&*s, "u", 6), (3, 3), "{name}: the content and size of txid 3");
        assert_eq!(s.read_at("u", &[3], 6).unwrap().1[0].as_ref().unwrap().data[0], 33, "{name}");
        let fenced = s.commit(&commit("u", 1, 6, 100, vec![page(1, 1)], 2));
        assert!(matches!(fenced, Err(StoreError::Fenced { .. })), "{name}: the old writer is fenced");
        // Undo: back to the state just before the restore.
        let undo = s.restore("u", r.previous, None, random_commit_id()).unwrap();
        assert_eq!((undo.txid, undo.previous), (7, 6), "{name}");
        assert_eq!(state_at(&*s, "u", 7), (5, 2), "{name}");
        // Twice to the same point: the same content.
        s.restore("u", 3, None, random_commit_id()).unwrap();
        s.restore("u", 3, None, random_commit_id()).unwrap();
        assert_eq!(state_at(&*s, "u", 9), (3, 3), "{name}");
        assert_eq!(s.history("u", 100, None).unwrap().len(), 9, "{name}: history is kept");
        // The restored database takes commits from its new writer.
        let o = s.open("u", None, &[]).unwrap();
        s.commit(&commit("u", o.head.generation, 9, 101, vec![page(1, 99)], 3)).unwrap();
        assert_eq!(state_at(&*s, "u", 10), (99, 3), "{name}");
    }
}

#[test]
fn a_fork_starts_from_its_point_and_is_isolated_both_ways() {
    for (name, s, _dir) in stores(HOUR) {
        write(&*s, "src", 5);
        let head = s.fork("src", "copy", Some(3), random_commit_id()).unwrap();
        assert_eq!((head.txid, head.size_pages), (1, 3), "{name}");
        assert_eq!(state_at(&*s, "copy", 1), (3, 3), "{name}");
        assert!(
            matches!(s.fork("src", "copy", None, random_commit_id()), Err(StoreError::InvalidArgument(_))),
            "{name}: exists"
        );
        // Writes on either side stay there.
        let o = s.open("copy", None, &[]).unwrap();
        s.commit(&commit("copy", o.head.generation, 1, 500, vec![page(1, 77)], 3)).unwrap();
        s.commit(&commit("src", 1, 5, 501, vec![page(1, 66)], 2)).unwrap();
        assert_eq!(state_at(&*s, "copy", 2), (77, 3), "{name}");
        assert_eq!(state_at(&*s, "src", 6), (66, 2), "{name}");
        // Restoring the source leaves the fork alone.
        s.restore("src", 1, None, random_commit_id()).unwrap();
        assert_eq!(state_at(&*s, "copy", 2), (77, 3), "{name}");
        let now = s.fork("src", "now", None, random_commit_id()).unwrap();
        assert_eq!(state_at(&*s, "now", now.txid), (1, 2), "{name}: a fork of the head");
    }
}

#[test]
fn a_restore_or_fork_retried_with_its_id_is_made_once() {
    for (name, s, _dir) in stores(HOUR) {
        write(&*s, "i", 4);
        let id = random_commit_id();
        let first = s.restore("i", 2, None, id).unwrap();
        let again = s.restore("i", 2, None, id).unwrap();
        assert_eq!((again.txid, again.previous), (first.txid, first.previous), "{name}");
        assert_eq!(s.history("i", 10, None).unwrap().len(), 5, "{name}: one restore commit");
        let id = random_commit_id();
        let made = s.fork("i", "i2", Some(3), id).unwrap();
        assert_eq!(s.fork("i", "i2", Some(3), id).unwrap(), made, "{name}: the same fork");
        let other = s.fork("i", "i2", Some(3), random_commit_id());
        assert!(matches!(other, Err(StoreError::InvalidArgument(_))), "{name}: another id finds it exists");
    }
}

#[test]
fn without_history_only_the_head_is_reachable() {
    for (name, s, _dir) in stores(Retention::default()) {
        write(&*s, "n", 4);
        assert_eq!(
            s.history("n", 10, None).unwrap().iter().map(|c| c.txid).collect::<Vec<_>>(),
            [4],
            "{name}"
        );
        assert!(
            matches!(s.restore("n", 2, None, random_commit_id()), Err(StoreError::HistoryUnavailable(_))),
            "{name}"
        );
        assert!(
            matches!(s.fork("n", "f", Some(3), random_commit_id()), Err(StoreError::HistoryUnavailable(_))),
            "{name}"
        );
        assert_eq!(state_at(&*s, "n", 4), (4, 2), "{name}");
    }
}

#[test]
fn a_leased_point_stays_readable_past_the_window_until_released() {
    for retention in [Retention { ms: 0, txids: 2 }, Retention::default()] {
        for (name, s, _dir) in stores(retention) {
            write(&*s, "l", 3);
            let lease = s.lease("l", 3).unwrap();
            for txid in 4..=10u64 {
                s.commit(&commit("l", 1, txid - 1, 1000 + txid as u128, vec![page(1, txid as u8)], 2))
                    .unwrap();
            }
            assert_eq!(state_at(&*s, "l", 3), (3, 3), "{name} {retention:?}: the leased point");
            assert_eq!(s.read_at("l", &[2], 3).unwrap().1[0].as_ref().unwrap().data[0], 200, "{name}");
            assert!(
                matches!(s.lease("l", 1), Err(StoreError::HistoryUnavailable(_))),
                "{name} {retention:?}: only a readable point can be leased"
            );
            s.release("l", lease);
            s.commit(&commit("l", 1, 10, 2000, vec![page(1, 11)], 2)).unwrap();
            assert!(
                matches!(s.read_at("l", &[1], 3), Err(StoreError::HistoryUnavailable(_))),
                "{name} {retention:?}: released"
            );
        }
    }
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_expiry_keeps_what_a_lease_reads() {
    let s = pg_store(Retention { ms: 0, txids: 1 });
    write(&s, "e", 4);
    let lease = s.lease("e", 4).unwrap();
    for txid in 5..=9u64 {
        s.commit(&commit("e", 1, txid - 1, 100 + txid as u128, vec![page(1, txid as u8)], 2)).unwrap();
    }
    s.expire_history().unwrap();
    assert_eq!(state_at(&s, "e", 4), (4, 2));
    // Page 1 at txids 4 (leased), 8 and 9 (the window), page 2, and page 3 of txid 3: past the end
    // from txid 4 on, but a pin keeps a page's version without looking at the size (conservative).
    assert_eq!(s.version_count("e").unwrap(), 5);
    s.release("e", lease);
    s.expire_history().unwrap();
    assert_eq!(s.version_count("e").unwrap(), 3);
}

/// A store reopened with a longer window than it pruned with must not offer the points whose
/// versions are gone (a restore there would silently keep the pages it cannot find).
#[test]
fn a_longer_window_after_a_restart_does_not_bring_back_pruned_points() {
    let dir = tempfile::tempdir().unwrap();
    let s = FileStore::open(dir.path(), FileStoreOptions::default()).unwrap();
    write(&s, "p", 6);
    s.checkpoint().unwrap();
    drop(s);
    let s =
        FileStore::open(dir.path(), FileStoreOptions { history_ms: HOUR.ms, ..Default::default() }).unwrap();
    check_pruned_points(&s, "file");
    #[cfg(feature = "postgres")]
    {
        let schema = support::pg::fresh_schema();
        let open = |retention| {
            let options = depot::PostgresStoreOptions { retention, ..support::pg::options(&schema) };
            depot::PostgresStore::open(&support::pg::url(), options).unwrap()
        };
        write(&open(Retention::default()), "p", 6);
        check_pruned_points(&open(HOUR), "postgres");
    }
}

fn check_pruned_points(s: &dyn PageStore, name: &str) {
    let listed: Vec<u64> = s.history("p", 10, None).unwrap().iter().map(|c| c.txid).collect();
    assert_eq!(listed, [6], "{name}");
    for at in [2, 3, 5] {
        let unavailable = |r: Result<(), StoreError>| matches!(r, Err(StoreError::HistoryUnavailable(_)));
        assert!(unavailable(s.read_at("p", &[1], at).map(drop)), "{name}: read at {at}");
        assert!(unavailable(s.restore("p", at, None, random_commit_id()).map(drop)), "{name}: restore {at}");
        assert!(unavailable(s.fork("p", "pf", Some(at), random_commit_id()).map(drop)), "{name}: fork {at}");
    }
    assert_eq!(state_at(s, "p", 6), (6, 2), "{name}");
}

/// A restore or fork written to the log is replayed whatever window the store is reopened with,
/// and even when its point was reachable only through a reader's lease.
#[test]
fn the_file_store_reopens_with_a_shorter_window_after_a_restore_and_a_fork_to_a_leased_point() {
    let dir = tempfile::tempdir().unwrap();
    let s = FileStore::open(dir.path(), FileStoreOptions { history_txids: 2, ..Default::default() }).unwrap();
    write(&s, "w", 3);
    let lease = s.lease("w", 2).unwrap();
    write_more(&s, "w", 3, 8);
    // Reachable only through the lease (the window is 2 txids).
    s.restore("w", 2, None, random_commit_id()).unwrap();
    s.fork("w", "wf", Some(2), random_commit_id()).unwrap();
    s.release("w", lease);
    drop(s);
    for history_txids in [0, 2, 100] {
        let s =
            FileStore::open(dir.path(), FileStoreOptions { history_txids, ..Default::default() }).unwrap();
        assert_eq!(state_at(&s, "w", 9), (2, 2), "window {history_txids}: the restore");
        assert_eq!(state_at(&s, "wf", 1), (2, 2), "window {history_txids}: the fork");
    }
}

/// Commits txids `from + 1 ..= to` of `db` (generation 1): page 1 holds the txid.
fn write_more(s: &dyn PageStore, db: &str, from: u64, to: u64) {
    for txid in from + 1..=to {
        s.commit(&commit(db, 1, txid - 1, 10_000 + txid as u128, vec![page(1, txid as u8)], 2)).unwrap();
    }
}

#[test]
fn the_file_store_keeps_restores_and_forks_across_a_restart_and_a_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        FileStore::open(dir.path(), FileStoreOptions { history_ms: HOUR.ms, ..Default::default() }).unwrap()
    };
    let s = open();
    write(&s, "d", 5);
    // 100 more pages, so that sharing them shows on disk.
    s.commit(&commit("d", 1, 5, 6, (10..110).map(|n| page(n, n as u8)).collect(), 110)).unwrap();
    s.restore("d", 3, None, random_commit_id()).unwrap();
    s.fork("d", "f", Some(6), random_commit_id()).unwrap();
    s.checkpoint().unwrap();
    let shared = s.disk_bytes();
    drop(s);
    let s = open();
    assert_eq!(state_at(&s, "d", 7), (3, 3));
    assert_eq!(state_at(&s, "d", 6), (5, 110), "history survives (txid 6 wrote pages 10 to 109)");
    assert_eq!(state_at(&s, "f", 1), (5, 110));
    assert_eq!(s.read_at("f", &[50], 1).unwrap().1[0].as_ref().unwrap().data[0], 50);
    assert_eq!(s.history("d", 100, None).unwrap().len(), 7);
    // The fork shares its 110 pages with the source: the base holds them once.
    assert!(shared < 150 * 4096, "{shared} bytes on disk for ~115 distinct pages");
    let o = s.open("f", None, &[]).unwrap();
    assert_eq!(o.head.txid, 1);
}

/// PostgreSQL's forks copy no page: the fork reads through its source, which pins the versions the
/// fork sees, so the source's later commits and expiry leave the fork's content alone; a fork of a
/// fork reads through both.
#[cfg(feature = "postgres")]
#[test]
fn postgres_forks_copy_no_page_and_survive_the_sources_expiry() {
    let retention = Retention { ms: 0, txids: 2 };
    let s = pg_store(retention);
    s.open("big", Some(1), &[]).unwrap();
    s.commit(&commit("big", 1, 0, 1, (1..=300).map(|n| page(n, n as u8)).collect(), 300)).unwrap();
    let versions = s.version_count("big").unwrap();
    s.fork("big", "twin", None, random_commit_id()).unwrap();
    assert_eq!(s.version_count("twin").unwrap(), 0, "no page copied");
    assert_eq!(s.version_count("big").unwrap(), versions);
    // The source rewrites every page 4 times and expires: the versions the fork sees stay.
    for round in 0..4u64 {
        let pages = (1..=300).map(|n| page(n, 100 + round as u8)).collect();
        s.commit(&commit("big", 1, 1 + round, 10 + round as u128, pages, 300)).unwrap();
    }
    s.expire_history().unwrap();
    assert_eq!(s.read_at("twin", &[7, 300], 1).unwrap().1[1].as_ref().unwrap().data[0], 44);
    assert_eq!(s.read_at("twin", &[7], 1).unwrap().1[0].as_ref().unwrap().data[0], 7);
    // Txid 2's versions went (superseded at the horizon, txid 3); txid 1's are pinned.
    assert_eq!(s.version_count("big").unwrap(), 4 * 300, "txid 1 (pinned), 3 to 5 (the window)");
    // A fork of the fork, then the fork writes: the grandchild still sees the fork's point.
    s.fork("twin", "grandchild", None, random_commit_id()).unwrap();
    let o = s.open("twin", None, &[]).unwrap();
    s.commit(&commit("twin", o.head.generation, 1, 20, vec![page(7, 1)], 300)).unwrap();
    assert_eq!(s.read_at("grandchild", &[7, 8], 1).unwrap().1[0].as_ref().unwrap().data[0], 7);
    assert_eq!(s.read_at("twin", &[7], 2).unwrap().1[0].as_ref().unwrap().data[0], 1);
    assert_eq!(s.read_at("big", &[7], 5).unwrap().1[0].as_ref().unwrap().data[0], 103);
}

/// With a retention by time, PostgreSQL keeps the versions of the window and the background expiry
/// removes the rest in steps: writing the same pages over and over, the stored versions level off.
#[cfg(feature = "postgres")]
#[test]
fn postgres_history_storage_levels_off_under_rewrites() {
    use support::pg;
    let options = depot::PostgresStoreOptions {
        retention: Retention { ms: 300, txids: 0 },
        expire_every: Duration::from_millis(50),
        ..pg::options(&pg::fresh_schema())
    };
    let s = depot::PostgresStore::open(&pg::url(), options).unwrap();
    s.open("w", Some(1), &[]).unwrap();
    let mut counts = Vec::new();
    for txid in 0..120u64 {
        s.commit(&commit(
            "w",
            1,
            txid,
            txid as u128 + 1,
            (1..=10).map(|n| page(n, txid as u8)).collect(),
            10,
        ))
        .unwrap();
        std::thread::sleep(Duration::from_millis(10));
        if txid % 30 == 29 {
            counts.push(s.version_count("w").unwrap());
        }
    }
    // About 30 commits of 10 pages fall in a 300 ms window (sleeps are at least 10 ms each);
    // without expiry 1,200 versions would be stored.
    assert!(counts.iter().all(|&n| n <= 600), "versions over time: {counts:?}");
    // The points of the window are still readable (one from its middle: the window slides while
    // the test reads), the ones before it are not.
    let h = s.history("w", 1000, None).unwrap();
    assert!(h.len() >= 10 && h.len() < 120, "{} commits listed", h.len());
    let middle = h[h.len() / 2].txid;
    assert_eq!(s.read_at("w", &[3], middle).unwrap().1[0].as_ref().unwrap().data[0], (middle - 1) as u8);
    assert!(matches!(s.read_at("w", &[3], 1), Err(StoreError::HistoryUnavailable(_))));
}

/// Two stores on one PostgreSQL schema (two processes): one restores while the other holds the
/// writer; the writer is fenced and the content is the bookmark's for every later reader.
#[cfg(feature = "postgres")]
#[test]
fn postgres_restore_from_another_process_fences_the_writer() {
    use support::pg;
    let schema = pg::fresh_schema();
    let open = || {
        let options = depot::PostgresStoreOptions { retention: HOUR, ..pg::options(&schema) };
        depot::PostgresStore::open(&pg::url(), options).unwrap()
    };
    let (a, b) = (open(), open());
    write(&a, "shared", 5);
    let r = b.restore("shared", 2, None, random_commit_id()).unwrap();
    assert_eq!((r.txid, r.previous), (6, 5));
    let fenced = a.commit(&commit("shared", 1, 6, 77, vec![page(1, 9)], 2));
    assert!(matches!(fenced, Err(StoreError::Fenced { .. })), "{fenced:?}");
    assert_eq!(state_at(&a, "shared", 6), (2, 2));
    assert_eq!(a.open("shared", None, &[]).unwrap().head.txid, 6);
}
