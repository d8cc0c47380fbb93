//! A seeded chaos harness (test-hooks only): random workloads against a depot-backed database and,
//! in lockstep, against an oracle (a plain in-memory SQLite), with store faults injected at named
//! points. After every fault the depot database must pass `integrity_check` and its canonical dump
//! must equal the oracle's. A commit whose outcome was unknown must turn out wholly applied or
//! wholly absent.
//!
//! Time is simulated: every store stack of a run reads a [`VirtualClock`], so an injected hang, a
//! store deadline and a retry's backoff cost no wall time, and a store call that is really working
//! never misses its deadline because the machine is slow (see `depot::clock`). A seed expands into a
//! [`Plan`] (a list of steps) first; the run executes the plan, so a diverging plan can be shrunk
//! ([`shrink`]) and written out and replayed ([`Plan::to_text`], [`Plan::from_text`]).
//!
//! Each *incarnation* of the writer (every open) gets a store stack of its own over the one backend:
//! a crash fault kills that stack mid-commit (nothing it does reaches the backend any more, as with
//! a process that died), and the next incarnation must see exactly the acknowledged commits, plus
//! the one in flight whole or not at all.
//!
//! The database has one snapshot reader: the dumps compared with the oracle are reads outside any
//! transaction, so they run on it, pinned to the newest head and reading through the same faulty
//! stack as the writer (read faults hit `read_at` too).
//!
//! Restores and forks run in the same plans (`RESTORE k`, `FORK k`: to the point `k` steps back
//! among the last [`MARKS`]) under the same faults: the oracle keeps every state it passed through
//! as a tree of scripts, so the state at any earlier point can be rebuilt and compared. A restore or
//! fork whose outcome was not reported must turn out made whole or not at all.
//!
//! `tests/chaos.rs` runs a fixed slice of seeds and one chosen by the commit; `npm run soak` (the
//! `soak` example) runs as many as asked and shrinks any diverging seed.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use depot::fault::FaultStore;
use depot::{
    Clock, CommitOutcome, CommitRequest, DeadlineStore, FileStore, FileStoreOptions, MemoryStore, Opened,
    Page, PageNo, PageStore, Retention, StoreError, Txid, VirtualClock,
};
use rusqlite::Connection;

use depot_client::{Behavior, CallOptions, Command, Database, Error, ErrorCode, OpenOptions, Params, Value};

/// Which store backs the depot side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChaosBackend {
    Memory,
    File,
    Postgres,
}

impl ChaosBackend {
    pub fn parse(name: &str) -> Option<ChaosBackend> {
        match name {
            "memory" => Some(ChaosBackend::Memory),
            "file" => Some(ChaosBackend::File),
            "postgres" => Some(ChaosBackend::Postgres),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ChaosBackend::Memory => "memory",
            ChaosBackend::File => "file",
            ChaosBackend::Postgres => "postgres",
        }
    }
}

/// A bug planted on purpose, to show that the harness catches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlantedBug {
    /// The store acknowledges a commit at once and applies it only when its next call comes in (or
    /// the incarnation ends); a fault that hits that late apply loses the acknowledged commit.
    AckBeforeApply,
}

/// Where a run happens.
#[derive(Debug, Clone)]
pub struct Target {
    pub backend: ChaosBackend,
    /// For [`ChaosBackend::Postgres`].
    pub postgres_url: Option<String>,
    pub planted: Option<PlantedBug>,
}

impl Target {
    pub fn new(backend: ChaosBackend) -> Target {
        Target { backend, postgres_url: None, planted: None }
    }

