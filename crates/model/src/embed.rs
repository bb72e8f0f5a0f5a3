//! Pooled embeddings: masked mean, first token, or the pooler; optionally L2-normalised.
//! Inputs are batched by length (longest first) for less padding; the output keeps input
//! order.

use std::io::Write;
use std::path::PathBuf;

use candle_core::{DType, Tensor, D};
use pytorrent_corpus::read::{read_records, Item};
use pytorrent_corpus::{AnyRecord, InputConfig, Partitions, ReadSummary, TextSource, TextView};
use pytorrent_io::npy::{Dtype, NpyWriter};
use pytorrent_io::{AtomicFile, Reporter, Unit};
use serde::{Deserialize, Serialize};

use crate::encoder::Model;
use crate::options::ModelOptions;
use crate::sentence::SentenceConfig;
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
    /// Inputs are cut to this many tokens, special tokens included.
    pub max_tokens: usize,
    /// Lower-case inputs first (a sentence-transformers model's `do_lower_case`).
    pub lower_case: bool,
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

/// One vector per text, in input order; `cut` hears the index of each truncated input.
pub fn embed(
    model: &Model,
    tok: &ModelTokenizer,
    texts: &[&str],
    opts: &EmbedOptions,
    cut: &dyn Fn(usize),
) -> Result<Vec<Vec<f32>>> {
    let encoded = if opts.lower_case {
        let lower: Vec<String> = texts.iter().map(|t| t.to_lowercase()).collect();
        encode_inputs(tok, &lower, opts.max_tokens, cut)?
    } else {
        encode_inputs(tok, texts, opts.max_tokens, cut)?
    };
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

/// `embed`: pooled embeddings of text lines, inline texts or a corpus view, as npy; a
/// sentence-transformers folder's own settings (`max_seq_length`, pooling, `Normalize`) by
/// default, so the vectors are what `SentenceTransformer.encode` gives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
// Inputs may be left out for inline --text.
#[cfg_attr(feature = "cli", command(mut_arg("inputs", |a| a.required(false))))]
pub struct EmbedConfig {
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub model: ModelOptions,
    /// Text files (one input a line: a JSON string, an object with `text`, or plain text) or,
    /// with `field`/`text_field`, corpus files and folders (JSONL or Parquet); `-` for
    /// standard input; and what to do with bad lines.
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub input: InputConfig,
    /// An input given inline (repeatable).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub text: Vec<String>,
    /// Embed a corpus view (docstring, code, …) of every PyTorrent record instead of text lines.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub field: Option<TextView>,
    /// Embed this string field of records of any shape (e.g. text, content).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long, value_name = "NAME"))]
    pub text_field: Option<String>,
    /// Partitions of a corpus to embed: train, valid, test (comma-separated) or all.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long, default_value = "all"))]
    pub partition: Partitions,
    /// Pooling, normalisation and length.
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub choices: Choices,
    /// Output .npy ([n, hidden] float32); `<out>.ids.jsonl` names each row.
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
    /// Inputs held in memory at once.
    #[serde(default = "default_chunk")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = default_chunk(), hide = true))]
    pub chunk: usize,
}

fn default_chunk() -> usize {
    4096
}

impl EmbedConfig {
    pub fn new(model: ModelOptions, inputs: Vec<PathBuf>, out: PathBuf) -> EmbedConfig {
        EmbedConfig {
            model,
            input: InputConfig::new(inputs),
            text: Vec::new(),
            field: None,
            text_field: None,
            partition: Partitions::All,
            choices: Choices::default(),
            out,
            chunk: default_chunk(),
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.input.inputs.is_empty() && self.text.is_empty() {
            return Err(Error::Usage(
                "no inputs to embed: give files or --text".into(),
            ));
        }
        if self.field.is_some() && self.text_field.is_some() {
            return Err(Error::Usage(
                "give --field or --text-field, not both".into(),
            ));
        }
        if self.chunk == 0 || self.choices.max_length == Some(0) {
            return Err(Error::Usage(
                "--chunk and --max-length must be at least 1".into(),
            ));
        }
        self.model.validate()
    }

    /// `<out>.ids.jsonl`.
    pub fn ids_path(&self) -> PathBuf {
        PathBuf::from(format!("{}.ids.jsonl", self.out.display()))
    }

    fn source(&self) -> TextSource {
        match (&self.field, &self.text_field) {
            (_, Some(f)) => TextSource::Field(f.clone()),
            (Some(v), None) => TextSource::View(*v),
            (None, None) => TextSource::Lines,
        }
    }
}

/// The most truncated inputs the report names (all are counted).
const NAMED_TRUNCATIONS: usize = 1000;

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct EmbedReport {
    pub rows: usize,
    pub dim: usize,
    pub out: PathBuf,
    pub ids: PathBuf,
    /// Inputs longer than `max_tokens`, cut to it.
    pub truncated: usize,
    /// The ids of the first truncated inputs.
    pub truncated_inputs: Vec<serde_json::Value>,
    pub pooling: Pooling,
    pub normalize: bool,
    pub max_tokens: usize,
    /// Settings taken from a sentence-transformers folder.
    pub sentence_transformers: bool,
    pub read: Option<ReadSummary>,
}

/// Inputs waiting for a forward pass, and where their vectors go.
struct Embedder<'a> {
    model: &'a Model,
    tok: &'a ModelTokenizer,
    opts: EmbedOptions,
    pending: Vec<(String, serde_json::Value)>,
    npy: NpyWriter,
    ids: AtomicFile,
    truncated: usize,
    truncated_inputs: Vec<serde_json::Value>,
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
        let cut = std::cell::RefCell::new(Vec::new());
        let vectors = embed(self.model, self.tok, &texts, &self.opts, &|i| {
            cut.borrow_mut().push(i)
        })?;
        for i in cut.into_inner() {
            self.truncated += 1;
            if self.truncated_inputs.len() < NAMED_TRUNCATIONS {
                self.truncated_inputs.push(self.pending[i].1.clone());
            }
        }
        for (v, (_, id)) in vectors.iter().zip(&self.pending) {
            self.npy.push_row_f32(v)?;
            writeln!(self.ids, "{id}").map_err(|e| pytorrent_io::Error::io(self.ids.path(), e))?;
        }
        self.pending.clear();
        Ok(())
    }
}

