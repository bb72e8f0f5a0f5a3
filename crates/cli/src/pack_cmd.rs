//! `pytorrent pack` (corpus + tokenizer → shards) and `pytorrent shards verify|inspect|merge`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use pytorrent_corpus::{discover, Partition, TextView};
use pytorrent_pack::mask::MaskSpec;
use pytorrent_pack::pipeline::{pack, PackConfig, TokenizerSpec};
use pytorrent_pack::plan::Tasks;
use pytorrent_pack::shards::Format;
use pytorrent_pack::{Mode, Remainder};

use crate::corpus_cmd::{parse_partitions, ReadArgs};
use crate::output::{print_json, OutputArgs};
use crate::UsageError;

#[derive(Args)]
pub struct PackArgs {
    #[command(flatten)]
    read: ReadArgs,
    /// tokenizer.json, a folder with it (or vocab.json + merges.txt), or a model id in the
    /// local Hugging Face cache.
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
    /// A model (folder, config.json, or id in the local Hugging Face cache) whose position
    /// table must hold --seq-len tokens.
    #[arg(long)]
    model: Option<String>,
    /// concat (records joined and cut into blocks) or record (one record per row).
    #[arg(long, default_value = "concat", value_parser = ["concat", "record"])]
    mode: String,
    /// The last partial block of each segment in concat mode: drop or pad.
    #[arg(long, default_value = "drop", value_parser = ["drop", "pad"])]
    remainder: String,
    /// npy ([rows, seq_len] arrays) or megatron (.bin + .idx indexed dataset).
    #[arg(long, default_value = "npy", value_parser = ["npy", "megatron"])]
    format: String,
    /// Rows per shard.
    #[arg(long, default_value_t = 100_000)]
    shard_rows: usize,
    /// Bytes of ids per shard (e.g. 512M, 2G); a shard closes at whichever limit comes first.
    #[arg(long, value_parser = parse_size)]
    shard_bytes: Option<u64>,
    /// Seed of the shuffle and of static masks.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Keep records in input order.
    #[arg(long)]
    no_shuffle: bool,
    /// Lines per segment: the unit of shuffling, packing, resumption and task split (0: a
    /// whole file, held in memory).
    #[arg(long, default_value_t = 10_000)]
    segment_lines: u64,
    /// Write input_ids + labels with masks drawn once (default: ids only, masked at training).
    #[arg(long)]
    static_mask: bool,
    #[arg(long, default_value_t = 0.15, requires = "static_mask")]
    mlm_probability: f64,
    /// Copies of each row, each with its own mask.
    #[arg(long, default_value_t = 1, requires = "static_mask")]
    dupe_factor: usize,
    /// Mask whole words (pre-tokens) rather than single tokens.
    #[arg(long, requires = "static_mask")]
    whole_word_mask: bool,
    /// Number of tasks the input is split among (default: SLURM_ARRAY_TASK_COUNT, else 1).
    #[arg(long)]
    num_tasks: Option<usize>,
    /// This task's index (default: SLURM_ARRAY_TASK_ID less SLURM_ARRAY_TASK_MIN, else
    /// JOB_COMPLETION_INDEX of a Kubernetes Indexed Job).
    #[arg(long)]
    task_index: Option<usize>,
    /// Continue an interrupted run with the same command; the result is byte-identical to an
    /// uninterrupted one.
    #[arg(long)]
    resume: bool,
}

fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => {
            let unit = s[i..].to_ascii_uppercase();
            let mult: u64 = match unit.trim_end_matches("IB").trim_end_matches('B') {
                "" => 1,
                "K" => 1 << 10,
                "M" => 1 << 20,
                "G" => 1 << 30,
                "T" => 1 << 40,
                _ => return Err(format!("unknown size unit in '{s}' (K, M, G, T)")),
            };
            (&s[..i], mult)
        }
        None => (s, 1),
    };
    let n: u64 = num
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a size (e.g. 512M)"))?;
    match n.checked_mul(mult) {
        Some(v) if v > 0 => Ok(v),
        _ => Err(format!("'{s}' is not a usable size")),
    }
}

fn env_usize(name: &str) -> Result<Option<usize>> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| UsageError(format!("{name}={v} is not a number")).into()),
        _ => Ok(None),
    }
}

