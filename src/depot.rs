//! The `Depot` class: one page store, and the databases opened on it.
//!
//! The depot keeps a weak list of its databases so that `close()` can close them before it lets go
//! of the store: a database must never outlive the store its worker commits to. The list is weak so
//! that a database dropped by the garbage collector does not stay alive on the depot's account.

use std::sync::{Arc, Mutex, MutexGuard, Weak};

use depot_client::{Database, PageStore};
use napi::bindgen_prelude::{PromiseRaw, Unknown};
use napi::Env;
use napi_derive::napi;

use crate::database::NativeDatabaseHandle;
use crate::error::ApiError;
use crate::options::{database_options, depot_options, JsOptions};
use crate::promise::Pending;
use crate::thread::spawn;
use crate::value::string_from_js;

/// What the depot owns; `store` is `None` once closed.
struct DepotState {
    store: Option<Arc<dyn PageStore>>,
    databases: Vec<Weak<Database>>,
}

/// A page store and the databases opened on it. Make one with `Depot.open()`.
#[napi]
pub struct Depot {
    state: Arc<Mutex<DepotState>>,
    description: String,
    /// `Depot.open({ telemetry })`: index.js makes a span per call when set.
    telemetry: bool,
}

#[napi]
impl Depot {
    /// Opens a depot: the embedded file store at `path` (default `./.depot`), an in-memory store
    /// with `{ memory: true }`, or a PostgreSQL store with `{ url: 'postgres://...' }`. The store is
    /// opened (and a PostgreSQL schema created or migrated) off the JS thread.
    #[napi(ts_args_type = "options?: DepotOptions", ts_return_type = "Promise<Depot>")]
    pub fn open<'env>(env: &'env Env, options: Option<Unknown>) -> napi::Result<PromiseRaw<'env, Depot>> {
        crate::logging::init();
        let (config, telemetry) = match depot_options(options) {
            Ok(parsed) => parsed,
            Err(error) => return Pending::settled(env, Err(error)),
        };
        let (pending, promise) = Pending::new(env)?;
        spawn("depot-sqlite-open", move || {
            pending.settle(config.open().map_err(ApiError::from).map(|opened| {
                let state = DepotState { store: Some(opened.store), databases: Vec::new() };
                Depot { state: Arc::new(Mutex::new(state)), description: opened.location, telemetry }
            }));
        })?;
        Ok(promise)
    }

    /// Where the pages live: the store directory, `memory`, or `postgres://host:port/dbname`
    /// (never the credentials).
    #[napi(getter)]
    pub fn location(&self) -> String {
        self.description.clone()
    }

    /// Whether the depot was opened with `telemetry: true`.
    #[napi(getter)]
    pub fn telemetry(&self) -> bool {
        self.telemetry
    }

    /// Opens (or creates) the database `name` in this depot; it runs on its own worker thread.
    #[napi(
        ts_args_type = "name: string, options?: OpenDatabaseOptions",
        ts_return_type = "Promise<NativeDatabaseHandle>"
    )]
    pub fn open_database<'env>(
        &self,
        env: &'env Env,
        name: Unknown,
        options: Option<Unknown>,
    ) -> napi::Result<PromiseRaw<'env, NativeDatabaseHandle>> {
        let parsed = string_from_js(name, "name").and_then(|name| Ok((name, database_options(options)?)));
        let (name, (open_options, js_options)) = match parsed {
            Ok(parsed) => parsed,
            Err(error) => return Pending::settled(env, Err(error)),
        };
        let Some(store) = lock(&self.state).store.clone() else {
            return Pending::settled(env, Err(ApiError::closed("the depot")));
        };
        let (pending, promise) = Pending::new(env)?;
        let state = Arc::clone(&self.state);
        Database::open_with(
            store,
            name,
            open_options,
            Box::new(move |reply| match reply {
                Ok(handle) => pending.settle(register(&state, Arc::new(handle), js_options)),
                Err(error) => pending.settle(Err(error.into())),
            }),
        );
        Ok(promise)
    }

    /// Closes every database opened on this depot, then the store. Idempotent. Work happens off
    /// the JS thread; the promise rejects with the first database's close error, if any (the store
    /// is released regardless).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        let (store, databases) = {
            let mut state = lock(&self.state);
            (state.store.take(), std::mem::take(&mut state.databases))
        };
        let (pending, promise) = Pending::new(env)?;
        spawn("depot-sqlite-close", move || {
            let mut outcome = Ok(());
            for database in databases.iter().filter_map(Weak::upgrade) {
                if let Err(error) = database.close() {
                    outcome = outcome.and(Err(ApiError::from(error)));
                }
            }
            drop(store);
            pending.settle(outcome);
        })?;
        Ok(promise)
    }
}

impl Depot {
    /// The store, unless the depot is closed.
    pub(crate) fn store(&self) -> Result<Arc<dyn PageStore>, ApiError> {
        lock(&self.state).store.clone().ok_or_else(|| ApiError::closed("the depot"))
    }
}

/// Records a newly opened database, unless the depot closed while it was opening: then the new
/// database is closed again and the caller gets `ERR_CLOSED`. Runs on the new database's worker
/// thread, so the close happens on yet another thread (a worker cannot wait for itself).
fn register(
    state: &Mutex<DepotState>,
    handle: Arc<Database>,
    js_options: JsOptions,
) -> Result<NativeDatabaseHandle, ApiError> {
    let mut state = lock(state);
    if state.store.is_none() {
        drop(state);
        let _ = spawn("depot-sqlite-close", move || drop(handle.close()));
        return Err(ApiError::closed("the depot"));
    }
    state.databases.retain(|weak| weak.strong_count() > 0);
    state.databases.push(Arc::downgrade(&handle));
    Ok(NativeDatabaseHandle::new(handle, js_options))
}

/// Locks the depot's state; a poisoned lock (a panic elsewhere) still holds consistent data.
fn lock(state: &Mutex<DepotState>) -> MutexGuard<'_, DepotState> {
    state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