/// Every input of the files (text lines, or records of the chosen partitions), each named by
/// its record or its file and line.
fn embed_inputs(
    cfg: &EmbedConfig,
    e: &mut Embedder,
    reporter: &dyn Reporter,
) -> Result<ReadSummary> {
    let files = cfg.input.discover()?;
    let source = cfg.source();
    reporter.begin("embed", Unit::Bytes, None);
    let read = read_records(
        &files,
        &cfg.input.options(Some(&cfg.out)),
        &source.schema(),
        reporter,
        |file, line, rec| {
            let p = rec.partition().or(file.partition);
            if !cfg.partition.contains(p) {
                return None;
            }
            let text = rec.text(&source)?.into_owned();
            let partition = p.map(|p| p.as_str());
            let id = match &rec {
                AnyRecord::PyTorrent(r) => serde_json::json!({"repo": r.repo, "path": r.path,
                    "func_name": r.func_name, "partition": partition}),
                AnyRecord::Text(_) if source == TextSource::Lines => {
                    serde_json::json!({"file": file.display(), "line": line.line_no})
                }
                AnyRecord::Text(_) => serde_json::json!({"file": file.display(),
                    "line": line.line_no, "partition": partition}),
            };
            Some((text, id))
        },
        |item| match item {
            Item::Record {
                value: Some((t, id)),
                ..
            } => {
                let id = with_row(id, e.next_row(), &source);
                e.push(t, id)
            }
            Item::Rejected { problem } => {
                reporter.problem(&problem.to_string());
                Ok(())
            }
            _ => Ok(()),
        },
    );
    reporter.end();
    read
}

/// The id with its row: first for text lines, last for records (as the ids files always had).
fn with_row(id: serde_json::Value, row: u64, source: &TextSource) -> serde_json::Value {
    let serde_json::Value::Object(fields) = id else {
        return id;
    };
    let mut out = serde_json::Map::new();
    if *source == TextSource::Lines {
        out.insert("row".into(), row.into());
        out.extend(fields);
    } else {
        out.extend(fields);
        out.insert("row".into(), row.into());
    }
    serde_json::Value::Object(out)
}

/// The settings of this run: flags first, then a sentence-transformers folder's.
fn options(cfg: &EmbedConfig, model: &Model, st: Option<&SentenceConfig>) -> Result<EmbedOptions> {
    settings(model, st, &cfg.choices, cfg.model.batch_size)
}

