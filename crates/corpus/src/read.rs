//! The streaming reader: files → lines → records, parsed in parallel, delivered in order.
//!
//! A reader thread decompresses and splits lines into chunks of about `chunk_bytes`, passed
//! over a bounded channel; each chunk is parsed with rayon (`par_iter().map().collect()`
//! keeps order) and handed to the caller's sink in input order. Memory is O(chunk × a few),
//! never O(corpus), and the output never depends on the thread count.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

use rayon::prelude::*;

use pytorrent_io::Reporter;

use crate::error::{Error, Problem, ProblemKind, Result};
use crate::lines::{LineReader, LineSpan, RawLine};
use crate::record::{Partition, RecordRef};
use crate::schema::{PyTorrent, Schema};
use crate::source::InputFile;

pytorrent_io::word_enum! {
    "--on-error policy";
    /// What to do with a bad line or file.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum OnError {
        /// Stop at the first problem.
        #[default]
        Fail = "fail",
        /// Count it, quarantine it, go on.
        Skip = "skip",
    }
}

#[derive(Debug, Clone)]
pub struct ReadOptions {
    pub on_error: OnError,
    /// Lines longer than this are problems (`line_too_long`), never buffered whole.
    pub max_line_bytes: usize,
    /// Approximate bytes per parallel work unit.
    pub chunk_bytes: usize,
    /// Where `skip` writes rejected lines (TSV: file, line, kind, reason, raw line).
    pub quarantine: Option<PathBuf>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            on_error: OnError::Fail,
            max_line_bytes: 256 << 20,
            chunk_bytes: 4 << 20,
            quarantine: None,
        }
    }
}

/// Counts of what was read.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReadSummary {
    pub files: u64,
    pub lines: u64,
    pub records: u64,
    pub blank_lines: u64,
    /// Rejected lines (or files) by kind of problem.
    pub rejected: BTreeMap<ProblemKind, u64>,
    /// Where the rejected lines were written, when any were.
    pub quarantine: Option<PathBuf>,
}

impl ReadSummary {
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }
}

/// Lines for people about the bad lines a `skip` policy left out (empty when none were).
pub fn skipped_lines(summary: &ReadSummary) -> String {
    if summary.rejected_total() == 0 {
        return String::new();
    }
    let kinds: Vec<String> = summary
        .rejected
        .iter()
        .map(|(k, n)| format!("{} {n}", k.name()))
        .collect();
    let mut s = format!(
        "skipped {} ({})\n",
        pytorrent_io::reporter::plural(summary.rejected_total(), "bad line", "bad lines"),
        kinds.join(", ")
    );
    if let Some(q) = &summary.quarantine {
        s.push_str(&format!("  rejected lines written to {}\n", q.display()));
    }
    s
}

/// What the sink receives, in input order.
pub enum Item<'a, T> {
    Record {
        file: &'a InputFile,
        line: RawLine<'a>,
        value: T,
    },
    /// Only seen with [`OnError::Skip`]; with `Fail` the read stops with [`Error::Data`].
    Rejected { problem: &'a Problem },
}

/// The record's partition, or the one its folder names.
pub fn effective_partition(rec: &RecordRef<'_>, file: &InputFile) -> Option<Partition> {
    rec.partition.or(file.partition)
}

enum Msg {
    /// Lines of one file, stored back to back in `buf`.
    Chunk {
        file: usize,
        buf: Vec<u8>,
        spans: Vec<LineSpan>,
    },
    FileFailed {
        file: usize,
        line: u64,
        kind: ProblemKind,
        message: String,
    },
    FileDone,
}

enum Parsed<T> {
    Record(T),
    Blank,
    Problem(Problem),
}

fn io_problem_kind(e: &std::io::Error) -> ProblemKind {
    use std::io::ErrorKind::*;
    match e.kind() {
        UnexpectedEof | InvalidData | InvalidInput | Other => ProblemKind::Compression,
        _ => ProblemKind::Io,
    }
}

