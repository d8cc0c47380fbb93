//! Opening the SQLite connection over the depot VFS, with durability settings pinned.
//!
//! Invariant pinned-durability (ARCHITECTURE.md): user SQL cannot switch off what keeps acknowledged writes safe. The settings below
//! keep SQLite on the batch-atomic path (one transaction = one store commit); an authorizer refuses
//! pragmas that would leave it, ATTACH of anything but an in-memory database, and extension loading
//! (also compiled out with SQLITE_OMIT_LOAD_EXTENSION).

use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::{ffi, Connection, OpenFlags};

use crate::control::{Running, Stop};
use crate::{Error, ErrorCode};

/// Pragmas whose value user SQL may read but never set.
const PINNED_PRAGMAS: &[&str] = &[
    "journal_mode",
    "locking_mode",
    "page_size",
    "cache_spill",
    "writable_schema",
    "mmap_size",
    "temp_store_directory",
    "data_store_directory",
];

/// The reason for the last refusal, to turn SQLite's bare "not authorized" into a useful message.
pub type Denial = Arc<Mutex<Option<String>>>;

/// Whether a row with rowid `i64::MIN` was inserted since the watch was armed. The statement
/// runner marks "no row inserted" by setting the connection's last insert rowid to `i64::MIN`
/// before a statement; when it reads `i64::MIN` back, this tells a real insert of that rowid from
/// no insert at all.
#[derive(Clone, Default)]
pub struct MinRowidWatch(Arc<AtomicBool>);

impl MinRowidWatch {
    pub fn arm(&self) {
        self.0.store(false, Ordering::Relaxed);
    }

