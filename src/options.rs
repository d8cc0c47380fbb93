//! The options of `Depot.open` and `Depot.openDatabase`: each declared once (the structs below,
//! whose doc comments become the generated TypeScript types), and validated once (the readers
//! below). The structs document the accepted objects; the readers go property by property so
//! that a wrong type rejects with `ERR_INVALID_ARGUMENT` naming the option, instead of throwing.

use std::ffi::CStr;
use std::path::PathBuf;
use std::time::Duration;

use depot_client::{FileStoreOptions, OpenOptions, PostgresStoreOptions, StoreConfig, StoreKind};
use napi::bindgen_prelude::{BigInt, Object, Unknown};
use napi::ValueType;
use napi_derive::napi;

use crate::call::{millis, property};
use crate::error::ApiError;
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
    /// `true`: every call of the depot's databases makes an OpenTelemetry CLIENT span and records
    /// `db.client.operation.duration`, through the global `@opentelemetry/api` (an optional peer
    /// dependency; without it nothing is recorded). Default `false`.
    pub telemetry: Option<bool>,
    /// Milliseconds of history to keep: every point of that window stays listed by `history()`,
    /// findable by `bookmarkForTime()`, restorable and forkable. Default 3600000 (an hour); 0
    /// keeps none (a page version goes as soon as a newer one is committed). Every store;
    /// PostgreSQL finds times by its server's clock.
    pub history_ms: Option<f64>,
}

/// Options of `Depot.openDatabase`.
#[napi(object, object_to_js = false)]
pub struct OpenDatabaseOptions {
    /// Writer generation (a non-negative integer). Opening with a newer generation fences every
    /// older writer of the same database: its next commit fails with `ERR_FENCED`.
    #[napi(ts_type = "number | bigint")]
    pub generation: Option<i64>,
    /// A bookmark (`db.bookmark()`, `depot.history()`): opens a read-only handle on the database as
    /// it was at that point, within the retained history (`historyMs`). It claims nothing (the
    /// writer is not fenced), any write rejects with `SQLITE_READONLY`, and every read sees exactly
    /// that point while the writer goes on. Excludes `generation`.
    pub at: Option<String>,
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
    /// off). A point select answers in a few microseconds, faster than a wake-up of the event
    /// loop. The wait follows the database's last answer: when it took longer than this, the wait
    /// lasts a quarter more than that plus 10 µs, up to 100 µs (or up to `replyWaitMicros` if
    /// larger); after a slower answer the next call does not wait (left to the event loop).
    pub reply_wait_micros: Option<i64>,
    /// Default `timeoutMs` of every call on this database, in milliseconds (default: none).
    pub query_timeout_ms: Option<f64>,
    /// Hibernate after this many milliseconds without a call (default 30000; 0: never). A
    /// hibernating database has no thread and no SQLite connection; its handle stays valid and
    /// the next call reopens it first (about a millisecond on the file store, one round trip on
    /// PostgreSQL). A database with an open transaction, cursor or TEMP table stays awake.
    pub idle_ms: Option<f64>,
    /// Most snapshot reader threads (default 1 on a machine with two or more cores, else 0; 0: every
    /// call runs on the writer). A read-only statement or batch called on the database (not on a
    /// transaction), when no earlier write of the handle is still queued or running, runs on the
    /// writer if the writer is idle (fastest: its thread is awake), else on a reader: it sees the
    /// last committed state and never waits for an open transaction or a long call on the writer.
    /// When the idle writer has parked (no call for 50 µs), or when the read would go to a reader,
    /// such a read runs on the JS thread instead if every page it needs is cached and it ends
    /// within 200 µs (`stats().callerReads`; see `readsOnCaller`), and unless 8 or more calls of
    /// the handle are in flight; otherwise it goes where it was routed, with nothing answered twice.
    /// `iterate()` on the database holds its reader, and one snapshot, until the loop ends (at most
    /// 5 minutes). Readers start on demand (a database whose writer is never busy starts none) and
    /// end after 2 s without a call.
    pub readers: Option<f64>,
    /// Whether a read that would wake the parked idle writer or a reader may run on the JS thread
    /// instead, from the page cache, for at most 200 µs (default true; see `readers`). It saves
    /// the two thread wake-ups of a call to a parked thread; `false` keeps SQLite off the JS thread
    /// entirely.
    pub reads_on_caller: Option<bool>,
}

/// What the JS side of a database was opened with (the core takes the rest).
pub(crate) struct JsOptions {
    pub int_mode: IntMode,
    pub reply_wait: Duration,
    pub query_timeout: Option<Duration>,
}

impl Default for JsOptions {
    fn default() -> Self {
        JsOptions { int_mode: IntMode::default(), reply_wait: DEFAULT_REPLY_WAIT, query_timeout: None }
    }
}

/// See `OpenDatabaseOptions::reply_wait_micros`: well above a point select's round trip to an
/// awake worker (~5 µs), about the event-loop wake-up it saves.
const DEFAULT_REPLY_WAIT: Duration = Duration::from_micros(20);

