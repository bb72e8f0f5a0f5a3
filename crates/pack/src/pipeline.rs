//! `pack` end to end: corpus records → segments (see [`crate::plan`]) → token ids → rows →
//! shards, one folder per partition, resumable after a crash.
//!
//! Resumption: whenever a shard completes, the partition's `.pack-state.json` records the
//! shards so far and a cursor — the segment being written and how many of its rows are in
//! complete shards. A resumed run skips the segments before the cursor without encoding
//! them, recomputes the cursor's segment (its rows are a pure function of the segment) and
//! drops the rows already written, so its output is byte-identical to an uninterrupted run.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use pytorrent_corpus::{
    read_records, AnyRecord, InputFile, Item, Partition, ReadSummary, TextSource, TextView,
};
use pytorrent_io::npy::Dtype;
use pytorrent_io::{Reporter, Tasks, Unit};
use pytorrent_tokenizer::{Encoder, SpecialIds, TokenizerInfo};
use rand::seq::SliceRandom;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{PackConfig, Settings};
use crate::error::{Error, Result};
use crate::manifest::{
    read_json, write_json, InputRef, Manifest, COMPLETE_FILE, FORMAT_VERSION, STATE_FILE,
};
use crate::mask::{mask_row, row_rng, MaskSpec};
use crate::plan::{derive, file_order, owns, segment_of};
use crate::shards::{is_ours, Format, Row, ShardInfo, ShardLayout, ShardWriter};
use crate::{Block, PackOptions, Packer};

/// The tokenizer as packing needs it.
pub struct TokenizerSpec<'a> {
    pub encoder: &'a dyn Encoder,
    /// Recorded in the manifest (files, sha256, vocab_size).
    pub info: TokenizerInfo,
    pub special: SpecialIds,
    pub masking: Option<MaskSpec>,
}

impl TokenizerSpec<'_> {
    fn vocab_size(&self) -> usize {
        self.info.vocab_size()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct SegKey {
    /// Position of the file in processing order.
    order: usize,
    segment: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cursor {
    key: SegKey,
    /// Rows of that segment already in complete shards.
    rows: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    fingerprint: String,
    cursor: Cursor,
    counts: Counts,
    shards: Vec<ShardInfo>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Counts {
    records: u64,
    missing_field: u64,
    dropped_tokens: u64,
}

/// What one partition produced.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct PartitionReport {
    pub partition: String,
    pub dir: PathBuf,
    pub records: u64,
    pub missing_field: u64,
    pub rows: u64,
    pub tokens: u64,
    pub shards: usize,
    pub dropped_tokens: u64,
    /// True when `--resume` found it already complete.
    pub already_complete: bool,
}

#[derive(Debug, Serialize, serde::Deserialize)]
pub struct PackReport {
    pub root: PathBuf,
    pub out: PathBuf,
    pub seq_len: usize,
    pub tasks: Tasks,
    pub partitions: Vec<PartitionReport>,
    pub read: Option<ReadSummary>,
    /// Records left out because nothing said their partition.
    pub no_partition: u64,
    pub resumed: bool,
}

enum Text {
    One(String),
    /// `nl+code`: packed as `NL </s></s> code`.
    Pair(String, String),
}

/// The records of the segment being collected, by partition.
struct Pending {
    key: SegKey,
    texts: BTreeMap<Partition, Vec<Text>>,
    missing: BTreeMap<Partition, u64>,
}

enum Mapped {
    Text(Partition, Text),
    Missing(Partition),
    /// Nothing says the record's partition (no field, folder, file name or rule).
    NoPartition,
    Ignored,
}

struct Part {
    partition: Partition,
    dir: PathBuf,
    writer: ShardWriter,
    done: bool,
    cursor: Option<Cursor>,
    counts: Counts,
}

/// The folder a task writes: the output itself, or `task-IIIII-of-NNNNN/` under it.
pub fn task_root(out: &Path, tasks: Tasks) -> PathBuf {
    tasks.root(out)
}

fn io<T>(path: &Path, r: std::io::Result<T>) -> Result<T> {
    r.map_err(|e| pytorrent_io::Error::io(path, e).into())
}

/// Removes this tool's files from a folder (`keep` decides which survive).
fn remove_files(dir: &Path, remove: impl Fn(&str) -> bool) -> Result<()> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in rd.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if remove(&n) && e.path().is_file() {
            io(&e.path(), std::fs::remove_file(e.path()))?;
        }
    }
    Ok(())
}

