//! The extract journal: every package's prepared records (the serialised record, its
//! partition and its de-duplication keys) and its report, in input order, written in
//! segments as the packages are parsed. Replaying it through the writer gives the output of
//! the packages it holds without parsing them again — which is what makes a killed run
//! resumable (`extract --resume`) and task outputs mergeable (`corpus dedup`) into exactly the
//! output one uninterrupted task would have written.
//!
//! Segments (`segment-<first index>.jsonl.zst`; per package a `B<index>` line, an
//! `R<record JSON>` line per record, an `E<report JSON>` line) are written whole under a
//! temporary name and renamed, so a kill loses at most the packages of the segment being
//! filled; a reader holds one record at a time, however large the package.

use std::io::Write;
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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredRecord {
    pub scenario: String,
    pub partition: String,
    pub repo: String,
    /// The record as written (one JSON object, kept as JSON rather than as a string, so it
    /// is not escaped and unescaped on the way).
    pub line: Box<serde_json::value::RawValue>,
    pub keys: StoredKeys,
}

/// A record as [`Journal::push`] takes it: borrowed, so journalling copies nothing.
#[derive(Serialize, serde::Deserialize)]
pub struct RecordRef<'a> {
    pub scenario: &'a str,
    pub partition: &'a str,
    pub repo: &'a str,
    pub line: &'a serde_json::value::RawValue,
    pub keys: StoredKeys,
}

/// Records are written a few hundred bytes at a time: the buffer in front of the encoder
/// keeps zstd's per-call cost off each of them.
type SegmentWriter = std::io::BufWriter<zstd::Encoder<'static, pytorrent_io::AtomicFile>>;

/// Appends entries in segments, each compressed as it is written (a package's records are
/// never held twice).
pub struct Journal {
    dir: PathBuf,
    open: Option<(PathBuf, SegmentWriter)>,
    pending_count: usize,
    pending_bytes: usize,
    segment_packages: usize,
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
            open: None,
            pending_count: 0,
            pending_bytes: 0,
            segment_packages: (packages / 16).clamp(1, SEGMENT_PACKAGES),
        })
    }

    /// Starts package `index`'s entry; its records follow ([`Journal::records`]), then its
    /// report ([`Journal::end`]). Each is a line of its own (`B<index>`, `R<record JSON>`,
    /// `E<report JSON>`): a reader holds one record at a time, however large the package.
    pub fn begin(&mut self, index: u64) -> Result<()> {
        if self.open.is_none() {
            let path = self.dir.join(format!("segment-{index:012}.jsonl.zst"));
            let file = pytorrent_io::AtomicFile::create(&path)?;
            // Level 1: the journal is read back once, if at all; speed matters more.
            let z = zstd::Encoder::new(file, 1)
                .map(|z| std::io::BufWriter::with_capacity(1 << 18, z))
                .map_err(|e| pytorrent_io::Error::io(&path, e))?;
            self.open = Some((path, z));
        }
        self.put(|w| writeln!(w, "B{index}"))
    }

    /// More records of the package begun.
    pub fn records<'a>(&mut self, records: impl Iterator<Item = RecordRef<'a>>) -> Result<()> {
        for r in records {
            self.put(|w| {
                w.write_all(b"R")?;
                serde_json::to_writer(&mut *w, &r).map_err(std::io::Error::other)?;
                w.write_all(b"\n")
            })?;
        }
        Ok(())
    }

    /// Ends the package's entry with its report.
    pub fn end(&mut self, report: &PackageReport) -> Result<()> {
        self.put(|w| {
            w.write_all(b"E")?;
            serde_json::to_writer(&mut *w, report).map_err(std::io::Error::other)?;
            w.write_all(b"\n")
        })?;
        self.pending_count += 1;
        if self.pending_count >= self.segment_packages || self.pending_bytes >= SEGMENT_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn put(&mut self, f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
        let (path, z) = self.open.as_mut().expect("begun");
        let mut counted = CountingWriter { inner: z, bytes: 0 };
        f(&mut counted).map_err(|e| pytorrent_io::Error::io(path.as_path(), e))?;
        self.pending_bytes += counted.bytes;
        Ok(())
    }

    /// Completes the segment being written (renamed into place).
    pub fn flush(&mut self) -> Result<()> {
        let Some((path, z)) = self.open.take() else {
            return Ok(());
        };
        let io = |e: std::io::Error| pytorrent_io::Error::io(&path, e);
        let encoder = z.into_inner().map_err(|e| io(e.into_error()))?;
        encoder.finish().map_err(io)?.commit()?;
        self.pending_bytes = 0;
        self.pending_count = 0;
        Ok(())
    }
}

