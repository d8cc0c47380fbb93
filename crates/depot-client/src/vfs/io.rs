//! SQLite's io callbacks: thin translations into [`PageSource`] and in-memory files.
//!
//! Every callback catches panics (a panic must not unwind into C): it records the panic on the
//! context and returns an I/O error; the worker then declares the database dead.

use std::ffi::{c_char, c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use rusqlite::ffi;

use super::context::{context, name_of, VfsContext};
use super::memfile::{self, MemData};

enum Kind {
    Main,
    Mem { data: MemData, name: Option<String>, delete_on_close: bool },
}

/// SQLite allocates `szOsFile` bytes; we place this struct there in `x_open`.
#[repr(C)]
pub struct DepotFile {
    base: ffi::sqlite3_file,
    ctx: Arc<VfsContext>,
    kind: Kind,
}

static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 1,
    xClose: Some(x_close),
    xRead: Some(x_read),
    xWrite: Some(x_write),
    xTruncate: Some(x_truncate),
    xSync: Some(x_sync),
    xFileSize: Some(x_file_size),
    xLock: Some(x_lock),
    xUnlock: Some(x_lock),
    xCheckReservedLock: Some(x_check_reserved_lock),
    xFileControl: Some(x_file_control),
    xSectorSize: Some(x_sector_size),
    xDeviceCharacteristics: Some(x_device_characteristics),
    xShmMap: None,
    xShmLock: None,
    xShmBarrier: None,
    xShmUnmap: None,
    xFetch: None,
    xUnfetch: None,
};

fn guard(ctx: &VfsContext, f: impl FnOnce() -> c_int) -> c_int {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(rc) => rc,
        Err(_) => {
            ctx.panicked.store(true, Ordering::SeqCst);
            ffi::SQLITE_IOERR
        }
    }
}

unsafe fn file<'a>(f: *mut ffi::sqlite3_file) -> &'a mut DepotFile {
    &mut *(f as *mut DepotFile)
}

