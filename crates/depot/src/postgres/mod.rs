//! The PostgreSQL store: actors move between processes and machines.
//!
//! Pages live in native tables (see [`schema`]): one row per page version, a head row per database,
//! and a commit log. A commit is **one statement** (data-modifying CTEs over `unnest()`ed arrays, see
//! [`schema::Sql`]), so one round trip and one PostgreSQL transaction; `get_pages` is one statement
//! too, so the head check and the pages come from one snapshot.
//!
//! The driver (tokio-postgres) is async; the [`PageStore`] trait is synchronous and called from the
//! client's worker threads. The store owns a small tokio runtime (two threads) that drives the
//! connections' I/O; a worker blocks on its call's future with `Runtime::block_on`, which parks the
//! *calling* thread, never a runtime thread. Nothing inside the runtime blocks.
//!
//! History (see [`schema`]): with a retention, commits keep the versions they supersede and a
//! background task of the store's runtime expires them in bounded steps, for the databases this
//! store has opened; without one, a commit removes what it supersedes, as before. Restore and fork
//! are short transactions, idempotent by an internal commit id, so they retry like reads; a fork
//! copies no page (it reads through its source, which pins the versions the fork sees).
//!
//! Failures: reads (and opens) that hit a transient error (connection reset, server restart, a
//! serialization failure) are retried with fresh connections until `retry_for` runs out. A commit is
//! retried only when the server answered that it was not applied; when the outcome is unknown (the
//! connection broke after the statement was sent) it fails with [`StoreError::Unavailable`] and the
//! client resolves it by retrying the same commit id, which the commit log answers exactly.

mod fail;
mod pool;
mod schema;
mod tls;

use std::collections::HashMap;
use std::future::Future;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::Config;

use tokio_postgres::types::{ToSql, Type};

use crate::history::random_commit_id;
use crate::store::{check_commit, checked_page, claim_generation, COMMIT_LOG_KEEP, MAX_HINTS};
use crate::{
    validate_name, CommitInfo, CommitOutcome, CommitRequest, Head, LeaseId, Opened, Page, PageNo, PageStore,
    Restored, Retention, StoreError, Txid, PAGE_SIZE,
};
use fail::{pg_message, Fail};
use pool::{Conn, Pool};

/// Settings of a [`PostgresStore`].
#[derive(Debug, Clone)]
pub struct PostgresStoreOptions {
    /// Connections shared by every database of the store.
    pub pool_size: usize,
    /// How long a call waits for a free connection before failing with `Unavailable`.
    pub acquire_timeout: Duration,
    /// Limit on making one connection (TCP, TLS, authentication, preparing statements).
    pub connect_timeout: Duration,
    /// Limit on one statement or transaction once it has a connection.
    pub statement_timeout: Duration,
    /// How long reads and opens keep retrying transient failures.
    pub retry_for: Duration,
    /// The PostgreSQL schema holding the tables (lets several depots share one database).
    pub schema: String,
    /// History to keep (none by default: a commit removes the versions it supersedes).
    pub retention: Retention,
    /// How often the background expiry runs when there is a retention.
    pub expire_every: Duration,
}

impl Default for PostgresStoreOptions {
    fn default() -> Self {
        PostgresStoreOptions {
            pool_size: 4,
            acquire_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(15),
            retry_for: Duration::from_secs(10),
            schema: "depot".into(),
            retention: Retention::default(),
            expire_every: Duration::from_secs(10),
        }
    }
}

/// The PostgreSQL-backed [`PageStore`]. See the module docs.
pub struct PostgresStore {
    runtime: Option<tokio::runtime::Runtime>,
    pool: Arc<Pool>,
    options: PostgresStoreOptions,
    describe: String,
    /// database name -> row id; filled at open and by lookups (ids never change once assigned).
    ids: Arc<Mutex<HashMap<String, i64>>>,
    /// The readers' leases this store holds (holder -> db), renewed in the background.
    leases: Arc<Mutex<HashMap<LeaseId, i64>>>,
}

/// A lease lapses this long after its last renewal (its holder renews it every third of that): a
/// crashed process's readers stop holding versions after a minute.
const LEASE_TTL: Duration = Duration::from_secs(60);

/// Most versions one expiry step deletes (one short transaction; the next step follows).
const EXPIRE_BATCH: i64 = 512;