fn describe_read_error(e: &std::io::Error, kind: ProblemKind) -> String {
    match (kind, e.kind()) {
        (ProblemKind::Compression, std::io::ErrorKind::UnexpectedEof) => {
            "compressed stream is truncated (unexpected end of file)".into()
        }
        (ProblemKind::Compression, _) => format!("corrupt compressed stream: {e}"),
        _ => format!("read error: {e}"),
    }
}

fn reader_thread(
    files: &[InputFile],
    opts: &ReadOptions,
    columns: Option<&[String]>,
    stand_ins: &[String],
    raw_pos: &AtomicU64,
    tx: mpsc::SyncSender<Msg>,
) {
    for (i, file) in files.iter().enumerate() {
        let base = raw_pos.load(Ordering::Relaxed);
        let sent = if crate::parquet_in::is_parquet(&file.path) {
            send_parquet(i, file, opts, (columns, stand_ins), base, raw_pos, &tx)
        } else {
            send_jsonl(i, file, opts, base, raw_pos, &tx)
        };
        match sent {
            Sent::Done => {
                if tx.send(Msg::FileDone).is_err() {
                    return;
                }
            }
            Sent::Failed => {}
            Sent::Gone => return,
        }
        raw_pos.store(base + file.size.unwrap_or(0), Ordering::Relaxed);
    }
}

/// How one file's reading ended.
enum Sent {
    Done,
    /// A problem ended the file (and was sent).
    Failed,
    /// The consumer stopped listening.
    Gone,
}

/// Sends a problem that ends a file; `Gone` when nobody listens any more.
fn send_failure(
    tx: &mpsc::SyncSender<Msg>,
    file: usize,
    line: u64,
    kind: ProblemKind,
    message: String,
) -> Sent {
    let msg = Msg::FileFailed {
        file,
        line,
        kind,
        message,
    };
    if tx.send(msg).is_ok() {
        Sent::Failed
    } else {
        Sent::Gone
    }
}

/// Lines of a JSONL file (plain, gzip or zstd), in chunks.
fn send_jsonl(
    i: usize,
    file: &InputFile,
    opts: &ReadOptions,
    base: u64,
    raw_pos: &AtomicU64,
    tx: &mpsc::SyncSender<Msg>,
) -> Sent {
    let counter = Arc::new(AtomicU64::new(0));
    let input = match pytorrent_io::open_input(&file.path, Some(counter.clone())) {
        Ok(x) => x,
        Err(e) => {
            let (kind, message) = match &e {
                pytorrent_io::Error::Format { message, .. } => {
                    (ProblemKind::Compression, message.clone())
                }
                other => (ProblemKind::Io, other.to_string()),
            };
            return send_failure(tx, i, 0, kind, message);
        }
    };
    let mut lines = LineReader::new(input.reader, opts.max_line_bytes);
    let capacity = opts.chunk_bytes + (1 << 16);
    let mut buf = Vec::with_capacity(capacity);
    let mut spans = Vec::new();
    // Hands the filled buffer on and starts a new one; false once the consumer is gone.
    let send = |buf: &mut Vec<u8>, spans: &mut Vec<LineSpan>| {
        let buf = std::mem::replace(buf, Vec::with_capacity(capacity));
        tx.send(Msg::Chunk {
            file: i,
            buf,
            spans: std::mem::take(spans),
        })
        .is_ok()
    };
    loop {
        match lines.next_line_into(&mut buf) {
            Ok(Some(span)) => {
                spans.push(span);
                if buf.len() >= opts.chunk_bytes || spans.len() >= 1 << 16 {
                    raw_pos.store(base + counter.load(Ordering::Relaxed), Ordering::Relaxed);
                    if !send(&mut buf, &mut spans) {
                        return Sent::Gone;
                    }
                }
            }
            Ok(None) => break,
            Err(e) => {
                if !spans.is_empty() && !send(&mut buf, &mut spans) {
                    return Sent::Gone;
                }
                let kind = io_problem_kind(&e);
                let message = describe_read_error(&e, kind);
                return send_failure(tx, i, lines.line_no() + 1, kind, message);
            }
        }
    }
    if !spans.is_empty() && !send(&mut buf, &mut spans) {
        return Sent::Gone;
    }
    Sent::Done
}

