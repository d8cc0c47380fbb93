//! A seeded chaos harness (test-hooks only): random workloads against a depot-backed database and,
//! in lockstep, against an oracle (a plain in-memory SQLite), with store faults injected at named
//! points. After every fault the depot database must pass `integrity_check` and its canonical dump
//! must equal the oracle's. A commit whose outcome was unknown must turn out wholly applied or
//! wholly absent.
//!
//! `tests/chaos.rs` runs a fixed set of seeds; `cargo run -p depot-test-support --example soak
//! -- SEEDS OPS` runs a soak and prints what happened.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use depot::fault::FaultStore;
use depot::{DeadlineStore, FileStore, FileStoreOptions, MemoryStore, PageStore};
use rusqlite::Connection;

use depot_client::{Database, Error, ErrorCode, OpenOptions, Params, Value};

/// Which store backs the depot side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChaosBackend {
    Memory,
    File,
}

/// What one run did.
#[derive(Debug, Default, Clone)]
pub struct ChaosReport {
    pub seeds: u64,
    pub operations: u64,
    /// Faults that fired, by kind.
    pub faults: BTreeMap<&'static str, u64>,
    /// Commits whose outcome was unknown, then resolved (applied or absent).
    pub unknown_outcomes: u64,
    pub reopens: u64,
    pub checks: u64,
    /// Calls that failed with ERR_STORE_UNAVAILABLE with no fault armed: a store call ran past the
    /// harness's deadline (a loaded machine: a slow fsync, a starved thread). Each is recovered like
    /// a fault, so the state must still be whole before or after the call; only the timing is not
    /// held against the store.
    pub deadline_misses: u64,
    /// Opens that ran past the deadline with no fault armed and were tried again.
    pub open_retries: u64,
    /// Every mismatch with the oracle or failed integrity check; must stay empty.
    pub divergences: Vec<String>,
}

