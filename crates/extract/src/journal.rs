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
    first_record: bool,
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
            first_record: true,
        })
    }

    /// Starts package `index`'s entry; its records follow ([`Journal::records`]), then its
    /// report ([`Journal::end`]). The entry is one JSON line, `{"index", "records", "report"}`.
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
        self.first_record = true;
        self.put(|w| write!(w, "{{\"index\":{index},\"records\":["))
    }

    /// More records of the package begun.
    pub fn records<'a>(&mut self, records: impl Iterator<Item = RecordRef<'a>>) -> Result<()> {
        for r in records {
            let comma = !std::mem::replace(&mut self.first_record, false);
            self.put(|w| {
                if comma {
                    w.write_all(b",")?;
                }
                serde_json::to_writer(w, &r).map_err(std::io::Error::other)
            })?;
        }
        Ok(())
    }

    /// Ends the package's entry with its report.
    pub fn end(&mut self, report: &PackageReport) -> Result<()> {
        self.put(|w| {
            w.write_all(b"],\"report\":")?;
            serde_json::to_writer(&mut *w, report).map_err(std::io::Error::other)?;
            w.write_all(b"}\n")
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

/// Entries up to this many bytes are read whole, longer ones streamed.
const LINE_BYTES: u64 = 32 << 20;

/// One step of [`replay`]: a package begins, one of its records, its report (the end).
pub enum Event {
    Begin(u64),
    Record(StoredRecord),
    End(PackageReport),
}

/// Every entry of a journal, in order, handed to `visit` a record at a time: a package of
/// any size is never held whole (a package of 58,000 functions is a JSON line of hundreds
/// of megabytes).
pub fn replay(dir: &Path, visit: &mut dyn FnMut(Event) -> Result<()>) -> Result<()> {
    replay_with(dir, LINE_BYTES, visit)
}

/// [`replay`] with entries above `line_bytes` streamed.
fn replay_with(
    dir: &Path,
    line_bytes: u64,
    visit: &mut dyn FnMut(Event) -> Result<()>,
) -> Result<()> {
    use std::io::BufRead;
    for seg in segments(dir)? {
        let io = |e: std::io::Error| Error::Io(pytorrent_io::Error::io(&seg, e));
        let z = std::fs::File::open(&seg)
            .and_then(zstd::Decoder::new)
            .map_err(io)?;
        let mut reader = std::io::BufReader::with_capacity(1 << 20, z);
        let mut line = Vec::new();
        for n in 1.. {
            // An entry is a line. One up to LINE_BYTES is parsed from memory (the fast way);
            // a longer one (a package of tens of thousands of functions) streams, so no
            // package is ever held whole.
            line.clear();
            std::io::Read::take(&mut reader, line_bytes)
                .read_until(b'\n', &mut line)
                .map_err(io)?;
            if line.is_empty() {
                break;
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let mut failed = None;
            let seed = EntrySeed {
                visit: &mut *visit,
                failed: &mut failed,
            };
            let parsed = if line.ends_with(b"\n") || (line.len() as u64) < line_bytes {
                let mut de = serde_json::Deserializer::from_slice(&line);
                serde::de::DeserializeSeed::deserialize(seed, &mut de)
            } else {
                let rest = std::io::Read::chain(std::io::Cursor::new(&line[..]), &mut reader);
                let mut de = serde_json::Deserializer::from_reader(rest);
                serde::de::DeserializeSeed::deserialize(seed, &mut de)
            };
            if let Err(e) = parsed {
                return Err(failed.unwrap_or_else(|| {
                    Error::Io(pytorrent_io::Error::format(
                        &seg,
                        format!("entry {n}: not a journal entry: {e}"),
                    ))
                }));
            }
        }
    }
    Ok(())
}

struct EntrySeed<'v> {
    visit: &'v mut dyn FnMut(Event) -> Result<()>,
    /// The visitor's own error, kept whole (serde's errors are strings).
    failed: &'v mut Option<Error>,
}

impl EntrySeed<'_> {
    fn call<E: serde::de::Error>(&mut self, event: Event) -> std::result::Result<(), E> {
        (self.visit)(event).map_err(|e| {
            let text = e.to_string();
            *self.failed = Some(e);
            E::custom(text)
        })
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for EntrySeed<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for EntrySeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a journal entry {index, records, report}")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        mut self,
        mut map: A,
    ) -> std::result::Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "index" => {
                    let index: u64 = map.next_value()?;
                    self.call(Event::Begin(index))?;
                }
                "records" => map.next_value_seed(RecordsSeed(&mut self))?,
                "report" => {
                    let report: PackageReport = map.next_value()?;
                    self.call(Event::End(report))?;
                }
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct RecordsSeed<'s, 'v>(&'s mut EntrySeed<'v>);

impl<'de> serde::de::DeserializeSeed<'de> for RecordsSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for RecordsSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of records")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<(), A::Error> {
        while let Some(r) = seq.next_element::<StoredRecord>()? {
            self.0.call(Event::Record(r))?;
        }
        Ok(())
    }
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
    fn events(dir: &Path, line_bytes: u64) -> Vec<String> {
        let mut out = Vec::new();
        replay_with(dir, line_bytes, &mut |e| {
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
    fn entries_read_whole_or_streamed_give_the_same_events() {
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
        let whole = events(dir.path(), u64::MAX);
        assert_eq!(whole.len(), 3 * 2 + 20 + 40);
        assert_eq!(whole[0], "begin 0");
        assert_eq!(whole.last().unwrap(), "end pkg2");
        // A 100-byte cap streams every entry but the first: the same events.
        assert_eq!(events(dir.path(), 100), whole);
    }
}
