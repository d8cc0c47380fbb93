//! One suite, every backend: the PageStore contract. It runs on memory and file, and on PostgreSQL
//! when the `postgres` feature is on (then `DEPOT_TEST_PG_URL` must point at a server).

mod support;

use depot::{FileStore, FileStoreOptions, MemoryStore, PageStore, StoreError};
use support::{backends, commit, page};

#[test]
fn commit_then_read_at_head() {
    for (name, s, _d) in backends() {
        let o = s.open("db", Some(1), &[1]).unwrap();
        assert_eq!((o.head.txid, o.head.size_pages, o.head.generation), (0, 0, 1), "{name}");
        assert!(o.pages.is_empty());
        let out = s.commit(&commit("db", 1, 0, 7, vec![page(1, 1), page(2, 2)], 2)).unwrap();
        assert_eq!((out.txid, out.replayed), (1, false));
        let got = s.get_pages("db", &[2, 1, 3], 1).unwrap();
        assert_eq!(got[0].as_ref().unwrap().data[0], 2, "{name}");
        assert_eq!(got[1].as_ref().unwrap().data[0], 1);
        assert!(got[2].is_none(), "page past the end is absent");
        let reopened = s.open("db", Some(1), &[1, 2, 3]).unwrap();
        assert_eq!(reopened.head.txid, 1);
        assert_eq!(reopened.pages.len(), 2, "{name}: preload returns existing pages");
    }
}

#[test]
fn the_store_lists_its_databases_by_name() {
    for (name, s, _d) in backends() {
        assert!(s.databases().unwrap().is_empty(), "{name}");
        for db in ["zeta", "alpha", "Beta"] {
            s.open(db, None, &[]).unwrap();
        }
        assert_eq!(s.databases().unwrap(), ["Beta", "alpha", "zeta"], "{name}: sorted by bytes");
    }
}

#[test]
fn retrying_an_applied_commit_returns_its_result() {
    for (name, s, _d) in backends() {
        s.open("db", Some(1), &[]).unwrap();
        let req = commit("db", 1, 0, 42, vec![page(1, 9)], 1);
        assert_eq!(s.commit(&req).unwrap().txid, 1);
        let again = s.commit(&req).unwrap();
        assert_eq!((again.txid, again.replayed), (1, true), "{name}");
        assert_eq!(s.get_pages("db", &[1], 1).unwrap()[0].as_ref().unwrap().data[0], 9);
    }
}

#[test]
fn newer_generation_fences_older_writer() {
    for (name, s, _d) in backends() {
        s.open("db", Some(1), &[]).unwrap();
        s.commit(&commit("db", 1, 0, 1, vec![page(1, 1)], 1)).unwrap();
        let o2 = s.open("db", Some(2), &[1]).unwrap();
        assert_eq!(o2.pages[0].data[0], 1, "{name}: new writer sees committed data");
        let err = s.commit(&commit("db", 1, 1, 2, vec![page(1, 5)], 1)).unwrap_err();
        assert!(matches!(err, StoreError::Fenced { generation: 1, current: 2, .. }), "{name}: {err}");
        assert!(matches!(s.open("db", Some(1), &[]), Err(StoreError::Fenced { .. })), "{name}");
        let next = s.open("db", None, &[]).unwrap();
        assert_eq!(next.head.generation, 3, "{name}: no generation claims the next one");
    }
}

#[test]
fn commit_on_a_moved_head_is_refused() {
    for (name, s, _d) in backends() {
        s.open("db", Some(1), &[]).unwrap();
        s.commit(&commit("db", 1, 0, 1, vec![page(1, 1)], 1)).unwrap();
        let err = s.commit(&commit("db", 1, 0, 2, vec![page(1, 2)], 1)).unwrap_err();
        assert!(matches!(err, StoreError::HeadMoved { expected: 0, actual: 1, .. }), "{name}");
        assert!(matches!(s.get_pages("db", &[1], 0), Err(StoreError::HeadMoved { .. })), "{name}");
    }
}

#[test]
fn bad_pages_are_refused_and_nothing_applies() {
    for (name, s, _d) in backends() {
        s.open("db", Some(1), &[]).unwrap();
        let mut torn = page(1, 3);
        torn.checksum ^= 1;
        for bad in [vec![torn], vec![page(2, 1)], vec![page(1, 1), page(1, 2)]] {
            let err = s.commit(&commit("db", 1, 0, 3, bad, 1)).unwrap_err();
            assert!(matches!(err, StoreError::InvalidArgument(_)), "{name}: {err}");
        }
        assert!(s.get_pages("db", &[1], 0).unwrap()[0].is_none(), "{name}: nothing applied");
        // Nor was the refused commit id recorded: a good commit with it applies as new.
        let good = s.commit(&commit("db", 1, 0, 3, vec![page(1, 1)], 1)).unwrap();
        assert_eq!((good.txid, good.replayed), (1, false), "{name}");
    }
}