/// A fresh run must not leave stale shards behind.
fn clean(dir: &Path) -> Result<()> {
    remove_files(dir, is_ours)
}

fn remove_temporaries(dir: &Path) -> Result<()> {
    remove_files(dir, |n| n.starts_with('.') && n.ends_with(".tmp"))
}

/// What the fingerprint covers: the format, the settings, the split, the tokenizer's content
/// (not where its files are) and the input list.
#[derive(Serialize)]
struct Fingerprinted<'a> {
    format_version: u32,
    settings: &'a Settings,
    dtype: Dtype,
    num_tasks: usize,
    tokenizer: (Vec<&'a str>, usize),
    inputs: Vec<(String, Option<u64>)>,
}

pub fn fingerprint(
    settings: &Settings,
    dtype: Dtype,
    tasks: Tasks,
    tokenizer: &TokenizerInfo,
    files: &[InputFile],
) -> String {
    let content = match tokenizer {
        TokenizerInfo::TokenizerJson { sha256, .. } => vec![sha256.as_str()],
        TokenizerInfo::VocabMerges {
            vocab_sha256,
            merges_sha256,
            ..
        } => vec![vocab_sha256.as_str(), merges_sha256.as_str()],
    };
    let canon = serde_json::to_vec(&Fingerprinted {
        format_version: FORMAT_VERSION,
        settings,
        dtype,
        num_tasks: tasks.count,
        tokenizer: (content, tokenizer.vocab_size()),
        inputs: files
            .iter()
            .map(|f| (f.rel.to_string_lossy().into_owned(), f.size))
            .collect(),
    })
    .expect("serialisable");
    pytorrent_io::fingerprint::hex(&Sha256::digest(&canon))
}

/// The pack stage.
pub struct Pack;

impl pytorrent_io::stage::Stage for Pack {
    type Config = PackConfig;
    type Report = PackReport;
    type Error = Error;
    const COMMAND: &'static str = "pack";
    const READS: &'static [&'static str] = &["inputs"];
    const READS_OR_ID: &'static [&'static str] = &["tokenizer", "model"];
    const WRITES: &'static [&'static str] = &["quarantine"];
    const UNHASHED: &'static [&'static str] = &["resume"];
    const RESUMES: bool = true;

    fn run(
        config: &PackConfig,
        reporter: &dyn pytorrent_io::Reporter,
    ) -> Result<PackReport, Error> {
        run(config, reporter)
    }
    fn set_resume(config: &mut PackConfig, resume: bool) {
        config.resume = resume;
    }
}

/// Packs the corpus the config names: loads the tokenizer, resolves the task split, and
/// writes (or, with `resume`, completes) every partition folder.
pub fn run(cfg: &PackConfig, reporter: &dyn Reporter) -> Result<PackReport> {
    cfg.validate()?;
    let tasks = Tasks::resolve(cfg.num_tasks, cfg.task_index)?;
    let loaded = pytorrent_tokenizer::load(&cfg.tokenizer)?;
    let tok = &loaded.tokenizer;
    let special = SpecialIds::of(tok)?;
    let s = &cfg.settings;
    if s.padded() {
        special.require_pad("padding rows (--mode record, --remainder pad)")?;
    }
    let masking = if s.static_mask {
        Some(MaskSpec {
            probability: s.mlm_probability,
            whole_word: s.whole_word_mask,
            dupe_factor: s.dupe_factor,
            mask_id: special.require_mask()?,
            vocab_size: tok.get_vocab_size(true) as u32,
        })
    } else {
        None
    };
    let encoder = pytorrent_tokenizer::encoder(tok);
    let spec = TokenizerSpec {
        encoder: encoder.as_ref(),
        info: loaded.info()?,
        special,
        masking,
    };
    let files = cfg.input.discover()?;
    pack(&files, &spec, cfg, tasks, reporter)
}

