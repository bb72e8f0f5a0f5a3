//! Parquet output in the layout `datasets.load_dataset(FOLDER)` reads with its splits:
//! `data/{train,validation,test}-NNNNN-of-MMMMM.parquet` (or one folder per scenario when a
//! corpus holds several, each a config), zstd-compressed, row groups of about 128 MB, and a
//! dataset card `README.md` whose YAML header names the configs, the features, the splits
//! with their counts, and a license summary.
//!
//! Records go in as the JSON lines the reader saw (or extraction wrote) and are decoded into
//! Arrow columns of the PyTorrent schema by arrow-json; fields outside the schema are counted
//! and named in the report, not silently kept or lost. Files are written under temporary
//! names and get their final `-of-MMMMM` names only once every file of the run is complete.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_json::reader::Decoder;
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::error::Result;
use crate::license::LicenseClass;
use crate::metadata::MetadataIndex;
use crate::record::Partition;
use crate::writer::WrittenFile;

/// Records handed to the writing thread at once, in bytes of JSON.
const HAND_OVER_BYTES: usize = 4 << 20;

/// One record on its way to the writing thread.
struct Row {
    config: String,
    partition: Partition,
    package: String,
    line: Vec<u8>,
}

/// A corpus being written as Parquet. Decoding the records into Arrow columns, encoding and
/// compressing them take as long as reading and checking them, so they run on a thread of
/// their own, fed in order through a bounded channel: the output is the same bytes as a
/// writer on the caller's thread would give.
pub struct ParquetCorpusWriter {
    pending: Vec<Row>,
    pending_bytes: usize,
    schema: SchemaRef,
    /// Counted here, on the caller's thread, to share the work with the writing thread.
    unknown_fields: BTreeMap<String, u64>,
    tx: Option<std::sync::mpsc::SyncSender<Vec<Row>>>,
    worker: Option<std::thread::JoinHandle<Result<ParquetCorpusFiles>>>,
}

impl ParquetCorpusWriter {
    pub fn new(out: impl Into<PathBuf>, file_bytes: u64) -> Result<ParquetCorpusWriter> {
        Self::open(ParquetCorpusFiles::new(out.into(), file_bytes)?)
    }

    /// A writer of the folder `owner` claimed: each file is recorded before it appears.
    pub fn owned(
        owner: pytorrent_io::owner::Owner,
        file_bytes: u64,
    ) -> Result<ParquetCorpusWriter> {
        let mut files = ParquetCorpusFiles::new(owner.dir().to_path_buf(), file_bytes)?;
        files.owner = Some(owner);
        Self::open(files)
    }

    fn open(mut files: ParquetCorpusFiles) -> Result<ParquetCorpusWriter> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Row>>(2);
        let worker = std::thread::spawn(move || {
            for rows in rx {
                for r in rows {
                    files.write(&r.config, r.partition, &r.package, &r.line)?;
                }
            }
            Ok(files)
        });
        Ok(ParquetCorpusWriter {
            pending: Vec::new(),
            pending_bytes: 0,
            schema: record_schema(),
            unknown_fields: BTreeMap::new(),
            tx: Some(tx),
            worker: Some(worker),
        })
    }

    /// Adds one record (a JSON line) to split `partition` of config `config`.
    pub fn write(
        &mut self,
        config: &str,
        partition: Partition,
        package: &str,
        line: &[u8],
    ) -> Result<()> {
        note_unknown_fields(&self.schema, &mut self.unknown_fields, line);
        self.pending_bytes += line.len();
        self.pending.push(Row {
            config: config.to_string(),
            partition,
            package: package.to_string(),
            line: line.to_vec(),
        });
        if self.pending_bytes >= HAND_OVER_BYTES {
            self.hand_over()?;
        }
        Ok(())
    }

    fn hand_over(&mut self) -> Result<()> {
        let rows = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(rows).is_ok());
        if sent {
            Ok(())
        } else {
            // The thread stopped: it failed, and says why.
            self.join().map(|_| ())
        }
    }

    fn join(&mut self) -> Result<ParquetCorpusFiles> {
        self.tx = None;
        match self.worker.take().map(|w| w.join()) {
            Some(Ok(result)) => result,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => unreachable!("joined once"),
        }
    }

    /// Waits for every record to be written; the files are then finished by
    /// [`ParquetCorpusFiles::finish`].
    pub fn close(mut self) -> Result<ParquetCorpusFiles> {
        if !self.pending.is_empty() {
            self.hand_over()?;
        }
        let mut files = self.join()?;
        files.unknown_fields = std::mem::take(&mut self.unknown_fields);
        Ok(files)
    }

    /// [`Self::close`], then [`ParquetCorpusFiles::finish`].
    pub fn finish(self, card: &Card<'_>) -> Result<Vec<WrittenFile>> {
        self.close()?.finish(card)
    }
}