/// Rows of a Parquet file, each as one line of JSON, in chunks (a row is line `n` of its
/// file: problems name the row).
fn send_parquet(
    i: usize,
    file: &InputFile,
    opts: &ReadOptions,
    (columns, stand_ins): (Option<&[String]>, &[String]),
    base: u64,
    raw_pos: &AtomicU64,
    tx: &mpsc::SyncSender<Msg>,
) -> Sent {
    let mut gone = false;
    let result = crate::parquet_in::read_as_json_lines(
        &file.path,
        columns,
        stand_ins,
        opts.chunk_bytes,
        &mut |json, first_row, fraction| {
            let mut spans = Vec::new();
            let mut start = 0;
            for (k, end) in memchr::memchr_iter(b'\n', &json).enumerate() {
                let line_no = first_row + k as u64 + 1;
                spans.push(if end - start > opts.max_line_bytes {
                    LineSpan::TooLong {
                        line_no,
                        len: (end - start) as u64,
                    }
                } else {
                    LineSpan::Line {
                        line_no,
                        start,
                        end,
                    }
                });
                start = end + 1;
            }
            let size = file.size.unwrap_or(0) as f64;
            raw_pos.store(base + (size * fraction) as u64, Ordering::Relaxed);
            let chunk = Msg::Chunk {
                file: i,
                buf: json,
                spans,
            };
            gone = tx.send(chunk).is_err();
            !gone
        },
    );
    match result {
        _ if gone => Sent::Gone,
        Ok(()) => Sent::Done,
        Err((row, kind, message)) => send_failure(tx, i, row, kind, message),
    }
}

/// For a record that is not a PyTorrent record at all (`{"text": …}` as hub datasets and
/// datatrove write them): the fields it has, and the flag that reads such records.
fn other_shape_hint(text: &str) -> String {
    let Ok(serde_json::Value::Object(fields)) = serde_json::from_str::<serde_json::Value>(text)
    else {
        return String::new();
    };
    if ["repo", "path", "func_name", "code"]
        .iter()
        .any(|k| fields.contains_key(*k))
    {
        return String::new();
    }
    let names: Vec<&str> = fields.keys().map(String::as_str).collect();
    let strings: Vec<&str> = fields
        .iter()
        .filter(|(_, v)| v.is_string())
        .map(|(k, _)| k.as_str())
        .collect();
    let pick = ["text", "content", "code", "source"]
        .into_iter()
        .find(|k| strings.contains(k))
        .or_else(|| strings.first().copied());
    let shown = if names.len() > 8 {
        format!("{}, …", names[..8].join(", "))
    } else {
        names.join(", ")
    };
    match pick {
        Some(f) => format!(
            " (not a PyTorrent record: it has {shown}; to read one string field of records of \
             any shape, give --text-field {f})"
        ),
        None => format!(" (not a PyTorrent record: it has {shown})"),
    }
}

/// Turns a serde error into a precise, human message with the field path when there is one.
pub(crate) fn describe_record_error(text: &str, err: serde_json::Error) -> (ProblemKind, String) {
    use serde_json::error::Category;
    let col = err.column();
    match err.classify() {
        Category::Syntax | Category::Eof => {
            let msg = err.to_string();
            let what = msg.split(" at line ").next().unwrap_or(&msg);
            let what = if what.contains("recursion limit") {
                "nested too deeply (more than 128 levels)"
            } else {
                what
            };
            (
                ProblemKind::InvalidJson,
                format!("invalid JSON at column {col}: {what}"),
            )
        }
        Category::Io => (ProblemKind::Io, err.to_string()),
        Category::Data => {
            // Re-parse (rarely: only bad lines) to learn which field was wrong.
            let mut de = serde_json::Deserializer::from_str(text);
            let res: Result<RecordRef<'_>, _> = serde_path_to_error::deserialize(&mut de);
            let (path, inner) = match res {
                Err(e) => (e.path().to_string(), e.into_inner().to_string()),
                Ok(_) => (String::new(), err.to_string()),
            };
            let inner = inner
                .split(" at line ")
                .next()
                .unwrap_or(&inner)
                .to_string();
            if let Some(rest) = inner.strip_prefix("missing field ") {
                (
                    ProblemKind::MissingField,
                    format!("missing required field {rest}{}", other_shape_hint(text)),
                )
            } else if inner.starts_with("duplicate field") {
                (ProblemKind::InvalidJson, inner)
            } else if path.is_empty() || path == "." {
                (ProblemKind::WrongType, inner)
            } else {
                (ProblemKind::WrongType, format!("field `{path}`: {inner}"))
            }
        }
    }
}