/// One run over given files with a given tokenizer.
struct Job<'a> {
    cfg: &'a PackConfig,
    tok: &'a TokenizerSpec<'a>,
    tasks: Tasks,
    dtype: Dtype,
    fingerprint: String,
    root: PathBuf,
    /// Relative paths of the files, in sorted order.
    rels: Vec<String>,
    /// `order[k]`: the position in the sorted list (which decides the task split and names
    /// the file's seed) of the k-th file processed.
    order: Vec<usize>,
}

/// Packs `files` with the tokenizer `tok` as `cfg` says, as task `tasks`.
pub fn pack(
    files: &[InputFile],
    tok: &TokenizerSpec<'_>,
    cfg: &PackConfig,
    tasks: Tasks,
    reporter: &dyn Reporter,
) -> Result<PackReport> {
    cfg.settings.validate()?;
    let dtype = Dtype::for_vocab(tok.vocab_size());
    let rels: Vec<String> = files
        .iter()
        .map(|f| f.rel.to_string_lossy().into_owned())
        .collect();
    let job = Job {
        cfg,
        tok,
        tasks,
        dtype,
        fingerprint: fingerprint(&cfg.settings, dtype, tasks, &tok.info, files),
        root: task_root(&cfg.out, tasks),
        order: file_order(&rels, cfg.settings.seed, !cfg.settings.no_shuffle),
        rels,
    };
    let (mut parts, resumed) = job.open_partitions()?;
    let (read, no_partition) = job.read(files, &mut parts, reporter)?;
    if no_partition > 0 {
        reporter.warn(&format!(
            "{} no partition and {} left out: give --default-partition or \
             --validation-split-percentage N to pack them",
            pytorrent_io::reporter::plural(no_partition, "record has", "records have"),
            if no_partition == 1 { "was" } else { "were" }
        ));
    }
    if tasks.count == 1 && !resumed && parts.iter().all(|p| p.counts.records == 0) {
        return Err(nothing_to_pack(cfg, files, no_partition));
    }
    // Records that fill no row (all their tokens dropped) would give a complete-looking
    // output of nothing.
    if tasks.count == 1 && !resumed && parts.iter().all(|p| !p.writer.wrote_any()) {
        let records: u64 = parts.iter().map(|p| p.counts.records).sum();
        let inputs: Vec<String> = files.iter().map(InputFile::display).collect();
        return Err(Error::data(
            inputs.join(", "),
            format!(
                "{} gave no row of --seq-len {}: their tokens fill none (and the remainder \
                 is dropped); lower --seq-len, or give --remainder pad",
                pytorrent_io::reporter::plural(records, "record", "records"),
                cfg.settings.seq_len
            ),
        ));
    }
    let partitions = job.finish(files, parts)?;
    Ok(PackReport {
        root: job.root.clone(),
        out: cfg.out.clone(),
        seq_len: cfg.settings.seq_len,
        tasks,
        partitions,
        read,
        no_partition,
        resumed,
    })
}

/// Why a run found nothing to pack, and what to do about it (no output is left looking
/// complete: no manifest is written).
fn nothing_to_pack(cfg: &PackConfig, files: &[InputFile], no_partition: u64) -> Error {
    let mut why = format!(
        "nothing to pack: no record of partition(s) {} has the {}",
        cfg.partition,
        cfg.settings.source().name()
    );
    if no_partition > 0 {
        why.push_str(&format!(
            "; {} no partition (no field, partition folder or file name): give \
             --default-partition train or --validation-split-percentage N",
            pytorrent_io::reporter::plural(no_partition, "record has", "records have")
        ));
    } else {
        why.push_str(" (--partition all takes every partition; --text-field NAME reads records with a plain text field)");
    }
    let inputs: Vec<String> = files.iter().map(InputFile::display).collect();
    Error::data(inputs.join(", "), why)
}

