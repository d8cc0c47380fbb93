//! A base file: the live state of every database as of one point of the log, written whole by a
//! compaction (or the import of an older depot) and renamed into place only once it is synced.
//!
//! Layout: the header, the bytes of every page version back to back (sorted by database and page,
//! so that a scan reads long runs), the metadata frames (databases, heads, hints, recent commits,
//! shrinks inside the window, one [`Record::Version`] per page pointing at its bytes), then a
//! footer: the offset of the first metadata frame and [`FOOTER_MAGIC`]. Opening a base reads the
//! metadata only, not the pages.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::record::{encode_frame, Record};
use super::segment::{file_name, io_error, scan, Kind, Segment, HEADER};
use crate::{PageNo, StoreError, Txid, PAGE_SIZE};

const FOOTER_MAGIC: &[u8; 8] = b"DEPOTEND";
const FOOTER: u64 = 16;

/// Builds a base file under a temporary name.
pub struct BaseWriter {
    segment: Segment,
    final_path: PathBuf,
    out: BufWriter<File>,
    at: u64,
    meta: Vec<Record>,
}

impl BaseWriter {
    pub fn create(dir: &Path, number: u32) -> Result<BaseWriter, StoreError> {
        let final_path = dir.join(file_name(number, Kind::Base));
        let tmp = final_path.with_extension("base.tmp");
        let _ = std::fs::remove_file(&tmp);
        let segment = Segment::create(tmp, number, Kind::Base)?;
        let file = segment.file.try_clone().map_err(|e| io_error("cannot write", &segment.path, e))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        use std::io::Seek;
        out.seek(std::io::SeekFrom::Start(HEADER)).map_err(|e| io_error("cannot write", &segment.path, e))?;
        Ok(BaseWriter { segment, final_path, out, at: HEADER, meta: Vec::new() })
    }

    /// Where the next page's bytes go.
    pub fn offset(&self) -> u64 {
        self.at
    }

    /// Adds one page version; its metadata goes out with [`BaseWriter::finish`].
    pub fn page(
        &mut self,
        id: u32,
        no: PageNo,
        txid: Txid,
        checksum: u32,
        data: &[u8],
    ) -> Result<(), StoreError> {
        debug_assert_eq!(data.len(), PAGE_SIZE);
        self.out.write_all(data).map_err(|e| io_error("cannot write", &self.segment.path, e))?;
        self.meta.push(Record::Version { id, no, txid, checksum, offset: self.at });
        self.at += PAGE_SIZE as u64;
        Ok(())
    }

    /// Adds a version whose bytes another version of this base holds at `offset` already.
    pub fn shared(&mut self, id: u32, no: PageNo, txid: Txid, checksum: u32, offset: u64) {
        self.meta.push(Record::Version { id, no, txid, checksum, offset });
    }

    /// Writes `records` (every database's state), then the versions, the footer; syncs the file,
    /// renames it into place and syncs the directory. Returns the finished file, opened.
    pub fn finish(mut self, records: Vec<Record>) -> Result<Segment, StoreError> {
        let path = self.segment.path.clone();
        let io = |e| io_error("cannot write", &path, e);
        let meta_start = self.at;
        let mut buf = Vec::new();
        for record in records.iter().chain(&self.meta) {
            buf.clear();
            encode_frame(&mut buf, self.segment.salt, self.at, record, &[]);
            self.out.write_all(&buf).map_err(io)?;
            self.at += buf.len() as u64;
        }
        self.out.write_all(&meta_start.to_le_bytes()).map_err(io)?;
        self.out.write_all(FOOTER_MAGIC).map_err(io)?;
        self.out.flush().map_err(io)?;
        let file = self.out.get_ref();
        file.sync_all().map_err(io)?;
        std::fs::rename(&path, &self.final_path).map_err(io)?;
        sync_dir(self.final_path.parent().unwrap())?;
        Segment::open(self.final_path.clone(), self.segment.number, Kind::Base)
    }
}

impl Drop for BaseWriter {
    /// A base that was not finished (a full disk, a failed read) leaves no temporary file behind;
    /// after `finish` the temporary name is gone already.
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.segment.path);
    }
}

/// Reads the metadata of a base, handing each record to `f`.
pub fn load(
    segment: &Segment,
    f: impl FnMut(u64, Record) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let len = segment.len();
    let corrupt = |why: &str| StoreError::Corrupt(format!("{}: {why}", segment.path.display()));
    if len < HEADER + FOOTER {
        return Err(corrupt("too short for a base file"));
    }
    let mut footer = [0u8; FOOTER as usize];
    segment.read_exact_at(&mut footer, len - FOOTER)?;
    if &footer[8..] != FOOTER_MAGIC {
        return Err(corrupt("no footer"));
    }
    let meta_start = u64::from_le_bytes(footer[..8].try_into().unwrap());
    let end = scan(segment, meta_start, len - FOOTER, f)?;
    if end != len - FOOTER {
        return Err(corrupt(&format!("a metadata frame at {end} does not read back")));
    }
    Ok(())
}

pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io_error("cannot sync directory", dir, e))
}