fn parse_line<'l, S: Schema, T>(
    file: &InputFile,
    line: RawLine<'l>,
    schema: &S,
    map: &(impl Fn(&InputFile, RawLine<'_>, S::Record<'_>) -> T + Sync),
) -> Parsed<T> {
    let problem = |kind, message| {
        Parsed::Problem(Problem {
            path: file.display(),
            line: line.line_no,
            kind,
            message,
        })
    };
    if line.bytes.iter().all(u8::is_ascii_whitespace) {
        return Parsed::Blank;
    }
    let text = match std::str::from_utf8(line.bytes) {
        Ok(t) => t,
        Err(e) => {
            return problem(
                ProblemKind::InvalidUtf8,
                format!("invalid UTF-8 at byte {} of the line", e.valid_up_to() + 1),
            )
        }
    };
    match schema.parse(text) {
        Ok(rec) => Parsed::Record(map(file, line, rec)),
        Err((kind, message)) => problem(kind, message),
    }
}

/// Escapes a reason so it stays one TSV cell.
fn tsv_cell(s: &str) -> String {
    s.replace(['\t', '\n', '\r'], " ")
}

struct Quarantine {
    path: PathBuf,
    writer: Option<pytorrent_io::CompressedWriter>,
}

impl Quarantine {
    fn put(&mut self, problem: &Problem, raw: Option<&[u8]>) -> Result<()> {
        if self.writer.is_none() {
            let mut w = pytorrent_io::CompressedWriter::create(
                &self.path,
                pytorrent_io::Compression::None,
            )?;
            w.write_all(b"file\tline\tkind\treason\traw\n")
                .map_err(|e| pytorrent_io::Error::io(&self.path, e))?;
            self.writer = Some(w);
        }
        let w = self.writer.as_mut().expect("opened above");
        let head = format!(
            "{}\t{}\t{}\t{}\t",
            tsv_cell(&problem.path),
            problem.line,
            problem.kind.name(),
            tsv_cell(&problem.message)
        );
        let io = |e| pytorrent_io::Error::io(&self.path, e);
        w.write_all(head.as_bytes()).map_err(io)?;
        w.write_all(raw.unwrap_or_default()).map_err(io)?;
        w.write_all(b"\n").map_err(io)?;
        Ok(())
    }

    fn finish(self) -> Result<Option<PathBuf>> {
        match self.writer {
            Some(w) => Ok(Some(w.finish()?)),
            None => Ok(None),
        }
    }
}