/// One database's expiry, step after step until a step finds less than a batch to delete.
/// Returns the versions deleted. Runs on the store's runtime or under `block_on`.
async fn expire_database(pool: &Pool, id: i64, retention: Retention, timeout: Duration) -> Result<u64, Fail> {
    let (ms, txids) = (to_i64(retention.ms)?, to_i64(retention.txids)?);
    let keep = COMMIT_LOG_KEEP as i64;
    let mut total = 0;
    let sql = pool.sql();
    // Leases of crashed holders: the head row is held while `leased` is rebuilt (a fresh snapshot
    // after the lock, so a lease taken meanwhile is not lost), and only when some lapsed: expiry
    // otherwise never holds the head row.
    pool.with_conn(timeout, async |c| {
        let lapsed = c.client.query_typed_one(&sql.lapsed, &[(&id, Type::INT8)]).await?.get::<_, bool>(0);
        if lapsed {
            let tx = c.client.transaction().await?;
            tx.query_typed(&sql.lock_head, &[(&id, Type::INT8)]).await?;
            tx.query_typed(&sql.lapse, &[(&id, Type::INT8)]).await?;
            tx.commit().await?;
        }
        Ok(())
    })
    .await?;
    loop {
        let deleted = pool
            .with_conn(timeout, async |c| {
                let tx = c.client.transaction().await?;
                tx.query_typed(&sql.hold, &[(&id, Type::INT8)]).await?;
                let params: [(&(dyn ToSql + Sync), Type); 5] = [
                    (&id, Type::INT8),
                    (&ms, Type::INT8),
                    (&txids, Type::INT8),
                    (&EXPIRE_BATCH, Type::INT8),
                    (&keep, Type::INT8),
                ];
                let row = tx.query_typed_one(&sql.expire, &params).await?;
                let (deleted, horizon) = (row.get::<_, i64>(0), row.get::<_, Option<i64>>(2));
                if let (true, Some(horizon)) = (deleted > 0, horizon) {
                    tx.query_typed(&sql.raise_floor, &[(&id, Type::INT8), (&horizon, Type::INT8)]).await?;
                }
                tx.commit().await?;
                Ok(deleted as u64)
            })
            .await?;
        total += deleted;
        if (deleted as i64) < EXPIRE_BATCH {
            return Ok(total);
        }
    }
}

/// The TLS settings of a URL, which the store handles itself rather than the driver:
///
/// - `sslmode=verify-full`: TLS; the certificate must chain to a trusted root and name the host.
/// - `sslmode=verify-ca`: TLS; the certificate must chain to a trusted root (any host name).
/// - `sslmode=require`: like `verify-full`. **Unlike libpq**, whose `require` accepts any certificate.
/// - `sslmode=disable|allow|prefer`, or none: plain TCP (`allow` and `prefer` do not try TLS).
/// - `sslrootcert=/path/to/ca.pem`: trust the CA certificates of that PEM file instead of the
///   platform's roots (`sslrootcert=system`: the platform's roots, as without it). Only with a TLS
///   mode: a URL naming a CA file but asking for no TLS is refused rather than sent in plain text.
///
/// Only the URL form (`postgres://...?sslmode=...`) takes the verify-* modes and `sslrootcert`;
/// the key-value form (`host=... sslmode=require`) keeps the driver's `disable|prefer|require`.
#[derive(Debug, Default, PartialEq)]
struct TlsParams {
    mode: Option<String>,
    rootcert: Option<String>,
}

impl TlsParams {
    /// Splits `sslmode` and `sslrootcert` off a `postgres://` URL's query string (the last of each
    /// wins, as with the driver). Other URLs come back unchanged.
    fn take_from(url: &str) -> Result<(String, TlsParams), StoreError> {
        let mut params = TlsParams::default();
        let Some(rest) = url.strip_prefix("postgres://").or_else(|| url.strip_prefix("postgresql://")) else {
            return Ok((url.to_string(), params));
        };
        // Where the driver's parser finds the query: the first `?` after the credentials.
        let after_credentials = rest.find('@').map_or(0, |i| i + 1);
        let Some(q) = rest[after_credentials..].find('?') else {
            return Ok((url.to_string(), params));
        };
        let query_start = url.len() - rest.len() + after_credentials + q;
        let mut kept = Vec::new();
        for pair in url[query_start + 1..].split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match percent_decode(key).as_deref() {
                Some("sslmode") => params.mode = Some(decoded(value, "sslmode")?),
                Some("sslrootcert") => params.rootcert = Some(decoded(value, "sslrootcert")?),
                _ => kept.push(pair),
            }
        }
        let mut out = url[..query_start].to_string();
        if !kept.is_empty() {
            out.push('?');
            out.push_str(&kept.join("&"));
        }
        Ok((out, params))
    }

    /// The connector these settings ask for (`None`: plain TCP). `driver_mode` is what the driver
    /// parsed, which counts only when the URL had no `sslmode` of ours (the key-value form).
    fn connector(&self, driver_mode: SslMode) -> Result<Option<tls::RustlsMakeTls>, StoreError> {
        let mode = match (&self.mode, driver_mode) {
            (Some(m), _) => m.as_str(),
            (None, SslMode::Require) => "require",
            (None, _) => "prefer",
        };
        let check_host = match mode {
            "verify-full" | "require" => true,
            "verify-ca" => false,
            "disable" | "allow" | "prefer" => {
                if self.rootcert.is_some() {
                    return Err(StoreError::InvalidArgument(format!(
                        "sslrootcert is set but sslmode={mode} does not use TLS (use sslmode=verify-full)"
                    )));
                }
                return Ok(None);
            }
            other => {
                return Err(StoreError::InvalidArgument(format!(
                    "unknown sslmode '{other}' (expected disable, prefer, require, verify-ca or verify-full)"
                )))
            }
        };
        let roots = match self.rootcert.as_deref() {
            None | Some("system") => tls::Roots::System,
            Some("") => return Err(StoreError::InvalidArgument("sslrootcert is empty".into())),
            Some(path) => tls::Roots::File(std::path::Path::new(path)),
        };
        Ok(Some(tls::RustlsMakeTls::new(roots, check_host, mode)?))
    }
}

fn decoded(value: &str, key: &str) -> Result<String, StoreError> {
    percent_decode(value)
        .ok_or_else(|| StoreError::InvalidArgument(format!("{key} in the PostgreSQL URL is not valid UTF-8")))
}

