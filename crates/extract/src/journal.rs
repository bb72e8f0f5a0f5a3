//! The extract journal: every package's prepared records (the serialised record, its
//! partition and its de-duplication keys) and its report, in input order, written in
//! segments as the packages are parsed. Replaying it through the writer gives the output of
//! the packages it holds without parsing them again — which is what makes a killed run
//! resumable (`extract --resume`) and task outputs mergeable (`corpus dedup`) into exactly the
//! output one uninterrupted task would have written.
//!
//! Segments (`segment-<first index>.jsonl.zst`, a JSON line per package) are written whole
//! under a temporary name and renamed, so a kill loses at most the packages of the segment
//! being filled.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::dedup::StoredKeys;
use crate::error::{Error, Result};
use crate::package::PackageReport;

/// The journal's folder inside an extract output.
pub const DIR: &str = ".extract-journal";

/// Packages per segment at most (a kill redoes at most one segment); small runs use
/// segments of a sixteenth of their packages.
const SEGMENT_PACKAGES: usize = 64;
/// Or fewer, when their records pass this many bytes.
const SEGMENT_BYTES: usize = 64 << 20;

/// What the journal's packages were made with: a resume or a merge needs the same.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// sha256 of everything that decides the records (inputs, scenarios, filters, split,
    /// de-duplication, format, chunking).
    pub fingerprint: String,
    /// The config it was made with, for the merge to write as the tasks would have.
    pub config: serde_json::Value,
    pub task: pytorrent_io::tasks::Tasks,
    /// Packages in the whole input list (every task's).
    pub packages: u64,
}

/// One package: its place in the whole input list, its report and its records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub index: u64,
    pub report: PackageReport,
    pub records: Vec<StoredRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredRecord {
    pub scenario: String,
    pub partition: String,
    pub repo: String,
    /// The record as written (one JSON object).
    pub line: String,
    pub keys: StoredKeys,
}

/// Appends entries in segments.
pub struct Journal {
    dir: PathBuf,
    pending: Vec<u8>,
    pending_count: usize,
    segment_packages: usize,
    first: Option<u64>,
}

impl Journal {
    /// A journal in `dir` that continues after the segments already there, for a run of
    /// `packages` packages.
    pub fn create(dir: &Path, settings: &Settings, packages: usize) -> Result<Journal> {
        std::fs::create_dir_all(dir).map_err(|e| pytorrent_io::Error::io(dir, e))?;
        let bytes = serde_json::to_vec_pretty(settings).expect("plain JSON");
        pytorrent_io::atomic::write_atomic(dir.join("settings.json"), &bytes)?;
        Ok(Journal {
            dir: dir.to_path_buf(),
            pending: Vec::new(),
            pending_count: 0,
            segment_packages: (packages / 16).clamp(1, SEGMENT_PACKAGES),
            first: None,
        })
    }

    pub fn push(&mut self, entry: &Entry) -> Result<()> {
        self.first.get_or_insert(entry.index);
        serde_json::to_writer(&mut self.pending, entry).expect("plain JSON");
        self.pending.push(b'\n');
        self.pending_count += 1;
        if self.pending_count >= self.segment_packages || self.pending.len() >= SEGMENT_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the entries pushed since the last segment as one segment.
    pub fn flush(&mut self) -> Result<()> {
        let Some(first) = self.first.take() else {
            return Ok(());
        };
        let path = self.dir.join(format!("segment-{first:012}.jsonl.zst"));
        let io = |e: std::io::Error| pytorrent_io::Error::io(&path, e);
        let file = pytorrent_io::AtomicFile::create(&path)?;
        let mut z = zstd::Encoder::new(file, 3).map_err(io)?;
        z.write_all(&self.pending).map_err(io)?;
        z.finish().map_err(io)?.commit()?;
        self.pending.clear();
        self.pending_count = 0;
        Ok(())
    }
}

/// The settings of the journal in `dir`, if it has readable ones.
pub fn settings(dir: &Path) -> Option<Settings> {
    let bytes = std::fs::read(dir.join("settings.json")).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The segment files of a journal, in order.
fn segments(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(pytorrent_io::Error::io(dir, e).into()),
    };
    for e in entries {
        let e = e.map_err(|err| pytorrent_io::Error::io(dir, err))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("segment-") && name.ends_with(".jsonl.zst") {
            out.push(e.path());
        }
    }
    out.sort();
    Ok(out)
}

/// Every entry of a journal, in order, read a segment at a time.
pub fn entries(dir: &Path) -> Result<impl Iterator<Item = Result<Entry>>> {
    let segs = segments(dir)?;
    Ok(segs.into_iter().flat_map(|seg| {
        let read = || -> Result<Vec<Entry>> {
            let io = |e: std::io::Error| pytorrent_io::Error::io(&seg, e);
            let f = std::fs::File::open(&seg).map_err(io)?;
            let z = zstd::Decoder::new(f).map_err(io)?;
            let mut out = Vec::new();
            for (n, line) in std::io::BufReader::new(z).lines().enumerate() {
                let line = line.map_err(io)?;
                let e: Entry = serde_json::from_str(&line).map_err(|e| {
                    Error::Io(pytorrent_io::Error::format(
                        &seg,
                        format!("line {}: not a journal entry: {e}", n + 1),
                    ))
                })?;
                out.push(e);
            }
            Ok(out)
        };
        match read() {
            Ok(v) => v.into_iter().map(Ok).collect::<Vec<_>>(),
            Err(e) => vec![Err(e)],
        }
    }))
}