    pub fn postgres(url: &str) -> Target {
        Target { backend: ChaosBackend::Postgres, postgres_url: Some(url.into()), planted: None }
    }
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
    /// Interactive transactions that ran past their timeout and were rolled back.
    pub timeouts: u64,
    /// Restores and forks made (checked against the oracle's state at their point).
    pub restores: u64,
    pub forks: u64,
    pub reopens: u64,
    pub checks: u64,
    /// Reads answered on the caller's thread from the page cache (each compared with the oracle
    /// like any read): they run only with a history window of at least the snapshot bound.
    pub caller_reads: u64,
    /// Calls that failed with ERR_STORE_UNAVAILABLE with no fault armed. On a virtual clock a store
    /// call that works is never late, so on the memory and file stores this must stay 0; on
    /// PostgreSQL a real connection can still fail for real (each is recovered and checked).
    pub deadline_misses: u64,
    /// Opens that failed with ERR_STORE_UNAVAILABLE with no fault armed, and were tried again.
    pub open_retries: u64,
    /// Virtual time the runs simulated.
    pub simulated: Duration,
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
        self.timeouts += other.timeouts;
        self.restores += other.restores;
        self.forks += other.forks;
        self.reopens += other.reopens;
        self.caller_reads += other.caller_reads;
        self.checks += other.checks;
        self.deadline_misses += other.deadline_misses;
        self.open_retries += other.open_retries;
        self.simulated += other.simulated;
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
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    // Mostly small values, one in eight spilling into overflow pages (up to four of them): the
    // database grows about 1.5 KiB an insert, which keeps each check's full read affordable.
    let len = match rng.below(8) {
        0 | 1 => 0,
        2..=4 => rng.below(64),
        5 | 6 => rng.below(4096),
        _ => 4096 + rng.below(3 * 4096),
    } as usize;
    let mut s = String::with_capacity(3 + 2 * len);
    s.push_str("X'");
    for _ in 0..len {
        let byte = rng.below(256) as usize;
        s.push(HEX[byte >> 4] as char);
        s.push(HEX[byte & 15] as char);
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

/// One unit of work: a whole transaction (committed or rolled back), VACUUM, an interactive
/// transaction (see [`Interactive`]), a restore or a fork.
fn operation(rng: &mut Rng, next_key: &mut u64, extra_columns: &mut u32) -> String {
    if rng.chance(2) {
        return format!("{RESTORE} {}", 1 + rng.below(MARKS as u64));
    }
    if rng.chance(1) {
        return format!("{FORK} {}", 1 + rng.below(MARKS as u64));
    }
    if rng.chance(3) {
        return "VACUUM".into();
    }
    if rng.chance(6) {
        let timeout_ms = [50, 1_000, 60_000][rng.below(3) as usize];
        // Never exactly at the deadline: the pause ends well inside it or well past it.
        let pause_ms = if rng.chance(70) { timeout_ms / 2 } else { timeout_ms * 2 };
        let statements: Vec<String> =
            (0..1 + rng.below(3)).map(|_| statement(rng, next_key, extra_columns)).collect();
        let end = if rng.chance(15) { "ROLLBACK" } else { "COMMIT" };
        return format!("{INTERACTIVE} {timeout_ms} {pause_ms}; {}; {end};", statements.join("; "));
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

/// The first word of an interactive step's text.
const INTERACTIVE: &str = "INTERACTIVE";

/// `RESTORE k`: restore the database to the point `k` steps back (among the last [`MARKS`]).
const RESTORE: &str = "RESTORE";
/// `FORK k`: fork the database at the point `k` steps back into a new database, and check it.
const FORK: &str = "FORK";
/// Points (after a step) a restore or fork may go back to.
const MARKS: usize = 16;

/// The oracle's states as a tree: each node is a script run on its parent's state (the root, None,
/// is the schema alone). A restore moves the current node back; later work branches from there.
#[derive(Default)]
struct States {
    nodes: Vec<(Option<usize>, String)>,
}

impl States {
    fn push(&mut self, parent: Option<usize>, script: &str) -> usize {
        self.nodes.push((parent, script.to_string()));
        self.nodes.len() - 1
    }

    /// A fresh oracle holding the state of `node`.
    fn rebuild(&self, node: Option<usize>) -> Connection {
        let mut path = Vec::new();
        let mut at = node;
        while let Some(n) = at {
            path.push(n);
            at = self.nodes[n].0;
        }
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(SCHEMA).unwrap();
        for n in path.into_iter().rev() {
            // Each script ran on this state before: it runs the same way again.
            let _ = c.execute_batch(&self.nodes[n].1);
        }
        c
    }
}

/// An interactive transaction: `BEGIN IMMEDIATE` with a timeout, its statements one call each, a
/// pause on the simulated clock, then COMMIT or ROLLBACK. A pause past the timeout must end it
/// with ERR_TIMEOUT and nothing applied. Written `INTERACTIVE timeout_ms pause_ms; stmt; ...; END;`.
struct Interactive<'a> {
    timeout: Duration,
    pause: Duration,
    statements: Vec<&'a str>,
    commit: bool,
}

impl<'a> Interactive<'a> {
    fn parse(sql: &'a str) -> Option<Interactive<'a>> {
        let mut parts: Vec<&str> = sql.strip_prefix(INTERACTIVE)?.split(';').map(str::trim).collect();
        if parts.last() == Some(&"") {
            parts.pop();
        }
        let mut times = parts.first()?.split(' ').map(|n| n.parse::<u64>().ok());
        let (Some(Some(timeout)), Some(Some(pause))) = (times.next(), times.next()) else { return None };
        let commit = match *parts.last()? {
            "COMMIT" => true,
            "ROLLBACK" => false,
            _ => return None,
        };
        Some(Interactive {
            timeout: Duration::from_millis(timeout),
            pause: Duration::from_millis(pause),
            statements: parts[1..parts.len() - 1].to_vec(),
            commit,
        })
    }

    /// The same work as one script, for the oracle.
    fn script(&self) -> String {
        format!("BEGIN; {}; {};", self.statements.join("; "), if self.commit { "COMMIT" } else { "ROLLBACK" })
    }
}

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
    "crash-before-apply",
    "crash-after-apply",
];

/// One step of a plan: maybe reopen first, maybe arm a fault, then run one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub reopen: bool,
    pub fault: Option<&'static str>,
    pub sql: String,
}

/// What a seed does, step by step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub steps: Vec<Step>,
}

impl Plan {
    /// The plan of `seed`: `ops` random operations, a reopen before about 4% of them and a fault
    /// armed for about 12%.
    pub fn generate(seed: u64, ops: usize) -> Plan {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let (mut next_key, mut extra_columns) = (0u64, 0u32);
        let steps = (0..ops)
            .map(|_| {
                let sql = operation(&mut rng, &mut next_key, &mut extra_columns);
                let reopen = rng.chance(4);
                let fault = rng.chance(12).then(|| FAULTS[rng.below(FAULTS.len() as u64) as usize]);
                Step { reopen, fault, sql }
            })
            .collect();
        Plan { steps }
    }

