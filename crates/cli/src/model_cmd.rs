//! `pytorrent fill-mask` and `pytorrent embed`.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use pytorrent_corpus::read::effective_partition;
use pytorrent_corpus::{discover, read_corpus, Item, TextView};
use pytorrent_model::device::{parse_device, parse_dtype};
use pytorrent_model::embed::{embed, EmbedOptions, Pooling};
use pytorrent_model::fill_mask::{fill_mask, FillMaskOptions};
use pytorrent_model::text::ModelTokenizer;
use pytorrent_model::Model;
use pytorrent_pack::npy::{Dtype, NpyWriter};

use crate::corpus_cmd::parse_partitions;
use crate::output::{print_json, OutputArgs};
use crate::UsageError;

#[derive(Args)]
pub struct ModelArgs {
    /// Model folder (config.json + model.safetensors or pytorch_model.bin + tokenizer files),
    /// or a model id in the local Hugging Face cache.
    #[arg(long)]
    model: String,
    /// Tokenizer (default: the one in the model folder).
    #[arg(long)]
    tokenizer: Option<String>,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// f32, or f16 / bf16 on a GPU.
    #[arg(long, default_value = "f32")]
    dtype: String,
    /// Inputs per forward pass (inputs are sorted by length to pad little).
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
}

impl ModelArgs {
    fn load(&self, out: &OutputArgs) -> Result<(Model, ModelTokenizer)> {
        let device = parse_device(&self.device)?;
        let dtype = parse_dtype(&self.dtype, &device)?;
        let model = Model::load(&self.model, &device, dtype)?;
        let tok = ModelTokenizer::load(model.folder(), self.tokenizer.as_deref())?;
        out.log(format!(
            "{}: {} ({} layers, hidden {}, {}) on {}",
            self.model,
            model.config.model_type,
            model.config.num_layers,
            model.config.hidden_size,
            if model.has_mlm_head() {
                "with MLM head"
            } else {
                "no MLM head"
            },
            self.device
        ));
        Ok((model, tok))
    }
}

#[derive(Args)]
pub struct FillMaskArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Files of inputs, one a line (a JSON string, or an object with "text", or plain text);
    /// - for standard input.
    inputs: Vec<PathBuf>,
    /// An input given inline (repeatable), e.g. --text "return a <mask> b".
    #[arg(long)]
    text: Vec<String>,
    #[arg(long, default_value_t = 5)]
    top_k: usize,
    /// Only score these candidates (comma-separated), as the pipeline's `targets`.
    #[arg(long, value_delimiter = ',')]
    targets: Option<Vec<String>>,
    #[command(flatten)]
    output: OutputArgs,
}

/// Inputs of a line-oriented file: JSON strings, objects with "text", or raw lines.
fn read_lines(path: &Path) -> Result<Vec<String>> {
    let reader: Box<dyn BufRead> = if path == Path::new("-") {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(path).with_context(|| format!("{}", path.display()))?,
        ))
    };
    let mut out = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("{}:{}", path.display(), i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let text = match serde_json::from_str::<serde_json::Value>(&line) {
            Ok(serde_json::Value::String(s)) => s,
            Ok(v @ serde_json::Value::Object(_)) => v["text"]
                .as_str()
                .ok_or_else(|| {
                    UsageError(format!(
                        "{}:{}: a JSON object without a \"text\" string",
                        path.display(),
                        i + 1
                    ))
                })?
                .to_string(),
            _ => line,
        };
        out.push(text);
    }
    Ok(out)
}

