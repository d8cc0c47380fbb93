//! What the store's files say, record by record, and how a record is framed on disk.
//!
//! A frame is `len: u32 | crc: u32 | payload (len bytes)`, little-endian. The CRC-32 covers the
//! file's salt, the frame's own offset, `len` and the payload: a torn write fails it, and so do
//! bytes left over from an older frame or copied from elsewhere (another file has another salt,
//! another place another offset). `len == 0` (the zeros of preallocated space) ends a file's frames.

use crate::{PageNo, Txid, PAGE_SIZE};

/// Largest payload accepted when reading: a bigger `len` is a torn or foreign frame, not a record.
pub const MAX_PAYLOAD: usize = 1 << 30;

/// Bytes before a frame's payload.
pub const FRAME_HEADER: usize = 8;

/// One record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A database gets its id.
    Database { id: u32, name: String },
    /// An open claimed `generation`.
    Generation { id: u32, generation: u64 },
    /// A commit: its pages' bytes follow the record's fields in the frame (see
    /// [`commit_data_offset`]).
    Commit(CommitHeader),
    /// The pages the last session used first.
    Hints { id: u32, pages: Vec<PageNo> },
    /// A log file ends here; the next one is `next`.
    Seal { next: u32 },
    /// Base files: where a database stood when the base was written.
    Head { id: u32, txid: Txid, size_pages: u32, generation: u64 },
    /// Base files: a commit remembered for idempotent retries and for history.
    CommitMeta { id: u32, txid: Txid, commit_id: u128, time_ms: u64, size_pages: u32 },
    /// Base files: a shrink still inside the history window.
    Shrink { id: u32, txid: Txid, size_pages: u32 },
    /// Base files: a page version whose bytes lie at `offset` of the same file.
    Version { id: u32, no: PageNo, txid: Txid, checksum: u32, offset: u64 },
    /// Base files: a commit the history window covers.
    Logged { id: u32, txid: Txid, time_ms: u64, pages: u32, size_pages: u32 },
    /// Database `id` becomes what it was at `at`, as commit `txid` (the versions are shared, not
    /// copied).
    Restore { id: u32, at: Txid, txid: Txid, commit_id: u128, time_ms: u64 },
    /// Database `id` (new) starts as database `source` was at `at` (the versions are shared).
    Fork { id: u32, source: u32, at: Txid, commit_id: u128, time_ms: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitHeader {
    pub id: u32,
    pub txid: Txid,
    pub generation: u64,
    pub commit_id: u128,
    pub size_pages: u32,
    pub time_ms: u64,
    /// (page number, checksum) of each page, in the order of their bytes.
    pub pages: Vec<(PageNo, u32)>,
}

const DATABASE: u8 = 1;
const GENERATION: u8 = 2;
const COMMIT: u8 = 3;
const HINTS: u8 = 4;
const SEAL: u8 = 5;
const HEAD: u8 = 6;
const COMMIT_META: u8 = 7;
const SHRINK: u8 = 8;
const VERSION: u8 = 9;
const LOGGED: u8 = 10;
const RESTORE: u8 = 11;
const FORK: u8 = 12;

/// Bytes of a commit record's fields before the page list.
const COMMIT_FIXED: usize = 1 + 4 + 8 + 8 + 16 + 4 + 8 + 4;

/// Offset, within a commit's frame, of the bytes of its `i`-th page.
pub fn commit_data_offset(page_count: usize, i: usize) -> u64 {
    (FRAME_HEADER + COMMIT_FIXED + 8 * page_count + i * PAGE_SIZE) as u64
}

impl Record {
    /// Appends the payload of this record to `out`.
    fn encode_payload(&self, out: &mut Vec<u8>) {
        match self {
            Record::Database { id, name } => {
                out.push(DATABASE);
                put32(out, *id);
                put32(out, name.len() as u32);
                out.extend_from_slice(name.as_bytes());
            }
            Record::Generation { id, generation } => {
                out.push(GENERATION);
                put32(out, *id);
                put64(out, *generation);
            }
            Record::Commit(c) => {
                out.push(COMMIT);
                put32(out, c.id);
                put64(out, c.txid);
                put64(out, c.generation);
                out.extend_from_slice(&c.commit_id.to_le_bytes());
                put32(out, c.size_pages);
                put64(out, c.time_ms);
                put32(out, c.pages.len() as u32);
                for &(no, checksum) in &c.pages {
                    put32(out, no);
                    put32(out, checksum);
                }
            }
            Record::Hints { id, pages } => {
                out.push(HINTS);
                put32(out, *id);
                put32(out, pages.len() as u32);
                for &no in pages {
                    put32(out, no);
                }
            }
            Record::Seal { next } => {
                out.push(SEAL);
                put32(out, *next);
            }
            Record::Head { id, txid, size_pages, generation } => {
                out.push(HEAD);
                put32(out, *id);
                put64(out, *txid);
                put32(out, *size_pages);
                put64(out, *generation);
            }
            Record::CommitMeta { id, txid, commit_id, time_ms, size_pages } => {
                out.push(COMMIT_META);
                put32(out, *id);
                put64(out, *txid);
                out.extend_from_slice(&commit_id.to_le_bytes());
                put64(out, *time_ms);
                put32(out, *size_pages);
            }
            Record::Shrink { id, txid, size_pages } => {
                out.push(SHRINK);
                put32(out, *id);
                put64(out, *txid);
                put32(out, *size_pages);
            }
            Record::Version { id, no, txid, checksum, offset } => {
                out.push(VERSION);
                put32(out, *id);
                put32(out, *no);
                put64(out, *txid);
                put32(out, *checksum);
                put64(out, *offset);
            }
            Record::Logged { id, txid, time_ms, pages, size_pages } => {
                out.push(LOGGED);
                put32(out, *id);
                put64(out, *txid);
                put64(out, *time_ms);
                put32(out, *pages);
                put32(out, *size_pages);
            }
            Record::Restore { id, at, txid, commit_id, time_ms } => {
                out.push(RESTORE);
                put32(out, *id);
                put64(out, *at);
                put64(out, *txid);
                out.extend_from_slice(&commit_id.to_le_bytes());
                put64(out, *time_ms);
            }
            Record::Fork { id, source, at, commit_id, time_ms } => {
                out.push(FORK);
                put32(out, *id);
                put32(out, *source);
                put64(out, *at);
                out.extend_from_slice(&commit_id.to_le_bytes());
                put64(out, *time_ms);
            }
        }
    }

    /// Reads a payload (for a commit, the bytes of its pages may follow and are not looked at).
    pub fn decode(payload: &[u8]) -> Option<Record> {
        let mut r = Reader(payload);
        let record = match r.u8()? {
            DATABASE => {
                let id = r.u32()?;
                let len = r.u32()? as usize;
                Record::Database { id, name: String::from_utf8(r.take(len)?.to_vec()).ok()? }
            }
            GENERATION => Record::Generation { id: r.u32()?, generation: r.u64()? },
            COMMIT => {
                let (id, txid, generation, commit_id) = (r.u32()?, r.u64()?, r.u64()?, r.u128()?);
                let (size_pages, time_ms, count) = (r.u32()?, r.u64()?, r.u32()? as usize);
                if count > payload.len() / PAGE_SIZE {
                    return None;
                }
                let pages = (0..count).map(|_| Some((r.u32()?, r.u32()?))).collect::<Option<Vec<_>>>()?;
                if r.0.len() != count * PAGE_SIZE {
                    return None;
                }
                return Some(Record::Commit(CommitHeader {
                    id,
                    txid,
                    generation,
                    commit_id,
                    size_pages,
                    time_ms,
                    pages,
                }));
            }
            HINTS => {
                let id = r.u32()?;
                let count = r.u32()? as usize;
                let pages = (0..count).map(|_| r.u32()).collect::<Option<Vec<_>>>()?;
                Record::Hints { id, pages }
            }
            SEAL => Record::Seal { next: r.u32()? },
            HEAD => Record::Head { id: r.u32()?, txid: r.u64()?, size_pages: r.u32()?, generation: r.u64()? },
            COMMIT_META => Record::CommitMeta {
                id: r.u32()?,
                txid: r.u64()?,
                commit_id: r.u128()?,
                time_ms: r.u64()?,
                size_pages: r.u32()?,
            },
            SHRINK => Record::Shrink { id: r.u32()?, txid: r.u64()?, size_pages: r.u32()? },
            VERSION => Record::Version {
                id: r.u32()?,
                no: r.u32()?,
                txid: r.u64()?,
                checksum: r.u32()?,
                offset: r.u64()?,
            },
            LOGGED => Record::Logged {
                id: r.u32()?,
                txid: r.u64()?,
                time_ms: r.u64()?,
                pages: r.u32()?,
                size_pages: r.u32()?,
            },
            RESTORE => Record::Restore {
                id: r.u32()?,
                at: r.u64()?,
                txid: r.u64()?,
                commit_id: r.u128()?,
                time_ms: r.u64()?,
            },
            FORK => Record::Fork {
                id: r.u32()?,
                source: r.u32()?,
                at: r.u64()?,
                commit_id: r.u128()?,
                time_ms: r.u64()?,
            },
            _ => return None,
        };
        r.0.is_empty().then_some(record)
    }
}

/// Appends the frame of `record` (and, for a commit, `data`: its pages' bytes in order) to `out`,
/// for the file with `salt` at file offset `at`.
pub fn encode_frame(out: &mut Vec<u8>, salt: u64, at: u64, record: &Record, data: &[&[u8]]) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER]);
    record.encode_payload(out);
    for d in data {
        out.extend_from_slice(d);
    }
    let len = (out.len() - start - FRAME_HEADER) as u32;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    let crc = frame_crc(salt, at, len, &out[start + FRAME_HEADER..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

pub fn frame_crc(salt: u64, at: u64, len: u32, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&salt.to_le_bytes());
    h.update(&at.to_le_bytes());
    h.update(&len.to_le_bytes());
    h.update(payload);
    h.finalize()
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn u128(&mut self) -> Option<u128> {
        Some(u128::from_le_bytes(self.take(16)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(record: Record, data: &[&[u8]]) {
        let mut out = Vec::new();
        encode_frame(&mut out, 7, 4096, &record, data);
        let len = u32::from_le_bytes(out[..4].try_into().unwrap());
        let crc = u32::from_le_bytes(out[4..8].try_into().unwrap());
        assert_eq!(crc, frame_crc(7, 4096, len, &out[8..]));
        assert_ne!(crc, frame_crc(7, 8192, len, &out[8..]), "the offset is part of the frame");
        assert_ne!(crc, frame_crc(8, 4096, len, &out[8..]), "so is the salt");
        assert_eq!(Record::decode(&out[8..]), Some(record));
    }

    #[test]
    fn every_record_reads_back_as_written() {
        let page = vec![5u8; PAGE_SIZE];
        roundtrip(Record::Database { id: 3, name: "actor/1".into() }, &[]);
        roundtrip(Record::Generation { id: 3, generation: 9 }, &[]);
        let header = CommitHeader {
            id: 3,
            txid: 12,
            generation: 9,
            commit_id: u128::MAX - 5,
            size_pages: 40,
            time_ms: 1_700_000_000_000,
            pages: vec![(1, 11), (40, 22)],
        };
        roundtrip(Record::Commit(header), &[&page, &page]);
        roundtrip(Record::Hints { id: 3, pages: vec![1, 2, 9] }, &[]);
        roundtrip(Record::Seal { next: 8 }, &[]);
        roundtrip(Record::Head { id: 3, txid: 12, size_pages: 40, generation: 9 }, &[]);
        roundtrip(Record::CommitMeta { id: 3, txid: 12, commit_id: 1, time_ms: 2, size_pages: 40 }, &[]);
        roundtrip(Record::Shrink { id: 3, txid: 12, size_pages: 2 }, &[]);
        roundtrip(Record::Version { id: 3, no: 2, txid: 12, checksum: 1, offset: 32 }, &[]);
        roundtrip(Record::Logged { id: 3, txid: 12, time_ms: 5, pages: 2, size_pages: 40 }, &[]);
        roundtrip(Record::Restore { id: 3, at: 7, txid: 13, commit_id: 9, time_ms: 6 }, &[]);
        roundtrip(Record::Fork { id: 4, source: 3, at: 7, commit_id: 10, time_ms: 6 }, &[]);
    }

    #[test]
    fn a_commit_whose_bytes_do_not_match_its_page_list_is_not_a_record() {
        let header = CommitHeader {
            id: 1,
            txid: 1,
            generation: 1,
            commit_id: 1,
            size_pages: 1,
            time_ms: 0,
            pages: vec![(1, 0)],
        };
        let mut out = Vec::new();
        encode_frame(&mut out, 1, 32, &Record::Commit(header), &[&[0u8; 100]]);
        assert_eq!(Record::decode(&out[8..]), None);
    }
}