pub unsafe extern "C" fn x_open(
    vfs: *mut ffi::sqlite3_vfs,
    z: *const c_char,
    f: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let ctx = context(vfs);
    (*f).pMethods = std::ptr::null();
    let name = name_of(z);
    let kind = if flags & ffi::SQLITE_OPEN_MAIN_DB != 0 {
        // The only durable file is the database this VFS was made for; ATTACH of any other
        // name lands here and is refused.
        if name.as_deref() != Some(ctx.database.as_str()) {
            return ffi::SQLITE_CANTOPEN;
        }
        Kind::Main
    } else {
        let mut files = ctx.memfiles.lock().unwrap_or_else(|e| e.into_inner());
        let data = match &name {
            Some(n) => files.entry(n.clone()).or_insert_with(|| Arc::new(Mutex::new(Vec::new()))).clone(),
            None => Arc::new(Mutex::new(Vec::new())),
        };
        Kind::Mem { data, name, delete_on_close: flags & ffi::SQLITE_OPEN_DELETEONCLOSE != 0 }
    };
    // SAFETY: SQLite gave us szOsFile bytes for a DepotFile; `ctx` is kept alive by the Arc clone.
    let arc = {
        Arc::increment_strong_count(ctx as *const VfsContext);
        Arc::from_raw(ctx as *const VfsContext)
    };
    std::ptr::write(
        f as *mut DepotFile,
        DepotFile { base: ffi::sqlite3_file { pMethods: &METHODS }, ctx: arc, kind },
    );
    if !out_flags.is_null() {
        *out_flags = flags;
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_close(f: *mut ffi::sqlite3_file) -> c_int {
    let df = f as *mut DepotFile;
    let this = &*df;
    if let Kind::Mem { name: Some(n), delete_on_close: true, .. } = &this.kind {
        this.ctx.memfiles.lock().unwrap_or_else(|e| e.into_inner()).remove(n);
    }
    std::ptr::drop_in_place(df);
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_read(f: *mut ffi::sqlite3_file, buf: *mut c_void, amt: c_int, off: i64) -> c_int {
    let df = file(f);
    let out = std::slice::from_raw_parts_mut(buf as *mut u8, amt as usize);
    guard(&df.ctx, || {
        let full = match &df.kind {
            Kind::Main => match df.ctx.source().read(out, off as u64) {
                Ok(full) => full,
                Err(()) => return ffi::SQLITE_IOERR_READ,
            },
            Kind::Mem { data, .. } => memfile::read(data, out, off as u64),
        };
        if full {
            ffi::SQLITE_OK
        } else {
            ffi::SQLITE_IOERR_SHORT_READ
        }
    })
}

unsafe extern "C" fn x_write(f: *mut ffi::sqlite3_file, buf: *const c_void, amt: c_int, off: i64) -> c_int {
    let df = file(f);
    let data = std::slice::from_raw_parts(buf as *const u8, amt as usize);
    guard(&df.ctx, || match &df.kind {
        Kind::Main => match df.ctx.source().write(data, off as u64) {
            Ok(()) => ffi::SQLITE_OK,
            Err(()) => ffi::SQLITE_IOERR_WRITE,
        },
        Kind::Mem { data: m, .. } => {
            memfile::write(m, data, off as u64);
            ffi::SQLITE_OK
        }
    })
}

unsafe extern "C" fn x_truncate(f: *mut ffi::sqlite3_file, size: i64) -> c_int {
    let df = file(f);
    guard(&df.ctx, || match &df.kind {
        Kind::Main => match df.ctx.source().truncate(size as u64) {
            Ok(()) => ffi::SQLITE_OK,
            Err(()) => ffi::SQLITE_IOERR_TRUNCATE,
        },
        Kind::Mem { data, .. } => {
            memfile::truncate(data, size as u64);
            ffi::SQLITE_OK
        }
    })
}

unsafe extern "C" fn x_sync(f: *mut ffi::sqlite3_file, _flags: c_int) -> c_int {
    let df = file(f);
    guard(&df.ctx, || match &df.kind {
        Kind::Main => match df.ctx.source().sync() {
            Ok(()) => ffi::SQLITE_OK,
            Err(()) => ffi::SQLITE_IOERR_FSYNC,
        },
        Kind::Mem { .. } => ffi::SQLITE_OK,
    })
}

unsafe extern "C" fn x_file_size(f: *mut ffi::sqlite3_file, out: *mut i64) -> c_int {
    let df = file(f);
    guard(&df.ctx, || {
        *out = match &df.kind {
            Kind::Main => df.ctx.source().file_size(),
            Kind::Mem { data, .. } => memfile::size(data),
        } as i64;
        ffi::SQLITE_OK
    })
}

/// One connection per database, in exclusive locking mode: locks have nothing to arbitrate.
unsafe extern "C" fn x_lock(_f: *mut ffi::sqlite3_file, _level: c_int) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_check_reserved_lock(_f: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    *out = 0;
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_file_control(f: *mut ffi::sqlite3_file, op: c_int, _arg: *mut c_void) -> c_int {
    let df = file(f);
    if !matches!(df.kind, Kind::Main) {
        return ffi::SQLITE_NOTFOUND;
    }
    guard(&df.ctx, || match op {
        ffi::SQLITE_FCNTL_BEGIN_ATOMIC_WRITE => {
            df.ctx.source().begin_batch();
            ffi::SQLITE_OK
        }
        ffi::SQLITE_FCNTL_COMMIT_ATOMIC_WRITE => match df.ctx.source().commit_batch() {
            Ok(()) => ffi::SQLITE_OK,
            // Not an IOERR on purpose: on an IOERR SQLite retries the commit through the plain
            // journal path; SQLITE_FULL makes it roll the transaction back, which is what a
            // failed store commit means.
            Err(()) => ffi::SQLITE_FULL,
        },
        ffi::SQLITE_FCNTL_ROLLBACK_ATOMIC_WRITE => {
            df.ctx.source().rollback_batch();
            ffi::SQLITE_OK
        }
        _ => ffi::SQLITE_NOTFOUND,
    })
}

unsafe extern "C" fn x_sector_size(_f: *mut ffi::sqlite3_file) -> c_int {
    depot::PAGE_SIZE as c_int
}

unsafe extern "C" fn x_device_characteristics(f: *mut ffi::sqlite3_file) -> c_int {
    let common = ffi::SQLITE_IOCAP_SAFE_APPEND
        | ffi::SQLITE_IOCAP_SEQUENTIAL
        | ffi::SQLITE_IOCAP_POWERSAFE_OVERWRITE
        | ffi::SQLITE_IOCAP_UNDELETABLE_WHEN_OPEN;
    match file(f).kind {
        Kind::Main => common | ffi::SQLITE_IOCAP_BATCH_ATOMIC,
        Kind::Mem { .. } => common,
    }
}