impl Job<'_> {
    fn layout(&self) -> ShardLayout {
        let s = &self.cfg.settings;
        ShardLayout {
            format: s.format,
            dtype: self.dtype,
            seq_len: s.seq_len,
            attention_mask: s.format != Format::Megatron && s.padded(),
            labels: s.static_mask,
            max_rows: s.shard_rows,
            max_bytes: s.shard_bytes.map(|b| b.0),
        }
    }

    /// Opens every partition folder: fresh, or where a previous run stopped.
    fn open_partitions(&self) -> Result<(Vec<Part>, bool)> {
        if !self.cfg.resume {
            clean(&self.root)?;
            let _ = std::fs::remove_file(self.root.join(COMPLETE_FILE));
        }
        let mut parts = Vec::new();
        let mut resumed = false;
        for p in self.cfg.partition.list() {
            let dir = self.root.join(p.as_str());
            let mut part = Part {
                partition: p,
                dir: dir.clone(),
                writer: ShardWriter::new(&dir, self.layout(), Vec::new()),
                done: false,
                cursor: None,
                counts: Counts::default(),
            };
            if self.cfg.resume {
                resumed |= self.resume_part(&mut part)?;
            } else {
                clean(&dir)?;
            }
            parts.push(part);
        }
        Ok((parts, resumed))
    }

    /// Picks a partition folder up where it was left; returns whether there was anything.
    fn resume_part(&self, part: &mut Part) -> Result<bool> {
        let dir = &part.dir;
        remove_temporaries(dir)?;
        let manifest = dir.join("manifest.json");
        let state = dir.join(STATE_FILE);
        if manifest.is_file() {
            let m = Manifest::read(&manifest).map_err(|e| resume_refused(&manifest, e))?;
            check_same(&m.fingerprint, &self.fingerprint, &manifest)?;
            check_done_shards(dir, &m.shards, &manifest)?;
            part.done = true;
            Ok(true)
        } else if state.is_file() {
            let s: State = read_json(&state).map_err(|e| resume_refused(&state, e))?;
            check_same(&s.fingerprint, &self.fingerprint, &state)?;
            check_done_shards(dir, &s.shards, &state)?;
            part.writer = ShardWriter::new(dir, self.layout(), s.shards);
            part.counts = s.counts;
            part.cursor = Some(s.cursor);
            Ok(true)
        } else {
            clean(dir)?;
            Ok(false)
        }
    }

    /// Reads the corpus and writes the rows of every segment this task owns.
    fn read(
        &self,
        files: &[InputFile],
        parts: &mut [Part],
        reporter: &dyn Reporter,
    ) -> Result<(Option<ReadSummary>, u64)> {
        let start = SegKey {
            order: 0,
            segment: 0,
        };
        let Some(earliest) = parts
            .iter()
            .filter(|p| !p.done)
            .map(|p| p.cursor.as_ref().map_or(start, |c| c.key))
            .min()
        else {
            return Ok((None, 0));
        };
        let ordered: Vec<InputFile> = self.order.iter().map(|&i| files[i].clone()).collect();
        let by_path: HashMap<&Path, usize> = ordered
            .iter()
            .enumerate()
            .map(|(i, f)| (f.path.as_path(), i))
            .collect();
        let mut current: Option<Pending> = None;
        let mut no_partition = 0u64;
        let source = self.cfg.settings.source();
        reporter.begin("pack", Unit::Bytes, None);
        let summary = read_records(
            &ordered,
            &self.cfg.input.options(Some(&self.cfg.out)),
            &source.schema(),
            reporter,
            |file, line, rec| {
                let Some(&o) = by_path.get(file.path.as_path()) else {
                    return (start, Mapped::Ignored);
                };
                let key = SegKey {
                    order: o,
                    segment: segment_of(line.line_no, self.cfg.settings.segment_lines),
                };
                if !owns(self.tasks, self.order[o], key.segment) || key < earliest {
                    return (key, Mapped::Ignored);
                }
                (key, self.map_record(&rec, file, &source))
            },
            |item| {
                let Item::Record {
                    value: (key, m), ..
                } = item
                else {
                    return Ok(());
                };
                match m {
                    Mapped::Ignored => return Ok(()),
                    Mapped::NoPartition => {
                        no_partition += 1;
                        return Ok(());
                    }
                    _ => {}
                }
                if current.as_ref().is_some_and(|c| c.key != key) {
                    self.flush(current.take().expect("checked"), parts)?;
                }
                let c = current.get_or_insert_with(|| Pending {
                    key,
                    texts: BTreeMap::new(),
                    missing: BTreeMap::new(),
                });
                match m {
                    Mapped::Text(p, t) => c.texts.entry(p).or_default().push(t),
                    Mapped::Missing(p) => *c.missing.entry(p).or_default() += 1,
                    Mapped::Ignored | Mapped::NoPartition => {}
                }
                Ok::<(), Error>(())
            },
        );
        reporter.end();
        let summary = summary?;
        if let Some(c) = current.take() {
            self.flush(c, parts)?;
        }
        Ok((Some(summary), no_partition))
    }

    /// A record of a wanted partition → its text (a pair for `nl+code` with a docstring).
    fn map_record(&self, rec: &AnyRecord<'_>, file: &InputFile, source: &TextSource) -> Mapped {
        let Some(p) = self.cfg.rule.resolve(rec, file) else {
            return Mapped::NoPartition;
        };
        if !self.cfg.partition.contains(Some(p)) {
            return Mapped::Ignored;
        }
        let text = match (rec, source) {
            (AnyRecord::PyTorrent(r), TextSource::View(TextView::NlPlusCode))
                if !r.docstring.is_empty() =>
            {
                Some(Text::Pair(r.docstring.to_string(), r.code.to_string()))
            }
            _ => rec.text(source).map(|t| Text::One(t.into_owned())),
        };
        text.map_or(Mapped::Missing(p), |t| Mapped::Text(p, t))
    }

    /// Packs one collected segment into every partition that still needs it.
    fn flush(&self, seg: Pending, parts: &mut [Part]) -> Result<()> {
        let rel = &self.rels[self.order[seg.key.order]];
        for part in parts.iter_mut().filter(|p| !p.done) {
            let skip = match &part.cursor {
                Some(c) if seg.key < c.key => continue,
                Some(c) if seg.key == c.key => c.rows,
                _ => 0,
            };
            let recs = seg
                .texts
                .get(&part.partition)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let ctx = SegCtx {
                seed: self.cfg.settings.seed,
                partition: part.partition,
                rel,
                segment: seg.key.segment,
            };
            let order: Option<Vec<usize>> =
                (!self.cfg.settings.no_shuffle && recs.len() > 1).then(|| {
                    let mut idx: Vec<usize> = (0..recs.len()).collect();
                    idx.shuffle(&mut row_rng(ctx.seed_for(&[])));
                    idx
                });
            let rows = segment_rows(self.tok, &self.cfg.settings, &ctx, recs, order.as_deref())?;
            emit(part, seg.key, skip, rows, &self.fingerprint)?;
            part.counts.records += recs.len() as u64;
            part.counts.missing_field += seg.missing.get(&part.partition).copied().unwrap_or(0);
            part.cursor = None;
        }
        Ok(())
    }

    /// Closes every partition: the last shard, the manifest (last), the task's marker.
    fn finish(&self, files: &[InputFile], parts: Vec<Part>) -> Result<Vec<PartitionReport>> {
        let inputs: Vec<InputRef> = files
            .iter()
            .map(|f| -> Result<InputRef> {
                Ok(InputRef {
                    path: f.path.display().to_string(),
                    bytes: f.size,
                    sha256: if f.is_stdin() {
                        None
                    } else {
                        Some(pytorrent_io::sha256_file(&f.path)?)
                    },
                })
            })
            .collect::<Result<_>>()?;
        let mut reports = Vec::new();
        for mut part in parts {
            let mpath = part.dir.join("manifest.json");
            if part.done {
                reports.push(report_of(&Manifest::read(&mpath)?, &part.dir, true));
                continue;
            }
            part.writer.close()?;
            let shards = std::mem::take(&mut part.writer.shards);
            let manifest = Manifest {
                tool: format!("pytorrent {}", env!("CARGO_PKG_VERSION")),
                format_version: FORMAT_VERSION,
                partition: part.partition.as_str().into(),
                tokenizer: self.tok.info.clone(),
                settings: self.cfg.settings.clone(),
                dtype: self.dtype,
                num_tasks: self.tasks.count,
                fingerprint: self.fingerprint.clone(),
                task: (self.tasks.count > 1).then_some(self.tasks),
                inputs: inputs.clone(),
                records: part.counts.records,
                missing_field: part.counts.missing_field,
                dropped_tokens: part.counts.dropped_tokens,
                rows: shards.iter().map(|s| s.rows as u64).sum(),
                tokens: shards.iter().map(|s| s.tokens).sum(),
                shards,
            };
            io(&part.dir, std::fs::create_dir_all(&part.dir))?;
            // Written last: a folder with a manifest is complete.
            write_json(&mpath, &manifest)?;
            let _ = std::fs::remove_file(part.dir.join(STATE_FILE));
            reports.push(report_of(&manifest, &part.dir, false));
        }
        if self.tasks.count == 1 && self.cfg.settings.format == Format::Parquet {
            write_card(&self.root, &reports)?;
        }
        if self.tasks.count > 1 {
            write_json(
                &self.root.join(COMPLETE_FILE),
                &serde_json::json!({"task": self.tasks, "fingerprint": self.fingerprint,
                    "partitions": reports.iter().map(|r| &r.partition).collect::<Vec<_>>()}),
            )?;
        }
        Ok(reports)
    }
}

