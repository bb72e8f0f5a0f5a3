//! Writing corpora in the published layouts, with chunk rotation and atomic files.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use pytorrent_io::{CompressedWriter, Compression};

use crate::error::{Error, Result};
use crate::record::Partition;

pytorrent_io::word_enum! {
    "layout";
    /// Where records go.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Layout {
        /// One file (`--out corpus.jsonl.gz`), or standard output for `-`.
        Flat = "flat" | "jsonl",
        /// `<out>/<scenario>/<partition>/<partition>_scenario_<scenario>_chk_<n>.jsonl.gz`.
        PyTorrent = "pytorrent",
        /// `<out>/python/final/jsonl/<partition>/python_<partition>_<n>.jsonl.gz`.
        CodeSearchNet = "codesearchnet" | "csn",
        /// `<out>/<relative input path>`: each input file maps to the output file of the same
        /// relative name and compression (what `filter` uses to keep the input layout).
        Mirror = "mirror",
    }
}

#[derive(Debug, Clone)]
pub struct WriterOptions {
    pub layout: Layout,
    /// `None`: from the output name for flat files, gzip for the chunked layouts, the input's
    /// compression for mirror.
    pub compression: Option<Compression>,
    /// Start a new chunk after this many records (chunked layouts).
    pub chunk_records: Option<u64>,
    /// Start a new chunk once this many uncompressed bytes were written (chunked layouts).
    pub chunk_bytes: Option<u64>,
}

/// Which output stream a record belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    Flat,
    Partitioned {
        scenario: String,
        partition: Partition,
    },
    Mirror {
        rel: PathBuf,
    },
}

/// A finished output file.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct WrittenFile {
    pub path: PathBuf,
    pub records: u64,
    pub bytes: u64,
}

struct Open {
    writer: Output,
    chunk: u64,
    records: u64,
}

enum Output {
    File(Box<CompressedWriter>),
    Stdout(std::io::BufWriter<std::io::Stdout>, u64),
}

impl Output {
    fn written(&self) -> u64 {
        match self {
            Output::File(w) => w.written(),
            Output::Stdout(_, n) => *n,
        }
    }
    fn write_line(&mut self, line: &[u8], path: &Path) -> Result<()> {
        let io = |e| Error::Io(pytorrent_io::Error::io(path, e));
        match self {
            Output::File(w) => {
                w.write_all(line).map_err(io)?;
                w.write_all(b"\n").map_err(io)
            }
            Output::Stdout(w, n) => {
                *n += line.len() as u64 + 1;
                w.write_all(line).map_err(io)?;
                w.write_all(b"\n").map_err(io)
            }
        }
    }
    fn finish(self, path: &Path) -> Result<()> {
        match self {
            Output::File(w) => {
                (*w).finish()?;
            }
            Output::Stdout(mut w, _) => w.flush().map_err(|e| pytorrent_io::Error::io(path, e))?,
        }
        Ok(())
    }
}

pub struct CorpusWriter {
    out: PathBuf,
    opts: WriterOptions,
    open: BTreeMap<Target, Open>,
    done: Vec<WrittenFile>,
    /// Paths of every file opened, so two targets can never write one file.
    paths: BTreeMap<PathBuf, Target>,
    /// A chunked layout (a folder of files) marked incomplete until `finish`.
    marked: bool,
    /// The claim on the output folder: every file is recorded in it before it is created.
    owner: Option<pytorrent_io::owner::Owner>,
}

impl CorpusWriter {
    /// A writer of `out` as it is: for a flat file, or a folder the caller answers for.
    pub fn new(out: impl Into<PathBuf>, opts: WriterOptions) -> Result<Self> {
        Self::open(out.into(), opts, None)
    }

    /// A writer of the folder `owner` claimed (see [`pytorrent_io::owner`]).
    pub fn owned(owner: pytorrent_io::owner::Owner, opts: WriterOptions) -> Result<Self> {
        Self::open(owner.dir().to_path_buf(), opts, Some(owner))
    }