    /// One line a step: `reopen|-`, a tab, the fault or `-`, a tab, the SQL (which has neither tabs
    /// nor newlines).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for s in &self.steps {
            out += if s.reopen { "reopen" } else { "-" };
            out.push('\t');
            out += s.fault.unwrap_or("-");
            out.push('\t');
            out += &s.sql;
            out.push('\n');
        }
        out
    }

    pub fn from_text(text: &str) -> Result<Plan, String> {
        let mut steps = Vec::new();
        for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let mut parts = line.splitn(3, '\t');
            let (Some(reopen), Some(fault), Some(sql)) = (parts.next(), parts.next(), parts.next()) else {
                return Err(format!("line {}: expected three tab-separated fields", n + 1));
            };
            let fault = match fault {
                "-" => None,
                name => Some(
                    *FAULTS
                        .iter()
                        .find(|f| **f == name)
                        .ok_or_else(|| format!("line {}: unknown fault '{name}'", n + 1))?,
                ),
            };
            steps.push(Step { reopen: reopen == "reopen", fault, sql: sql.to_string() });
        }
        Ok(Plan { steps })
    }
}

/// Steps between two full checks when no fault fires (every fault is followed by one).
const CHECK_EVERY: usize = 50;

/// Store calls of the harness have this deadline (virtual time); a hanging call sleeps past it.
const DEADLINE: Duration = Duration::from_millis(100);

/// One incarnation's store stack: faults, then deadlines, over the run's backend.
struct Stack {
    faults: Arc<FaultStore>,
    planted: Option<Arc<AckBeforeApply>>,
    bounded: Arc<dyn PageStore>,
}

