//! Options of one open database (the core's part; the NAPI layer reads them from JavaScript).

/// How long a database waits for a call before it hibernates, by default: long enough that an
/// actor answering requests even every few seconds never pays a wake-up, short enough that the
/// threads and connections of actors that went quiet are given back within a minute.
pub const DEFAULT_IDLE: std::time::Duration = std::time::Duration::from_secs(30);

/// Options of one open database.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Writer generation to claim; `None` claims the next one (fencing every earlier writer).
    pub generation: Option<u64>,
    /// Bytes of the VFS page cache (behind SQLite's own cache).
    pub cache_bytes: usize,
    /// Calls that may be in flight (admitted, and their admission not yet released: see
    /// `crate::admission`); one more is rejected with ERR_OVERLOADED.
    pub max_queue: usize,
    /// Largest transaction, in bytes of pages written; a larger one fails with ERR_TOO_LARGE and
    /// leaves the database as it was.
    pub max_commit_bytes: u64,
    /// Opens a read-only handle on the database as it was at this txid (within the store's
    /// retained history) instead of its writer: nothing is claimed, writes fail `SQLITE_READONLY`,
    /// and every read sees exactly that point while the writer goes on.
    pub at: Option<depot::Txid>,
    /// Hibernate after this long without a call (see `crate::worker`); `None`: never.
    pub idle: Option<std::time::Duration>,
    /// Most snapshot reader threads (see `crate::readers`); 0: every call runs on the writer.
    pub readers: usize,
    /// The longest a reader call or cursor may hold its snapshot (then ERR_TIMEOUT); default
    /// [`crate::readers::SNAPSHOT_MAX_AGE`].
    pub snapshot_max_age: std::time::Duration,
    /// Whether a read that may leave the writer's queue runs on the writer when the writer is
    /// idle (the default: it answers fastest there) rather than on a reader; false sends every
    /// such read to a reader (see `crate::readers`). No effect with `readers: 0`.
    pub reads_on_idle_writer: bool,
    /// Whether a read that would wake a parked idle writer or a reader runs on the caller's thread
    /// instead, when every page it needs is cached and it ends within
    /// `crate::readers::CALLER_BUDGET` (the default; see `crate::readers`), which then runs SQLite:
    /// a caller on an async executor's thread may want it off. No effect with `readers: 0`.
    pub reads_on_caller: bool,
}

/// Snapshot readers per database by default: one on a machine with two or more cores (a reader
/// beside a busy writer needs a core of its own), none on one core.
pub fn default_readers() -> usize {
    match std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) {
        0 | 1 => 0,
        _ => 1,
    }
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            generation: None,
            cache_bytes: 16 << 20,
            max_queue: 128,
            max_commit_bytes: crate::vfs::DEFAULT_MAX_COMMIT_BYTES,
            at: None,
            idle: Some(DEFAULT_IDLE),
            readers: default_readers(),
            snapshot_max_age: crate::readers::SNAPSHOT_MAX_AGE,
            reads_on_idle_writer: true,
            reads_on_caller: true,
        }
    }
}