#[test]
fn shrink_drops_pages_past_the_end_and_regrow_sees_new_bytes() {
    for (name, s, _d) in backends() {
        s.open("db", Some(1), &[]).unwrap();
        s.commit(&commit("db", 1, 0, 1, (1..=4).map(|n| page(n, n as u8)).collect(), 4)).unwrap();
        s.commit(&commit("db", 1, 1, 2, vec![page(1, 10)], 2)).unwrap();
        let got = s.get_pages("db", &[1, 2, 3, 4], 2).unwrap();
        assert_eq!(got.iter().filter(|p| p.is_some()).count(), 2, "{name}");
        s.commit(&commit("db", 1, 2, 3, vec![page(3, 33), page(4, 44)], 4)).unwrap();
        let got = s.get_pages("db", &[3, 4], 3).unwrap();
        assert_eq!(got[0].as_ref().unwrap().data[0], 33, "{name}");
        assert_eq!(got[1].as_ref().unwrap().data[0], 44);
    }
}

#[test]
fn without_a_window_a_shrink_deletes_the_pages_past_the_end_at_once() {
    // Reads hide pages past the end anyway; the version counts show that they are gone.
    let memory = MemoryStore::new();
    let dir = tempfile::tempdir().unwrap();
    let file = FileStore::open(dir.path(), FileStoreOptions::default()).unwrap();
    let stores: [(&str, &dyn PageStore, &dyn Fn() -> usize); 2] =
        [("memory", &memory, &|| memory.version_count("db")), ("file", &file, &|| file.version_count("db"))];
    for (name, s, versions) in stores {
        s.open("db", Some(1), &[]).unwrap();
        s.commit(&commit("db", 1, 0, 1, (1..=4).map(|n| page(n, n as u8)).collect(), 4)).unwrap();
        s.commit(&commit("db", 1, 1, 2, vec![page(1, 10)], 2)).unwrap();
        assert_eq!(versions(), 2, "{name}");
    }
}

#[test]
fn names_that_could_be_paths_are_refused() {
    for (name, s, _d) in backends() {
        for bad in ["../etc", "a/b", ""] {
            assert!(matches!(s.open(bad, Some(1), &[]), Err(StoreError::InvalidArgument(_))), "{name}");
        }
    }
}

#[test]
fn superseded_versions_are_pruned() {
    let s = MemoryStore::new();
    s.open("db", Some(1), &[]).unwrap();
    for i in 0..100u64 {
        s.commit(&commit("db", 1, i, i as u128 + 1, vec![page(1, i as u8), page(2, 0)], 2)).unwrap();
    }
    assert_eq!(s.version_count("db"), 2);
}

#[cfg(feature = "postgres")]
#[test]
fn superseded_versions_are_pruned_in_postgres() {
    let s = support::pg::store(&support::pg::fresh_schema());
    s.open("db", Some(1), &[]).unwrap();
    s.commit(&commit("db", 1, 0, 1000, (1..=5).map(|n| page(n, 0)).collect(), 5)).unwrap();
    for i in 1..40u64 {
        s.commit(&commit("db", 1, i, i as u128, vec![page(1, i as u8), page(2, 0)], 2)).unwrap();
    }
    assert_eq!(s.version_count("db").unwrap(), 2, "one version per page, none past the end");
}

#[test]
fn file_store_is_durable_and_locked_against_a_second_store() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = FileStore::open(dir.path(), FileStoreOptions::default()).unwrap();
        s.open("db", Some(1), &[]).unwrap();
        s.commit(&commit("db", 1, 0, 1, vec![page(1, 77)], 1)).unwrap();
        let second = FileStore::open(dir.path(), FileStoreOptions::default());
        assert!(matches!(second, Err(StoreError::Unavailable(_))), "directory is locked");
    }
    let s = FileStore::open(dir.path(), FileStoreOptions::default()).unwrap();
    let o = s.open("db", Some(1), &[1]).unwrap();
    assert_eq!((o.head.txid, o.pages[0].data[0]), (1, 77));
}

/// Versions of page 1 stored after `updates` commits rewriting it, and reads at head still right.
fn versions_after_updates(store: &dyn PageStore, count: &dyn Fn() -> usize, updates: u64) -> usize {
    store.open("h", Some(1), &[]).unwrap();
    for i in 0..updates {
        store.commit(&commit("h", 1, i, i as u128 + 1, vec![page(1, i as u8), page(2, 7)], 2)).unwrap();
    }
    let got = store.get_pages("h", &[1, 2], updates).unwrap();
    assert_eq!(got[0].as_ref().unwrap().data[0], (updates - 1) as u8);
    assert_eq!(got[1].as_ref().unwrap().data[0], 7);
    count()
}

