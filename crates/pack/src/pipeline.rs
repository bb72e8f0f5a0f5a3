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

use pytorrent_corpus::read::effective_partition;
use pytorrent_corpus::{
    read_corpus, InputFile, Item, Partition, Progress, ReadOptions, ReadSummary, TextView,
};
use pytorrent_tokenizer::Encoder;
use rand::seq::SliceRandom;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{read_json, write_json, Error, Result};
use crate::mask::{mask_row, row_rng, MaskSpec};
use crate::npy::Dtype;
use crate::plan::{derive, file_order, segment_of, Tasks};
use crate::shards::{is_ours, Format, Row, ShardInfo, ShardLayout, ShardWriter};
use crate::{Block, Mode, PackOptions, Packer, Remainder};

pub const STATE_FILE: &str = ".pack-state.json";
/// Written into a task's folder when all its partitions are complete.
pub const COMPLETE_FILE: &str = "COMPLETE.json";

/// The tokenizer as the packer needs it.
pub struct TokenizerSpec<'a> {
    pub encoder: &'a dyn Encoder,
    /// Recorded in the manifest (file, sha256, vocab_size).
    pub info: serde_json::Value,
    pub vocab_size: usize,
    pub bos: u32,
    pub eos: u32,
    pub pad: u32,
    /// Ids never masked (all special tokens).
    pub special: Vec<u32>,
}

/// Everything that determines the output.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Settings {
    pub field: String,
    pub seq_len: usize,
    pub mode: String,
    pub remainder: String,
    pub format: Format,
    pub dtype: Dtype,
    pub shard_rows: usize,
    pub shard_bytes: Option<u64>,
    pub seed: u64,
    pub shuffle: bool,
    pub segment_lines: u64,
    pub masking: Option<MaskSpec>,
    pub num_tasks: usize,
}

pub struct PackConfig {
    pub out: PathBuf,
    pub field: TextView,
    pub partitions: Vec<Partition>,
    pub seq_len: usize,
    pub mode: Mode,
    pub remainder: Remainder,
    pub format: Format,
    pub shard_rows: usize,
    pub shard_bytes: Option<u64>,
    pub seed: u64,
    pub shuffle: bool,
    pub segment_lines: u64,
    pub masking: Option<MaskSpec>,
    pub tasks: Tasks,
    pub resume: bool,
    pub read: ReadOptions,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InputRef {
    pub path: String,
    pub bytes: Option<u64>,
    pub sha256: Option<String>,
}

/// `manifest.json` of one partition folder.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub tool: String,
    pub partition: String,
    pub tokenizer: serde_json::Value,
    #[serde(flatten)]
    pub settings: Settings,
    /// sha256 of the settings, the tokenizer and the input list: equal for every task of a
    /// run, checked by `--resume` and `shards merge`.
    pub fingerprint: String,
    /// This task (absent for a single-task run and after a merge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<Tasks>,
    pub inputs: Vec<InputRef>,
    pub records: u64,
    /// Records of this partition that lack the text view (not packed, counted).
    pub missing_field: u64,
    pub dropped_tokens: u64,
    pub rows: u64,
    pub tokens: u64,
    pub shards: Vec<ShardInfo>,
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
#[derive(Debug, Clone, Serialize)]
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

#[derive(Debug, Serialize)]
pub struct PackReport {
    pub root: PathBuf,
    pub partitions: Vec<PartitionReport>,
    pub read: Option<ReadSummary>,
    pub resumed: bool,
}

enum Text {
    One(String),
    /// `nl+code`: packed as `NL </s></s> code`.
    Pair(String, String),
}

/// The segment being collected: its key, texts and missing-field counts by partition.
type Pending = (
    SegKey,
    BTreeMap<Partition, Vec<Text>>,
    BTreeMap<Partition, u64>,
);

enum Mapped {
    Text(Partition, Text),
    Missing(Partition),
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

/// The folder a task writes: the output itself, or `task-III-of-NNN/` under it.
pub fn task_root(out: &Path, tasks: Tasks) -> PathBuf {
    if tasks.count == 1 {
        out.to_path_buf()
    } else {
        out.join(task_dir_name(tasks))
    }
}

pub fn task_dir_name(tasks: Tasks) -> String {
    format!("task-{:05}-of-{:05}", tasks.index, tasks.count)
}

fn io<T>(path: &Path, r: std::io::Result<T>) -> Result<T> {
    r.map_err(|e| pytorrent_io::Error::io(path, e).into())
}

/// Removes this tool's files from a folder (a fresh run must not leave stale shards).
fn clean(dir: &Path) -> Result<()> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in rd.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if is_ours(&n) && e.path().is_file() {
            io(&e.path(), std::fs::remove_file(e.path()))?;
        }
    }
    Ok(())
}

