//! The `Depot` class: one page store, and the databases opened on it.
//!
//! The depot keeps a weak list of its databases so that `close()` can close them before it lets go
//! of the store: a database must never outlive the store its worker commits to. The list is weak so
//! that a database dropped by the garbage collector does not stay alive on the depot's account.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use depot::{PostgresStore, PostgresStoreOptions};

use depot_client::{FileStore, FileStoreOptions, MemoryStore, NativeDatabaseHandle as CoreHandle};
use depot_client::{OpenOptions, PageStore};
use napi::bindgen_prelude::{BigInt, Object, PromiseRaw, Unknown};
use napi::{Env, ValueType};
use napi_derive::napi;

use crate::call::property;
use crate::database::{JsOptions, NativeDatabaseHandle};
use crate::error::ApiError;
use crate::promise::Pending;
use crate::result::IntMode;
use crate::value::{bigint_to_i64, string_from_js};

/// Where the embedded file store lives when `Depot.open()` is given no option.
const DEFAULT_PATH: &str = "./.depot";

/// Options of `Depot.open` (documents the accepted object; parsed by hand so that a wrong type
/// rejects with `ERR_INVALID_ARGUMENT` instead of throwing).
#[napi(object, object_to_js = false)]
pub struct DepotOptions {
    /// Directory of the embedded file store (created if missing). Default `./.depot`.
    pub path: Option<String>,
    /// `true` for an in-memory store: fast, and gone when the depot closes. Excludes `path`.
    pub memory: Option<bool>,
    /// A PostgreSQL page store: `postgres://user:password@host:port/dbname`, with
    /// `?sslmode=verify-full&sslrootcert=/path/ca.pem` (or `require`, `verify-ca`) for TLS; the
    /// certificate is always verified. Excludes `path` and `memory`. The password never appears in
    /// errors or in `location`.
    pub url: Option<String>,
    /// PostgreSQL only: the schema holding the depot's tables (default `depot`; 1 to 63 of a-z,
    /// 0-9 and _). Several depots can share one PostgreSQL database under different schemas.
    pub schema: Option<String>,
    /// PostgreSQL only: connections shared by every database of the depot (default 4).
    pub pool_size: Option<u32>,
    /// Deadline of every store call, in milliseconds: a store that hangs fails the call with
    /// `ERR_STORE_UNAVAILABLE` instead of holding the database's worker (default: none; the
    /// PostgreSQL store has its own connect, statement and retry limits).
    pub store_timeout_ms: Option<f64>,
    /// PostgreSQL only: how long, in milliseconds, a store call keeps retrying a transient failure
    /// (server restart, connection reset) before it fails with `ERR_STORE_UNAVAILABLE`
    /// (default 10000).
    pub retry_ms: Option<u32>,
}

/// Options of `Depot.openDatabase`.
#[napi(object, object_to_js = false)]
pub struct OpenDatabaseOptions {
    /// Writer generation (a non-negative integer). Opening with a newer generation fences every
    /// older writer of the same database: its next commit fails with `ERR_FENCED`.
    #[napi(ts_type = "number | bigint")]
    pub generation: Option<i64>,
    /// How INTEGER results reach JavaScript: `'number'` (default; an unsafe integer rejects with
    /// `ERR_INTEGER_OVERFLOW`), `'bigint'` or `'string'`.
    #[napi(ts_type = "'number' | 'bigint' | 'string'")]
    pub int_mode: Option<String>,
    /// Size of the page cache in bytes (default: the core's default).
    pub cache_bytes: Option<i64>,
    /// Largest transaction in bytes of pages written (default 2 GiB, room to VACUUM a 1 GiB
    /// database); a larger one rejects with `ERR_TOO_LARGE` and changes nothing.
    pub max_commit_bytes: Option<i64>,
    /// Calls that may be in flight at once (queued, running, or answered but not yet delivered to
    /// JavaScript); one more rejects at once with `ERR_OVERLOADED`. Default 128.
    pub max_queue: Option<i64>,
    /// How long, in microseconds, the JS thread may wait for an answer from this database's awake
    /// worker once it has nothing else to run, while no database has more than one call in
    /// flight, instead of sleeping in the event loop and being woken (default 20; 0 turns this
    /// off). A point select answers in a few microseconds, faster
    /// than a wake-up of the event loop; after a wait that ran out the next ones are skipped
    /// (backoff up to 64).
    pub reply_wait_micros: Option<i64>,
}