#[test]
fn a_history_window_keeps_exactly_the_versions_it_covers() {
    let memory = MemoryStore::with_history(10);
    // Both pages are rewritten by every commit: 11 versions each (txids 40..=50) stay readable.
    assert_eq!(versions_after_updates(&memory, &|| memory.version_count("h"), 50), 2 * 11);
    let at = memory.read_at("h", &[1], 45).unwrap().1;
    assert_eq!(at[0].as_ref().unwrap().data[0], 44, "a read inside the window sees that txid's bytes");
    let dir = tempfile::tempdir().unwrap();
    let file =
        FileStore::open(dir.path(), FileStoreOptions { history_txids: 10, ..Default::default() }).unwrap();
    assert_eq!(versions_after_updates(&file, &|| file.version_count("h"), 50), 2 * 11);
    let at = file.read_at("h", &[1, 2], 45).unwrap().1;
    assert_eq!((at[0].as_ref().unwrap().data[0], at[1].as_ref().unwrap().data[0]), (44, 7));
    assert!(file.read_at("h", &[1], 39).is_err(), "txid 39 is outside the window");
    let none = MemoryStore::new();
    assert_eq!(versions_after_updates(&none, &|| none.version_count("h"), 50), 2, "no window: newest only");
}

#[test]
fn a_shrink_is_compacted_when_it_leaves_the_window() {
    let s = MemoryStore::with_history(2);
    s.open("s", Some(1), &[]).unwrap();
    s.commit(&commit("s", 1, 0, 1, (1..=4).map(|n| page(n, n as u8)).collect(), 4)).unwrap();
    s.commit(&commit("s", 1, 1, 2, vec![page(1, 9)], 2)).unwrap();
    assert_eq!(
        s.read_at("s", &[3], 1).unwrap().1[0].as_ref().unwrap().data[0],
        3,
        "still readable before the shrink"
    );
    s.commit(&commit("s", 1, 2, 3, vec![page(1, 10)], 2)).unwrap();
    s.commit(&commit("s", 1, 3, 4, vec![page(1, 11)], 2)).unwrap();
    // Horizon 2: the shrink at txid 2 is compacted; pages 3 and 4 are gone, page 2 stays.
    assert_eq!(s.version_count("s"), 2 + 1 + 1, "page 1 at txids 2..4 (window) and page 2");
}

#[test]
fn saved_hints_are_preloaded_by_the_next_open_of_the_same_writer_only() {
    for (name, s, _d) in backends() {
        s.open("hints", Some(1), &[]).unwrap();
        s.commit(&commit("hints", 1, 0, 1, (1..=20).map(|n| page(n, n as u8)).collect(), 20)).unwrap();
        s.save_hints("hints", 1, &[9, 5, 12, 99]).unwrap();
        let o = s.open("hints", Some(1), &[1]).unwrap();
        let mut got: Vec<u32> = o.pages.iter().map(|p| p.no).collect();
        got.sort();
        assert_eq!(got, vec![1, 5, 9, 12], "{name}: preload plus the hints below the end");
        assert_eq!(o.pages.iter().find(|p| p.no == 9).unwrap().data[0], 9);
        // A fenced writer's hints are ignored.
        s.open("hints", Some(2), &[]).unwrap();
        s.save_hints("hints", 1, &[3]).unwrap();
        let o = s.open("hints", Some(2), &[]).unwrap();
        let mut got: Vec<u32> = o.pages.iter().map(|p| p.no).collect();
        got.sort();
        assert_eq!(got, vec![5, 9, 12], "{name}");
    }
}

#[test]
fn a_file_store_window_made_smaller_or_turned_off_still_drops_the_pages_a_shrink_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let opened = |history_txids| {
        FileStore::open(dir.path(), FileStoreOptions { history_txids, ..Default::default() }).unwrap()
    };
    let s = opened(10);
    s.open("s", Some(1), &[]).unwrap();
    s.commit(&commit("s", 1, 0, 1, (1..=4).map(|n| page(n, n as u8)).collect(), 4)).unwrap();
    s.commit(&commit("s", 1, 1, 2, vec![page(1, 20)], 2)).unwrap(); // shrinks to 2 pages at txid 2
    for txid in 3..=8u64 {
        s.commit(&commit("s", 1, txid - 1, txid as u128, vec![page(1, txid as u8)], 2)).unwrap();
    }
    drop(s);
    // Window 2 from now on: the first commit's horizon (7) is past the shrink at txid 2.
    let s = opened(2);
    s.open("s", Some(1), &[]).unwrap();
    s.commit(&commit("s", 1, 8, 9, vec![page(1, 9)], 2)).unwrap();
    // Page 1 at txid 9 and its versions 7 and 8 (still in the window), page 2; pages 3 and 4 gone.
    assert_eq!(s.version_count("s"), 4);
    assert_eq!(s.get_pages("s", &[1, 2], 9).unwrap()[0].as_ref().unwrap().data[0], 9);
    drop(s);
    // No window: only the newest version of each page inside the end.
    let s = opened(0);
    s.open("s", Some(1), &[]).unwrap();
    assert_eq!(s.version_count("s"), 2);
}