    fn open(
        out: PathBuf,
        opts: WriterOptions,
        owner: Option<pytorrent_io::owner::Owner>,
    ) -> Result<Self> {
        if opts.layout == Layout::Flat
            && (opts.chunk_records.is_some() || opts.chunk_bytes.is_some())
        {
            return Err(Error::Usage(
                "chunk rotation needs a chunked layout (--layout pytorrent or codesearchnet)"
                    .into(),
            ));
        }
        if opts.layout != Layout::Flat && out == Path::new("-") {
            return Err(Error::Usage(
                "only the flat layout can be written to standard output".into(),
            ));
        }
        let marked = opts.layout != Layout::Flat;
        if marked {
            pytorrent_io::atomic::mark_incomplete(&out)?;
        }
        Ok(CorpusWriter {
            out,
            opts,
            open: BTreeMap::new(),
            done: Vec::new(),
            paths: BTreeMap::new(),
            marked,
            owner,
        })
    }

    fn path_for(&self, target: &Target, chunk: u64) -> PathBuf {
        let gz = self.opts.compression.unwrap_or(Compression::Gzip).suffix();
        match target {
            Target::Flat => self.out.clone(),
            Target::Partitioned {
                scenario,
                partition,
            } => match self.opts.layout {
                Layout::CodeSearchNet => self
                    .out
                    .join("python/final/jsonl")
                    .join(partition.as_str())
                    .join(format!("python_{partition}_{chunk}.jsonl{gz}")),
                _ => self
                    .out
                    .join(scenario)
                    .join(partition.as_str())
                    .join(format!(
                        "{partition}_scenario_{scenario}_chk_{chunk}.jsonl{gz}"
                    )),
            },
            Target::Mirror { rel } => {
                if rel.as_os_str().is_empty() {
                    self.out.clone()
                } else {
                    self.out.join(rel)
                }
            }
        }
    }

    fn compression_for(&self, path: &Path) -> Compression {
        match (&self.opts.layout, self.opts.compression) {
            (Layout::Flat | Layout::Mirror, None) => Compression::from_extension(path),
            (_, Some(c)) => c,
            (_, None) => Compression::Gzip,
        }
    }

    fn open_target(&mut self, target: &Target, chunk: u64) -> Result<Open> {
        let path = self.path_for(target, chunk);
        if let Some(other) = self.paths.insert(path.clone(), target.clone()) {
            if &other != target || chunk == 0 {
                return Err(Error::Usage(format!(
                    "{}: two inputs would be written to the same output file",
                    path.display()
                )));
            }
        }
        if let Some(o) = &mut self.owner {
            o.record(&path)?;
        }
        let writer = if path == Path::new("-") {
            Output::Stdout(std::io::BufWriter::new(std::io::stdout()), 0)
        } else {
            Output::File(Box::new(CompressedWriter::create(
                &path,
                self.compression_for(&path),
            )?))
        };
        Ok(Open {
            writer,
            chunk,
            records: 0,
        })
    }

    fn close(&mut self, target: &Target, open: Open) -> Result<()> {
        let path = self.path_for(target, open.chunk);
        let bytes = open.writer.written();
        open.writer.finish(&path)?;
        self.done.push(WrittenFile {
            path,
            records: open.records,
            bytes,
        });
        Ok(())
    }

    /// Opens the output of `target` even if no record goes there (mirror keeps empty files).
    pub fn touch(&mut self, target: &Target) -> Result<()> {
        if !self.open.contains_key(target) {
            let o = self.open_target(target, 0)?;
            self.open.insert(target.clone(), o);
        }
        Ok(())
    }

    /// Appends one JSONL line (without its newline) to `target`, rotating chunks as asked.
    pub fn write(&mut self, target: &Target, line: &[u8]) -> Result<()> {
        let full = match self.open.get(target) {
            Some(o) => {
                self.opts.chunk_records.is_some_and(|n| o.records >= n)
                    || self
                        .opts
                        .chunk_bytes
                        .is_some_and(|n| o.writer.written() >= n)
            }
            None => {
                self.touch(target)?;
                false
            }
        };
        if full {
            let old = self.open.remove(target).expect("present");
            let next = old.chunk + 1;
            self.close(target, old)?;
            let o = self.open_target(target, next)?;
            self.open.insert(target.clone(), o);
        }
        let path = self.path_for(target, self.open[target].chunk);
        let o = self.open.get_mut(target).expect("opened above");
        o.writer.write_line(line, &path)?;
        o.records += 1;
        Ok(())
    }