/// Reads every PyTorrent record of `files`: [`read_records`] with the [`PyTorrent`] schema.
pub fn read_corpus<T, E, M, S>(
    files: &[InputFile],
    opts: &ReadOptions,
    progress: &dyn Reporter,
    map: M,
    sink: S,
) -> std::result::Result<ReadSummary, E>
where
    T: Send,
    E: From<Error>,
    M: Fn(&InputFile, RawLine<'_>, RecordRef<'_>) -> T + Sync,
    S: FnMut(Item<'_, T>) -> std::result::Result<(), E>,
{
    read_records(files, opts, &PyTorrent, progress, map, sink)
}

/// Reads every record of `files` (JSONL, compressed or not, and Parquet) as `schema` says,
/// calling `map` on each (in parallel) and `sink` on each result (sequentially, in input
/// order). The sink's own errors (`E`, any error a corpus error converts into) stop the read
/// and are returned as they are. `progress` hears the total and the position in input
/// bytes; the caller begins and ends the phase.
pub fn read_records<Sc, T, E, M, S>(
    files: &[InputFile],
    opts: &ReadOptions,
    schema: &Sc,
    progress: &dyn Reporter,
    map: M,
    mut sink: S,
) -> std::result::Result<ReadSummary, E>
where
    Sc: Schema,
    T: Send,
    E: From<Error>,
    M: Fn(&InputFile, RawLine<'_>, Sc::Record<'_>) -> T + Sync,
    S: FnMut(Item<'_, T>) -> std::result::Result<(), E>,
{
    let total: Option<u64> = files.iter().map(|f| f.size).sum();
    if let Some(t) = total {
        progress.set_total(t);
    }
    let raw_pos = AtomicU64::new(0);
    let mut summary = ReadSummary::default();
    let mut quarantine = opts
        .quarantine
        .clone()
        .map(|path| Quarantine { path, writer: None });

    let result = std::thread::scope(|scope| -> std::result::Result<(), E> {
        let (tx, rx) = mpsc::sync_channel::<Msg>(2);
        let raw_pos = &raw_pos;
        let columns = schema.columns();
        let stand_ins = schema.stand_ins();
        scope
            .spawn(move || reader_thread(files, opts, columns.as_deref(), &stand_ins, raw_pos, tx));

        let mut reject = |problem: Problem,
                          raw: Option<&[u8]>,
                          summary: &mut ReadSummary,
                          sink: &mut S|
         -> std::result::Result<(), E> {
            if opts.on_error == OnError::Fail {
                return Err(Error::Data(problem).into());
            }
            *summary.rejected.entry(problem.kind).or_default() += 1;
            if let Some(q) = quarantine.as_mut() {
                q.put(&problem, raw).map_err(E::from)?;
            }
            sink(Item::Rejected { problem: &problem })
        };

        for msg in rx {
            match msg {
                Msg::Chunk { file, buf, spans } => {
                    let f = &files[file];
                    let line_at = |span: &LineSpan| match *span {
                        LineSpan::Line {
                            line_no,
                            start,
                            end,
                        } => Some(RawLine {
                            line_no,
                            bytes: &buf[start..end],
                        }),
                        LineSpan::TooLong { .. } => None,
                    };
                    let parsed: Vec<Parsed<T>> = spans
                        .par_iter()
                        .map(|span| match (line_at(span), *span) {
                            (Some(line), _) => parse_line(f, line, schema, &map),
                            (None, LineSpan::TooLong { line_no, len }) => {
                                Parsed::Problem(Problem {
                                    path: f.display(),
                                    line: line_no,
                                    kind: ProblemKind::LineTooLong,
                                    message: format!(
                                    "line is {len} bytes, over the limit of {} (--max-line-bytes)",
                                    opts.max_line_bytes
                                ),
                                })
                            }
                            (None, LineSpan::Line { .. }) => unreachable!("a line span has bytes"),
                        })
                        .collect();
                    for (span, p) in spans.iter().zip(parsed) {
                        summary.lines += 1;
                        match (line_at(span), p) {
                            (Some(line), Parsed::Record(value)) => {
                                summary.records += 1;
                                sink(Item::Record {
                                    file: f,
                                    line,
                                    value,
                                })?;
                            }
                            (_, Parsed::Blank) => summary.blank_lines += 1,
                            (line, Parsed::Problem(problem)) => {
                                reject(problem, line.map(|l| l.bytes), &mut summary, &mut sink)?;
                            }
                            (None, Parsed::Record(_)) => {
                                unreachable!("a too-long line is never parsed")
                            }
                        }
                    }
                    progress.set_position(raw_pos.load(Ordering::Relaxed));
                }
                Msg::FileFailed {
                    file,
                    line,
                    kind,
                    message,
                } => {
                    summary.files += 1;
                    let problem = Problem {
                        path: files[file].display(),
                        line,
                        kind,
                        message,
                    };
                    reject(problem, None, &mut summary, &mut sink)?;
                }
                Msg::FileDone => {
                    summary.files += 1;
                    progress.set_position(raw_pos.load(Ordering::Relaxed));
                }
            }
        }
        Ok(())
    });
    // On failure the quarantine is dropped unfinished: its temporary file is removed.
    result?;
    if let Some(q) = quarantine {
        summary.quarantine = q.finish().map_err(E::from)?;
    }
    Ok(summary)
}