impl Drop for ParquetCorpusWriter {
    fn drop(&mut self) {
        // A run that failed: the thread ends, and its files remove their temporary names
        // before the process can exit.
        self.tx = None;
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

/// Counts the top-level fields of `line` that `schema` has no column for.
fn note_unknown_fields(schema: &Schema, unknown: &mut BTreeMap<String, u64>, line: &[u8]) {
    // Only top-level keys matter (values are skipped, not built).
    let Ok(keys) = serde_json::from_slice::<TopKeys>(line) else {
        return;
    };
    for k in keys.0 {
        if schema.field_with_name(&k).is_err() {
            *unknown.entry(k).or_default() += 1;
        }
    }
}

/// Row groups close at about this many bytes of column data.
const ROW_GROUP_BYTES: usize = 128 << 20;
/// Records decoded into one Arrow batch.
const BATCH_ROWS: usize = 1024;
/// A file closes once this many bytes of records went into it (the next one starts).
pub const DEFAULT_FILE_BYTES: u64 = 512 << 20;

/// The columns of a PyTorrent corpus in Parquet: every CodeSearchNet and PyTorrent field.
pub fn record_schema() -> SchemaRef {
    let text = |name: &str| Field::new(name, DataType::Utf8, true);
    let list = |name: &str| {
        Field::new(
            name,
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            true,
        )
    };
    Arc::new(Schema::new(vec![
        text("repo"),
        text("path"),
        text("func_name"),
        text("original_string"),
        text("language"),
        text("code"),
        list("code_tokens"),
        text("docstring"),
        list("docstring_tokens"),
        text("sha"),
        text("url"),
        text("partition"),
        text("summary"),
        text("code_with_docstrings"),
        list("code_tokens_ast"),
    ]))
}

/// The name Hugging Face gives a split.
pub fn split_name(p: Partition) -> &'static str {
    match p {
        Partition::Train => "train",
        Partition::Valid => "validation",
        Partition::Test => "test",
    }
}

/// Where each (config, split) stands.
#[derive(Default)]
struct Split {
    open: Option<Open>,
    /// Complete files (temporary names) and their record counts.
    files: Vec<(PathBuf, u64)>,
    records: u64,
    json_bytes: u64,
}

struct Open {
    tmp: PathBuf,
    writer: ArrowWriter<File>,
    decoder: Decoder,
    pending: usize,
    rows: u64,
    json_bytes: u64,
}

/// The files of a corpus being written as Parquet, and what is known of its records. A
/// [`ParquetCorpusWriter`] fills it on a thread of its own; [`ParquetCorpusWriter::close`]
/// hands it back to be finished.
pub struct ParquetCorpusFiles {
    out: PathBuf,
    schema: SchemaRef,
    file_bytes: u64,
    splits: BTreeMap<(String, Partition), Split>,
    packages: BTreeMap<String, BTreeSet<String>>,
    /// Fields of the records that the schema has no column for, with how often.
    pub unknown_fields: BTreeMap<String, u64>,
    /// The claim on the output folder, when the caller made one.
    owner: Option<pytorrent_io::owner::Owner>,
}

fn io<T>(path: &Path, r: std::io::Result<T>) -> Result<T> {
    r.map_err(|e| pytorrent_io::Error::io(path, e).into())
}

fn arrow_err(path: &Path, e: impl std::fmt::Display) -> crate::Error {
    pytorrent_io::Error::format(path, format!("writing Parquet: {e}")).into()
}

impl ParquetCorpusFiles {
    fn new(out: PathBuf, file_bytes: u64) -> Result<ParquetCorpusFiles> {
        io(&out, std::fs::create_dir_all(&out))?;
        Ok(ParquetCorpusFiles {
            out,
            schema: record_schema(),
            file_bytes: file_bytes.max(1),
            splits: BTreeMap::new(),
            packages: BTreeMap::new(),
            unknown_fields: BTreeMap::new(),
            owner: None,
        })
    }