    /// Finishes every open file (each appears under its final name now) and lists them.
    pub fn finish(mut self) -> Result<Vec<WrittenFile>> {
        let open = std::mem::take(&mut self.open);
        for (target, o) in open {
            self.close(&target, o)?;
        }
        if self.marked {
            pytorrent_io::atomic::mark_complete(&self.out)?;
            self.marked = false;
        }
        let mut done = std::mem::take(&mut self.done);
        done.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(done)
    }
}

impl Drop for CorpusWriter {
    /// A run that failed (disk full, a bad input under `fail`) keeps no file under a final
    /// name: the chunks this writer completed go, and the folder stays marked incomplete.
    fn drop(&mut self) {
        if self.marked {
            for f in &self.done {
                let _ = std::fs::remove_file(&f.path);
            }
        }
    }
}

/// Whether `out` is named like a file of records (`.jsonl`, `.json`, `.gz`, `.zst`,
/// `.parquet`) rather than a folder.
fn file_like(out: &Path) -> bool {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    [".jsonl", ".json", ".gz", ".zst", ".parquet", ".txt"]
        .iter()
        .any(|s| name.ends_with(s))
}

/// Checks an output that must be a folder (chunked layouts, extract, dedup): not standard
/// output, not named like a file (`--out corpus.jsonl.gz` would make a folder of that name).
pub fn check_folder_out(out: &Path, what: &str) -> Result<()> {
    if out == Path::new("-") {
        return Err(Error::Usage(format!(
            "{what} writes a folder of files: standard output cannot hold it; give a folder \
             (then `pytorrent corpus convert FOLDER --out -` streams it as one JSONL)"
        )));
    }
    if file_like(out) {
        return Err(Error::Usage(format!(
            "--out {}: {what} writes a folder, and this names a file; give a folder name \
             (then `pytorrent corpus convert FOLDER --out FILE` makes one file of it)",
            out.display()
        )));
    }
    Ok(())
}

/// Checks that an output folder is neither an input nor holds one nor lies inside one:
/// writing it would replace or mix into what is being read.
pub fn check_apart(out: &Path, inputs: &[PathBuf]) -> Result<()> {
    let o = resolved(out);
    for input in inputs.iter().filter(|i| i.as_path() != Path::new("-")) {
        let i = resolved(input);
        if o.starts_with(&i) || i.starts_with(&o) {
            return Err(Error::Usage(format!(
                "--out {} and the input {} overlap: write the output elsewhere",
                out.display(),
                input.display()
            )));
        }
    }
    Ok(())
}

/// `p` made absolute with its links resolved as far as it exists (an output folder often
/// does not exist yet).
fn resolved(p: &Path) -> PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    for base in abs.ancestors() {
        if let Ok(real) = base.canonicalize() {
            let rest = abs.strip_prefix(base).unwrap_or(Path::new(""));
            return real.join(rest);
        }
    }
    abs
}

/// Checks an output that must be one file: not an existing folder.
pub fn check_file_out(out: &Path, what: &str) -> Result<()> {
    if out != Path::new("-") && out.is_dir() {
        return Err(Error::Usage(format!(
            "--out {}: {what} writes one file here, and this is a folder; give a file name \
             (or a chunked --layout to write a folder)",
            out.display()
        )));
    }
    Ok(())
}

/// Returns `line` with `"partition": p` added when the record has no partition field, keeping
/// every other key where it was.
pub fn with_partition(line: &[u8], partition: Partition) -> Vec<u8> {
    with_field(line, "partition", partition.as_str())
}

