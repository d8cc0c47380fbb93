//! What one database's VFS callbacks share, and how a callback finds it.

use std::collections::HashMap;
use std::ffi::{c_char, CStr};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::ffi;

use super::memfile::MemData;
use super::pages::PageSource;

/// Everything one database's VFS callbacks share.
pub struct VfsContext {
    /// The database name; the only main-database file this VFS opens.
    pub database: String,
    source: Mutex<PageSource>,
    pub(super) memfiles: Mutex<HashMap<String, MemData>>,
    /// Set when a callback caught a panic; the worker then treats the database as dead.
    pub panicked: AtomicBool,
}

impl VfsContext {
    pub fn new(database: String, source: PageSource) -> Arc<VfsContext> {
        Arc::new(VfsContext {
            database,
            source: Mutex::new(source),
            memfiles: Mutex::new(HashMap::new()),
            panicked: AtomicBool::new(false),
        })
    }

    /// The page source (a poisoned mutex after a caught panic is still readable).
    pub fn source(&self) -> MutexGuard<'_, PageSource> {
        self.source.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The context of a VFS. SAFETY: `vfs` is one of ours, registered with a live context.
pub(super) unsafe fn context<'a>(vfs: *mut ffi::sqlite3_vfs) -> &'a VfsContext {
    &*((*vfs).pAppData as *const VfsContext)
}

pub(super) unsafe fn name_of(z: *const c_char) -> Option<String> {
    (!z.is_null()).then(|| CStr::from_ptr(z).to_string_lossy().into_owned())
}