/// What a user may choose about embeddings (keys of `embed` and `eval retrieval`); the rest
/// comes from the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct Choices {
    /// mean (masked), cls or pooler (default: a sentence-transformers folder's, else mean).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub pooling: Option<Pooling>,
    /// L2-normalise each vector (a sentence-transformers `Normalize` module does it anyway).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub normalize: bool,
    /// Cut inputs to this many tokens (default: a sentence-transformers max_seq_length, else
    /// what the model's position table holds).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub max_length: Option<usize>,
}

/// Embedding settings: the choices first, then a sentence-transformers folder's (`st`), then
/// the model's limits; refused where the model cannot do what was chosen.
pub fn settings(
    model: &Model,
    st: Option<&SentenceConfig>,
    c: &Choices,
    batch_size: usize,
) -> Result<EmbedOptions> {
    let positions = model.config.max_tokens();
    let max_tokens = c
        .max_length
        .or(st.and_then(|s| s.max_seq_length))
        .unwrap_or(positions);
    if max_tokens > positions {
        return Err(Error::Usage(format!(
            "--max-length {max_tokens}: the model's position table holds {positions} tokens"
        )));
    }
    let pooling = c.pooling.or(st.map(|s| s.pooling)).unwrap_or(Pooling::Mean);
    if pooling == Pooling::Pooler && !model.has_pooler() {
        return Err(Error::Unsupported(format!(
            "{} has no pooler weights (pooler.dense); use --pooling mean or cls",
            model.folder().display()
        )));
    }
    Ok(EmbedOptions {
        pooling,
        normalize: c.normalize || st.is_some_and(|s| s.normalize),
        batch_size,
        max_tokens,
        lower_case: st.is_some_and(|s| s.do_lower_case),
    })
}

pub fn run(cfg: &EmbedConfig, reporter: &dyn Reporter) -> Result<EmbedReport> {
    cfg.validate()?;
    let (model, tok) = cfg.model.load(reporter)?;
    let st = SentenceConfig::read(&model.files.root)?;
    let opts = options(cfg, &model, st.as_ref())?;
    let dim = model.config.hidden_size;
    let mut e = Embedder {
        model: &model,
        tok: &tok,
        opts: opts.clone(),
        pending: Vec::new(),
        npy: NpyWriter::create(&cfg.out, Dtype::Float32, dim)?,
        ids: AtomicFile::create(cfg.ids_path())?,
        truncated: 0,
        truncated_inputs: Vec::new(),
        chunk: cfg.chunk,
        row: 0,
    };
    for (i, t) in cfg.text.iter().enumerate() {
        let id = serde_json::json!({"row": e.next_row(), "text": i + 1});
        e.push(t.clone(), id)?;
    }
    let read = if cfg.input.inputs.is_empty() {
        None
    } else {
        Some(embed_inputs(cfg, &mut e, reporter)?)
    };
    e.flush()?;
    let rows = e.npy.rows();
    e.npy.finish()?;
    e.ids.commit()?;
    if e.truncated > 0 {
        reporter.warn(&format!(
            "{} longer than {} tokens and truncated",
            pytorrent_io::reporter::plural(e.truncated as u64, "input was", "inputs were"),
            opts.max_tokens
        ));
    }
    Ok(EmbedReport {
        rows,
        dim,
        out: cfg.out.clone(),
        ids: cfg.ids_path(),
        truncated: e.truncated,
        truncated_inputs: e.truncated_inputs,
        pooling: opts.pooling,
        normalize: opts.normalize,
        max_tokens: opts.max_tokens,
        sentence_transformers: st.is_some(),
        read,
    })
}

impl std::fmt::Display for EmbedReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(r) = &self.read {
            write!(f, "{}", pytorrent_corpus::read::skipped_lines(r))?;
        }
        writeln!(
            f,
            "{} of {} ({} pooling{}, at most {} tokens{}) → {} and {}",
            pytorrent_io::reporter::plural(self.rows as u64, "embedding", "embeddings"),
            self.dim,
            self.pooling.name(),
            if self.normalize {
                ", L2-normalised"
            } else {
                ""
            },
            self.max_tokens,
            if self.sentence_transformers {
                ", as the sentence-transformers folder says"
            } else {
                ""
            },
            self.out.display(),
            self.ids.display()
        )
    }
}