/// The first line of the dataset card pack writes, by which it knows its own.
const CARD_MARK: &str = "<!-- written by pytorrent pack -->";

/// A Hugging Face dataset card (`README.md`) whose `configs` name the Parquet shards of each
/// partition that has rows, so `datasets.load_dataset(OUT)` loads the folder: without it,
/// a partition with no rows holds only `manifest.json`, which `datasets` takes for a JSON
/// split, and it refuses the whole folder; a split with no data is refused too, so empty
/// partitions are left out. A README.md that pack did not write is left alone.
fn write_card(root: &Path, reports: &[PartitionReport]) -> Result<()> {
    let path = root.join("README.md");
    if let Ok(text) = std::fs::read_to_string(&path) {
        if !text.contains(CARD_MARK) {
            return Ok(());
        }
    }
    let mut splits = String::new();
    for r in reports.iter().filter(|r| r.rows > 0) {
        let split = if r.partition == "valid" {
            "validation"
        } else {
            r.partition.as_str()
        };
        splits.push_str(&format!(
            "  - split: {split}\n    path: \"{}/*.parquet\"\n",
            r.partition
        ));
    }
    let card = format!(
        "---\nconfigs:\n- config_name: default\n  data_files:\n{splits}---\n{CARD_MARK}\n\n\
         MLM rows packed by `pytorrent pack` (one folder per partition, each with its \
         `manifest.json`); partitions without rows are not listed.\n"
    );
    pytorrent_io::atomic::write_atomic(&path, card.as_bytes())?;
    Ok(())
}