/// What the depot owns; `store` is `None` once closed.
struct DepotState {
    store: Option<Arc<dyn PageStore>>,
    databases: Vec<Weak<CoreHandle>>,
}

/// A page store and the databases opened on it. Make one with `Depot.open()`.
#[napi]
pub struct Depot {
    state: Arc<Mutex<DepotState>>,
    description: String,
}

#[napi]
impl Depot {
    /// Opens a depot: the embedded file store at `path` (default `./.depot`), an in-memory store
    /// with `{ memory: true }`, or a PostgreSQL store with `{ url: 'postgres://...' }`. The store is
    /// opened (and a PostgreSQL schema created or migrated) off the JS thread.
    #[napi(ts_args_type = "options?: DepotOptions", ts_return_type = "Promise<Depot>")]
    pub fn open<'env>(env: &'env Env, options: Option<Unknown>) -> napi::Result<PromiseRaw<'env, Depot>> {
        let parsed = parse_depot_options(options).and_then(|t| Ok((t, parse_store_timeout(options)?)));
        let (target, deadline) = match parsed {
            Ok(parsed) => parsed,
            Err(error) => return Pending::settled(env, Err(error)),
        };
        let (pending, promise) = Pending::new(env)?;
        spawn("depot-sqlite-open", move || {
            pending.settle(target.open(deadline));
        })?;
        Ok(promise)
    }

    /// Where the pages live: the store directory, `memory`, or `postgres://host:port/dbname`
    /// (never the credentials).
    #[napi(getter)]
    pub fn location(&self) -> String {
        self.description.clone()
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
        let parsed =
            string_from_js(name, "name").and_then(|name| Ok((name, parse_database_options(options)?)));
        let (name, (open_options, js_options)) = match parsed {
            Ok(parsed) => parsed,
            Err(error) => return Pending::settled(env, Err(error)),
        };
        let Some(store) = lock(&self.state).store.clone() else {
            return Pending::settled(env, Err(ApiError::closed("the depot")));
        };
        let (pending, promise) = Pending::new(env)?;
        let state = Arc::clone(&self.state);
        CoreHandle::open_with(
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

/// Records a newly opened database, unless the depot closed while it was opening: then the new
/// database is closed again and the caller gets `ERR_CLOSED`. Runs on the new database's worker
/// thread, so the close happens on yet another thread (a worker cannot wait for itself).
fn register(
    state: &Mutex<DepotState>,
    handle: Arc<CoreHandle>,
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

/// The store that `Depot.open` was asked for.
enum StoreTarget {
    Memory,
    File(PathBuf),
    Postgres(String, PostgresStoreOptions),
}

impl StoreTarget {
    /// Opens the store (blocking: file I/O) and wraps it in a `Depot`; with a deadline, every
    /// store call fails with `ERR_STORE_UNAVAILABLE` when it does not answer in time.
    fn open(self, deadline: Option<std::time::Duration>) -> Result<Depot, ApiError> {
        let (store, description): (Arc<dyn PageStore>, String) = match self {
            StoreTarget::Memory => (Arc::new(MemoryStore::new()), "memory".to_owned()),
            StoreTarget::File(path) => {
                let store = FileStore::open(&path, FileStoreOptions::default())
                    .map_err(|e| ApiError::from(depot_client::Error::from(e)))?;
                (Arc::new(store), path.display().to_string())
            }
            StoreTarget::Postgres(url, options) => {
                // Connects, then creates or migrates the schema: blocking, on the open thread.
                let store = PostgresStore::open(&url, options)
                    .map_err(|e| ApiError::from(depot_client::Error::from(e)))?;
                let description = store.describe();
                (Arc::new(store), description)
            }
        };
        let store: Arc<dyn PageStore> = match deadline {
            Some(timeout) => Arc::new(depot::DeadlineStore::new(store, timeout)),
            None => store,
        };
        let state = DepotState { store: Some(store), databases: Vec::new() };
        Ok(Depot { state: Arc::new(Mutex::new(state)), description })
    }
}

/// Reads `storeTimeoutMs` of the `Depot.open` options (validated with the rest by the caller).
fn parse_store_timeout(options: Option<Unknown>) -> Result<Option<std::time::Duration>, ApiError> {
    let Some(object) = options_object(options, "Depot.open options")? else { return Ok(None) };
    property(&object, c"storeTimeoutMs")?
        .map(|value| crate::call::millis(value, "options.storeTimeoutMs"))
        .transpose()
}

/// Reads `{ path?, memory?, url?, schema?, poolSize?, retryMs? }`.
fn parse_depot_options(options: Option<Unknown>) -> Result<StoreTarget, ApiError> {
    let Some(object) = options_object(options, "Depot.open options")? else {
        return Ok(StoreTarget::File(PathBuf::from(DEFAULT_PATH)));
    };
    let memory = match property(&object, c"memory")? {
        None => false,
        Some(value) if value.get_type()? == ValueType::Boolean => unsafe { value.cast::<bool>() }?,
        Some(_) => return Err(ApiError::invalid_argument("options.memory must be a boolean")),
    };
    let path = property(&object, c"path")?.map(|value| string_from_js(value, "options.path")).transpose()?;
    let url = property(&object, c"url")?.map(|value| string_from_js(value, "options.url")).transpose()?;
    let postgres = parse_postgres_options(&object)?;
    if url.is_none() && postgres.is_some() {
        return Err(ApiError::invalid_argument("options.schema, poolSize and retryMs need options.url"));
    }
    if let Some(url) = url {
        if memory || path.is_some() {
            return Err(ApiError::invalid_argument("options.url excludes options.path and options.memory"));
        }
        return postgres_target(url, postgres.unwrap_or_default());
    }
    match (memory, path) {
        (true, Some(_)) => {
            Err(ApiError::invalid_argument("options.path and options.memory exclude each other"))
        }
        (true, None) => Ok(StoreTarget::Memory),
        (false, Some(path)) if path.is_empty() => {
            Err(ApiError::invalid_argument("options.path must not be empty"))
        }
        (false, path) => {
            Ok(StoreTarget::File(PathBuf::from(path.unwrap_or_else(|| DEFAULT_PATH.to_owned()))))
        }
    }
}

/// Reads `{ schema?, poolSize?, retryMs? }`; `None` when none of them is given.
fn parse_postgres_options(object: &Object) -> Result<Option<PostgresStoreOptions>, ApiError> {
    let schema = property(object, c"schema")?.map(|v| string_from_js(v, "options.schema")).transpose()?;
    let pool_size =
        property(object, c"poolSize")?.map(|v| non_negative_integer(v, "options.poolSize")).transpose()?;
    let retry_ms =
        property(object, c"retryMs")?.map(|v| non_negative_integer(v, "options.retryMs")).transpose()?;
    if schema.is_none() && pool_size.is_none() && retry_ms.is_none() {
        return Ok(None);
    }
    let mut options = PostgresStoreOptions::default();
    if let Some(schema) = schema {
        options.schema = schema;
    }
    if let Some(size) = pool_size {
        if !(1..=1000).contains(&size) {
            return Err(ApiError::invalid_argument("options.poolSize must be between 1 and 1000"));
        }
        options.pool_size = size as usize;
    }
    if let Some(ms) = retry_ms {
        options.retry_for = Duration::from_millis(ms.min(3_600_000));
    }
    Ok(Some(options))
}

/// Checks the URL's scheme on the JS thread; the store parses the rest when it opens (a malformed
/// URL is `ERR_INVALID_ARGUMENT` there too). Messages never quote the URL: it carries the password.
fn postgres_target(url: String, options: PostgresStoreOptions) -> Result<StoreTarget, ApiError> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(ApiError::invalid_argument(
            "options.url must be a PostgreSQL URL: postgres://user:password@host:port/dbname[?sslmode=verify-full&sslrootcert=ca.pem]",
        ));
    }
    Ok(StoreTarget::Postgres(url, options))
}

/// 10 ms: a longer wait would be a stall of the event loop, not a shortcut.
const MAX_REPLY_WAIT_MICROS: u64 = 10_000;

/// Reads [`OpenDatabaseOptions`]: the core's part and the JS side's.
fn parse_database_options(options: Option<Unknown>) -> Result<(OpenOptions, JsOptions), ApiError> {
    let mut open_options = OpenOptions::default();
    let Some(object) = options_object(options, "openDatabase options")? else {
        return Ok((open_options, JsOptions::default()));
    };
    open_options.generation = property(&object, c"generation")?
        .map(|value| non_negative_integer(value, "options.generation"))
        .transpose()?;
    if let Some(value) = property(&object, c"maxQueue")? {
        let limit = non_negative_integer(value, "options.maxQueue")?;
        if limit == 0 || limit > 1_000_000 {
            return Err(ApiError::invalid_argument("options.maxQueue must be between 1 and 1000000"));
        }
        open_options.max_queue = limit as usize;
    }
    if let Some(value) = property(&object, c"maxCommitBytes")? {
        open_options.max_commit_bytes = non_negative_integer(value, "options.maxCommitBytes")?;
    }
    if let Some(value) = property(&object, c"cacheBytes")? {
        let bytes = non_negative_integer(value, "options.cacheBytes")?;
        open_options.cache_bytes = usize::try_from(bytes)
            .map_err(|_| ApiError::invalid_argument("options.cacheBytes is too large"))?;
    }
    let int_mode = match property(&object, c"intMode")? {
        Some(value) => IntMode::parse(&string_from_js(value, "options.intMode")?)?,
        None => IntMode::default(),
    };
    let mut js_options = JsOptions { int_mode, ..JsOptions::default() };
    if let Some(value) = property(&object, c"replyWaitMicros")? {
        let micros = non_negative_integer(value, "options.replyWaitMicros")?;
        if micros > MAX_REPLY_WAIT_MICROS {
            return Err(ApiError::invalid_argument(format!(
                "options.replyWaitMicros must be at most {MAX_REPLY_WAIT_MICROS} (it blocks the event loop)"
            )));
        }
        js_options.reply_wait = Duration::from_micros(micros);
    }
    Ok((open_options, js_options))
}

/// The options argument as an object, or `None` when it is absent, `undefined` or `null`.
fn options_object<'a>(options: Option<Unknown<'a>>, what: &str) -> Result<Option<Object<'a>>, ApiError> {
    let Some(value) = options else {
        return Ok(None);
    };
    match value.get_type()? {
        ValueType::Undefined | ValueType::Null => Ok(None),
        // SAFETY: checked to be an object.
        ValueType::Object => Ok(Some(unsafe { value.cast::<Object>() }?)),
        _ => Err(ApiError::invalid_argument(format!("{what} must be an object"))),
    }
}