/// History a depot keeps unless told otherwise: an hour, long enough to undo a bad migration or a
/// bad deploy noticed the same hour. Its cost is the pages each commit writes, kept for the hour:
/// a single-row update retains 1.0 to 1.05 pages (`npm run bench:storage`), so about 15 MiB per
/// hour for a database that commits once a second; an idle one costs nothing.
const DEFAULT_HISTORY_MS: u64 = 3_600_000;

/// Reads [`DepotOptions`]: the store to open, and whether index.js makes telemetry spans.
pub(crate) fn depot_options(options: Option<Unknown>) -> Result<(StoreConfig, bool), ApiError> {
    let Some(object) = options_object(options, "Depot.open options")? else {
        let mut config = file_store(PathBuf::from(DEFAULT_PATH));
        config.retention.ms = DEFAULT_HISTORY_MS;
        return Ok((config, false));
    };
    let memory = boolean(&object, c"memory", "options.memory")?.unwrap_or(false);
    let path = property(&object, c"path")?.map(|value| string_from_js(value, "options.path")).transpose()?;
    let url = property(&object, c"url")?.map(|value| string_from_js(value, "options.url")).transpose()?;
    let postgres = postgres_options(&object)?;
    if url.is_none() && postgres.is_some() {
        return Err(ApiError::invalid_argument("options.schema, poolSize and retryMs need options.url"));
    }
    let mut config = match (url, memory, path) {
        (Some(_), true, _) | (Some(_), _, Some(_)) => {
            return Err(ApiError::invalid_argument("options.url excludes options.path and options.memory"))
        }
        (Some(url), false, None) => StoreConfig::postgres(url, postgres.unwrap_or_default())?,
        (None, true, Some(_)) => {
            return Err(ApiError::invalid_argument("options.path and options.memory exclude each other"))
        }
        (None, true, None) => StoreConfig::new(StoreKind::Memory),
        (None, false, Some(path)) if path.is_empty() => {
            return Err(ApiError::invalid_argument("options.path must not be empty"))
        }
        (None, false, path) => file_store(PathBuf::from(path.unwrap_or_else(|| DEFAULT_PATH.to_owned()))),
    };
    config.call_timeout = property(&object, c"storeTimeoutMs")?
        .map(|value| millis(value, "options.storeTimeoutMs"))
        .transpose()?;
    config.retention.ms = property(&object, c"historyMs")?
        .map(|v| non_negative_integer(v, "options.historyMs"))
        .transpose()?
        .unwrap_or(DEFAULT_HISTORY_MS);
    let telemetry = boolean(&object, c"telemetry", "options.telemetry")?.unwrap_or(false);
    Ok((config, telemetry))
}

/// An optional boolean property.
fn boolean(object: &Object, key: &CStr, what: &str) -> Result<Option<bool>, ApiError> {
    match property(object, key)? {
        None => Ok(None),
        // SAFETY: checked to be a boolean.
        Some(value) if value.get_type()? == ValueType::Boolean => Ok(Some(unsafe { value.cast::<bool>() }?)),
        Some(_) => Err(ApiError::invalid_argument(format!("{what} must be a boolean"))),
    }
}

fn file_store(path: PathBuf) -> StoreConfig {
    StoreConfig::new(StoreKind::File { path, options: FileStoreOptions::default() })
}

/// Reads `{ schema?, poolSize?, retryMs? }`; `None` when none of them is given.
fn postgres_options(object: &Object) -> Result<Option<PostgresStoreOptions>, ApiError> {
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

/// 10 ms: a longer wait would be a stall of the event loop, not a shortcut.
const MAX_REPLY_WAIT_MICROS: u64 = 10_000;

/// Reads [`OpenDatabaseOptions`]: the core's part and the JS side's.
pub(crate) fn database_options(options: Option<Unknown>) -> Result<(OpenOptions, JsOptions), ApiError> {
    let mut open_options = OpenOptions::default();
    let Some(object) = options_object(options, "openDatabase options")? else {
        return Ok((open_options, JsOptions::default()));
    };
    open_options.generation = property(&object, c"generation")?
        .map(|value| non_negative_integer(value, "options.generation"))
        .transpose()?;
    if let Some(value) = property(&object, c"at")? {
        if open_options.generation.is_some() {
            return Err(ApiError::invalid_argument(
                "options.at (a read-only handle) excludes options.generation",
            ));
        }
        open_options.at = Some(crate::history::txid_of(&string_from_js(value, "options.at")?, "options.at")?);
    }
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
    if let Some(value) = property(&object, c"idleMs")? {
        let ms = non_negative_integer(value, "options.idleMs")?;
        open_options.idle = (ms > 0).then(|| Duration::from_millis(ms));
    }
    if let Some(value) = property(&object, c"readers")? {
        let readers = non_negative_integer(value, "options.readers")?;
        if readers > 64 {
            return Err(ApiError::invalid_argument("options.readers must be between 0 and 64"));
        }
        open_options.readers = readers as usize;
    }
    if let Some(on) = boolean(&object, c"readsOnCaller", "options.readsOnCaller")? {
        open_options.reads_on_caller = on;
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
    js_options.query_timeout = property(&object, c"queryTimeoutMs")?
        .map(|value| millis(value, "options.queryTimeoutMs"))
        .transpose()?;
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