fn report_of(m: &Manifest, dir: &Path, already_complete: bool) -> PartitionReport {
    PartitionReport {
        partition: m.partition.clone(),
        dir: dir.to_path_buf(),
        records: m.records,
        missing_field: m.missing_field,
        rows: m.rows,
        tokens: m.tokens,
        shards: m.shards.len(),
        dropped_tokens: m.dropped_tokens,
        already_complete,
    }
}

/// What a resume builds on must be what the state or manifest (`listed_in`) says: shard `i`
/// named `shard-0000i…`, each once, and every file of it present with its recorded sha256.
fn check_done_shards(dir: &Path, shards: &[ShardInfo], listed_in: &Path) -> Result<()> {
    let refused = |path: &Path, what: String| {
        Error::data(
            path,
            format!(
                "{what}; --resume cannot build on it (listed in {}; drop --resume to start over)",
                listed_in.display()
            ),
        )
    };
    for (i, shard) in shards.iter().enumerate() {
        let stem = format!("shard-{i:05}");
        if !shard.file.starts_with(&stem) || shard.file.contains(['/', '\\']) {
            return Err(refused(
                &dir.join(&shard.file),
                format!("listed as shard {i}, which is named {stem}…"),
            ));
        }
        let files = std::iter::once((&shard.file, &shard.sha256)).chain(
            [&shard.attention_mask, &shard.labels, &shard.index]
                .into_iter()
                .flatten()
                .map(|f| (&f.file, &f.sha256)),
        );
        for (file, sha) in files {
            let path = dir.join(file);
            match pytorrent_io::sha256_file(&path) {
                Err(_) => return Err(refused(&path, "missing or unreadable".into())),
                Ok(d) if d != *sha => {
                    return Err(refused(
                        &path,
                        format!("sha256 {d} differs from the recorded {sha}"),
                    ))
                }
                Ok(_) => {}
            }
        }
    }
    Ok(())
}