/// The record line with `"key":"value"` added as its last field. The rest of the line is
/// kept byte for byte (no re-serialisation: numbers, escapes and key order stay as they were).
/// `line` is a JSON object the reader parsed.
pub fn with_field(line: &[u8], key: &str, value: &str) -> Vec<u8> {
    let end = line
        .iter()
        .rposition(|b| *b == b'}')
        .expect("a parsed record is an object");
    let body = &line[..end];
    let empty = body
        .iter()
        .rev()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{');
    let mut out = body.to_vec();
    if !empty {
        out.push(b',');
    }
    out.extend_from_slice(&serde_json::to_vec(key).expect("a string serialises"));
    out.push(b':');
    out.extend_from_slice(&serde_json::to_vec(value).expect("a string serialises"));
    out.push(b'}');
    out
}

/// The record line without a last field `"key":"value"` that [`with_field`] added; `None`
/// when the line does not end with exactly that.
pub fn without_last_field(line: &[u8], key: &str, value: &str) -> Option<Vec<u8>> {
    let mut tail = vec![b','];
    tail.extend_from_slice(&serde_json::to_vec(key).expect("a string serialises"));
    tail.push(b':');
    tail.extend_from_slice(&serde_json::to_vec(value).expect("a string serialises"));
    tail.push(b'}');
    let trimmed = line.trim_ascii_end();
    trimmed.strip_suffix(tail.as_slice()).map(|head| {
        let mut out = head.to_vec();
        out.push(b'}');
        out
    })
}

#[cfg(test)]
mod tests {

    #[test]
    fn fields_are_added_and_removed_as_text() {
        let line = br#"{"a":2.5e-3,"b":"\u00e9"}"#;
        let with = with_field(line, "scenario", "both");
        assert_eq!(with, br#"{"a":2.5e-3,"b":"\u00e9","scenario":"both"}"#);
        assert_eq!(without_last_field(&with, "scenario", "both").unwrap(), line);
        assert_eq!(without_last_field(line, "scenario", "both"), None);
        assert_eq!(with_field(b"{ }", "k", "v"), br#"{ "k":"v"}"#);
    }

    use super::*;

    fn read(path: &Path) -> String {
        let mut s = String::new();
        use std::io::Read;
        pytorrent_io::open_input(path, None)
            .unwrap()
            .reader
            .read_to_string(&mut s)
            .unwrap();
        s
    }

    #[test]
    fn pytorrent_layout_rotates_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = CorpusWriter::new(
            dir.path(),
            WriterOptions {
                layout: Layout::PyTorrent,
                compression: None,
                chunk_records: Some(2),
                chunk_bytes: None,
            },
        )
        .unwrap();
        let t = Target::Partitioned {
            scenario: "both".into(),
            partition: Partition::Train,
        };
        for i in 0..5 {
            w.write(&t, format!("{{\"i\":{i}}}").as_bytes()).unwrap();
        }
        let files = w.finish().unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|f| {
                f.path
                    .strip_prefix(dir.path())
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(
            names,
            [
                "both/train/train_scenario_both_chk_0.jsonl.gz",
                "both/train/train_scenario_both_chk_1.jsonl.gz",
                "both/train/train_scenario_both_chk_2.jsonl.gz"
            ]
        );
        assert_eq!(
            files.iter().map(|f| f.records).collect::<Vec<_>>(),
            [2, 2, 1]
        );
        assert_eq!(read(&files[1].path), "{\"i\":2}\n{\"i\":3}\n");
    }

    #[test]
    fn byte_budget_rotates_codesearchnet_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let opts = WriterOptions {
            layout: Layout::CodeSearchNet,
            compression: Some(Compression::Zstd),
            chunk_records: None,
            chunk_bytes: Some(20),
        };
        let mut w = CorpusWriter::new(dir.path(), opts).unwrap();
        let t = Target::Partitioned {
            scenario: String::new(),
            partition: Partition::Test,
        };
        for i in 0..4 {
            // 13 bytes with the newline: a chunk closes once it holds 20 or more.
            w.write(&t, format!("{{\"i\":\"{i:04}\"}}").as_bytes())
                .unwrap();
        }
        let files = w.finish().unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|f| f.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["python_test_0.jsonl.zst", "python_test_1.jsonl.zst"]
        );
        assert_eq!(files.iter().map(|f| f.records).collect::<Vec<_>>(), [2, 2]);
        assert!(files[0]
            .path
            .parent()
            .unwrap()
            .ends_with("python/final/jsonl/test"));
    }

    #[test]
    fn partition_is_appended_in_place() {
        let out = with_partition(br#"{"b":1,"a":[2]}"#, Partition::Valid);
        assert_eq!(out, br#"{"b":1,"a":[2],"partition":"valid"}"#);
    }
}