fn remove_temporaries(dir: &Path) -> Result<()> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in rd.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.starts_with('.') && n.ends_with(".tmp") {
            io(&e.path(), std::fs::remove_file(e.path()))?;
        }
    }
    Ok(())
}

pub fn fingerprint(
    settings: &Settings,
    tokenizer: &serde_json::Value,
    files: &[InputFile],
) -> String {
    let inputs: Vec<(String, Option<u64>)> = files
        .iter()
        .map(|f| (f.rel.to_string_lossy().into_owned(), f.size))
        .collect();
    let canon = serde_json::to_vec(&(settings, tokenizer, inputs)).expect("serialisable");
    pytorrent_io::fingerprint::hex(&Sha256::digest(&canon))
}

/// Packs `files` into `cfg.out`.
pub fn pack(
    files: &[InputFile],
    tok: &TokenizerSpec<'_>,
    cfg: &PackConfig,
    progress: &dyn Progress,
    log: &dyn Fn(String),
) -> Result<PackReport> {
    if cfg.seq_len < 2 {
        return Err(Error::Usage("--seq-len must be at least 2".into()));
    }
    if cfg.tasks.count == 0 || cfg.tasks.index >= cfg.tasks.count {
        return Err(Error::Usage(format!(
            "task index {} is not below the task count {}",
            cfg.tasks.index, cfg.tasks.count
        )));
    }
    if cfg.format == Format::Megatron && cfg.masking.is_some() {
        return Err(Error::Usage(
            "--static-mask writes labels, which the Megatron format has no place for; Megatron \
             masks at training time (use --format npy for static masks)"
                .into(),
        ));
    }
    let dtype = Dtype::for_vocab(tok.vocab_size);
    let settings = Settings {
        field: cfg.field.name().into(),
        seq_len: cfg.seq_len,
        mode: match cfg.mode {
            Mode::Concat => "concat",
            Mode::Record => "record",
        }
        .into(),
        remainder: match cfg.remainder {
            Remainder::Drop => "drop",
            Remainder::Pad => "pad",
        }
        .into(),
        format: cfg.format,
        dtype,
        shard_rows: cfg.shard_rows.max(1),
        shard_bytes: cfg.shard_bytes,
        seed: cfg.seed,
        shuffle: cfg.shuffle,
        segment_lines: cfg.segment_lines,
        masking: cfg.masking.clone(),
        num_tasks: cfg.tasks.count,
    };
    let fp = fingerprint(&settings, &tok.info, files);
    let root = task_root(&cfg.out, cfg.tasks);
    let attention_mask =
        cfg.format == Format::Npy && (cfg.mode == Mode::Record || cfg.remainder == Remainder::Pad);
    let layout = ShardLayout {
        format: cfg.format,
        dtype,
        seq_len: cfg.seq_len,
        attention_mask,
        labels: cfg.masking.is_some(),
        max_rows: settings.shard_rows,
        max_bytes: cfg.shard_bytes,
    };
    if !cfg.resume {
        clean(&root)?;
        let _ = std::fs::remove_file(root.join(COMPLETE_FILE));
    }
    let mut parts = Vec::new();
    let mut resumed = false;
    for p in &cfg.partitions {
        let dir = root.join(p.as_str());
        let mut part = Part {
            partition: *p,
            dir: dir.clone(),
            writer: ShardWriter::new(&dir, layout.clone(), Vec::new()),
            done: false,
            cursor: None,
            counts: Counts::default(),
        };
        if cfg.resume {
            remove_temporaries(&dir)?;
            let manifest = dir.join("manifest.json");
            let state = dir.join(STATE_FILE);
            if manifest.is_file() {
                let m: Manifest = read_json(&manifest)?;
                check_same(&m.fingerprint, &fp, &manifest)?;
                part.done = true;
                resumed = true;
            } else if state.is_file() {
                let s: State = read_json(&state)?;
                check_same(&s.fingerprint, &fp, &state)?;
                part.writer = ShardWriter::new(&dir, layout.clone(), s.shards);
                part.counts = s.counts;
                part.cursor = Some(s.cursor);
                resumed = true;
            } else {
                clean(&dir)?;
            }
        } else {
            clean(&dir)?;
        }
        parts.push(part);
    }

    let rels: Vec<String> = files
        .iter()
        .map(|f| f.rel.to_string_lossy().into_owned())
        .collect();
    // `order[k]`: the position in the sorted list (which decides the task split and names
    // the file's seed) of the k-th file processed.
    let order = file_order(&rels, cfg.seed, cfg.shuffle);
    let ordered: Vec<InputFile> = order.iter().map(|&i| files[i].clone()).collect();
    let by_path: HashMap<&Path, usize> = ordered
        .iter()
        .enumerate()
        .map(|(i, f)| (f.path.as_path(), i))
        .collect();
    let earliest = parts
        .iter()
        .filter(|p| !p.done)
        .map(|p| {
            p.cursor.as_ref().map(|c| c.key).unwrap_or(SegKey {
                order: 0,
                segment: 0,
            })
        })
        .min();

    let mut read_summary = None;
    if let Some(earliest) = earliest {
        let wanted = &cfg.partitions;
        let seg_lines = cfg.segment_lines;
        let tasks = cfg.tasks;
        let field = cfg.field;
        let mut current: Option<Pending> = None;
        let mut failure: Option<Error> = None;
        let flush = |key: SegKey,
                     texts: BTreeMap<Partition, Vec<Text>>,
                     missing: BTreeMap<Partition, u64>,
                     parts: &mut Vec<Part>|
         -> Result<()> {
            let rel = &rels[order[key.order]];
            for part in parts.iter_mut().filter(|p| !p.done) {
                let skip = match &part.cursor {
                    Some(c) if key < c.key => continue,
                    Some(c) if key == c.key => c.rows,
                    _ => 0,
                };
                let recs = texts.get(&part.partition).map(Vec::as_slice).unwrap_or(&[]);
                let records = recs.len() as u64;
                let ctx = SegCtx {
                    seed: cfg.seed,
                    partition: part.partition,
                    rel,
                    segment: key.segment,
                };
                let order: Option<Vec<usize>> = (cfg.shuffle && recs.len() > 1).then(|| {
                    let mut idx: Vec<usize> = (0..recs.len()).collect();
                    idx.shuffle(&mut row_rng(ctx.seed_for(&[])));
                    idx
                });
                let rows = segment_rows(tok, cfg, &ctx, recs, order.as_deref())?;
                emit(part, key, skip, rows, &fp)?;
                part.counts.records += records;
                part.counts.missing_field += missing.get(&part.partition).copied().unwrap_or(0);
                part.cursor = None;
            }
            Ok(())
        };
        let summary = read_corpus(
            &ordered,
            &cfg.read,
            progress,
            |file, line, rec| {
                let Some(&o) = by_path.get(file.path.as_path()) else {
                    return (
                        SegKey {
                            order: 0,
                            segment: 0,
                        },
                        Mapped::Ignored,
                    );
                };
                let segment = segment_of(line.line_no, seg_lines);
                let key = SegKey { order: o, segment };
                if !tasks.owns(order[o], segment) || key < earliest {
                    return (key, Mapped::Ignored);
                }
                let Some(p) = effective_partition(&rec, file).filter(|p| wanted.contains(p)) else {
                    return (key, Mapped::Ignored);
                };
                let text = match field {
                    TextView::NlPlusCode if !rec.docstring.is_empty() => {
                        Some(Text::Pair(rec.docstring.to_string(), rec.code.to_string()))
                    }
                    _ => field.text(&rec).map(|t| Text::One(t.into_owned())),
                };
                (key, text.map_or(Mapped::Missing(p), |t| Mapped::Text(p, t)))
            },
            |item| {
                let Item::Record {
                    value: (key, m), ..
                } = item
                else {
                    return Ok(());
                };
                if matches!(m, Mapped::Ignored) || failure.is_some() {
                    return Ok(());
                }
                if current.as_ref().is_some_and(|c| c.0 != key) {
                    let (k, t, mi) = current.take().expect("checked");
                    if let Err(e) = flush(k, t, mi, &mut parts) {
                        failure = Some(e);
                        return Ok(());
                    }
                }
                let c = current.get_or_insert_with(|| (key, BTreeMap::new(), BTreeMap::new()));
                match m {
                    Mapped::Text(p, t) => c.1.entry(p).or_default().push(t),
                    Mapped::Missing(p) => *c.2.entry(p).or_default() += 1,
                    Mapped::Ignored => {}
                }
                Ok(())
            },
        )?;
        if let Some(e) = failure {
            return Err(e);
        }
        if let Some((k, t, mi)) = current.take() {
            flush(k, t, mi, &mut parts)?;
        }
        read_summary = Some(summary);
    }

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
            let m: Manifest = read_json(&mpath)?;
            reports.push(report_of(&m, &part.dir, true));
            continue;
        }
        part.writer.close()?;
        let shards = std::mem::take(&mut part.writer.shards);
        let manifest = Manifest {
            tool: format!("pytorrent {}", env!("CARGO_PKG_VERSION")),
            partition: part.partition.as_str().into(),
            tokenizer: tok.info.clone(),
            settings: settings.clone(),
            fingerprint: fp.clone(),
            task: (cfg.tasks.count > 1).then_some(cfg.tasks),
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
        let r = report_of(&manifest, &part.dir, false);
        log(format!(
            "{}: {} records → {} rows of {} in {} shards ({} tokens dropped, {} records without the field)",
            r.partition, r.records, r.rows, cfg.seq_len, r.shards, r.dropped_tokens, r.missing_field
        ));
        reports.push(r);
    }
    if cfg.tasks.count > 1 {
        write_json(
            &root.join(COMPLETE_FILE),
            &serde_json::json!({"task": cfg.tasks, "fingerprint": fp, "partitions": reports.iter().map(|r| &r.partition).collect::<Vec<_>>()}),
        )?;
    }
    Ok(PackReport {
        root,
        partitions: reports,
        read: read_summary,
        resumed,
    })
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