    fn open(&self, config: &str, p: Partition, n: usize) -> Result<Open> {
        let tmp = self.out.join(format!(
            ".{config}.{}-{n:05}.{}.parquet.tmp",
            split_name(p),
            std::process::id()
        ));
        let file = io(&tmp, File::create(&tmp))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(
                ZstdLevel::try_new(3).expect("a valid level"),
            ))
            .set_max_row_group_bytes(Some(ROW_GROUP_BYTES))
            .build();
        let writer = ArrowWriter::try_new(file, self.schema.clone(), Some(props))
            .map_err(|e| arrow_err(&tmp, e))?;
        let decoder = arrow_json::ReaderBuilder::new(self.schema.clone())
            .with_batch_size(BATCH_ROWS)
            .build_decoder()
            .map_err(|e| arrow_err(&tmp, e))?;
        Ok(Open {
            tmp,
            writer,
            decoder,
            pending: 0,
            rows: 0,
            json_bytes: 0,
        })
    }

    /// Writes one record (a JSON object line) of `package` into `config`'s `partition`.
    fn write(
        &mut self,
        config: &str,
        partition: Partition,
        package: &str,
        line: &[u8],
    ) -> Result<()> {
        self.packages
            .entry(config.to_string())
            .or_default()
            .insert(crate::metadata::normalize_name(package));
        let key = (config.to_string(), partition);
        let n = self.splits.get(&key).map_or(0, |s| s.files.len());
        if self.splits.get(&key).is_none_or(|s| s.open.is_none()) {
            let open = self.open(config, partition, n)?;
            self.splits.entry(key.clone()).or_default().open = Some(open);
        }
        let split = self.splits.get_mut(&key).expect("opened above");
        let open = split.open.as_mut().expect("opened above");
        let tmp = open.tmp.clone();
        let mut rest = line;
        while !rest.is_empty() {
            let used = open.decoder.decode(rest).map_err(|e| arrow_err(&tmp, e))?;
            rest = &rest[used..];
            if !rest.is_empty() {
                flush_batch(open)?;
            }
        }
        open.pending += 1;
        open.rows += 1;
        open.json_bytes += line.len() as u64;
        split.records += 1;
        split.json_bytes += line.len() as u64;
        if open.pending >= BATCH_ROWS {
            flush_batch(open)?;
        }
        if open.json_bytes >= self.file_bytes {
            let done = split.open.take().expect("open");
            split.files.push(close(done)?);
        }
        Ok(())
    }

