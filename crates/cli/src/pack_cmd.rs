//! `pytorrent pack`: corpus + tokenizer → fixed-length npy shards and a manifest per partition.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use pytorrent_corpus::read::effective_partition;
use pytorrent_corpus::{discover, read_corpus, Item, Partition, TextView};
use pytorrent_pack::npy::{Dtype, NpyWriter};
use pytorrent_pack::{Block, Mode, PackOptions, Packer, Remainder};
use pytorrent_tokenizer::Encoder;
use serde::Serialize;

use crate::corpus_cmd::{parse_partitions, ReadArgs};
use crate::output::print_json;
use crate::UsageError;

#[derive(Args)]
pub struct PackArgs {
    #[command(flatten)]
    read: ReadArgs,
    #[arg(long)]
    tokenizer: String,
    /// Output folder: <out>/<partition>/shard-NNNNN.npy and manifest.json.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value = "code")]
    field: TextView,
    /// Partitions to pack: train, valid, test (comma-separated) or all.
    #[arg(long, default_value = "all")]
    partition: String,
    #[arg(long, default_value_t = 512)]
    seq_len: usize,
    /// concat (records joined and cut into blocks) or record (one record per row).
    #[arg(long, default_value = "concat", value_parser = ["concat", "record"])]
    mode: String,
    /// The last partial block of concat mode: drop or pad.
    #[arg(long, default_value = "drop", value_parser = ["drop", "pad"])]
    remainder: String,
    /// Rows per shard.
    #[arg(long, default_value_t = 100_000)]
    shard_rows: usize,
}

#[derive(Serialize, Clone)]
struct ShardInfo {
    file: String,
    rows: usize,
    tokens: u64,
    sha256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    attention_mask: Option<(String, String)>,
}

#[derive(Serialize)]
struct Manifest {
    tool: String,
    tokenizer: serde_json::Value,
    field: String,
    partition: String,
    seq_len: usize,
    dtype: Dtype,
    mode: String,
    remainder: String,
    shuffle: bool,
    masking: Option<String>,
    inputs: Vec<serde_json::Value>,
    records: u64,
    dropped_tokens: usize,
    shards: Vec<ShardInfo>,
}

/// One partition's packer and open shard.
struct Output {
    dir: PathBuf,
    packer: Option<Packer>,
    dtype: Dtype,
    seq_len: usize,
    masks: bool,
    shard_rows: usize,
    ids: Option<NpyWriter>,
    mask: Option<NpyWriter>,
    tokens: u64,
    shards: Vec<ShardInfo>,
    records: u64,
    pending: Vec<String>,
}