    pub fn seen(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// SQLite's update hook: one comparison per changed row.
unsafe extern "C" fn on_row_change(
    arg: *mut c_void,
    op: c_int,
    _: *const c_char,
    _: *const c_char,
    rowid: i64,
) {
    if op == ffi::SQLITE_INSERT && rowid == i64::MIN {
        // SAFETY: `arg` is the watch's flag, kept alive by the session until the connection closes.
        (*(arg as *const AtomicBool)).store(true, Ordering::Relaxed);
    }
}

/// An open connection and what it reports on the side.
pub struct Opened {
    pub conn: Connection,
    pub denial: Denial,
    /// Set once SQL created a TEMP object or attached a database: something that lives in this
    /// connection only, which a snapshot reader's connection cannot see.
    pub local_objects: Arc<AtomicBool>,
    /// Set once SQL changed a setting that changes what reads answer (see [`READ_SETTINGS`]):
    /// a snapshot reader's connection does not have it.
    pub read_settings: Arc<AtomicBool>,
    /// Must outlive `conn` (the update hook points at it).
    pub min_rowid: MinRowidWatch,
}

pub fn open(database: &str, vfs: &str, running: Running, read_only: bool) -> Result<Opened, Error> {
    // No SQLITE_OPEN_URI: a URI could name another VFS and reach the local filesystem.
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags_and_vfs(database, flags, vfs)?;
    if read_only {
        // Nothing is ever written: the batch-atomic write path a writer needs does not apply.
        conn.execute_batch("PRAGMA temp_store = MEMORY; PRAGMA foreign_keys = ON;")?;
        return finish(conn, running);
    }
    conn.execute_batch(
        "PRAGMA page_size = 4096;
         PRAGMA locking_mode = EXCLUSIVE;
         PRAGMA journal_mode = MEMORY;
         PRAGMA cache_spill = OFF;
         PRAGMA synchronous = NORMAL;
         PRAGMA temp_store = MEMORY;
         PRAGMA foreign_keys = ON;",
    )?;
    verify_batch_atomic(&conn)?;
    finish(conn, running)
}

/// Gives up SQLite's lookaside allocator on `conn`: slots for small allocations, reserved per
/// connection, which took about half of the memory of a read-only connection that runs a read
/// now and then (93 -> 48 KiB measured per idle database). Only while nothing uses them (just
/// after open); a connection still using them keeps them, which costs memory only.
pub fn without_lookaside(conn: &Connection) {
    // SAFETY: a live connection handle; LOOKASIDE takes a buffer pointer (none: SQLite allocates),
    // a slot size and a slot count, and with a count of 0 turns lookaside off.
    unsafe {
        ffi::sqlite3_db_config(
            conn.handle(),
            ffi::SQLITE_DBCONFIG_LOOKASIDE,
            std::ptr::null_mut::<c_void>(),
            0 as c_int,
            0 as c_int,
        )
    };
}

/// The guards every connection gets: the authorizer, the progress handler, the rowid watch.
fn finish(mut conn: Connection, running: Running) -> Result<Opened, Error> {
    let denial: Denial = Arc::new(Mutex::new(None));
    let d = denial.clone();
    let local_objects = Arc::new(AtomicBool::new(false));
    let local = local_objects.clone();
    let read_settings = Arc::new(AtomicBool::new(false));
    let settings = read_settings.clone();
    conn.authorizer(Some(move |ctx: AuthContext<'_>| match refusal(&ctx) {
        Some(why) => {
            *d.lock().unwrap() = Some(why);
            Authorization::Deny
        }
        None => {
            if creates_local_object(&ctx) {
                local.store(true, Ordering::Relaxed);
            }
            if changes_read_setting(&ctx) {
                settings.store(true, Ordering::Relaxed);
            }
            Authorization::Allow
        }
    }))?;
    // Cancellation and deadlines of the running call are checked every few thousand VM steps.
    conn.progress_handler(
        4000,
        Some(move || running.lock().unwrap().as_ref().is_some_and(|c| c.check() != Stop::None)),
    )?;
    let min_rowid = MinRowidWatch::default();
    // SAFETY: the flag lives in `min_rowid`, which the session drops only after the connection.
    unsafe {
        ffi::sqlite3_update_hook(conn.handle(), Some(on_row_change), Arc::as_ptr(&min_rowid.0) as *mut c_void)
    };
    Ok(Opened { conn, denial, local_objects, read_settings, min_rowid })
}

/// Whether an action makes something that lives in this connection only.
fn creates_local_object(ctx: &AuthContext<'_>) -> bool {
    matches!(
        ctx.action,
        AuthAction::CreateTempTable { .. }
            | AuthAction::CreateTempIndex { .. }
            | AuthAction::CreateTempTrigger { .. }
            | AuthAction::CreateTempView { .. }
            | AuthAction::Attach { .. }
    )
}

/// Connection settings that change the rows a read answers.
const READ_SETTINGS: &[&str] = &["case_sensitive_like", "reverse_unordered_selects", "trusted_schema"];

/// Whether an action sets one of [`READ_SETTINGS`].
fn changes_read_setting(ctx: &AuthContext<'_>) -> bool {
    match ctx.action {
        AuthAction::Pragma { pragma_name, pragma_value: Some(_) } => {
            READ_SETTINGS.iter().any(|s| s.eq_ignore_ascii_case(pragma_name))
        }
        _ => false,
    }
}

/// Why an action is refused, or `None` to allow it.
fn refusal(ctx: &AuthContext<'_>) -> Option<String> {
    match ctx.action {
        AuthAction::Pragma { pragma_name, pragma_value: Some(value) } => {
            let name = pragma_name.to_ascii_lowercase();
            if PINNED_PRAGMAS.contains(&name.as_str()) {
                return Some(format!("PRAGMA {name} is pinned by depot-sqlite and cannot be changed"));
            }
            let v = value.trim_matches(|c| c == '\'' || c == '"').to_ascii_lowercase();
            if name == "synchronous" && (v == "off" || v == "0") {
                return Some("PRAGMA synchronous = OFF would bypass atomic commits and is refused".into());
            }
            None
        }
        AuthAction::Attach { filename } if !(filename.is_empty() || filename == ":memory:") => {
            Some(format!("ATTACH of {filename:?} is refused: only in-memory databases may be attached"))
        }
        AuthAction::Function { function_name } if function_name.eq_ignore_ascii_case("load_extension") => {
            Some("extension loading is disabled".into())
        }
        _ => None,
    }
}

/// The open fails unless every SQLite transaction will reach the store as one commit.
fn verify_batch_atomic(conn: &Connection) -> Result<(), Error> {
    let compiled: bool =
        conn.query_row("SELECT sqlite_compileoption_used('ENABLE_BATCH_ATOMIC_WRITE')", [], |r| r.get(0))?;
    let journal: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    let locking: String = conn.query_row("PRAGMA locking_mode", [], |r| r.get(0))?;
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    let spill: i64 = conn.query_row("PRAGMA cache_spill", [], |r| r.get(0))?;
    if !compiled || journal != "memory" || locking != "exclusive" || page_size != 4096 || spill != 0 {
        return Err(Error::new(
            ErrorCode::Sqlite("SQLITE_MISUSE"),
            format!(
                "the batch-atomic commit path is not in effect (batch atomic compiled: {compiled}, \
                 journal_mode: {journal}, locking_mode: {locking}, page_size: {page_size}, cache_spill: {spill})"
            ),
        ));
    }
    Ok(())
}