fn resume_refused(path: &Path, e: Error) -> Error {
    Error::Usage(format!(
        "{e}\n{}: --resume cannot continue this output (drop --resume to start over)",
        path.display()
    ))
}

fn check_same(found: &str, expected: &str, path: &Path) -> Result<()> {
    if found != expected {
        return Err(Error::Usage(format!(
            "{}: this output was started with other settings, tokenizer or inputs; --resume \
             needs the same command (or drop --resume to start over)",
            path.display()
        )));
    }
    Ok(())
}

/// Identifies a segment for seeding.
struct SegCtx<'a> {
    seed: u64,
    partition: Partition,
    rel: &'a str,
    segment: u64,
}

impl SegCtx<'_> {
    fn seed_for(&self, extra: &[u64]) -> u64 {
        let mut parts: Vec<Vec<u8>> = vec![
            self.partition.as_str().as_bytes().to_vec(),
            self.rel.as_bytes().to_vec(),
            self.segment.to_le_bytes().to_vec(),
        ];
        parts.extend(extra.iter().map(|e| e.to_le_bytes().to_vec()));
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        derive(self.seed, &refs)
    }
}

/// Ids of `texts` (and word starts when whole-word masking needs them).
fn encode(
    tok: &TokenizerSpec<'_>,
    texts: &[&str],
    words: bool,
) -> Result<Vec<(Vec<u32>, Vec<bool>)>> {
    if texts.is_empty() {
        return Ok(Vec::new());
    }
    Ok(if words {
        tok.encoder.encode_batch_words(texts)?
    } else {
        tok.encoder
            .encode_batch(texts, false)?
            .into_iter()
            .map(|ids| (ids, Vec::new()))
            .collect()
    })
}