impl Stack {
    fn new(backend: &Arc<dyn PageStore>, clock: &Arc<dyn Clock>, planted: Option<PlantedBug>) -> Stack {
        let faults = Arc::new(FaultStore::with_clock(backend.clone(), clock.clone()));
        let (planted, below): (Option<Arc<AckBeforeApply>>, Arc<dyn PageStore>) = match planted {
            Some(PlantedBug::AckBeforeApply) => {
                let bug = Arc::new(AckBeforeApply { inner: faults.clone(), queued: Mutex::new(None) });
                (Some(bug.clone()), bug)
            }
            None => (None, faults.clone()),
        };
        let bounded = Arc::new(DeadlineStore::with_clock(below, DEADLINE, clock.clone()));
        Stack { faults, planted, bounded }
    }
}

/// The planted bug [`PlantedBug::AckBeforeApply`].
struct AckBeforeApply {
    inner: Arc<FaultStore>,
    queued: Mutex<Option<CommitRequest>>,
}

impl AckBeforeApply {
    /// Applies the acknowledged commit, if any, before anything else; a failure loses it.
    fn flush(&self) {
        // Not under the lock: a commit may hang on the clock, and a task blocked on a lock that a
        // sleeping task holds would hold simulated time still for good.
        let queued = self.queued.lock().unwrap().take();
        if let Some(request) = queued {
            let _ = self.inner.commit(&request);
        }
    }
}

impl PageStore for AckBeforeApply {
    fn open(
        &self,
        database: &str,
        generation: Option<u64>,
        preload: &[PageNo],
    ) -> Result<Opened, StoreError> {
        self.flush();
        self.inner.open(database, generation, preload)
    }

    fn get_pages(&self, database: &str, pages: &[PageNo], at: Txid) -> Result<Vec<Option<Page>>, StoreError> {
        self.flush();
        self.inner.get_pages(database, pages, at)
    }

    fn commit(&self, request: &CommitRequest) -> Result<CommitOutcome, StoreError> {
        self.flush();
        *self.queued.lock().unwrap() = Some(request.clone());
        Ok(CommitOutcome { txid: request.expected_txid + 1, replayed: false })
    }

    fn describe(&self) -> String {
        format!("ack-before-apply({})", self.inner.describe())
    }

    fn databases(&self) -> Result<Vec<String>, StoreError> {
        self.inner.databases()
    }

    fn clock(&self) -> Arc<dyn Clock> {
        self.inner.clock()
    }

    fn may_wait_on_clock(&self) -> bool {
        self.inner.may_wait_on_clock()
    }
}

struct Run {
    backend: Arc<dyn PageStore>,
    clock: Arc<VirtualClock>,
    planted: Option<PlantedBug>,
    /// The current incarnation's stack.
    stack: Stack,
    db: Database,
    oracle: Connection,
    report: ChaosReport,
    seed: u64,
    /// The fault armed for the current operation, until it is counted and disarmed.
    armed: Option<&'static str>,
    /// Another writer took over since our handle opened: its next write is refused (ERR_FENCED),
    /// which is then the takeover firing, not a divergence.
    taken_over: bool,
    /// The last operation failed and [`Run::recover`] compared the reopened database with the
    /// oracle already: the check after it needs only the integrity check.
    recovered: bool,
    /// Every state the oracle went through, the current one, and the last [`MARKS`] points
    /// (the depot's head txid after a step, and the oracle's state then).
    states: States,
    current: Option<usize>,
    marks: VecDeque<(Txid, Option<usize>)>,
    forks_made: u32,
}

/// Opens `chaos` on `stack`. On a virtual clock an open with no fault armed is never late; on
/// PostgreSQL a real connection may still fail for real, so an open that fails as unavailable is
/// tried again (counted in `report.open_retries`).
fn open_on(stack: &Stack, clock: &dyn Clock, opts: OpenOptions, report: &mut ChaosReport) -> Database {
    for _ in 0..5 {
        match Database::open(stack.bounded.clone(), "chaos", opts.clone()) {
            Err(e) if e.code == ErrorCode::StoreUnavailable => {
                report.open_retries += 1;
                clock.sleep(DEADLINE * 10);
            }
            other => return other.expect("open"),
        }
    }
    Database::open(stack.bounded.clone(), "chaos", opts).expect("open after 5 retries")
}

fn trace() -> bool {
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("CHAOS_TRACE").is_some())
}