    /// Closes every file, gives them their final names and writes the dataset card.
    pub fn finish(mut self, card: &Card<'_>) -> Result<Vec<WrittenFile>> {
        for split in self.splits.values_mut() {
            if let Some(open) = split.open.take() {
                split.files.push(close(open)?);
            }
        }
        let single = self.configs().len() == 1;
        let mut written = Vec::new();
        for ((config, p), split) in &self.splits {
            let dir = self.out.join(config_dir(config, single));
            io(&dir, std::fs::create_dir_all(&dir))?;
            remove_old_shards(&dir, split_name(*p))?;
            let m = split.files.len();
            for (i, (tmp, rows)) in split.files.iter().enumerate() {
                let path = dir.join(format!("{}-{i:05}-of-{m:05}.parquet", split_name(*p)));
                if let Some(o) = &mut self.owner {
                    o.record(&path)?;
                }
                io(&path, std::fs::rename(tmp, &path))?;
                let bytes = io(&path, std::fs::metadata(&path))?.len();
                written.push(WrittenFile {
                    path,
                    records: *rows,
                    bytes,
                });
            }
        }
        let text = self.card_text(card, single);
        let path = self.out.join("README.md");
        if let Some(o) = &mut self.owner {
            o.record(&path)?;
        }
        pytorrent_io::atomic::write_atomic(&path, text.as_bytes())?;
        Ok(written)
    }

    fn configs(&self) -> BTreeSet<&str> {
        self.splits.keys().map(|(c, _)| c.as_str()).collect()
    }

    fn card_text(&self, card: &Card<'_>, single: bool) -> String {
        let mut y = String::from("---\nconfigs:\n");
        let configs = self.configs();
        // The docstrings scenario (PyTorrent's main one) is the default config when present.
        let default = if configs.contains("docstrings") {
            "docstrings"
        } else {
            configs.iter().next().copied().unwrap_or_default()
        };
        for config in &configs {
            let name = if single { "default" } else { config };
            y.push_str(&format!("- config_name: {name}\n"));
            if *config == default {
                y.push_str("  default: true\n");
            }
            y.push_str("  data_files:\n");
            for ((c, p), _) in self.splits.iter().filter(|((c, _), _)| c == config) {
                let s = split_name(*p);
                y.push_str(&format!(
                    "  - split: {s}\n    path: {}/{s}-*.parquet\n",
                    config_dir(c, single)
                ));
            }
        }
        y.push_str("dataset_info:\n");
        for config in &configs {
            let name = if single { "default" } else { config };
            y.push_str(&format!("- config_name: {name}\n  features:\n"));
            for f in self.schema.fields() {
                match f.data_type() {
                    DataType::List(_) => {
                        y.push_str(&format!("  - name: {}\n    list: string\n", f.name()))
                    }
                    _ => y.push_str(&format!("  - name: {}\n    dtype: string\n", f.name())),
                }
            }
            y.push_str("  splits:\n");
            for ((_, p), s) in self.splits.iter().filter(|((c, _), _)| c == config) {
                y.push_str(&format!(
                    "  - name: {}\n    num_bytes: {}\n    num_examples: {}\n",
                    split_name(*p),
                    s.json_bytes,
                    s.records
                ));
            }
        }
        let licenses = self.license_summary(card.metadata);
        y.push_str(&format!("license: {}\n", licenses.spdx_field()));
        y.push_str("tags:\n- code\n- python\n- pytorrent\n---\n\n");
        y.push_str(&format!("# {}\n\n", card.title));
        y.push_str(&format!(
            "Python functions paired with their natural language, in the PyTorrent / \
             CodeSearchNet record format, written by {}.\n\n",
            card.tool
        ));
        y.push_str("| config | split | records | files |\n| --- | --- | ---: | ---: |\n");
        for ((c, p), s) in &self.splits {
            y.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                if single { "default" } else { c },
                split_name(*p),
                s.records,
                s.files.len()
            ));
        }
        y.push('\n');
        y.push_str(&licenses.prose());
        y
    }

    fn license_summary(&self, metadata: Option<&MetadataIndex>) -> LicenseSummary {
        let all: BTreeSet<&String> = self.packages.values().flatten().collect();
        let Some(index) = metadata else {
            return LicenseSummary::default();
        };
        let mut s = LicenseSummary {
            known: true,
            ..Default::default()
        };
        for p in all {
            let (class, ids) = match index.get(p) {
                Some(m) => (m.license.class, m.license.ids.clone()),
                None => (LicenseClass::NoMetadata, Vec::new()),
            };
            s.packages
                .entry(class.as_str())
                .or_default()
                .push(p.clone());
            s.ids.extend(ids);
        }
        s
    }
}

