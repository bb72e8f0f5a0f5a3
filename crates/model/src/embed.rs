//! Pooled embeddings: masked mean, first token, or the pooler; optionally L2-normalised.
//! Inputs are batched by length (longest first) for less padding; the output keeps input
//! order.

use std::cell::Cell;
use std::io::Write;
use std::path::PathBuf;

use candle_core::{DType, Tensor, D};
use pytorrent_corpus::read::{effective_partition, read_corpus, Item};
use pytorrent_corpus::{Partitions, ReadOptions, TextView};
use pytorrent_io::npy::{Dtype, NpyWriter};
use pytorrent_io::{AtomicFile, Reporter, Unit};
use serde::{Deserialize, Serialize};

use crate::encoder::Model;
use crate::options::{read_text_lines, ModelOptions};
use crate::text::{encode_inputs, length_batches, ModelTokenizer};
use crate::{Error, Result};

pytorrent_io::word_enum! {
    "pooling";
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Pooling {
        /// Mean of the real tokens' hidden states (sentence-transformers' mean pooling).
        Mean = "mean",
        /// The first token's hidden state (`<s>` / `[CLS]`).
        Cls = "cls",
        /// `tanh(dense(h[CLS]))`, the model's pooler.
        Pooler = "pooler",
    }
}

#[derive(Debug, Clone)]
pub struct EmbedOptions {
    pub pooling: Pooling,
    pub normalize: bool,
    pub batch_size: usize,
}

/// Pools `[b, s, h]` hidden states of rows with `lengths` real tokens into `[b, h]`.
pub fn pool(model: &Model, hidden: &Tensor, lengths: &[usize], pooling: Pooling) -> Result<Tensor> {
    let (b, s, _) = hidden.dims3()?;
    Ok(match pooling {
        Pooling::Cls => hidden.narrow(1, 0, 1)?.squeeze(1)?,
        Pooling::Pooler => model.pooler_output(hidden)?,
        Pooling::Mean => {
            let mask: Vec<f32> = lengths
                .iter()
                .flat_map(|&l| (0..s).map(move |i| if i < l { 1.0 } else { 0.0 }))
                .collect();
            let mask =
                Tensor::from_vec(mask, (b, s, 1), hidden.device())?.to_dtype(hidden.dtype())?;
            let sum = hidden.broadcast_mul(&mask)?.sum(1)?;
            let count = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
            sum.broadcast_div(&count)?
        }
    })
}

/// L2 normalisation as `torch.nn.functional.normalize` (eps 1e-12).
pub fn normalize(x: &Tensor) -> Result<Tensor> {
    let norm = x
        .sqr()?
        .sum_keepdim(D::Minus1)?
        .sqrt()?
        .clamp(1e-12, f64::MAX)?;
    Ok(x.broadcast_div(&norm)?)
}

/// One vector per text, in input order; `warn` hears about truncated inputs.
pub fn embed(
    model: &Model,
    tok: &ModelTokenizer,
    texts: &[&str],
    opts: &EmbedOptions,
    warn: &dyn Fn(String),
) -> Result<Vec<Vec<f32>>> {
    let encoded = encode_inputs(tok, texts, model.config.max_tokens(), warn)?;
    if let Some(i) = encoded.iter().position(Vec::is_empty) {
        return Err(Error::Usage(format!("input {}: no tokens", i + 1)));
    }
    let mut out: Vec<Vec<f32>> = vec![Vec::new(); encoded.len()];
    for chunk in &length_batches(&encoded, opts.batch_size) {
        let rows: Vec<Vec<u32>> = chunk.iter().map(|&i| encoded[i].clone()).collect();
        let lengths: Vec<usize> = rows.iter().map(Vec::len).collect();
        let hidden = model.hidden_states(&rows)?;
        let mut v = pool(model, &hidden, &lengths, opts.pooling)?;
        if opts.normalize {
            v = normalize(&v)?;
        }
        for (row, &i) in v
            .to_dtype(DType::F32)?
            .to_vec2::<f32>()?
            .into_iter()
            .zip(chunk)
        {
            out[i] = row;
        }
    }
    Ok(out)
}

/// `embed`: pooled embeddings of text lines or of a corpus view, as npy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbedConfig {
    #[serde(flatten)]
    pub model: ModelOptions,
    /// Text files (one input a line, as for fill-mask) or, with `field`, corpus files and
    /// folders; `-` for standard input.
    pub inputs: Vec<PathBuf>,
    /// Embed this corpus view of every record instead of text lines.
    #[serde(default)]
    pub field: Option<TextView>,
    /// Partitions of a corpus to embed.
    #[serde(default)]
    pub partition: Partitions,
    #[serde(default = "default_pooling")]
    pub pooling: Pooling,
    /// L2-normalise each vector.
    #[serde(default)]
    pub normalize: bool,
    /// Output .npy (`[n, hidden]` float32); `<out>.ids.jsonl` names each row.
    pub out: PathBuf,
    /// Inputs held in memory at once.
    #[serde(default = "default_chunk")]
    pub chunk: usize,
}

fn default_pooling() -> Pooling {
    Pooling::Mean
}
fn default_chunk() -> usize {
    4096
}