/// Flags first, then Slurm array variables, then Kubernetes' completion index.
fn resolve_tasks(num: Option<usize>, index: Option<usize>) -> Result<Tasks> {
    let count = match num {
        Some(n) => Some(n),
        None => env_usize("SLURM_ARRAY_TASK_COUNT")?,
    };
    let index = match index {
        Some(i) => Some(i),
        None => match env_usize("SLURM_ARRAY_TASK_ID")? {
            Some(id) if count.is_some() => {
                let min = env_usize("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
                Some(id.checked_sub(min).ok_or_else(|| {
                    UsageError(format!(
                        "SLURM_ARRAY_TASK_ID {id} is below SLURM_ARRAY_TASK_MIN {min}"
                    ))
                })?)
            }
            _ => env_usize("JOB_COMPLETION_INDEX")?,
        },
    };
    match (count, index) {
        (None, None) => Ok(Tasks::ONE),
        (Some(count), Some(index)) if count > 0 && index < count => Ok(Tasks { count, index }),
        (Some(count), Some(index)) => Err(UsageError(format!(
            "task index {index} is not below the task count {count}"
        ))
        .into()),
        (Some(count), None) => Err(UsageError(format!(
            "{count} tasks but no task index: give --task-index (or run as a Slurm array task)"
        ))
        .into()),
        (None, Some(index)) => Err(UsageError(format!(
            "task index {index} but no task count: give --num-tasks"
        ))
        .into()),
    }
}

/// The longest sequence a model's position table holds, from its `config.json`.
fn position_limit(spec: &str) -> Result<(PathBuf, usize)> {
    let p = Path::new(spec);
    let config = if p.is_file() {
        p.to_path_buf()
    } else if p.is_dir() {
        p.join("config.json")
    } else {
        pytorrent_tokenizer::hub::snapshot_folder(spec, &["config.json"])?.join("config.json")
    };
    let text = std::fs::read_to_string(&config)
        .with_context(|| format!("{}: cannot read the model config", config.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| UsageError(format!("{}: not JSON: {e}", config.display())))?;
    let max = v["max_position_embeddings"]
        .as_u64()
        .ok_or_else(|| UsageError(format!("{}: no max_position_embeddings", config.display())))?
        as usize;
    let limit = pytorrent_model::config::usable_positions(
        v["model_type"].as_str().unwrap_or(""),
        max,
        v["pad_token_id"].as_u64().map(|p| p as u32),
    );
    Ok((config, limit))
}

pub fn run(a: PackArgs) -> Result<ExitCode> {
    if let Some(m) = &a.model {
        let (config, limit) = position_limit(m)?;
        if a.seq_len > limit {
            return Err(UsageError(format!(
                "--seq-len {} does not fit {}: its position table holds {limit} tokens",
                a.seq_len,
                config.display()
            ))
            .into());
        }
    }
    if !(a.mlm_probability > 0.0 && a.mlm_probability < 1.0) {
        return Err(UsageError("--mlm-probability must be between 0 and 1".into()).into());
    }
    if a.dupe_factor == 0 {
        return Err(UsageError("--dupe-factor must be at least 1".into()).into());
    }
    let tasks = resolve_tasks(a.num_tasks, a.task_index)?;
    let loaded = pytorrent_tokenizer::load(&a.tokenizer)?;
    let tok = &loaded.tokenizer;
    let special = |t: &str| {
        tok.token_to_id(t)
            .ok_or_else(|| UsageError(format!("the tokenizer has no {t} token")))
    };
    let (bos, eos, pad) = (special("<s>")?, special("</s>")?, special("<pad>")?);
    let vocab = tok.get_vocab_size(true);
    let masking = if a.static_mask {
        Some(MaskSpec {
            probability: a.mlm_probability,
            whole_word: a.whole_word_mask,
            dupe_factor: a.dupe_factor,
            mask_id: special("<mask>")?,
            vocab_size: vocab as u32,
        })
    } else {
        None
    };
    let info = match &loaded.source {
        pytorrent_tokenizer::Source::TokenizerJson(p) => serde_json::json!({
            "file": p.display().to_string(), "sha256": pytorrent_io::sha256_file(p)?, "vocab_size": vocab }),
        pytorrent_tokenizer::Source::VocabMerges { vocab: v, merges } => serde_json::json!({
            "vocab": v.display().to_string(), "vocab_sha256": pytorrent_io::sha256_file(v)?,
            "merges": merges.display().to_string(), "merges_sha256": pytorrent_io::sha256_file(merges)?, "vocab_size": vocab }),
    };
    // The exact fast path for byte-level BPE; `tokenizers` itself for anything else.
    let fast = pytorrent_tokenizer::fast::FastEncoder::new(tok);
    let encoder: &dyn pytorrent_tokenizer::Encoder = match &fast {
        Some(f) => f,
        None => tok,
    };
    let spec = TokenizerSpec {
        encoder,
        info,
        vocab_size: vocab,
        bos,
        eos,
        pad,
        special: pytorrent_tokenizer::SPECIAL_TOKENS
            .iter()
            .filter_map(|t| tok.token_to_id(t))
            .collect(),
    };
    let partitions: Vec<Partition> =
        parse_partitions(&a.partition)?.unwrap_or_else(|| Partition::ALL.to_vec());
    let files = discover(&a.read.inputs)?;
    let cfg = PackConfig {
        out: a.out.clone(),
        field: a.field,
        partitions,
        seq_len: a.seq_len,
        mode: if a.mode == "record" {
            Mode::Record
        } else {
            Mode::Concat
        },
        remainder: if a.remainder == "pad" {
            Remainder::Pad
        } else {
            Remainder::Drop
        },
        format: if a.format == "megatron" {
            Format::Megatron
        } else {
            Format::Npy
        },
        shard_rows: a.shard_rows,
        shard_bytes: a.shard_bytes,
        seed: a.seed,
        shuffle: !a.no_shuffle,
        segment_lines: a.segment_lines,
        masking,
        tasks,
        resume: a.resume,
        read: a.read.options(Some(&a.out)),
    };
    let out = &a.read.output;
    let bar = out.progress("pack");
    let report = pack(&files, &spec, &cfg, &bar, &|m| out.log(m))?;
    if let Some(r) = &report.read {
        if r.rejected_total() > 0 {
            let kinds: Vec<String> = r
                .rejected
                .iter()
                .map(|(k, n)| format!("{n} {}", k.name()))
                .collect();
            out.log(format!(
                "{} bad lines skipped ({}), written to {}",
                r.rejected_total(),
                kinds.join(", "),
                r.quarantine
                    .as_ref()
                    .map_or("-".into(), |q| q.display().to_string())
            ));
        }
    }
    if tasks.count > 1 {
        out.log(format!(
            "task {} of {} complete in {}; run `pytorrent shards merge {}` when all are",
            tasks.index,
            tasks.count,
            report.root.display(),
            a.out.display()
        ));
    }
    if out.json {
        print_json(&report)?;
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Subcommand)]
pub enum ShardsCommand {
    /// Check every shard a manifest lists: presence, sha256, dtype, shape, ids < vocabulary.
    Verify(VerifyArgs),
    /// Print rows of a shard folder decoded back to text.
    Inspect(InspectArgs),
    /// Combine the task folders of a scaled-out `pack` into one output.
    Merge(MergeArgs),
}

#[derive(Args)]
pub struct VerifyArgs {
    /// A packed output folder (or one partition folder of it).
    dir: PathBuf,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args)]
pub struct InspectArgs {
    /// One partition folder (holding manifest.json).
    dir: PathBuf,
    /// First row (over all shards of the folder).
    #[arg(long, default_value_t = 0)]
    row: u64,
    /// Number of rows.
    #[arg(long, default_value_t = 3)]
    count: u64,
    /// Tokenizer to decode with (default: the one the manifest names).
    #[arg(long)]
    tokenizer: Option<String>,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args)]