pub fn fill_mask_cmd(a: FillMaskArgs) -> Result<ExitCode> {
    let mut texts = a.text.clone();
    for p in &a.inputs {
        texts.extend(read_lines(p)?);
    }
    if texts.is_empty() {
        return Err(UsageError("no inputs: give --text or input files".into()).into());
    }
    let (model, tok) = a.model.load(&a.output)?;
    let opts = FillMaskOptions {
        top_k: a.top_k.max(1),
        targets: a.targets.clone(),
        batch_size: a.model.batch_size,
    };
    let results = fill_mask(&model, &tok, &texts, &opts, &|w| eprintln!("warning: {w}"))?;
    if a.output.json {
        let v: Vec<serde_json::Value> = texts
            .iter()
            .zip(&results)
            .map(|(t, r)| serde_json::json!({"text": t, "masks": r}))
            .collect();
        print_json(&v)?;
    } else {
        for (t, r) in texts.iter().zip(&results) {
            println!("{t}");
            for (m, cands) in r.iter().enumerate() {
                if r.len() > 1 {
                    println!("  mask {}:", m + 1);
                }
                for c in cands {
                    println!(
                        "  {:.4}  {:<20} {}",
                        c.score,
                        format!("{:?}", c.token_str),
                        c.sequence.replace('\n', "⏎")
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub struct EmbedArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Text files (one input a line, as for fill-mask) or, with --field, corpus files and
    /// folders; - for standard input.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Embed a corpus view (docstring, code, …) of every record instead of text lines.
    #[arg(long)]
    field: Option<TextView>,
    /// Partitions of a corpus to embed: train, valid, test (comma-separated) or all.
    #[arg(long, default_value = "all")]
    partition: String,
    /// mean (masked), cls or pooler.
    #[arg(long, default_value = "mean")]
    pooling: String,
    /// L2-normalise each vector.
    #[arg(long)]
    normalize: bool,
    /// Output .npy ([n, hidden] float32); `<out>.ids.jsonl` names each row.
    #[arg(long)]
    out: PathBuf,
    /// Inputs held in memory at once.
    #[arg(long, default_value_t = 4096, hide = true)]
    chunk: usize,
    #[command(flatten)]
    output: OutputArgs,
}

pub fn embed_cmd(a: EmbedArgs) -> Result<ExitCode> {
    let pooling: Pooling = a.pooling.parse()?;
    let (model, tok) = a.model.load(&a.output)?;
    if pooling == Pooling::Pooler && !model.has_pooler() {
        return Err(pytorrent_model::Error::Unsupported(format!(
            "{} has no pooler weights (pooler.dense); use --pooling mean or cls",
            model.folder().display()
        ))
        .into());
    }
    let opts = EmbedOptions {
        pooling,
        normalize: a.normalize,
        batch_size: a.model.batch_size,
    };
    let hidden = model.config.hidden_size;
    let mut npy = NpyWriter::create(&a.out, Dtype::Float32, hidden)?;
    let ids_path = PathBuf::from(format!("{}.ids.jsonl", a.out.display()));
    let mut ids = pytorrent_io::AtomicFile::create(&ids_path)?;
    let mut pending: Vec<(String, serde_json::Value)> = Vec::new();
    let truncated = std::cell::Cell::new(0usize);
    let flush = |pending: &mut Vec<(String, serde_json::Value)>,
                 npy: &mut NpyWriter,
                 ids: &mut pytorrent_io::AtomicFile|
     -> Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let texts: Vec<&str> = pending.iter().map(|(t, _)| t.as_str()).collect();
        let vectors = embed(&model, &tok, &texts, &opts, &|_| {
            truncated.set(truncated.get() + 1)
        })?;
        for (v, (_, id)) in vectors.iter().zip(pending.iter()) {
            npy.push_row_f32(v)?;
            use std::io::Write;
            writeln!(ids, "{id}").context("writing ids")?;
        }
        pending.clear();
        Ok(())
    };
    let mut row = 0u64;
    match a.field {
        None => {
            for p in &a.inputs {
                for (i, t) in read_lines(p)?.into_iter().enumerate() {
                    pending.push((t, serde_json::json!({"row": row, "file": p.display().to_string(), "line": i + 1})));
                    row += 1;
                    if pending.len() >= a.chunk {
                        flush(&mut pending, &mut npy, &mut ids)?;
                    }
                }
            }
        }
        Some(field) => {
            let files = discover(&a.inputs)?;
            let wanted = parse_partitions(&a.partition)?;
            let mut failure = None;
            read_corpus(
                &files,
                &pytorrent_corpus::ReadOptions::default(),
                &pytorrent_corpus::read::NoProgress,
                |file, _, rec| {
                    let p = effective_partition(&rec, file);
                    if wanted
                        .as_ref()
                        .is_some_and(|w| !p.is_some_and(|p| w.contains(&p)))
                    {
                        return None;
                    }
                    let text = field.text(&rec)?.into_owned();
                    Some((
                        text,
                        serde_json::json!({"repo": rec.repo, "path": rec.path, "func_name": rec.func_name, "partition": p.map(|p| p.as_str())}),
                    ))
                },
                |item| {
                    if let Item::Record {
                        value: Some((t, mut id)),
                        ..
                    } = item
                    {
                        id["row"] = row.into();
                        row += 1;
                        pending.push((t, id));
                        if pending.len() >= a.chunk && failure.is_none() {
                            if let Err(e) = flush(&mut pending, &mut npy, &mut ids) {
                                failure = Some(e);
                            }
                        }
                    }
                    Ok(())
                },
            )?;
            if let Some(e) = failure {
                return Err(e);
            }
        }
    }
    flush(&mut pending, &mut npy, &mut ids)?;
    let rows = npy.rows();
    npy.finish()?;
    ids.commit()?;
    let truncated = truncated.get();
    if truncated > 0 {
        a.output.log(format!(
            "warning: {truncated} inputs were longer than the model's {} positions and truncated",
            model.config.max_tokens()
        ));
    }
    a.output.log(format!(
        "{rows} embeddings of {hidden} ({} pooling{}) → {} and {}",
        a.pooling,
        if a.normalize { ", L2-normalised" } else { "" },
        a.out.display(),
        ids_path.display()
    ));
    if a.output.json {
        print_json(
            &serde_json::json!({"rows": rows, "dim": hidden, "out": a.out, "ids": ids_path, "truncated": truncated}),
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
