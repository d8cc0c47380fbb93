//! Helpers shared by the store test suites: page and commit builders, and the backends to run on.
#![allow(dead_code)]

use std::sync::Arc;

use depot::{CommitRequest, FileStore, FileStoreOptions, MemoryStore, Page, PageStore, PAGE_SIZE};

pub fn page(no: u32, fill: u8) -> Page {
    Page::new(no, Arc::from(vec![fill; PAGE_SIZE]))
}

pub fn commit(
    db: &str,
    generation: u64,
    expected: u64,
    id: u128,
    pages: Vec<Page>,
    size: u32,
) -> CommitRequest {
    CommitRequest {
        database: db.into(),
        generation,
        expected_txid: expected,
        commit_id: id,
        pages,
        size_pages: size,
    }
}

/// Every backend this build has, each fresh and empty: memory, file, and PostgreSQL when the
/// `postgres` feature is on (which then requires `DEPOT_TEST_PG_URL`).
pub fn backends() -> Vec<(&'static str, Arc<dyn PageStore>, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let file = FileStore::open(dir.path(), FileStoreOptions::default()).unwrap();
    #[allow(unused_mut)]
    let mut all: Vec<(&'static str, Arc<dyn PageStore>, Option<tempfile::TempDir>)> =
        vec![("memory", Arc::new(MemoryStore::new()), None), ("file", Arc::new(file), Some(dir))];
    #[cfg(feature = "postgres")]
    all.push(("postgres", Arc::new(pg::store(&pg::fresh_schema())), None));
    all
}

#[cfg(feature = "postgres")]
pub mod pg {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::{SystemTime, UNIX_EPOCH};

    use depot::{PostgresStore, PostgresStoreOptions};

    /// The test server's URL. Missing is a failure, never a skip: a build with the `postgres`
    /// feature claims to test it.
    pub fn url() -> String {
        std::env::var("DEPOT_TEST_PG_URL").unwrap_or_else(|_| {
            panic!(
                "the `postgres` feature is on but DEPOT_TEST_PG_URL is not set; start a server with \
                 `export DEPOT_TEST_PG_URL=$(scripts/pg.sh start)`"
            )
        })
    }

    /// A schema name no other test (or earlier run) uses, so every store starts empty.
    pub fn fresh_schema() -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
        format!("t_{}_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed), nanos)
    }

    pub fn options(schema: &str) -> PostgresStoreOptions {
        PostgresStoreOptions { schema: schema.into(), ..PostgresStoreOptions::default() }
    }

    /// A store (its own pool and runtime, like another process) on `schema`.
    pub fn store(schema: &str) -> PostgresStore {
        PostgresStore::open(&url(), options(schema)).expect("open the PostgreSQL test store")
    }
}