/// A non-negative integer given as a number (exact, at most 2^53 - 1) or a bigint.
fn non_negative_integer(value: Unknown, what: &str) -> Result<u64, ApiError> {
    let invalid = || ApiError::invalid_argument(format!("{what} must be a non-negative integer"));
    match value.get_type()? {
        ValueType::Number => {
            // SAFETY: checked to be a number.
            let number = unsafe { value.cast::<f64>() }?;
            let exact = number.fract() == 0.0 && (0.0..=9_007_199_254_740_991.0).contains(&number);
            if exact {
                Ok(number as u64)
            } else {
                Err(invalid())
            }
        }
        ValueType::BigInt => {
            // SAFETY: checked to be a bigint.
            let big = unsafe { value.cast::<BigInt>() }?;
            bigint_to_i64(&big).and_then(|n| u64::try_from(n).ok()).ok_or_else(invalid)
        }
        _ => Err(invalid()),
    }
}

/// Locks the depot's state; a poisoned lock (a panic elsewhere) still holds consistent data.
fn lock(state: &Mutex<DepotState>) -> MutexGuard<'_, DepotState> {
    state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs blocking work on its own thread, never on the JS thread.
pub(crate) fn spawn(name: &str, work: impl FnOnce() + Send + 'static) -> napi::Result<()> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(work)
        .map(drop)
        .map_err(|e| napi::Error::from_reason(format!("cannot spawn a thread: {e}")))
}