/// All rows of one segment of one partition, in order (with `dupe_factor` copies of each
/// block, copy-minor), and the tokens dropped.
fn segment_rows(
    tok: &TokenizerSpec<'_>,
    s: &Settings,
    ctx: &SegCtx<'_>,
    recs: &[Text],
    order: Option<&[usize]>,
) -> Result<(Vec<Row>, u64)> {
    let words = tok.masking.as_ref().is_some_and(|m| m.whole_word);
    let at = |i: usize| &recs[order.map_or(i, |o| o[i])];
    // Firsts of every record, then seconds of the pairs: one batch each.
    let firsts: Vec<&str> = (0..recs.len())
        .map(|i| match at(i) {
            Text::One(t) | Text::Pair(t, _) => t.as_str(),
        })
        .collect();
    let seconds: Vec<&str> = (0..recs.len())
        .filter_map(|i| match at(i) {
            Text::Pair(_, c) => Some(c.as_str()),
            Text::One(_) => None,
        })
        .collect();
    let first = encode(tok, &firsts, words)?;
    let mut second = encode(tok, &seconds, words)?.into_iter();
    let sp = &tok.special;
    let opts = PackOptions {
        seq_len: s.seq_len,
        mode: s.mode,
        remainder: s.remainder,
        bos: sp.bos,
        eos: sp.eos,
        // Checked above when rows are padded; never written otherwise.
        pad: sp.pad.unwrap_or(sp.eos),
    };
    let mut packer = Packer::with_words(opts, words);
    let mut blocks: Vec<Block> = Vec::new();
    for (i, (mut ids, mut starts)) in first.into_iter().enumerate() {
        if let Text::Pair(..) = at(i) {
            let (code, code_starts) = second.next().expect("one encoding per pair");
            // The tokenizer's own pair: `</s></s>` for RoBERTa, `[SEP]` for BERT.
            ids.push(sp.eos);
            ids.extend(&sp.pair_middle);
            ids.extend(code);
            if words {
                starts.extend(std::iter::repeat_n(true, 1 + sp.pair_middle.len()));
                starts.extend(code_starts);
            }
        }
        packer.push(&ids, &starts, &mut |b| blocks.push(b));
    }
    let dropped = packer.finish(&mut |b| blocks.push(b)) as u64;
    Ok((mask_blocks(tok, ctx, &blocks), dropped))
}

/// Rows of `blocks`: as they are, or `dupe_factor` statically masked copies of each.
fn mask_blocks(tok: &TokenizerSpec<'_>, ctx: &SegCtx<'_>, blocks: &[Block]) -> Vec<Row> {
    let dupe = tok.masking.as_ref().map_or(1, |m| m.dupe_factor.max(1));
    let special = |id: u32| tok.special.all.contains(&id);
    blocks
        .par_iter()
        .enumerate()
        .flat_map_iter(|(b, block)| {
            (0..dupe).map(move |d| match &tok.masking {
                None => Row {
                    ids: block.ids.clone(),
                    attention: block.attention.clone(),
                    labels: None,
                },
                Some(spec) => {
                    let mut rng = row_rng(ctx.seed_for(&[b as u64, d as u64]));
                    let (ids, labels) =
                        mask_row(&block.ids, &block.word_starts, special, spec, &mut rng);
                    Row {
                        ids,
                        attention: block.attention.clone(),
                        labels: Some(labels),
                    }
                }
            })
        })
        .collect()
}

fn emit(
    part: &mut Part,
    key: SegKey,
    skip: u64,
    (rows, dropped): (Vec<Row>, u64),
    fp: &str,
) -> Result<()> {
    for (r, row) in rows.iter().enumerate() {
        if (r as u64) < skip {
            continue;
        }
        if part.writer.push(row)? {
            let state = State {
                fingerprint: fp.to_string(),
                cursor: Cursor {
                    key,
                    rows: r as u64 + 1,
                },
                counts: part.counts.clone(),
                shards: part.writer.shards.clone(),
            };
            write_json(&part.dir.join(STATE_FILE), &state)?;
        }
    }
    part.counts.dropped_tokens += dropped;
    Ok(())
}

impl std::fmt::Display for PackReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use pytorrent_io::reporter::plural;
        if let Some(r) = &self.read {
            write!(f, "{}", pytorrent_corpus::read::skipped_lines(r))?;
        }
        for r in &self.partitions {
            writeln!(
                f,
                "{}: {} → {} of {} in {}{} ({} dropped, {} without the field)",
                r.partition,
                plural(r.records, "record", "records"),
                plural(r.rows, "row", "rows"),
                self.seq_len,
                plural(r.shards as u64, "shard", "shards"),
                if r.already_complete {
                    ", already complete"
                } else {
                    ""
                },
                plural(r.dropped_tokens, "token", "tokens"),
                plural(r.missing_field, "record", "records"),
            )?;
        }
        if self.tasks.count > 1 {
            writeln!(
                f,
                "task {} of {} complete in {}; run `pytorrent shards merge {}` when all are",
                self.tasks.index,
                self.tasks.count,
                self.root.display(),
                self.out.display()
            )?;
        }
        Ok(())
    }
}