impl Run {
    fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    fn open(stack: &Stack, clock: &dyn Clock, report: &mut ChaosReport) -> Database {
        // A small cache so that reads reach the store (and its faults) often.
        let opts = OpenOptions {
            generation: None,
            cache_bytes: std::env::var("CHAOS_CACHE").ok().and_then(|s| s.parse().ok()).unwrap_or(64 << 10),
            // One snapshot reader: the dumps compared with the oracle after every fault are
            // SELECTs outside any transaction, so they run on it (never on the idle writer),
            // through the same faulty stack.
            readers: 1,
            reads_on_idle_writer: false,
            ..Default::default()
        };
        let db = open_on(stack, clock, opts, report);
        db.exec("PRAGMA cache_size = 16").expect("pragma");
        db
    }

    /// Ends this incarnation and starts the next one, on a new stack.
    fn reopen(&mut self) {
        if trace() {
            eprintln!("reopen");
        }
        self.report.caller_reads += self.db.metrics().counters.caller_reads;
        let _ = self.db.close();
        if let Some(bug) = &self.stack.planted {
            // The incarnation finishes its background work before it goes: only a fault that hits
            // the late apply loses the acknowledged commit.
            bug.flush();
        }
        self.stack = Stack::new(&self.backend, &self.clock(), self.planted);
        self.db = Run::open(&self.stack, &*self.clock, &mut self.report);
        self.taken_over = false;
        self.report.reopens += 1;
    }