impl Output {
    fn write(&mut self, b: Block) -> Result<()> {
        if self.ids.is_none() {
            let n = self.shards.len();
            self.ids = Some(NpyWriter::create(
                &self.dir.join(format!("shard-{n:05}.npy")),
                self.dtype,
                self.seq_len,
            )?);
            if self.masks {
                self.mask = Some(NpyWriter::create(
                    &self.dir.join(format!("attention_mask-{n:05}.npy")),
                    Dtype::Uint8,
                    self.seq_len,
                )?);
            }
        }
        self.tokens += b.attention.iter().map(|a| *a as u64).sum::<u64>();
        self.ids.as_mut().expect("opened above").push_row(&b.ids)?;
        if let Some(m) = self.mask.as_mut() {
            m.push_row(&b.attention.iter().map(|a| *a as u32).collect::<Vec<_>>())?;
        }
        if self
            .ids
            .as_ref()
            .is_some_and(|w| w.rows() >= self.shard_rows)
        {
            self.close()?;
        }
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        let Some(ids) = self.ids.take() else {
            return Ok(());
        };
        let rows = ids.rows();
        let path = ids.finish()?;
        let mask = match self.mask.take() {
            Some(m) => {
                let p = m.finish()?;
                Some((file_name(&p), pytorrent_io::sha256_file(&p)?))
            }
            None => None,
        };
        self.shards.push(ShardInfo {
            file: file_name(&path),
            rows,
            tokens: std::mem::take(&mut self.tokens),
            sha256: pytorrent_io::sha256_file(&path)?,
            attention_mask: mask,
        });
        Ok(())
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub fn run(a: PackArgs) -> Result<ExitCode> {
    let loaded = pytorrent_tokenizer::load(&a.tokenizer)?;
    let tok = loaded.tokenizer;
    let special = |t: &str| {
        tok.token_to_id(t)
            .ok_or_else(|| UsageError(format!("the tokenizer has no {t} token")))
    };
    let (bos, eos, pad) = (special("<s>")?, special("</s>")?, special("<pad>")?);
    let vocab = tok.get_vocab_size(true);
    if a.seq_len < 2 {
        return Err(UsageError("--seq-len must be at least 2".into()).into());
    }
    let mode = if a.mode == "record" {
        Mode::Record
    } else {
        Mode::Concat
    };
    let remainder = if a.remainder == "pad" {
        Remainder::Pad
    } else {
        Remainder::Drop
    };
    let opts = PackOptions {
        seq_len: a.seq_len,
        mode,
        remainder,
        bos,
        eos,
        pad,
    };
    let wanted = parse_partitions(&a.partition)?.unwrap_or_else(|| Partition::ALL.to_vec());
    let files = discover(&a.read.inputs)?;
    let masks = mode == Mode::Record || remainder == Remainder::Pad;
    let mut outputs: BTreeMap<Partition, Output> = wanted
        .iter()
        .map(|p| {
            (
                *p,
                Output {
                    dir: a.out.join(p.as_str()),
                    packer: Some(Packer::new(opts.clone())),
                    dtype: Dtype::for_vocab(vocab),
                    seq_len: a.seq_len,
                    masks,
                    shard_rows: a.shard_rows.max(1),
                    ids: None,
                    mask: None,
                    tokens: 0,
                    shards: Vec::new(),
                    records: 0,
                    pending: Vec::new(),
                },
            )
        })
        .collect();
    let encode_pending = |o: &mut Output| -> Result<()> {
        let refs: Vec<&str> = o.pending.iter().map(String::as_str).collect();
        let ids = tok.encode_batch(&refs, false)?;
        o.pending.clear();
        let mut packer = o.packer.take().expect("present until the end");
        let mut blocks = Vec::new();
        for r in &ids {
            packer.push(r, &mut |b| blocks.push(b));
        }
        o.packer = Some(packer);
        for b in blocks {
            o.write(b)?;
        }
        Ok(())
    };
    let out = &a.read.output;
    let bar = out.progress("pack");
    let mut failure: Option<anyhow::Error> = None;
    let summary = read_corpus(
        &files,
        &a.read.options(Some(&a.out)),
        &bar,
        |file, _, rec| {
            effective_partition(&rec, file).zip(a.field.text(&rec).map(|t| t.into_owned()))
        },
        |item| {
            if let Item::Record {
                value: Some((p, text)),
                ..
            } = item
            {
                if let Some(o) = outputs.get_mut(&p) {
                    o.records += 1;
                    o.pending.push(text);
                    if o.pending.len() >= 1024 {
                        if let Err(e) = encode_pending(o) {
                            failure.get_or_insert(e);
                        }
                    }
                }
            }
            Ok(())
        },
    )?;
    if let Some(e) = failure {
        return Err(e);
    }
    let tokenizer_info = match &loaded.source {
        pytorrent_tokenizer::Source::TokenizerJson(p) => serde_json::json!({
            "file": p.display().to_string(), "sha256": pytorrent_io::sha256_file(p)?, "vocab_size": vocab }),
        pytorrent_tokenizer::Source::VocabMerges { vocab: v, merges } => serde_json::json!({
            "vocab": v.display().to_string(), "vocab_sha256": pytorrent_io::sha256_file(v)?,
            "merges": merges.display().to_string(), "merges_sha256": pytorrent_io::sha256_file(merges)?, "vocab_size": vocab }),
    };
    let inputs: Vec<serde_json::Value> = files
        .iter()
        .filter(|f| !f.is_stdin())
        .map(|f| -> Result<serde_json::Value> {
            Ok(serde_json::json!({"path": f.path.display().to_string(), "bytes": f.size, "sha256": pytorrent_io::sha256_file(&f.path)?}))
        })
        .collect::<Result<_>>()?;
    let mut report = BTreeMap::new();
    for (p, mut o) in outputs {
        encode_pending(&mut o)?;
        let packer = o.packer.take().expect("present");
        let mut last = Vec::new();
        let dropped = packer.finish(&mut |b| last.push(b));
        for b in last {
            o.write(b)?;
        }
        o.close()?;
        let manifest = Manifest {
            tool: format!("pytorrent {}", env!("CARGO_PKG_VERSION")),
            tokenizer: tokenizer_info.clone(),
            field: a.field.name().into(),
            partition: p.as_str().into(),
            seq_len: a.seq_len,
            dtype: o.dtype,
            mode: a.mode.clone(),
            remainder: a.remainder.clone(),
            shuffle: false,
            masking: None,
            inputs: inputs.clone(),
            records: o.records,
            dropped_tokens: dropped,
            shards: o.shards.clone(),
        };
        // Written last: a folder with a manifest is complete.
        pytorrent_io::atomic::write_atomic(
            o.dir.join("manifest.json"),
            &serde_json::to_vec_pretty(&manifest)?,
        )?;
        let rows: usize = o.shards.iter().map(|s| s.rows).sum();
        out.log(format!(
            "{p}: {} records → {rows} rows of {} in {} shards ({dropped} tokens dropped)",
            o.records,
            a.seq_len,
            o.shards.len()
        ));
        report.insert(p.as_str().to_string(), serde_json::json!({"records": o.records, "rows": rows, "shards": o.shards.len(), "dropped_tokens": dropped}));
    }
    if out.json {
        print_json(&serde_json::json!({"partitions": report, "read": summary}))?;
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Subcommand)]
pub enum ShardsCommand {
    /// Check every shard a manifest lists: presence, sha256, dtype, shape, ids < vocabulary.
    Verify(VerifyArgs),
}

#[derive(Args)]
pub struct VerifyArgs {
    /// A packed output folder (or one partition folder of it).
    dir: PathBuf,
    #[command(flatten)]
    output: crate::output::OutputArgs,
}

pub fn shards(cmd: ShardsCommand) -> Result<ExitCode> {
    match cmd {
        ShardsCommand::Verify(a) => {
            let folders = pytorrent_pack::verify::manifest_folders(&a.dir);
            if folders.is_empty() {
                return Err(UsageError(format!(
                    "{}: no manifest.json here or below",
                    a.dir.display()
                ))
                .into());
            }
            let mut findings = Vec::new();
            for f in &folders {
                findings.extend(pytorrent_pack::verify::verify_folder(f));
            }
            for f in &findings {
                eprintln!("{}: {}", f.file.display(), f.problem);
            }
            a.output.log(format!(
                "{}: {} folders checked, {} problems",
                if findings.is_empty() { "ok" } else { "BROKEN" },
                folders.len(),
                findings.len()
            ));
            if a.output.json {
                print_json(
                    &serde_json::json!({"ok": findings.is_empty(), "folders": folders, "problems": findings}),
                )?;
            }
            Ok(if findings.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}