impl ChaosReport {
    pub fn merge(&mut self, other: ChaosReport) {
        self.seeds += other.seeds;
        self.operations += other.operations;
        for (k, v) in other.faults {
            *self.faults.entry(k).or_default() += v;
        }
        self.unknown_outcomes += other.unknown_outcomes;
        self.reopens += other.reopens;
        self.checks += other.checks;
        self.deadline_misses += other.deadline_misses;
        self.open_retries += other.open_retries;
        self.divergences.extend(other.divergences);
    }
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn hex_blob(rng: &mut Rng) -> String {
    let len = match rng.below(4) {
        0 => 0,
        1 => rng.below(64),
        2 => rng.below(4096),
        _ => 4096 + rng.below(3 * 4096),
    } as usize;
    let mut s = String::with_capacity(3 + 2 * len);
    s.push_str("X'");
    for _ in 0..len {
        s.push_str(&format!("{:02X}", rng.below(256)));
    }
    s.push('\'');
    s
}

/// One random statement that cannot fail on a valid schema.
fn statement(rng: &mut Rng, next_key: &mut u64, extra_columns: &mut u32) -> String {
    match rng.below(10) {
        0..=3 => {
            *next_key += 1;
            format!("INSERT INTO t(k, v) VALUES ({}, {})", next_key, hex_blob(rng))
        }
        4..=5 => format!("UPDATE t SET v = {} WHERE k = {}", hex_blob(rng), 1 + rng.below(*next_key + 1)),
        6 => {
            let a = 1 + rng.below(*next_key + 1);
            format!("DELETE FROM t WHERE k BETWEEN {a} AND {}", a + rng.below(5))
        }
        7 => match rng.below(4) {
            0 => "CREATE INDEX IF NOT EXISTS t_len ON t(length(v))".into(),
            1 => "DROP INDEX IF EXISTS t_len".into(),
            2 if *extra_columns < 5 => {
                *extra_columns += 1;
                format!("ALTER TABLE t ADD COLUMN c{} INTEGER DEFAULT {}", extra_columns, rng.below(100))
            }
            _ => format!("CREATE TABLE IF NOT EXISTS side{}(a, b)", rng.below(3)),
        },
        _ => format!("INSERT INTO log(n) VALUES ({})", rng.below(1_000_000)),
    }
}

/// One unit of work: a whole transaction (committed or rolled back), or VACUUM.
fn operation(rng: &mut Rng, next_key: &mut u64, extra_columns: &mut u32) -> String {
    if rng.chance(3) {
        return "VACUUM".into();
    }
    let mut sql = String::from("BEGIN;");
    for _ in 0..1 + rng.below(4) {
        sql += &format!(" {};", statement(rng, next_key, extra_columns));
    }
    if rng.chance(30) {
        sql += " SAVEPOINT sp;";
        for _ in 0..1 + rng.below(3) {
            sql += &format!(" {};", statement(rng, next_key, extra_columns));
        }
        sql += if rng.chance(50) { " ROLLBACK TO sp; RELEASE sp;" } else { " RELEASE sp;" };
    }
    sql += if rng.chance(10) { " ROLLBACK;" } else { " COMMIT;" };
    sql
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS t(k INTEGER PRIMARY KEY, v BLOB);
                      CREATE TABLE IF NOT EXISTS log(id INTEGER PRIMARY KEY, n INTEGER);";

type Dump = Vec<(String, Vec<Vec<Value>>)>;

fn oracle_dump(c: &Connection) -> Dump {
    let mut out = Vec::new();
    let mut s = c
        .prepare("SELECT name, sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY name")
        .unwrap();
    let schema: Vec<(String, Option<String>)> =
        s.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect();
    out.push((
        "schema".into(),
        schema
            .iter()
            .map(|(n, q)| vec![Value::Text(n.clone()), q.clone().map_or(Value::Null, Value::Text)])
            .collect(),
    ));
    for table in tables(&schema) {
        let mut s = c.prepare(&format!("SELECT * FROM \"{table}\" ORDER BY rowid")).unwrap();
        let n = s.column_count();
        let rows = s
            .query_map([], |r| (0..n).map(|i| r.get_ref(i).map(oracle_value)).collect::<Result<Vec<_>, _>>())
            .unwrap()
            .map(Result::unwrap)
            .collect();
        out.push((table, rows));
    }
    out
}

fn depot_dump(db: &Database) -> Result<Dump, Error> {
    let (_, schema_rows) = db.query(
        "SELECT name, sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY name",
        Params::None,
    )?;
    let schema: Vec<(String, Option<String>)> = schema_rows
        .iter()
        .map(|r| match (&r[0], &r[1]) {
            (Value::Text(n), Value::Text(q)) => (n.clone(), Some(q.clone())),
            (Value::Text(n), _) => (n.clone(), None),
            other => panic!("unexpected schema row {other:?}"),
        })
        .collect();
    let mut out = vec![("schema".to_string(), schema_rows)];
    for table in tables(&schema) {
        let (_, rows) = db.query(&format!("SELECT * FROM \"{table}\" ORDER BY rowid"), Params::None)?;
        out.push((table, rows));
    }
    Ok(out)
}

fn describe_difference(depot: &Dump, oracle: &Dump) -> String {
    if depot.len() != oracle.len() {
        return format!("{} tables vs {} in the oracle", depot.len(), oracle.len());
    }
    for ((name, a), (_, b)) in depot.iter().zip(oracle) {
        if a.len() != b.len() {
            return format!("{name}: {} rows vs {} in the oracle", a.len(), b.len());
        }
        if let Some(i) = (0..a.len()).find(|&i| a[i] != b[i]) {
            let short = |r: &Vec<Value>| format!("{:?}", r).chars().take(200).collect::<String>();
            return format!("{name}: row {i}: {} vs {}", short(&a[i]), short(&b[i]));
        }
    }
    "no difference found".into()
}

fn tables(schema: &[(String, Option<String>)]) -> Vec<String> {
    schema
        .iter()
        .filter(|(_, sql)| sql.as_deref().is_some_and(|s| s.starts_with("CREATE TABLE")))
        .map(|(n, _)| n.clone())
        .collect()
}

/// Faults the harness injects, by name. Ten failures outlast the client's retries (3 attempts), so
/// the failure reaches SQLite; a single lost reply is absorbed by a retry with the same commit id.
pub const FAULTS: &[&str] = &[
    "read-fails",
    "commit-fails-before-apply",
    "commit-reply-lost-once",
    "commit-reply-lost",
    "store-call-hangs",
    "writer-takeover",
];

/// Opens `chaos` with no fault armed. A call that an earlier hang fault left sleeping may still
/// hold the store past the open's deadline (and a loaded machine may take that long): an open that
/// runs out of time is tried again, never taken for a divergence. The abandoned open goes on in the
/// background and may still claim a writer generation, which would fence the retry's handle: the
/// retry waits it out first (10 deadlines, over 3 hangs).
/// Counts each retry in `report.open_retries`.
fn open_retrying(store: &Arc<dyn PageStore>, opts: OpenOptions, report: &mut ChaosReport) -> Database {
    for _ in 0..5 {
        match Database::open(store.clone(), "chaos", opts.clone()) {
            Err(e) if e.code == ErrorCode::StoreUnavailable => {
                report.open_retries += 1;
                std::thread::sleep(DEADLINE * 10);
            }
            other => return other.expect("open"),
        }
    }
    Database::open(store.clone(), "chaos", opts).expect("open after 5 retries")
}

/// Store calls of the harness have this deadline; a hanging call sleeps past it.
const DEADLINE: std::time::Duration = std::time::Duration::from_millis(100);

struct Run {
    store: Arc<FaultStore>,
    /// `store` behind per-call deadlines: what the database uses.
    bounded: Arc<dyn PageStore>,
    db: Database,
    oracle: Connection,
    report: ChaosReport,
    seed: u64,
    /// The fault armed for the current operation, until it is counted and disarmed.
    armed: Option<&'static str>,
    /// Another writer took over since our handle opened: its next write is refused (ERR_FENCED),
    /// which is then the takeover firing, not a divergence.
    taken_over: bool,
}

impl Run {
    fn open(store: &Arc<dyn PageStore>, report: &mut ChaosReport) -> Database {
        // A small cache so that reads reach the store (and its faults) often.
        let opts = OpenOptions { generation: None, cache_bytes: 64 << 10, ..Default::default() };
        let db = open_retrying(store, opts, report);
        db.exec("PRAGMA cache_size = 16").expect("pragma");
        db
    }

    fn reopen(&mut self) {
        if std::env::var_os("CHAOS_TRACE").is_some() {
            eprintln!("reopen");
        }
        let _ = self.db.close();
        self.db = Run::open(&self.bounded, &mut self.report);
        self.taken_over = false;
        self.report.reopens += 1;
    }

    fn check(&mut self, context: &str) {
        self.report.checks += 1;
        match self.db.query("PRAGMA integrity_check", Params::None) {
            Ok((_, rows)) if rows == vec![vec![Value::Text("ok".into())]] => {}
            other => self
                .report
                .divergences
                .push(format!("seed {}: {context}: integrity_check {other:?}", self.seed)),
        }
        match depot_dump(&self.db) {
            Ok(d) if d == oracle_dump(&self.oracle) => {}
            Ok(d) => {
                let o = oracle_dump(&self.oracle);
                self.report.divergences.push(format!(
                    "seed {}: {context}: dump differs from the oracle: {}",
                    self.seed,
                    describe_difference(&d, &o)
                ));
            }
            Err(e) => {
                self.report.divergences.push(format!("seed {}: {context}: dump failed: {e}", self.seed))
            }
        }
    }

    /// Runs `sql` on the depot; on success on the oracle too. On a store failure, finds out (after a
    /// reopen) whether the depot holds the state before or after `sql`, and brings the oracle along.
    fn apply(&mut self, sql: &str, fault: Option<&str>) {
        self.report.operations += 1;
        let outcome = self.db.exec(sql);
        if std::env::var_os("CHAOS_TRACE").is_some() {
            let shape: String = sql
                .split(';')
                .map(|st| st.trim().split(' ').take(3).collect::<Vec<_>>().join(" "))
                .collect::<Vec<_>>()
                .join("; ");
            eprintln!("op {:?} fault {fault:?}: {shape}", outcome.as_ref().err().map(|e| e.to_string()));
        }
        match outcome {
            Ok(()) => {
                if let Err(e) = self.oracle.execute_batch(sql) {
                    self.report
                        .divergences
                        .push(format!("seed {}: oracle failed where the depot succeeded: {e}", self.seed));
                }
            }
            Err(e) if e.code() == "ERR_FENCED" && self.taken_over => {
                *self.report.faults.entry("writer-takeover").or_default() += 1;
                self.recover(sql);
            }
            // Real time runs on: a store call can miss the deadline with no fault armed when the
            // machine is loaded (reported as the miss itself, or, once a retry of the same commit
            // id finds it applied, as a commit whose reply was lost). Recovered (reopened and
            // checked for a whole state) like a fault, and counted; the tests bound the count.
            Err(e) if fault.is_none() && e.code() == "ERR_STORE_UNAVAILABLE" => {
                self.report.deadline_misses += 1;
                self.recover(sql);
            }
            // Otherwise, without a fault, any error is a divergence (the oracle ran the SQL fine).
            Err(e) if fault.is_none() => {
                self.report.divergences.push(format!(
                    "seed {}: unexpected error {e} for {}",
                    self.seed,
                    &sql[..sql.len().min(120)]
                ));
                let _ = self.db.exec("ROLLBACK");
            }
            Err(_) => self.recover(sql),
        }
    }

    /// After a failed `sql`: reopens, and finds out whether the depot holds the state before or
    /// after it, bringing the oracle along.
    fn recover(&mut self, sql: &str) {
        let _ = self.db.exec("ROLLBACK");
        self.disarm();
        self.reopen();
        let before = oracle_dump(&self.oracle);
        match depot_dump(&self.db) {
            Ok(d) if d == before => {}
            Ok(d) => {
                // Not the state before: it must be the state after, whole.
                let _ = self.oracle.execute_batch(sql);
                if d != oracle_dump(&self.oracle) {
                    self.report.divergences.push(format!(
                        "seed {}: after a failed commit the depot is neither before nor after",
                        self.seed
                    ));
                } else {
                    self.report.unknown_outcomes += 1;
                }
            }
            Err(e) => {
                self.report.divergences.push(format!("seed {}: dump after reopen failed: {e}", self.seed))
            }
        }
    }

    /// Counts whether the armed fault fired, and disarms it.
    fn disarm(&mut self) {
        if let Some(fault) = self.armed.take() {
            let (counter, armed) = fault_counter(&self.store, fault);
            if counter.swap(0, Ordering::SeqCst) < armed {
                *self.report.faults.entry(fault).or_default() += 1;
            }
        }
    }

    /// Arms `fault` on the store: the next calls of its kind fail.
    fn arm(&mut self, fault: &'static str) {
        self.armed = Some(fault);
        self.store.faults.hang_ms.store(DEADLINE.as_millis() as u64 * 3, Ordering::SeqCst);
        let (counter, armed) = fault_counter(&self.store, fault);
        counter.store(armed, Ordering::SeqCst);
    }
}

/// The store's counter behind `fault`, and how many failures arming it sets: ten outlast the
/// client's retries; one is absorbed by a retry.
fn fault_counter<'a>(store: &'a FaultStore, fault: &str) -> (&'a AtomicU32, u32) {
    let f = &store.faults;
    match fault {
        "read-fails" => (&f.fail_reads, 10),
        "commit-fails-before-apply" => (&f.fail_commits_before, 10),
        "store-call-hangs" => (&f.hang_calls, 1),
        "commit-reply-lost-once" => (&f.lose_commit_replies, 1),
        "commit-reply-lost" => (&f.lose_commit_replies, 10),
        other => unreachable!("fault {other} has no counter"),
    }
}

/// Runs `ops` random operations of seed `seed` on a PostgreSQL store at `url`, in a fresh schema.
pub fn run_seed_postgres(seed: u64, ops: usize, url: &str) -> ChaosReport {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    let options = depot::PostgresStoreOptions {
        schema: format!("chaos_{}_{seed}_{nanos}", std::process::id()),
        retry_for: std::time::Duration::from_secs(2),
        ..Default::default()
    };
    let store = depot::PostgresStore::open(url, options).expect("PostgreSQL store for the chaos harness");
    run_on(seed, ops, Arc::new(store))
}

/// Runs `ops` random operations of seed `seed` on `backend`.
pub fn run_seed(seed: u64, ops: usize, backend: ChaosBackend) -> ChaosReport {
    let dir: Option<PathBuf> = match backend {
        ChaosBackend::Memory => None,
        ChaosBackend::File => {
            let d = std::env::temp_dir().join(format!(
                "depot-chaos-{}-{seed}-{}",
                std::process::id(),
                NEXT_DIR.fetch_add(1, Ordering::Relaxed)
            ));
            Some(d)
        }
    };
    let inner: Arc<dyn PageStore> = match &dir {
        None => Arc::new(MemoryStore::new()),
        Some(d) => Arc::new(FileStore::open(d, FileStoreOptions::default()).expect("file store")),
    };
    let report = run_on(seed, ops, inner);
    if let Some(d) = dir {
        let _ = std::fs::remove_dir_all(d);
    }
    report
}

fn run_on(seed: u64, ops: usize, inner: Arc<dyn PageStore>) -> ChaosReport {
    let store = Arc::new(FaultStore::new(inner));
    let bounded: Arc<dyn PageStore> = Arc::new(DeadlineStore::new(store.clone(), DEADLINE));
    let mut report = ChaosReport { seeds: 1, ..Default::default() };
    let db = Run::open(&bounded, &mut report);
    let mut run = Run {
        store,
        bounded,
        db,
        oracle: Connection::open_in_memory().unwrap(),
        report,
        seed,
        armed: None,
        taken_over: false,
    };
    run.db.exec(SCHEMA).unwrap();
    run.oracle.execute_batch(SCHEMA).unwrap();
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let (mut next_key, mut extra_columns) = (0u64, 0u32);
    for i in 0..ops {
        let sql = operation(&mut rng, &mut next_key, &mut extra_columns);
        if rng.chance(4) {
            run.reopen();
        }
        if rng.chance(12) {
            let fault = FAULTS[rng.below(FAULTS.len() as u64) as usize];
            if fault == "writer-takeover" {
                // Another writer opens with a newer generation (and leaves): ours is fenced.
                let other = open_retrying(&run.bounded, OpenOptions::default(), &mut run.report);
                let _ = other.close();
                // It fires when our next write is refused (now, or at a later write).
                run.taken_over = true;
                run.apply(&sql, Some(fault));
            } else {
                run.arm(fault);
                run.apply(&sql, Some(fault));
                run.disarm();
            }
            run.check(&format!("op {i} after fault {fault}"));
        } else {
            run.apply(&sql, None);
            if i % 25 == 24 {
                run.check(&format!("op {i}"));
            }
        }
    }
    run.reopen();
    run.check("end, after reopen");
    let _ = run.db.close();
    std::mem::take(&mut run.report)
}

static NEXT_DIR: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A value read from the oracle (plain rusqlite) in the core's terms.
fn oracle_value(v: rusqlite::types::ValueRef<'_>) -> Value {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}