/// `%XX` escapes decoded (a `%` not followed by two hex digits stays as is, like the driver's
/// decoder); `None` when the result is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s).decode_utf8().ok().map(|s| s.into_owned())
}

/// `postgres://host:port/db`: what logs and errors may say about the server (never credentials).
fn describe_config(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("postgres://{host}:{port}/{}", config.get_dbname().unwrap_or(""))
}

fn to_i64(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::InvalidArgument(format!("{v} does not fit PostgreSQL's bigint")))
}

fn page_from_row(no: i64, checksum: i64, data: &[u8]) -> Page {
    Page { no: no as PageNo, data: Arc::from(data), checksum: checksum as u32 }
}

impl PostgresStore {
    /// Connects to the server at `url` (`postgres://user:password@host:port/dbname`, optionally
    /// `?sslmode=verify-full|verify-ca|require` and `&sslrootcert=/path/to/ca.pem`, see
    /// [`TlsParams`]), creating or migrating the schema. Fails with `Unavailable` when the server
    /// cannot be reached within the options' limits, `InvalidArgument` for a bad URL or sslrootcert.
    pub fn open(url: &str, options: PostgresStoreOptions) -> Result<PostgresStore, StoreError> {
        schema::validate_schema(&options.schema)?;
        if options.pool_size == 0 {
            return Err(StoreError::InvalidArgument("pool_size must be at least 1".into()));
        }
        // The driver knows neither `sslrootcert` nor the verify-* modes: take them out first.
        let (url, tls_params) = TlsParams::take_from(url)?;
        // The parser's messages may quote the URL; ours never does.
        let mut config = Config::from_str(&url).map_err(|_| {
            StoreError::InvalidArgument(
                "invalid PostgreSQL URL (expected postgres://user:password@host:port/dbname\
                 [?sslmode=verify-full&sslrootcert=/path/to/ca.pem])"
                    .into(),
            )
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        if config.get_application_name().is_none() {
            config.application_name("depot");
        }
        let describe = describe_config(&config);
        let tls = tls_params.connector(config.get_ssl_mode())?;
        if tls.is_some() {
            config.ssl_mode(SslMode::Require);
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("depot-postgres")
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| StoreError::Unavailable(format!("cannot start the PostgreSQL runtime: {e}")))?;
        let pool = Arc::new(Pool::new(
            config,
            tls,
            schema::Sql::new(&options.schema),
            options.pool_size,
            options.acquire_timeout,
            options.connect_timeout,
            describe.clone(),
        ));
        let store = PostgresStore {
            runtime: Some(runtime),
            pool,
            options,
            describe,
            ids: Arc::new(Mutex::new(HashMap::new())),
            leases: Arc::new(Mutex::new(HashMap::new())),
        };
        store.migrate()?;
        store.spawn_expiry();
        store.spawn_lease_renewal();
        Ok(store)
    }

    /// With a retention, expires the history of the databases this store opened every
    /// `expire_every`, on the store's runtime (never on a worker thread). Failures are logged and
    /// the next round tries again.
    fn spawn_expiry(&self) {
        if self.options.retention == Retention::default() {
            return;
        }
        let (pool, ids) = (self.pool.clone(), self.ids.clone());
        let (retention, every) = (self.options.retention, self.options.expire_every);
        let (timeout, describe) = (self.options.statement_timeout, self.describe.clone());
        self.runtime.as_ref().expect("runtime lives until drop").spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let opened: Vec<i64> = ids.lock().unwrap().values().copied().collect();
                for id in opened {
                    if let Err(f) = expire_database(&pool, id, retention, timeout).await {
                        tracing::warn!("{describe}: history expiry failed: {}", f.into_error(&describe));
                    }
                }
            }
        });
    }

    /// Renews the leases this store holds every third of [`LEASE_TTL`], on the store's runtime.
    fn spawn_lease_renewal(&self) {
        let (pool, leases, describe) = (self.pool.clone(), self.leases.clone(), self.describe.clone());
        let ttl_ms = LEASE_TTL.as_millis() as i64;
        self.runtime.as_ref().expect("runtime lives until drop").spawn(async move {
            loop {
                tokio::time::sleep(LEASE_TTL / 3).await;
                let holders: Vec<Vec<u8>> =
                    leases.lock().unwrap().keys().map(|h| h.to_be_bytes().to_vec()).collect();
                if holders.is_empty() {
                    continue;
                }
                let renewed = pool.with_conn(LEASE_TTL / 6, async |c| {
                    let params: [(&(dyn ToSql + Sync), Type); 2] =
                        [(&holders, Type::BYTEA_ARRAY), (&ttl_ms, Type::INT8)];
                    c.client.query_typed(&pool.sql().renew, &params).await?;
                    Ok(())
                });
                if let Err(f) = renewed.await {
                    tracing::warn!(
                        "{describe}: renewing readers' leases failed: {}",
                        f.into_error(&describe)
                    );
                }
            }
        });
    }

    /// Runs the history expiry of every database this store opened now, as the background task
    /// does (tests and tools call it). Returns the versions deleted.
    pub fn expire_history(&self) -> Result<u64, StoreError> {
        let opened: Vec<i64> = self.ids.lock().unwrap().values().copied().collect();
        let retention = self.options.retention;
        let mut total = 0;
        for id in opened {
            total += self.block_on(self.retrying(true, async || {
                expire_database(&self.pool, id, retention, self.options.statement_timeout).await
            }))?;
        }
        Ok(total)
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let schema = self.options.schema.clone();
        let pool = self.pool.clone();
        let version = self.block_on(self.retrying(true, async || {
            let mut client = pool.connect_raw().await?;
            Ok(schema::migrate(&mut client, &schema).await?)
        }))?;
        if version > schema::SCHEMA_VERSION {
            return Err(StoreError::Unavailable(format!(
                "{}: depot schema version {version} is newer than this build understands ({})",
                self.describe,
                schema::SCHEMA_VERSION
            )));
        }
        Ok(())
    }

    /// Runs `fut` to completion on the calling thread while the store's runtime drives the I/O.
    fn block_on<T>(&self, fut: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            // Blocking here would stall (or panic) the caller's runtime.
            return Err(StoreError::Unavailable(
                "the PostgreSQL store was called from inside an async runtime; call it from a worker thread"
                    .into(),
            ));
        }
        self.runtime.as_ref().expect("runtime lives until drop").block_on(fut)
    }

    /// Repeats `attempt` while it fails transiently (when `retry`) and `retry_for` has not run out.
    async fn retrying<T>(
        &self,
        retry: bool,
        mut attempt: impl AsyncFnMut() -> Result<T, Fail>,
    ) -> Result<T, StoreError> {
        let deadline = Instant::now() + self.options.retry_for;
        let mut pause = Duration::from_millis(20);
        loop {
            match attempt().await {
                Ok(v) => return Ok(v),
                Err(f) if retry && f.transient() && Instant::now() + pause < deadline => {
                    tracing::debug!("{}: retrying after a transient failure", self.describe);
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
                Err(f) => return Err(f.into_error(&self.describe)),
            }
        }
    }

    /// A call of this store: `op` on a pooled connection (see [`Pool::with_conn`]), retried while
    /// it fails transiently when `retry`, run to completion on the calling thread.
    fn run<T>(
        &self,
        retry: bool,
        mut op: impl AsyncFnMut(&mut Conn) -> Result<T, Fail>,
    ) -> Result<T, StoreError> {
        self.block_on(self.retrying(retry, async || self.on_conn(async |c| op(c).await).await))
    }

    /// One attempt on a pooled connection, bounded by `statement_timeout`. The connection goes
    /// back to the pool only after a success.
    async fn on_conn<T>(&self, op: impl AsyncFnOnce(&mut Conn) -> Result<T, Fail>) -> Result<T, Fail> {
        self.pool.with_conn(self.options.statement_timeout, op).await
    }

    /// Statements this store's calls sent to the server (opens, reads, commits, hints), each one
    /// round trip; tests and benchmarks read it.
    pub fn statements_sent(&self) -> u64 {
        self.pool.statements_sent()
    }

    /// Number of page versions stored for `database` (tests use it to check pruning).
    pub fn version_count(&self, database: &str) -> Result<usize, StoreError> {
        let id = self.id_of(database)?;
        let sql = format!("SELECT count(*) FROM \"{}\".pages WHERE db = $1", self.options.schema);
        self.run(true, async |c| {
            let n: i64 = c.client.query_one(&sql, &[&id]).await?.get(0);
            Ok(n as usize)
        })
    }

    /// The row id of `database`, looked up once (it never changes).
    fn id_of(&self, database: &str) -> Result<i64, StoreError> {
        if let Some(&id) = self.ids.lock().unwrap().get(database) {
            return Ok(id);
        }
        let sql = &self.pool.sql().id_of;
        let id = self.run(true, async |c| {
            Ok(c.client.query_typed_opt(sql, &[(&database, Type::TEXT)]).await?.map(|r| r.get::<_, i64>(0)))
        })?;
        let id =
            id.ok_or_else(|| StoreError::InvalidArgument(format!("database '{database}' does not exist")))?;
        self.ids.lock().unwrap().insert(database.to_string(), id);
        Ok(id)
    }

    /// The retention as the history statements take it ($ ms, $ txids).
    fn retention_params(&self) -> Result<(i64, i64), StoreError> {
        Ok((to_i64(self.options.retention.ms)?, to_i64(self.options.retention.txids)?))
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        // Dropping a runtime waits for its threads; never do that where blocking is forbidden.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// The whole open in one statement (see `Sql::open`): create the head row or claim the generation,
/// and read the preload and hints at the head. A preload page missing below the end is not an
/// error here: the read that needs it fetches it and reports it.
async fn open_one(
    c: &mut Conn,
    database: &str,
    wanted: Option<u64>,
    preload: &[PageNo],
) -> Result<(i64, Opened), Fail> {
    let wanted_i = wanted.map(to_i64).transpose()?;
    let preload: Vec<i64> = preload.iter().map(|&no| no as i64).collect();
    let rows = c
        .query(&c.stmts.open, &[&database, &(PAGE_SIZE as i32), &wanted_i, &preload, &(MAX_HINTS as i32)])
        .await?;
    let Some(first) = rows.first() else {
        // Refused: a newer generation holds the database.
        let current: i64 = c.query_one(&c.stmts.open_refused, &[&database]).await?.get(0);
        claim_generation(database, current as u64, wanted)?;
        return Err(Fail::Store(StoreError::Fenced {
            database: database.into(),
            generation: wanted.unwrap_or(0),
            current: current as u64,
        }));
    };
    let id: i64 = first.get(0);
    let head = Head {
        generation: first.get::<_, i64>(1) as u64,
        txid: first.get::<_, i64>(2) as u64,
        size_pages: first.get::<_, i64>(3) as u32,
        page_size: first.get::<_, i32>(4) as u32,
    };
    if head.page_size as usize != PAGE_SIZE {
        return Err(Fail::Store(StoreError::Corrupt(format!(
            "database '{database}' has page size {}, expected {PAGE_SIZE}",
            head.page_size
        ))));
    }
    let seen = first.get::<_, Option<i64>>(5).unwrap_or(0) as u64;
    let mut pages = Vec::new();
    if seen == head.txid {
        for r in &rows {
            if let Some(no) = r.get::<_, Option<i64>>(6) {
                pages.push(page_from_row(no, r.get(7), r.get(8)));
            }
        }
    }
    Ok((id, Opened { head, pages }))
}

impl PageStore for PostgresStore {
    fn history_window(&self) -> Duration {
        Duration::from_millis(self.options.retention.ms)
    }

    fn open(
        &self,
        database: &str,
        generation: Option<u64>,
        preload: &[PageNo],
    ) -> Result<Opened, StoreError> {
        validate_name(database)?;
        if let Some(g) = generation {
            to_i64(g)?;
        }
        // Retrying an open whose reply was lost is harmless: claiming the same generation again
        // is allowed, and claiming "the next" again fences only the lost attempt.
        let (id, opened) = self.run(true, async |c| open_one(c, database, generation, preload).await)?;
        self.ids.lock().unwrap().insert(database.to_string(), id);
        Ok(opened)
    }

    fn get_pages(&self, database: &str, pages: &[PageNo], at: Txid) -> Result<Vec<Option<Page>>, StoreError> {
        let id = self.id_of(database)?;
        let at_i = to_i64(at)?;
        let wanted: Vec<i64> = pages.iter().map(|&no| no as i64).collect();
        self.run(true, async |c| {
            let rows = c.query(&c.stmts.get_pages, &[&id, &wanted, &at_i]).await?;
            let Some(first) = rows.first() else {
                return Err(Fail::Store(StoreError::Corrupt(format!(
                    "database '{database}' has no head row"
                ))));
            };
            let head_txid = first.get::<_, i64>(0) as u64;
            let size = first.get::<_, i64>(1) as u32;
            if head_txid != at {
                return Err(Fail::Store(StoreError::HeadMoved {
                    database: database.into(),
                    expected: at,
                    actual: head_txid,
                }));
            }
            let mut found: HashMap<PageNo, Page> = HashMap::with_capacity(rows.len());
            for r in &rows {
                if let Some(no) = r.get::<_, Option<i64>>(2) {
                    found.insert(no as PageNo, page_from_row(no, r.get(3), r.get(4)));
                }
            }
            let out = pages
                .iter()
                .map(|&no| checked_page(database, no, found.get(&no).cloned(), size))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(out)
        })
    }

    fn commit(&self, request: &CommitRequest) -> Result<CommitOutcome, StoreError> {
        let id = self.id_of(&request.database)?;
        let commit_id = request.commit_id.to_be_bytes();
        // The page checks of `check_commit`, against a head that passes its other checks. A commit
        // with a bad page is never sent; the refusal below then reports the same error the other
        // backends would (fenced and moved heads take precedence over bad pages).
        let as_if_current = Head {
            generation: request.generation,
            txid: request.expected_txid,
            size_pages: request.size_pages,
            page_size: PAGE_SIZE as u32,
        };
        let pages_ok = check_commit(&as_if_current, request).is_ok();
        let generation = to_i64(request.generation)?;
        let expected = to_i64(request.expected_txid)?;
        let numbers: Vec<i64> = request.pages.iter().map(|p| p.no as i64).collect();
        let checksums: Vec<i64> = request.pages.iter().map(|p| p.checksum as i64).collect();
        let datas: Vec<&[u8]> = request.pages.iter().map(|p| &p.data[..]).collect();
        let size = request.size_pages as i64;
        let keep = COMMIT_LOG_KEEP as i64;
        let prune_now = self.options.retention == Retention::default();
        let deadline = Instant::now() + self.options.retry_for;

        self.block_on(async {
            loop {
                if pages_ok {
                    let applied = self
                        .on_conn(async |c| {
                            let row = c
                                .query_one(
                                    &c.stmts.commit,
                                    &[
                                        &id,
                                        &&commit_id[..],
                                        &generation,
                                        &expected,
                                        &size,
                                        &numbers,
                                        &checksums,
                                        &datas,
                                        &keep,
                                        &prune_now,
                                    ],
                                )
                                .await?;
                            Ok((row.get::<_, Option<i64>>(0), row.get::<_, Option<i64>>(1)))
                        })
                        .await;
                    match applied {
                        Ok((Some(txid), _)) => {
                            return Ok(CommitOutcome { txid: txid as Txid, replayed: false })
                        }
                        Ok((None, Some(txid))) => {
                            return Ok(CommitOutcome { txid: txid as Txid, replayed: true })
                        }
                        Ok((None, None)) => {} // refused: find out why below
                        Err(f) if f.refused_transiently() && Instant::now() < deadline => {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                        Err(Fail::Pg(e)) if e.as_db_error().is_none() => {
                            return Err(StoreError::Unavailable(format!(
                                "{}: commit outcome unknown ({}); retry with the same commit id",
                                self.describe,
                                pg_message(&e)
                            )))
                        }
                        Err(Fail::Timeout) => {
                            return Err(StoreError::Unavailable(format!(
                                "{}: commit outcome unknown (timed out); retry with the same commit id",
                                self.describe
                            )))
                        }
                        Err(f) => return Err(f.into_error(&self.describe)),
                    }
                }
                // A fresh snapshot: applied after all (a concurrent retry), or refused, and why.
                let (prev, head) = self
                    .retrying(true, async || {
                        self.on_conn(async |c| {
                            let row = c.query_one(&c.stmts.resolve, &[&id, &&commit_id[..]]).await?;
                            let head = Head {
                                generation: row.get::<_, i64>(1) as u64,
                                txid: row.get::<_, i64>(2) as u64,
                                size_pages: row.get::<_, i64>(3) as u32,
                                page_size: row.get::<_, i32>(4) as u32,
                            };
                            Ok((row.get::<_, Option<i64>>(0), head))
                        })
                        .await
                    })
                    .await?;
                if let Some(txid) = prev {
                    return Ok(CommitOutcome { txid: txid as Txid, replayed: true });
                }
                check_commit(&head, request)?;
                // The head matches now (the refusal lost a race with an open that kept the
                // generation): try again while time remains.
                if Instant::now() >= deadline {
                    return Err(StoreError::Unavailable(format!(
                        "{}: commit kept losing races with concurrent opens",
                        self.describe
                    )));
                }
            }
        })
    }

    fn history(
        &self,
        database: &str,
        limit: usize,
        before: Option<Txid>,
    ) -> Result<Vec<CommitInfo>, StoreError> {
        let id = self.id_of(database)?;
        let (ms, txids) = self.retention_params()?;
        let limit = limit.min(i64::MAX as usize) as i64;
        let before = before.map(to_i64).transpose()?;
        let sql = &self.pool.sql().history;
        self.run(true, async |c| {
            let params: [(&(dyn ToSql + Sync), Type); 5] = [
                (&id, Type::INT8),
                (&limit, Type::INT8),
                (&before, Type::INT8),
                (&ms, Type::INT8),
                (&txids, Type::INT8),
            ];
            let rows = c.client.query_typed(sql, &params).await?;
            Ok(rows
                .iter()
                .map(|r| CommitInfo {
                    txid: r.get::<_, i64>(0) as Txid,
                    time_ms: r.get::<_, i64>(1) as u64,
                    pages: r.get::<_, i32>(2) as u32,
                    size_pages: r.get::<_, i64>(3) as u32,
                })
                .collect())
        })
    }

    fn txid_at_time(&self, database: &str, time_ms: u64) -> Result<Txid, StoreError> {
        let id = self.id_of(database)?;
        let (ms, txids) = self.retention_params()?;
        let time = to_i64(time_ms)?;
        let sql = &self.pool.sql().txid_at_time;
        let found = self.run(true, async |c| {
            let params: [(&(dyn ToSql + Sync), Type); 4] =
                [(&id, Type::INT8), (&time, Type::INT8), (&ms, Type::INT8), (&txids, Type::INT8)];
            let row = c.client.query_typed_opt(sql, &params).await?;
            Ok(row.map(|r| (r.get::<_, i64>(0), r.get::<_, Option<i64>>(1))))
        })?;
        match found {
            Some((txid, Some(_))) => Ok(txid as Txid),
            _ => Err(StoreError::HistoryUnavailable(format!(
                "no commit the history keeps is as old as {time_ms} ms"
            ))),
        }
    }

    fn read_at(
        &self,
        database: &str,
        pages: &[PageNo],
        at: Txid,
    ) -> Result<(u32, Vec<Option<Page>>), StoreError> {
        let id = self.id_of(database)?;
        let (ms, txids) = self.retention_params()?;
        let at_i = to_i64(at)?;
        let wanted: Vec<i64> = pages.iter().map(|&no| no as i64).collect();
        let (size, found) = self.run(true, async |c| {
            let rows = c.query(&c.stmts.read_at, &[&id, &wanted, &at_i, &ms, &txids]).await?;
            let size = rows.first().and_then(|r| r.get::<_, Option<i64>>(0));
            let mut found: HashMap<PageNo, Page> = HashMap::with_capacity(rows.len());
            for r in &rows {
                if let Some(no) = r.get::<_, Option<i64>>(1) {
                    found.insert(no as PageNo, page_from_row(no, r.get(2), r.get(3)));
                }
            }
            Ok((size, found))
        })?;
        let size = match size {
            None => {
                return Err(StoreError::HistoryUnavailable(format!(
                    "txid {at} is outside the retained history"
                )))
            }
            Some(-1) => return Err(StoreError::InvalidArgument(format!("txid {at} is newer than the head"))),
            Some(n) => n as u32,
        };
        let out = pages
            .iter()
            .map(|&no| checked_page(database, no, found.get(&no).cloned(), size))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((size, out))
    }

    fn restore(
        &self,
        database: &str,
        at: Txid,
        generation: Option<u64>,
        id: u128,
    ) -> Result<Restored, StoreError> {
        let restore_id = id;
        let id = self.id_of(database)?;
        if generation == Some(0) {
            return Err(StoreError::InvalidArgument("generation must be at least 1".into()));
        }
        let (ms, txids) = self.retention_params()?;
        let at_i = to_i64(at)?;
        let wanted = generation.map(to_i64).transpose()?;
        // One id for every attempt: an attempt whose outcome was lost is found, not repeated.
        let commit_id = restore_id.to_be_bytes();
        let sql = self.pool.sql();
        // (claimed generation, new head, earlier application, size at `at`); no generation: refused.
        let outcome = self.run(true, async |c| {
            let tx = c.client.transaction().await?;
            let params: [(&(dyn ToSql + Sync), Type); 3] =
                [(&id, Type::INT8), (&wanted, Type::INT8), (&&commit_id[..], Type::BYTEA)];
            let row = tx.query_typed_one(&sql.claim, &params).await?;
            let (claimed, earlier, current) = (
                row.get::<_, Option<i64>>(0),
                row.get::<_, Option<i64>>(1),
                row.get::<_, Option<i64>>(2).unwrap_or(0),
            );
            if let Some(txid) = earlier {
                return Ok((Some(current), current, None, Some(txid), None));
            }
            let Some(claimed) = claimed else {
                return Ok((None, current, None, None, None));
            };
            let params: [(&(dyn ToSql + Sync), Type); 5] = [
                (&id, Type::INT8),
                (&at_i, Type::INT8),
                (&&commit_id[..], Type::BYTEA),
                (&ms, Type::INT8),
                (&txids, Type::INT8),
            ];
            let row = tx.query_typed_one(&sql.restore, &params).await?;
            let (head, prev, size) =
                (row.get::<_, Option<i64>>(0), row.get::<_, Option<i64>>(1), row.get::<_, Option<i64>>(2));
            if head.is_some() || prev.is_some() {
                tx.commit().await?;
            }
            Ok((Some(claimed), 0, head, prev, size))
        })?;
        match outcome {
            (None, current, ..) => {
                claim_generation(database, current as u64, generation)?;
                Err(StoreError::Fenced {
                    database: database.into(),
                    generation: generation.unwrap_or(0),
                    current: current as u64,
                })
            }
            (Some(g), _, Some(txid), ..) | (Some(g), _, None, Some(txid), _) => {
                Ok(Restored { txid: txid as Txid, previous: txid as Txid - 1, generation: g as u64 })
            }
            (Some(_), _, None, None, Some(-1)) => {
                Err(StoreError::InvalidArgument(format!("txid {at} is newer than the head")))
            }
            _ => Err(StoreError::HistoryUnavailable(format!("txid {at} is outside the retained history"))),
        }
    }

    fn fork(&self, source: &str, target: &str, at: Option<Txid>, id: u128) -> Result<Head, StoreError> {
        validate_name(target)?;
        let src = self.id_of(source)?;
        let (ms, txids) = self.retention_params()?;
        let at_i = at.map(to_i64).transpose()?;
        let commit_id = id.to_be_bytes();
        let sql = self.pool.sql();
        // (created or earlier-created id, size at the point)
        let (created, size) = self.run(true, async |c| {
            let tx = c.client.transaction().await?;
            tx.query_typed(&sql.hold_head, &[(&src, Type::INT8)]).await?;
            let params: [(&(dyn ToSql + Sync), Type); 7] = [
                (&src, Type::INT8),
                (&at_i, Type::INT8),
                (&target, Type::TEXT),
                (&ms, Type::INT8),
                (&txids, Type::INT8),
                (&(PAGE_SIZE as i32), Type::INT4),
                (&&commit_id[..], Type::BYTEA),
            ];
            let row = tx.query_typed_one(&sql.fork, &params).await?;
            let created = row.get::<_, Option<i64>>(0);
            let size = row.get::<_, Option<i64>>(1);
            let earlier = row.get::<_, Option<i64>>(3);
            if created.is_some() {
                tx.commit().await?;
            }
            Ok((created.or(earlier), size))
        })?;
        match (created, size) {
            (Some(id), Some(size)) if size >= 0 => {
                self.ids.lock().unwrap().insert(target.to_string(), id);
                Ok(Head { generation: 0, txid: 1, size_pages: size as u32, page_size: PAGE_SIZE as u32 })
            }
            (None, Some(size)) if size >= 0 => {
                Err(StoreError::InvalidArgument(format!("database '{target}' exists already")))
            }
            (_, Some(_)) => Err(StoreError::InvalidArgument(format!(
                "txid {} is newer than the head of '{source}'",
                at.unwrap_or(0)
            ))),
            (_, None) => Err(StoreError::HistoryUnavailable(format!(
                "txid {} of '{source}' is outside the retained history",
                at.unwrap_or(0)
            ))),
        }
    }

    fn lease(&self, database: &str, at: Txid) -> Result<LeaseId, StoreError> {
        let id = self.id_of(database)?;
        let (ms, txids) = self.retention_params()?;
        let at_i = to_i64(at)?;
        let holder = random_commit_id();
        let holder_bytes = holder.to_be_bytes();
        let ttl_ms = LEASE_TTL.as_millis() as i64;
        let sql = self.pool.sql();
        let size = self.run(true, async |c| {
            let tx = c.client.transaction().await?;
            // An expiry step that could not see this lease ends before the point is checked; a
            // commit that prunes waits for the head row, and then sees the lease in `leased`.
            tx.query_typed(&sql.hold_head, &[(&id, Type::INT8)]).await?;
            let params: [(&(dyn ToSql + Sync), Type); 6] = [
                (&id, Type::INT8),
                (&at_i, Type::INT8),
                (&&holder_bytes[..], Type::BYTEA),
                (&ms, Type::INT8),
                (&txids, Type::INT8),
                (&ttl_ms, Type::INT8),
            ];
            let size = tx.query_typed_one(&sql.lease, &params).await?.get::<_, Option<i64>>(0);
            tx.commit().await?;
            Ok(size)
        })?;
        match size {
            Some(n) if n >= 0 => {
                self.leases.lock().unwrap().insert(holder, id);
                Ok(holder)
            }
            Some(_) => Err(StoreError::InvalidArgument(format!("txid {at} is newer than the head"))),
            None => Err(StoreError::HistoryUnavailable(format!("txid {at} is outside the retained history"))),
        }
    }

    fn release(&self, _database: &str, lease: LeaseId) {
        let Some(id) = self.leases.lock().unwrap().remove(&lease) else { return };
        let holder = lease.to_be_bytes();
        let sql = &self.pool.sql().release;
        let lock_head = &self.pool.sql().lock_head;
        let released = self.run(false, async |c| {
            // The head row first, then `leased` rebuilt from a snapshot taken after it: a
            // lease another reader took meanwhile is in it.
            let tx = c.client.transaction().await?;
            tx.query_typed(lock_head, &[(&id, Type::INT8)]).await?;
            tx.query_typed(sql, &[(&id, Type::INT8), (&&holder[..], Type::BYTEA)]).await?;
            tx.commit().await?;
            Ok(())
        });
        if let Err(e) = released {
            // It lapses on its own once no longer renewed.
            tracing::debug!("{}: releasing a reader's lease failed: {e}", self.describe);
        }
    }

    fn save_hints(&self, database: &str, generation: u64, pages: &[PageNo]) -> Result<(), StoreError> {
        let id = self.id_of(database)?;
        let generation = to_i64(generation)?;
        let pages: Vec<i64> = pages.iter().take(crate::MAX_HINTS).map(|&p| p as i64).collect();
        self.run(false, async |c| Ok(c.execute(&c.stmts.save_hints, &[&id, &pages, &generation]).await?))?;
        Ok(())
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn databases(&self) -> Result<Vec<String>, StoreError> {
        let sql =
            format!("SELECT name FROM \"{}\".databases ORDER BY name COLLATE \"C\"", self.options.schema);
        self.run(true, async |c| Ok(c.client.query(&sql, &[]).await?.iter().map(|r| r.get(0)).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(url: &str) -> (String, Option<String>, Option<String>) {
        let (rest, p) = TlsParams::take_from(url).unwrap();
        (rest, p.mode, p.rootcert)
    }

    #[test]
    fn tls_parameters_are_taken_out_of_the_url() {
        assert_eq!(
            split("postgres://u:p@h:5/db?sslmode=verify-full&sslrootcert=%2Ftmp%2Fca%20x.pem"),
            ("postgres://u:p@h:5/db".into(), Some("verify-full".into()), Some("/tmp/ca x.pem".into()))
        );
        assert_eq!(
            split("postgresql://u:p?w@h/db?application_name=a&sslmode=verify-ca&connect_timeout=3"),
            (
                "postgresql://u:p?w@h/db?application_name=a&connect_timeout=3".into(),
                Some("verify-ca".into()),
                None
            )
        );
        assert_eq!(split("postgres://h/db"), ("postgres://h/db".into(), None, None));
        assert_eq!(
            split("host=h sslmode=require"),
            ("host=h sslmode=require".into(), None, None),
            "the key-value form goes to the driver as is"
        );
        assert_eq!(split("postgres://h/db?sslmode=disable&sslmode=require").1.as_deref(), Some("require"));
    }

    #[test]
    fn tls_modes() {
        let params = |mode: Option<&str>, root: Option<&str>| TlsParams {
            mode: mode.map(String::from),
            rootcert: root.map(String::from),
        };
        assert!(params(None, None).connector(SslMode::Prefer).unwrap().is_none());
        assert!(params(Some("disable"), None).connector(SslMode::Prefer).unwrap().is_none());
        for bad in [params(Some("verify-everything"), None), params(None, Some("/ca.pem"))] {
            assert!(matches!(bad.connector(SslMode::Prefer), Err(StoreError::InvalidArgument(_))));
        }
        let missing = "/nonexistent/depot-ca.pem";
        let err = params(Some("verify-full"), Some(missing)).connector(SslMode::Prefer).err().unwrap();
        assert!(matches!(&err, StoreError::InvalidArgument(m) if m.contains(missing)), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        let junk = junk.to_str().unwrap();
        let err = params(Some("verify-ca"), Some(junk)).connector(SslMode::Prefer).err().unwrap();
        assert!(
            matches!(&err, StoreError::InvalidArgument(m) if m.contains(junk) && m.contains("no certificates")),
            "{err}"
        );
    }
}