pub struct MergeArgs {
    /// The --out folder the tasks wrote into (holding task-IIIII-of-NNNNN folders).
    dir: PathBuf,
    #[command(flatten)]
    output: OutputArgs,
}

pub fn shards(cmd: ShardsCommand) -> Result<ExitCode> {
    match cmd {
        ShardsCommand::Verify(a) => verify(a),
        ShardsCommand::Inspect(a) => inspect(a),
        ShardsCommand::Merge(a) => {
            let r = pytorrent_pack::merge::merge(&a.dir)?;
            for (p, n) in &r.partitions {
                a.output
                    .log(format!("{p}: {n} shards from {} tasks", r.tasks));
            }
            if a.output.json {
                print_json(&r)?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn verify(a: VerifyArgs) -> Result<ExitCode> {
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

fn inspect(a: InspectArgs) -> Result<ExitCode> {
    if !a.dir.join("manifest.json").is_file() {
        return Err(UsageError(format!(
            "{}: no manifest.json (give one partition folder, e.g. out/train)",
            a.dir.display()
        ))
        .into());
    }
    let (manifest, rows) = pytorrent_pack::inspect::read_rows(&a.dir, a.row, a.count)?;
    let spec = match &a.tokenizer {
        Some(t) => t.clone(),
        None => manifest.tokenizer["file"]
            .as_str()
            .or(manifest.tokenizer["vocab"]
                .as_str()
                .and_then(|v| Path::new(v).parent().and_then(|p| p.to_str())))
            .ok_or_else(|| {
                UsageError("the manifest names no tokenizer file; give --tokenizer".into())
            })?
            .to_string(),
    };
    let tok = pytorrent_tokenizer::load(&spec)?.tokenizer;
    let decode = |ids: &[u32]| -> Result<String> {
        tok.decode(ids, false)
            .map_err(|e| anyhow::anyhow!("decoding with {spec}: {e}"))
    };
    let mut out = Vec::new();
    for r in &rows {
        let text = decode(&r.ids)?;
        // Labels: the original tokens at the masked positions.
        let targets = match &r.labels {
            Some(l) => Some(
                l.iter()
                    .enumerate()
                    .filter(|(_, v)| **v >= 0)
                    .map(|(i, v)| Ok((i, decode(&[*v as u32])?)))
                    .collect::<Result<Vec<_>>>()?,
            ),
            None => None,
        };
        if a.output.json {
            out.push(serde_json::json!({"row": r.row, "shard": r.shard, "ids": r.ids,
                "attention_mask": r.attention_mask, "labels": r.labels, "text": text, "targets": targets}));
        } else {
            println!("── row {} ({}) ──", r.row, r.shard);
            println!("{text}");
            if let Some(t) = targets {
                let shown: Vec<String> = t.iter().map(|(i, s)| format!("{i}:{s:?}")).collect();
                println!("── labels: {}", shown.join(" "));
            }
        }
    }
    if rows.is_empty() {
        a.output.log(format!(
            "no rows from {} (the folder holds {})",
            a.row, manifest.rows
        ));
    }
    if a.output.json {
        print_json(&out)?;
    }
    Ok(ExitCode::SUCCESS)
}