struct CountingWriter<'w, W> {
    inner: &'w mut W,
    bytes: usize,
}

impl<W: Write> Write for CountingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
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

/// One step of [`replay`]: a package begins, one of its records, its report (the end).
pub enum Event {
    Begin(u64),
    Record(StoredRecord),
    End(PackageReport),
}

/// Every entry of a journal, in order, handed to `visit` a line (a record) at a time: a
/// package of any size is never held whole.
pub fn replay(dir: &Path, visit: &mut dyn FnMut(Event) -> Result<()>) -> Result<()> {
    use std::io::BufRead;
    for seg in segments(dir)? {
        let io = |e: std::io::Error| Error::Io(pytorrent_io::Error::io(&seg, e));
        let z = std::fs::File::open(&seg)
            .and_then(zstd::Decoder::new)
            .map_err(io)?;
        let mut reader = std::io::BufReader::with_capacity(1 << 20, z);
        let mut line = Vec::new();
        for n in 1.. {
            line.clear();
            if reader.read_until(b'\n', &mut line).map_err(io)? == 0 {
                break;
            }
            let bad = |m: String| {
                Error::Io(pytorrent_io::Error::format(
                    &seg,
                    format!("line {n}: not a journal line ({m}); an extract of an older version wrote it? Run without --resume"),
                ))
            };
            let body = line.strip_suffix(b"\n").unwrap_or(&line);
            let event = match body.split_first() {
                Some((b'B', rest)) => Event::Begin(
                    std::str::from_utf8(rest)
                        .ok()
                        .and_then(|t| t.parse().ok())
                        .ok_or_else(|| bad("a package index".into()))?,
                ),
                Some((b'R', rest)) => {
                    Event::Record(serde_json::from_slice(rest).map_err(|e| bad(e.to_string()))?)
                }
                Some((b'E', rest)) => {
                    Event::End(serde_json::from_slice(rest).map_err(|e| bad(e.to_string()))?)
                }
                _ => return Err(bad("an unknown kind".into())),
            };
            visit(event)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(i: usize) -> RecordRef<'static> {
        let line: &'static str = Box::leak(
            format!(
                "{{\"func_name\":\"f{i}\",\"code\":\"{}\"}}",
                "x".repeat(i * 7)
            )
            .into_boxed_str(),
        );
        RecordRef {
            scenario: "docstrings",
            partition: "train",
            repo: "pkg",
            line: Box::leak(serde_json::value::RawValue::from_string(line.to_string()).unwrap()),
            keys: StoredKeys {
                exact: Some(format!("{i:032x}")),
                signature: None,
            },
        }
    }

    /// Replays into a list of events, as text.
    fn events(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        replay(dir, &mut |e| {
            out.push(match e {
                Event::Begin(i) => format!("begin {i}"),
                Event::Record(r) => format!("record {} {}", r.line.get(), r.keys.exact.unwrap()),
                Event::End(r) => format!("end {}", r.package),
            });
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn a_journal_replays_the_events_written_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            fingerprint: "fp".into(),
            config: serde_json::json!({}),
            task: Default::default(),
            packages: 3,
        };
        let mut j = Journal::create(dir.path(), &settings, 3).unwrap();
        for p in 0..3u64 {
            j.begin(p).unwrap();
            j.records((0..(p as usize * 20)).map(stored)).unwrap();
            j.end(&PackageReport {
                package: format!("pkg{p}"),
                ..Default::default()
            })
            .unwrap();
        }
        j.flush().unwrap();
        let got = events(dir.path());
        assert_eq!(got.len(), 3 * 2 + 20 + 40);
        assert_eq!(got[..2], ["begin 0", "end pkg0"]);
        assert_eq!(got[2], "begin 1");
        assert!(
            got[3].starts_with("record {\"func_name\":\"f0\""),
            "{}",
            got[3]
        );
        assert_eq!(got.last().unwrap(), "end pkg2");
    }
}
