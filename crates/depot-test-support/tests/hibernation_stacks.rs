//! A hibernating database's thread is detached, so its stack is given back (glibc keeps up to 40
//! MiB of ended threads' stacks for reuse and unmaps the rest). A thread that ended but was never
//! joined keeps its stack mapped: two memory mappings per hibernating database, which capped a
//! process near vm.max_map_count / 2 databases. Alone in its test binary: other tests running
//! beside it would start and end threads of their own while it counts mappings.

use std::sync::Arc;
use std::time::{Duration, Instant};

use depot::MemoryStore;
use depot_client::{Database, OpenOptions};

/// Anonymous read-write mappings of this process the size of a worker's stack (512 KiB, less the
/// guard page glibc carves out of it): not the malloc arenas new threads also leave behind.
fn stack_mappings() -> usize {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines()
        .filter(|l| l.contains("rw-p") && !l.contains('/'))
        .filter(|l| {
            let range = l.split(' ').next().unwrap();
            let (start, end) = range.split_once('-').unwrap();
            let size = u64::from_str_radix(end, 16).unwrap() - u64::from_str_radix(start, 16).unwrap();
            (500 << 10..=516 << 10).contains(&size)
        })
        .count()
}

/// More databases than glibc's cache of ended threads' stacks holds (40 MiB: 80 stacks of 512
/// KiB): past it, the stack of an ended, detached thread is unmapped; one never joined stays.
const COUNT: usize = 150;

#[test]
fn hibernating_databases_leave_no_thread_stack_mapped() {
    let before = stack_mappings();
    let opts = OpenOptions { idle: Some(Duration::from_millis(20)), ..Default::default() };
    let dbs: Vec<Database> = (0..COUNT)
        .map(|i| {
            let db =
                Database::open(Arc::new(MemoryStore::new()), &format!("stack-{i}"), opts.clone()).unwrap();
            db.exec("CREATE TABLE t(v)").unwrap();
            db
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while dbs.iter().any(|db| db.metrics().counters.hibernating == 0) {
        assert!(Instant::now() < deadline, "the databases never hibernated");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(100));
    let after = stack_mappings();
    // Kept stacks would add one such mapping each (150); the cache holds at most 80.
    assert!(
        after <= before + 80,
        "{COUNT} hibernating databases left {} more stack-sized mappings",
        after - before
    );
    for db in &dbs {
        db.close().unwrap();
    }
}