impl EmbedConfig {
    pub fn new(model: ModelOptions, inputs: Vec<PathBuf>, out: PathBuf) -> EmbedConfig {
        EmbedConfig {
            model,
            inputs,
            field: None,
            partition: Partitions::All,
            pooling: default_pooling(),
            normalize: false,
            out,
            chunk: default_chunk(),
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.inputs.is_empty() {
            return Err(Error::Usage("no inputs to embed".into()));
        }
        if self.chunk == 0 {
            return Err(Error::Usage("--chunk must be at least 1".into()));
        }
        self.model.validate()
    }

    /// `<out>.ids.jsonl`.
    pub fn ids_path(&self) -> PathBuf {
        PathBuf::from(format!("{}.ids.jsonl", self.out.display()))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct EmbedReport {
    pub rows: usize,
    pub dim: usize,
    pub out: PathBuf,
    pub ids: PathBuf,
    /// Inputs longer than the model takes, truncated.
    pub truncated: usize,
    pub pooling: Pooling,
    pub normalize: bool,
    pub max_tokens: usize,
}

/// Inputs waiting for a forward pass, and where their vectors go.
struct Embedder<'a> {
    model: &'a Model,
    tok: &'a ModelTokenizer,
    opts: EmbedOptions,
    pending: Vec<(String, serde_json::Value)>,
    npy: NpyWriter,
    ids: AtomicFile,
    truncated: Cell<usize>,
    chunk: usize,
    row: u64,
}

impl Embedder<'_> {
    /// The row the next input gets.
    fn next_row(&mut self) -> u64 {
        self.row += 1;
        self.row - 1
    }

    fn push(&mut self, text: String, id: serde_json::Value) -> Result<()> {
        self.pending.push((text, id));
        if self.pending.len() >= self.chunk {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let texts: Vec<&str> = self.pending.iter().map(|(t, _)| t.as_str()).collect();
        let vectors = embed(self.model, self.tok, &texts, &self.opts, &|_| {
            self.truncated.set(self.truncated.get() + 1)
        })?;
        for (v, (_, id)) in vectors.iter().zip(&self.pending) {
            self.npy.push_row_f32(v)?;
            writeln!(self.ids, "{id}").map_err(|e| pytorrent_io::Error::io(self.ids.path(), e))?;
        }
        self.pending.clear();
        Ok(())
    }
}

/// Text lines of each input file, each named by file and line.
fn embed_lines(cfg: &EmbedConfig, e: &mut Embedder) -> Result<()> {
    for p in &cfg.inputs {
        for (line, t) in read_text_lines(p)? {
            let id = serde_json::json!({"row": e.next_row(), "file": p.display().to_string(), "line": line});
            e.push(t, id)?;
        }
    }
    Ok(())
}

/// The `field` view of every record of the chosen partitions, each named by its record.
fn embed_corpus(
    cfg: &EmbedConfig,
    field: TextView,
    e: &mut Embedder,
    reporter: &dyn Reporter,
) -> Result<()> {
    let files = pytorrent_corpus::discover(&cfg.inputs)?;
    reporter.begin("embed", Unit::Bytes, None);
    let read = read_corpus(
        &files,
        &ReadOptions::default(),
        reporter,
        |file, _, rec| {
            let p = effective_partition(&rec, file);
            if !cfg.partition.contains(p) {
                return None;
            }
            let text = field.text(&rec)?.into_owned();
            let id = serde_json::json!({"repo": rec.repo, "path": rec.path,
                "func_name": rec.func_name, "partition": p.map(|p| p.as_str())});
            Some((text, id))
        },
        |item| match item {
            Item::Record {
                value: Some((t, mut id)),
                ..
            } => {
                id["row"] = e.next_row().into();
                e.push(t, id)
            }
            _ => Ok(()),
        },
    );
    reporter.end();
    read.map(|_| ())
}

pub fn run(cfg: &EmbedConfig, reporter: &dyn Reporter) -> Result<EmbedReport> {
    cfg.validate()?;
    let (model, tok) = cfg.model.load(reporter)?;
    if cfg.pooling == Pooling::Pooler && !model.has_pooler() {
        return Err(Error::Unsupported(format!(
            "{} has no pooler weights (pooler.dense); use --pooling mean or cls",
            model.folder().display()
        )));
    }
    let dim = model.config.hidden_size;
    let mut e = Embedder {
        model: &model,
        tok: &tok,
        opts: EmbedOptions {
            pooling: cfg.pooling,
            normalize: cfg.normalize,
            batch_size: cfg.model.batch_size,
        },
        pending: Vec::new(),
        npy: NpyWriter::create(&cfg.out, Dtype::Float32, dim)?,
        ids: AtomicFile::create(cfg.ids_path())?,
        truncated: Cell::new(0),
        chunk: cfg.chunk,
        row: 0,
    };
    match cfg.field {
        None => embed_lines(cfg, &mut e)?,
        Some(field) => embed_corpus(cfg, field, &mut e, reporter)?,
    }
    e.flush()?;
    let (rows, truncated) = (e.npy.rows(), e.truncated.get());
    e.npy.finish()?;
    e.ids.commit()?;
    let max_tokens = model.config.max_tokens();
    if truncated > 0 {
        reporter.warn(&format!(
            "{} longer than the model's {max_tokens} positions and truncated",
            pytorrent_io::reporter::plural(truncated as u64, "input was", "inputs were")
        ));
    }
    Ok(EmbedReport {
        rows,
        dim,
        out: cfg.out.clone(),
        ids: cfg.ids_path(),
        truncated,
        pooling: cfg.pooling,
        normalize: cfg.normalize,
        max_tokens,
    })
}

impl std::fmt::Display for EmbedReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} of {} ({} pooling{}) → {} and {}",
            pytorrent_io::reporter::plural(self.rows as u64, "embedding", "embeddings"),
            self.dim,
            self.pooling.name(),
            if self.normalize {
                ", L2-normalised"
            } else {
                ""
            },
            self.out.display(),
            self.ids.display()
        )
    }
}
