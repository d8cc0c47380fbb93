//! The depot VFS: SQLite's file layer over a page store.
//!
//! Each open database registers its own VFS (named `depot-<n>`) whose app data is that database's
//! [`VfsContext`]. The main database file is backed by a [`PageSource`]; every other file SQLite asks
//! for (journals, temp databases) lives in memory. The VFS advertises `SQLITE_IOCAP_BATCH_ATOMIC`, so
//! with the pinned settings (journal_mode=MEMORY, cache_spill=OFF) SQLite brackets each transaction's
//! writes in BEGIN/COMMIT_ATOMIC_WRITE file controls, which become exactly one store commit.
//!
//! The worker registers the VFS before it opens the connection and unregisters it after the
//! connection is dropped, on the same thread, so a VFS is never unregistered under a running callback.

mod cache;
mod context;
mod io;
mod memfile;
mod pages;
mod readahead;
mod shared;

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rusqlite::ffi;

pub use context::VfsContext;
use context::{context, name_of};
pub use pages::{PageSource, DEFAULT_MAX_COMMIT_BYTES};
pub use shared::SharedPages;

/// A registered VFS; unregistered on drop.
pub struct RegisteredVfs {
    raw: Box<ffi::sqlite3_vfs>,
    name: CString,
    _ctx: Arc<VfsContext>,
}

// SAFETY: the raw struct is only read by SQLite (under its own mutex for the VFS list) and the
// context it points to is Sync.
unsafe impl Send for RegisteredVfs {}

static NEXT_VFS: AtomicU64 = AtomicU64::new(1);

impl RegisteredVfs {
    pub fn register(ctx: Arc<VfsContext>) -> Result<RegisteredVfs, crate::Error> {
        let name = CString::new(format!("depot-{}", NEXT_VFS.fetch_add(1, Ordering::Relaxed))).unwrap();
        let mut raw = Box::new(ffi::sqlite3_vfs {
            iVersion: 2,
            szOsFile: std::mem::size_of::<io::DepotFile>() as c_int,
            mxPathname: 512,
            pNext: std::ptr::null_mut(),
            zName: name.as_ptr(),
            pAppData: Arc::as_ptr(&ctx) as *mut c_void,
            xOpen: Some(io::x_open),
            xDelete: Some(x_delete),
            xAccess: Some(x_access),
            xFullPathname: Some(x_full_pathname),
            xDlOpen: None,
            xDlError: None,
            xDlSym: None,
            xDlClose: None,
            xRandomness: Some(x_randomness),
            xSleep: Some(x_sleep),
            xCurrentTime: Some(x_current_time),
            xGetLastError: Some(x_get_last_error),
            xCurrentTimeInt64: Some(x_current_time_int64),
            xSetSystemCall: None,
            xGetSystemCall: None,
            xNextSystemCall: None,
        });
        // SAFETY: `raw` and `name` live until `Drop` unregisters the VFS.
        let rc = unsafe { ffi::sqlite3_vfs_register(&mut *raw, 0) };
        if rc != ffi::SQLITE_OK {
            return Err(crate::Error::new(
                crate::ErrorCode::Sqlite(crate::error::sqlite_code_name(rc)),
                "cannot register the depot VFS",
            ));
        }
        Ok(RegisteredVfs { raw, name, _ctx: ctx })
    }

    pub fn name(&self) -> &str {
        self.name.to_str().unwrap()
    }
}

impl Drop for RegisteredVfs {
    fn drop(&mut self) {
        // SAFETY: registered in `register`; the connection using it was dropped before this.
        unsafe { ffi::sqlite3_vfs_unregister(&mut *self.raw) };
    }
}

fn default_vfs() -> *mut ffi::sqlite3_vfs {
    // SAFETY: SQLite is initialised (rusqlite does it) and the default VFS is never unregistered.
    unsafe { ffi::sqlite3_vfs_find(std::ptr::null()) }
}

unsafe extern "C" fn x_delete(vfs: *mut ffi::sqlite3_vfs, z: *const c_char, _sync: c_int) -> c_int {
    if let Some(name) = name_of(z) {
        context(vfs).memfiles.lock().unwrap_or_else(|e| e.into_inner()).remove(&name);
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_access(
    vfs: *mut ffi::sqlite3_vfs,
    z: *const c_char,
    _flags: c_int,
    out: *mut c_int,
) -> c_int {
    // Only in-memory files can exist; in particular there is never a hot journal on "disk".
    let exists = name_of(z)
        .is_some_and(|n| context(vfs).memfiles.lock().unwrap_or_else(|e| e.into_inner()).contains_key(&n));
    *out = exists as c_int;
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_full_pathname(
    _vfs: *mut ffi::sqlite3_vfs,
    z: *const c_char,
    n_out: c_int,
    out: *mut c_char,
) -> c_int {
    // Names are keys, not paths: returned unchanged.
    let name = CStr::from_ptr(z).to_bytes();
    if name.len() + 1 > n_out as usize {
        return ffi::SQLITE_CANTOPEN;
    }
    std::ptr::copy_nonoverlapping(name.as_ptr() as *const c_char, out, name.len());
    *out.add(name.len()) = 0;
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_randomness(_vfs: *mut ffi::sqlite3_vfs, n: c_int, out: *mut c_char) -> c_int {
    let d = default_vfs();
    (*d).xRandomness.map_or(0, |f| f(d, n, out))
}

unsafe extern "C" fn x_sleep(_vfs: *mut ffi::sqlite3_vfs, micros: c_int) -> c_int {
    std::thread::sleep(std::time::Duration::from_micros(micros.max(0) as u64));
    micros
}

unsafe extern "C" fn x_current_time(_vfs: *mut ffi::sqlite3_vfs, out: *mut f64) -> c_int {
    let d = default_vfs();
    (*d).xCurrentTime.map_or(ffi::SQLITE_ERROR, |f| f(d, out))
}

unsafe extern "C" fn x_current_time_int64(_vfs: *mut ffi::sqlite3_vfs, out: *mut i64) -> c_int {
    let d = default_vfs();
    (*d).xCurrentTimeInt64.map_or(ffi::SQLITE_ERROR, |f| f(d, out))
}

unsafe extern "C" fn x_get_last_error(_vfs: *mut ffi::sqlite3_vfs, _n: c_int, _out: *mut c_char) -> c_int {
    0
}