/// All rows of one segment of one partition, in order (with `dupe_factor` copies of each
/// block, copy-minor).
fn segment_rows(
    tok: &TokenizerSpec<'_>,
    cfg: &PackConfig,
    ctx: &SegCtx<'_>,
    recs: &[Text],
    order: Option<&[usize]>,
) -> Result<(Vec<Row>, u64)> {
    let words = cfg.masking.as_ref().is_some_and(|m| m.whole_word);
    let n = recs.len();
    let at = |i: usize| &recs[order.map_or(i, |o| o[i])];
    // Firsts of every record, then seconds of the pairs: one batch each.
    let firsts: Vec<&str> = (0..n)
        .map(|i| match at(i) {
            Text::One(t) | Text::Pair(t, _) => t.as_str(),
        })
        .collect();
    let seconds: Vec<&str> = (0..n)
        .filter_map(|i| match at(i) {
            Text::Pair(_, c) => Some(c.as_str()),
            Text::One(_) => None,
        })
        .collect();
    let encode = |texts: &[&str]| -> Result<Vec<(Vec<u32>, Vec<bool>)>> {
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
    };
    let first = encode(&firsts)?;
    let mut second = encode(&seconds)?.into_iter();
    let opts = PackOptions {
        seq_len: cfg.seq_len,
        mode: cfg.mode,
        remainder: cfg.remainder,
        bos: tok.bos,
        eos: tok.eos,
        pad: tok.pad,
    };
    let mut packer = Packer::with_words(opts, words);
    let mut blocks: Vec<Block> = Vec::new();
    for (i, (mut ids, mut starts)) in first.into_iter().enumerate() {
        if let Text::Pair(..) = at(i) {
            let (code, code_starts) = second.next().expect("one encoding per pair");
            ids.extend([tok.eos, tok.eos]);
            ids.extend(code);
            if words {
                starts.extend([true, true]);
                starts.extend(code_starts);
            }
        }
        packer.push(&ids, &starts, &mut |b| blocks.push(b));
    }
    let dropped = packer.finish(&mut |b| blocks.push(b)) as u64;
    let dupe = cfg.masking.as_ref().map_or(1, |m| m.dupe_factor.max(1));
    let special = |id: u32| tok.special.contains(&id);
    let rows: Vec<Row> = blocks
        .par_iter()
        .enumerate()
        .flat_map_iter(|(b, block)| {
            (0..dupe).map(move |d| match &cfg.masking {
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
        .collect();
    Ok((rows, dropped))
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
