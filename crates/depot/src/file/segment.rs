//! The store's files: numbered *logs* that commits are appended to, and at most one *base*, which
//! a compaction writes with the live state of every log before it. Both start with the same
//! header; their frames are read by [`scan`].

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::record::{frame_crc, Record, FRAME_HEADER, MAX_PAYLOAD};
use crate::StoreError;

/// Bytes of a file's header: magic, kind, number, salt.
pub const HEADER: u64 = 32;
const MAGIC: &[u8; 8] = b"DEPOTPG1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Log,
    Base,
}

impl Kind {
    fn code(self) -> u8 {
        match self {
            Kind::Log => 1,
            Kind::Base => 2,
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Kind::Log => "log",
            Kind::Base => "base",
        }
    }
}

/// One open file of the store. Reads are positional (`pread`), so any number of threads read at
/// once; only the store's writer appends.
#[derive(Debug)]
pub struct Segment {
    pub number: u32,
    pub kind: Kind,
    pub salt: u64,
    pub path: PathBuf,
    pub file: File,
    /// Bytes of page versions in this file that the index no longer refers to: what a compaction
    /// would win back.
    pub dead: AtomicU64,
}

/// The file name of segment `number` of `kind`.
pub fn file_name(number: u32, kind: Kind) -> String {
    format!("{number:08}.{}", kind.extension())
}

/// A file name's segment number and kind, if it is one.
pub fn parse_name(name: &str) -> Option<(u32, Kind)> {
    let (stem, ext) = name.split_once('.')?;
    let kind = match ext {
        "log" => Kind::Log,
        "base" => Kind::Base,
        _ => return None,
    };
    (stem.len() == 8).then(|| stem.parse().ok().map(|n| (n, kind)))?
}

pub fn io_error(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("{what} {}: {e}", path.display()))
}

/// A salt no other file of the store is likely to share.
fn new_salt(number: u32) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(number);
    h.write_u128(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos(),
    );
    h.finish()
}

impl Segment {
    /// Creates the file at `path` (which may be a temporary name) with its header written and
    /// synced.
    pub fn create(path: PathBuf, number: u32, kind: Kind) -> Result<Segment, StoreError> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| io_error("cannot create", &path, e))?;
        let salt = new_salt(number);
        let mut header = Vec::with_capacity(HEADER as usize);
        header.extend_from_slice(MAGIC);
        header.push(kind.code());
        header.extend_from_slice(&[0; 3]);
        header.extend_from_slice(&number.to_le_bytes());
        header.extend_from_slice(&salt.to_le_bytes());
        header.resize(HEADER as usize, 0);
        file.write_all(&header)
            .and_then(|()| file.sync_all())
            .map_err(|e| io_error("cannot write", &path, e))?;
        Ok(Segment { number, kind, salt, path, file, dead: AtomicU64::new(0) })
    }

    /// Opens an existing file and checks its header.
    pub fn open(path: PathBuf, number: u32, kind: Kind) -> Result<Segment, StoreError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| io_error("cannot open", &path, e))?;
        let mut header = [0u8; HEADER as usize];
        file.read_exact_at(&mut header, 0).map_err(|e| io_error("cannot read the header of", &path, e))?;
        if &header[..8] != MAGIC || header[8] != kind.code() || header[12..16] != number.to_le_bytes() {
            return Err(StoreError::Corrupt(format!(
                "{} is not a depot {} file",
                path.display(),
                kind.extension()
            )));
        }
        let salt = u64::from_le_bytes(header[16..24].try_into().unwrap());
        Ok(Segment { number, kind, salt, path, file, dead: AtomicU64::new(0) })
    }

    pub fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<(), StoreError> {
        self.file.read_exact_at(buf, offset).map_err(|e| io_error("cannot read", &self.path, e))
    }

    pub fn len(&self) -> u64 {
        self.file.metadata().map(|m| m.len()).unwrap_or(0)
    }

    pub fn add_dead(&self, bytes: u64) {
        self.dead.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// Reads the frames of `segment` from `from` to `until` in order, handing each record and its
/// offset to `f`. Stops at the first frame that is not whole and valid (zeros, a torn write, bytes
/// of something else) and returns where it stopped: the end of the last valid frame.
pub fn scan(
    segment: &Segment,
    from: u64,
    until: u64,
    mut f: impl FnMut(u64, Record) -> Result<(), StoreError>,
) -> Result<u64, StoreError> {
    let io = |e| io_error("cannot read", &segment.path, e);
    let mut file = &segment.file;
    file.seek(SeekFrom::Start(from)).map_err(io)?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut at = from;
    let mut payload = Vec::new();
    loop {
        let mut header = [0u8; FRAME_HEADER];
        if at + FRAME_HEADER as u64 > until || reader.read_exact(&mut header).is_err() {
            return Ok(at);
        }
        let len = u32::from_le_bytes(header[..4].try_into().unwrap());
        let crc = u32::from_le_bytes(header[4..].try_into().unwrap());
        let end = at + (FRAME_HEADER + len as usize) as u64;
        if len == 0 || len as usize > MAX_PAYLOAD || end > until {
            return Ok(at);
        }
        payload.resize(len as usize, 0);
        if reader.read_exact(&mut payload).is_err() || frame_crc(segment.salt, at, len, &payload) != crc {
            // Every frame is synced before the next one is written, so a torn write is the last
            // frame of its file: a valid frame right after a bad one means the bad one rotted.
            if valid_frame_at(segment, end, until) {
                return Err(StoreError::Corrupt(format!(
                    "{}: the frame at byte {at} does not match its checksum, and frames follow it",
                    segment.path.display()
                )));
            }
            return Ok(at);
        }
        let record = Record::decode(&payload).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "{}: a whole frame at {at} holds no record this build knows",
                segment.path.display()
            ))
        })?;
        f(at, record)?;
        at = end;
    }
}

/// Whether a whole, valid frame starts at `at`.
fn valid_frame_at(segment: &Segment, at: u64, until: u64) -> bool {
    let mut header = [0u8; FRAME_HEADER];
    if at + FRAME_HEADER as u64 > until || segment.file.read_exact_at(&mut header, at).is_err() {
        return false;
    }
    let len = u32::from_le_bytes(header[..4].try_into().unwrap());
    let crc = u32::from_le_bytes(header[4..].try_into().unwrap());
    if len == 0 || len as usize > MAX_PAYLOAD || at + (FRAME_HEADER + len as usize) as u64 > until {
        return false;
    }
    let mut payload = vec![0u8; len as usize];
    segment.file.read_exact_at(&mut payload, at + FRAME_HEADER as u64).is_ok()
        && frame_crc(segment.salt, at, len, &payload) == crc
}