/// The top-level keys of a JSON object.
struct TopKeys(Vec<String>);

impl<'de> serde::Deserialize<'de> for TopKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = TopKeys;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> std::result::Result<TopKeys, A::Error> {
                let mut keys = Vec::new();
                while let Some(k) = m.next_key::<String>()? {
                    m.next_value::<serde::de::IgnoredAny>()?;
                    keys.push(k);
                }
                Ok(TopKeys(keys))
            }
        }
        d.deserialize_map(V)
    }
}

/// The packages of the corpus by license class, for the card.
#[derive(Default)]
struct LicenseSummary {
    known: bool,
    packages: BTreeMap<&'static str, Vec<String>>,
    ids: BTreeSet<String>,
}

impl LicenseSummary {
    /// The card's `license:` field: the one SPDX id every package shares, else `other`.
    fn spdx_field(&self) -> String {
        let one_class = self.packages.len() == 1;
        match (self.known, self.ids.len(), one_class) {
            (true, 1, true) => self.ids.iter().next().expect("one").to_ascii_lowercase(),
            _ => "other".into(),
        }
    }

    fn prose(&self) -> String {
        if !self.known {
            return "## Licenses\n\nNo package metadata was given, so the packages' licenses \
                    are not summarised here: check them before use.\n"
                .into();
        }
        let mut s = String::from(
            "## Licenses\n\nEach record keeps its package's license. Packages by license \
             class (from their metadata):\n\n| class | packages |\n| --- | --- |\n",
        );
        for (class, names) in &self.packages {
            s.push_str(&format!(
                "| {class} | {} ({}) |\n",
                names.len(),
                names.join(", ")
            ));
        }
        if !self.ids.is_empty() {
            let ids: Vec<&str> = self.ids.iter().map(String::as_str).collect();
            s.push_str(&format!("\nLicense ids: {}.\n", ids.join(", ")));
        }
        s
    }
}

/// What the dataset card says besides the counts.
pub struct Card<'a> {
    pub title: String,
    /// `pytorrent X.Y.Z` and the command or stage.
    pub tool: String,
    pub metadata: Option<&'a MetadataIndex>,
}

/// `data` for a corpus of one scenario, the scenario's name for one of several.
fn config_dir(config: &str, single: bool) -> &str {
    if single {
        "data"
    } else {
        config
    }
}

/// Removes `{split}-NNNNN-of-MMMMM.parquet` files an earlier run left in `dir`.
fn remove_old_shards(dir: &Path, split: &str) -> Result<()> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let ours = name
            .strip_prefix(split)
            .and_then(|r| r.strip_prefix('-'))
            .is_some_and(|r| r.contains("-of-") && r.ends_with(".parquet"));
        if ours {
            io(&e.path(), std::fs::remove_file(e.path()))?;
        }
    }
    Ok(())
}

fn flush_batch(open: &mut Open) -> Result<()> {
    let tmp = open.tmp.clone();
    if let Some(batch) = open.decoder.flush().map_err(|e| arrow_err(&tmp, e))? {
        open.writer.write(&batch).map_err(|e| arrow_err(&tmp, e))?;
    }
    open.pending = 0;
    Ok(())
}

fn close(mut open: Open) -> Result<(PathBuf, u64)> {
    flush_batch(&mut open)?;
    let tmp = open.tmp.clone();
    let file = open.writer.into_inner().map_err(|e| arrow_err(&tmp, e))?;
    io(&tmp, file.sync_all())?;
    Ok((tmp, open.rows))
}

impl Drop for ParquetCorpusFiles {
    fn drop(&mut self) {
        // A run that failed leaves no temporary files behind.
        for split in self.splits.values() {
            if let Some(o) = &split.open {
                let _ = std::fs::remove_file(&o.tmp);
            }
            for (tmp, _) in &split.files {
                let _ = std::fs::remove_file(tmp);
            }
        }
    }
}
