//! Restore and fork as the client makes them: one id per call, and a retry with that same id when
//! the store could not say whether the call was applied (a lost reply, a call that ran past its
//! deadline). The store answers a retry with the first attempt's result, so the outcome is known
//! exactly as a commit's is (by its commit id), and a restore is never made twice.

use depot::{random_commit_id, Head, PageStore, Restored, StoreError, Txid};

/// Attempts per call, and the pause before the second (doubling after it), on the store's clock.
const ATTEMPTS: u32 = 3;
const BACKOFF: std::time::Duration = std::time::Duration::from_millis(20);

/// [`PageStore::restore`], retried with one id.
pub fn restore(
    store: &dyn PageStore,
    database: &str,
    at: Txid,
    generation: Option<u64>,
) -> Result<Restored, StoreError> {
    let id = random_commit_id();
    retrying(store, database, || store.restore(database, at, generation, id))
}

/// [`PageStore::fork`], retried with one id.
pub fn fork(store: &dyn PageStore, source: &str, target: &str, at: Option<Txid>) -> Result<Head, StoreError> {
    let id = random_commit_id();
    retrying(store, source, || store.fork(source, target, at, id))
}

fn retrying<T>(
    store: &dyn PageStore,
    database: &str,
    call: impl Fn() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let clock = store.clock();
    let (mut attempt, mut pause) = (1, BACKOFF);
    loop {
        match call() {
            Err(e) if e.is_transient() && attempt < ATTEMPTS => {
                tracing::warn!(database, attempt, error = %e, "restore or fork failed transiently; retrying");
                clock.sleep(pause);
                attempt += 1;
                pause *= 2;
            }
            other => return other,
        }
    }
}