    fn check(&mut self, context: &str) {
        self.report.checks += 1;
        let compared = std::mem::take(&mut self.recovered);
        match self.db.query("PRAGMA integrity_check", Params::None) {
            Ok((_, rows)) if rows == vec![vec![Value::Text("ok".into())]] => {}
            other => self
                .report
                .divergences
                .push(format!("seed {}: {context}: integrity_check {other:?}", self.seed)),
        }
        if compared {
            return;
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

    /// Runs `sql` on the oracle, recording the state it leads to.
    fn oracle_apply(&mut self, sql: &str) -> rusqlite::Result<()> {
        let result = self.oracle.execute_batch(sql);
        self.current = Some(self.states.push(self.current, sql));
        result
    }

    /// Makes the oracle hold the state of `node`.
    fn oracle_to(&mut self, node: Option<usize>) {
        self.oracle = self.states.rebuild(node);
        self.current = node;
    }

    /// The point `back` steps back among the marks (the oldest one kept if fewer).
    fn mark(&self, back: usize) -> Option<(Txid, Option<usize>)> {
        let i = self.marks.len().saturating_sub(back.max(1));
        self.marks.get(i).copied()
    }

    /// `RESTORE back`: restores the database to a mark. Our writer is fenced by it, so a new
    /// incarnation follows; the depot must then hold the mark's state, or (when the restore
    /// failed) the state before or the mark's, whole.
    fn restore(&mut self, back: usize) {
        let Some((txid, node)) = self.mark(back) else { return };
        let outcome = depot_client::history::restore(&*self.stack.bounded, "chaos", txid, None);
        if trace() {
            eprintln!("restore to txid {txid}: {:?}", outcome.as_ref().map(|r| r.txid));
        }
        self.disarm();
        self.reopen();
        match outcome {
            Ok(_) => {
                self.report.restores += 1;
                self.oracle_to(node);
            }
            Err(e) => {
                let after = self.states.rebuild(node);
                match depot_dump(&self.db) {
                    Ok(d) if d == oracle_dump(&self.oracle) => {}
                    Ok(d) if d == oracle_dump(&after) => {
                        self.report.unknown_outcomes += 1;
                        self.oracle_to(node);
                    }
                    other => self.report.divergences.push(format!(
                        "seed {}: a failed restore ({e}) left neither the state before nor the restored one: {:?}",
                        self.seed,
                        other.map(|d| describe_difference(&d, &oracle_dump(&after)))
                    )),
                }
            }
        }
        self.check("after a restore");
    }

    /// `FORK back`: forks the database at a mark into a new one, whose content must be the mark's
    /// state; a fork that failed left no database, or a whole one.
    fn fork(&mut self, back: usize) {
        let Some((txid, node)) = self.mark(back) else { return };
        let target = format!("chaos-fork-{}", self.forks_made);
        self.forks_made += 1;
        let outcome = depot_client::history::fork(&*self.stack.bounded, "chaos", &target, Some(txid));
        self.disarm();
        let exists = self.backend.history(&target, 1, None).is_ok();
        match (&outcome, exists) {
            (Ok(_), true) => self.report.forks += 1,
            (Err(_), false) => return,
            (Err(_), true) => self.report.unknown_outcomes += 1,
            (Ok(_), false) => {
                self.report
                    .divergences
                    .push(format!("seed {}: fork {target} succeeded but is not there", self.seed));
                return;
            }
        }
        // Checked on a stack of its own, without faults.
        let stack = Stack::new(&self.backend, &self.clock(), None);
        let fork =
            Database::open(stack.bounded.clone(), &target, OpenOptions { readers: 0, ..Default::default() })
                .expect("open the fork");
        let expected = oracle_dump(&self.states.rebuild(node));
        match depot_dump(&fork) {
            Ok(d) if d == expected => {}
            other => self.report.divergences.push(format!(
                "seed {}: fork {target} at txid {txid} ({outcome:?}) differs from its point: {:?}",
                self.seed,
                other.map(|d| describe_difference(&d, &expected))
            )),
        }
        let _ = fork.close();
    }

    /// Runs `sql` on the depot; on success on the oracle too. On a store failure, finds out (after a
    /// reopen) whether the depot holds the state before or after `sql`, and brings the oracle along.
    fn apply(&mut self, sql: &str, fault: Option<&str>) {
        self.report.operations += 1;
        let back = |rest: &str| rest.trim().parse::<usize>().unwrap_or(1);
        if let Some(rest) = sql.strip_prefix(RESTORE) {
            return self.restore(back(rest));
        }
        if let Some(rest) = sql.strip_prefix(FORK) {
            return self.fork(back(rest));
        }
        let (outcome, sql) = match Interactive::parse(sql) {
            Some(tx) => match self.interactive(&tx) {
                // Ran past its timeout: rolled back, as the oracle's script that rolls back.
                Err(e) if tx.pause > tx.timeout && e.code == ErrorCode::Timeout => {
                    self.report.timeouts += 1;
                    (Ok(()), "SELECT 1".to_string())
                }
                other => (other, tx.script()),
            },
            None => (self.db.exec(sql), sql.to_string()),
        };
        let sql = sql.as_str();
        if trace() {
            let shape: String = sql
                .split(';')
                .map(|st| st.trim().split(' ').take(3).collect::<Vec<_>>().join(" "))
                .collect::<Vec<_>>()
                .join("; ");
            eprintln!("op {:?} fault {fault:?}: {shape}", outcome.as_ref().err().map(|e| e.to_string()));
        }
        match outcome {
            Ok(()) => {
                if let Err(e) = self.oracle_apply(sql) {
                    self.report
                        .divergences
                        .push(format!("seed {}: oracle failed where the depot succeeded: {e}", self.seed));
                }
            }
            Err(e) if e.code() == "ERR_FENCED" && self.taken_over => {
                *self.report.faults.entry("writer-takeover").or_default() += 1;
                self.recover(sql);
            }
            // Only a real store (PostgreSQL) can fail with no fault armed: recovered like a fault,
            // counted, and bounded by the tests.
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

    /// Runs an interactive transaction; on any error it is rolled back (so no call queues behind
    /// it) and the error returned. A pause past the timeout must fail the END with ERR_TIMEOUT.
    fn interactive(&mut self, tx: &Interactive) -> Result<(), Error> {
        let id = self.db.begin(Behavior::Immediate, Some(tx.timeout))?;
        let in_tx = CallOptions { transaction: Some(id), ..Default::default() };
        let body = tx.statements.iter().try_for_each(|sql| {
            self.db.call_blocking(Command::Exec { sql: sql.to_string() }, &in_tx).map(drop)
        });
        if let Err(e) = body {
            let ended = self.db.end(id, false);
            if trace() {
                eprintln!("interactive body failed: {e}; rollback: {ended:?}");
            }
            return Err(e);
        }
        self.clock.sleep(tx.pause);
        let ended = self.db.end(id, tx.commit);
        if tx.pause > tx.timeout && ended.is_ok() {
            self.report.divergences.push(format!(
                "seed {}: a transaction paused {:?}, past its {:?} timeout, still ended",
                self.seed, tx.pause, tx.timeout
            ));
        }
        ended
    }

    /// After a failed `sql`: reopens, and finds out whether the depot holds the state before or
    /// after it, bringing the oracle along.
    fn recover(&mut self, sql: &str) {
        let _ = self.db.exec("ROLLBACK");
        self.disarm();
        self.reopen();
        self.recovered = true;
        let before = oracle_dump(&self.oracle);
        match depot_dump(&self.db) {
            Ok(d) if d == before => {}
            Ok(d) => {
                // Not the state before: it must be the state after, whole.
                let _ = self.oracle_apply(sql);
                if d != oracle_dump(&self.oracle) {
                    self.report.divergences.push(format!(
                        "seed {}: after a failed commit the depot is neither before nor after: {}",
                        self.seed,
                        describe_difference(&d, &oracle_dump(&self.oracle))
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
            let (counter, armed) = fault_counter(&self.stack.faults, fault);
            if counter.swap(0, Ordering::SeqCst) < armed {
                *self.report.faults.entry(fault).or_default() += 1;
            }
        }
    }

    /// Arms `fault` on the current stack: the next calls of its kind fail.
    fn arm(&mut self, fault: &'static str) {
        self.armed = Some(fault);
        let faults = &self.stack.faults.faults;
        faults.hang_ms.store(DEADLINE.as_millis() as u64 * 3, Ordering::SeqCst);
        faults.crash_applies.store(fault == "crash-after-apply", Ordering::SeqCst);
        let (counter, armed) = fault_counter(&self.stack.faults, fault);
        counter.store(armed, Ordering::SeqCst);
    }

    fn step(&mut self, i: usize, step: &Step) {
        self.recovered = false;
        if step.reopen {
            self.reopen();
        }
        match step.fault {
            Some("writer-takeover") => {
                // Another writer opens with a newer generation (and leaves): ours is fenced.
                let stack = Stack::new(&self.backend, &self.clock(), None);
                let other = open_on(
                    &stack,
                    &*self.clock,
                    OpenOptions { readers: 0, ..Default::default() },
                    &mut self.report,
                );
                let _ = other.close();
                // It fires when our next write is refused (now, or at a later write).
                self.taken_over = true;
                self.apply(&step.sql, step.fault);
            }
            Some(fault) => {
                self.arm(fault);
                self.apply(&step.sql, Some(fault));
                self.disarm();
                if self.stack.faults.faults.dead.load(Ordering::SeqCst) {
                    // A crash that fired on a commit the operation did not wait for (none today),
                    // or whose error was absorbed: the incarnation is gone all the same.
                    self.recover(&step.sql);
                }
            }
            None => self.apply(&step.sql, None),
        }
        if let Some(fault) = step.fault {
            self.check(&format!("step {i} after fault {fault}"));
        } else if i % CHECK_EVERY == CHECK_EVERY - 1 {
            self.check(&format!("step {i}"));
        }
        self.marks.push_back((self.db.metrics().counters.head_txid, self.current));
        if self.marks.len() > MARKS {
            self.marks.pop_front();
        }
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
        "crash-before-apply" | "crash-after-apply" => (&f.crash_commits, 1),
        other => unreachable!("fault {other} has no counter"),
    }
}

/// History every backend keeps, so that every mark stays reachable. The hour also spares snapshot
/// pins their store leases (a window at least the 5-minute snapshot bound), which lets reads run on
/// the caller's thread, so those are checked against the oracle under faults too.
const HISTORY: Retention = Retention { ms: 3_600_000, txids: 100_000 };

static NEXT_DIR: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A fresh backend for one run, and what to remove after it.
fn backend(seed: u64, target: &Target) -> (Arc<dyn PageStore>, Option<PathBuf>) {
    match target.backend {
        ChaosBackend::Memory => (Arc::new(MemoryStore::with_retention(HISTORY)), None),
        ChaosBackend::File => {
            let dir = std::env::temp_dir().join(format!(
                "depot-chaos-{}-{seed}-{}",
                std::process::id(),
                NEXT_DIR.fetch_add(1, Ordering::Relaxed)
            ));
            let options = FileStoreOptions { history_ms: HISTORY.ms, history_txids: HISTORY.txids };
            let store = FileStore::open(&dir, options).expect("file store");
            (Arc::new(store), Some(dir))
        }
        ChaosBackend::Postgres => {
            let url = target.postgres_url.as_deref().expect("a PostgreSQL target names its URL");
            let options = depot::PostgresStoreOptions {
                schema: format!(
                    "chaos_{}_{seed}_{}",
                    std::process::id(),
                    NEXT_DIR.fetch_add(1, Ordering::Relaxed)
                ),
                retry_for: Duration::from_secs(2),
                retention: HISTORY,
                ..Default::default()
            };
            let store =
                depot::PostgresStore::open(url, options).expect("PostgreSQL store for the chaos harness");
            (Arc::new(store), None)
        }
    }
}

/// Runs `plan` (as seed `seed`, for the messages) on a fresh backend of `target`.
pub fn run_plan(seed: u64, plan: &Plan, target: &Target) -> ChaosReport {
    let (store, dir) = backend(seed, target);
    let clock = Arc::new(VirtualClock::new());
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let stack = Stack::new(&store, &dyn_clock, target.planted);
    let mut report = ChaosReport { seeds: 1, ..Default::default() };
    let db = Run::open(&stack, &*dyn_clock, &mut report);
    let mut run = Run {
        backend: store,
        clock,
        planted: target.planted,
        stack,
        db,
        oracle: Connection::open_in_memory().unwrap(),
        report,
        seed,
        armed: None,
        taken_over: false,
        recovered: false,
        states: States::default(),
        current: None,
        marks: VecDeque::new(),
        forks_made: 0,
    };
    run.db.exec(SCHEMA).unwrap();
    run.oracle.execute_batch(SCHEMA).unwrap();
    for (i, step) in plan.steps.iter().enumerate() {
        run.step(i, step);
    }
    run.reopen();
    run.check("end, after reopen");
    run.report.caller_reads += run.db.metrics().counters.caller_reads;
    let _ = run.db.close();
    run.report.simulated = run.clock.elapsed();
    // Threads that a hang or a crash left parked on the clock wake up and end.
    run.clock.finish();
    let report = std::mem::take(&mut run.report);
    drop(run);
    if let Some(d) = dir {
        let _ = std::fs::remove_dir_all(d);
    }
    report
}

/// Runs `ops` random operations of seed `seed` on `backend`.
pub fn run_seed(seed: u64, ops: usize, backend: ChaosBackend) -> ChaosReport {
    run_plan(seed, &Plan::generate(seed, ops), &Target::new(backend))
}

/// Runs `ops` random operations of seed `seed` on a PostgreSQL store at `url`, in a fresh schema.
pub fn run_seed_postgres(seed: u64, ops: usize, url: &str) -> ChaosReport {
    run_plan(seed, &Plan::generate(seed, ops), &Target::postgres(url))
}

/// A smaller plan that still diverges: removes chunks of steps (halves, then quarters, down to
/// single steps) as long as the run still diverges, within `runs` runs. `plan` must diverge.
pub fn shrink(seed: u64, plan: &Plan, target: &Target, mut runs: usize) -> Plan {
    let mut best = plan.steps.clone();
    let mut chunk = best.len().div_ceil(2).max(1);
    while runs > 0 {
        let mut removed_any = false;
        let mut start = 0;
        while start < best.len() && runs > 0 {
            let end = (start + chunk).min(best.len());
            let candidate: Vec<Step> = best[..start].iter().chain(&best[end..]).cloned().collect();
            runs -= 1;
            if !run_plan(seed, &Plan { steps: candidate.clone() }, target).divergences.is_empty() {
                best = candidate;
                removed_any = true;
            } else {
                start = end;
            }
        }
        if chunk == 1 && !removed_any {
            break;
        }
        if !removed_any {
            chunk = chunk.div_ceil(2);
        }
    }
    Plan { steps: best }
}

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
