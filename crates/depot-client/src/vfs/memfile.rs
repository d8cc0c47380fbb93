//! In-memory files for everything that is not the main database: journals, temp databases,
//! statement journals. Invariant no-local-files (ARCHITECTURE.md): nothing but the store is durable, so nothing touches the disk.

use std::sync::{Arc, Mutex};

/// Bytes of one in-memory file, shared between its open handles (SQLite may reopen a named journal).
pub type MemData = Arc<Mutex<Vec<u8>>>;

pub fn read(data: &MemData, buf: &mut [u8], offset: u64) -> bool {
    let d = data.lock().unwrap();
    let start = (offset as usize).min(d.len());
    let n = (d.len() - start).min(buf.len());
    buf[..n].copy_from_slice(&d[start..start + n]);
    buf[n..].fill(0);
    n == buf.len()
}

pub fn write(data: &MemData, buf: &[u8], offset: u64) {
    let mut d = data.lock().unwrap();
    let end = offset as usize + buf.len();
    if d.len() < end {
        d.resize(end, 0);
    }
    d[offset as usize..end].copy_from_slice(buf);
}

pub fn truncate(data: &MemData, size: u64) {
    data.lock().unwrap().truncate(size as usize);
}

pub fn size(data: &MemData) -> u64 {
    data.lock().unwrap().len() as u64
}
