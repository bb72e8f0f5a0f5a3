//! `tokenizer encode`: literal texts, standard input or a corpus view → token ids, as JSONL
//! (one array per text) or npy (`ids.npy` + `ids.offsets.npy`), streamed in bounded memory.

use std::io::Write;
use std::path::{Path, PathBuf};

use pytorrent_corpus::texts::with_texts;
use pytorrent_corpus::{InputConfig, Partitions, ReadSummary, TextSource, TextView};
use pytorrent_io::npy::{Dtype, NpyWriter};
use pytorrent_io::{Reporter, Unit};
use serde::{Deserialize, Serialize};

use crate::{Encoder, Error, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
// Inputs may be left out for literal --text.
#[cfg_attr(feature = "cli", command(mut_arg("inputs", |a| a.required(false))))]
pub struct EncodeConfig {
    /// Tokenizer: tokenizer.json, a folder, or a model id in the local Hugging Face cache.
    #[cfg_attr(feature = "cli", arg(long))]
    pub tokenizer: String,
    /// Corpus inputs (files, folders, - for standard input) whose --field view is encoded;
    /// none with --text.
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub input: InputConfig,
    /// Literal text to encode (repeatable; - reads plain text from standard input).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub text: Vec<String>,
    /// Text view of PyTorrent records: code, docstring, summary, code_with_docstrings,
    /// original_string, nl+code.
    #[serde(default = "default_field")]
    #[cfg_attr(feature = "cli", arg(long, default_value = "code"))]
    pub field: TextView,
    /// Encode this string field of records of any shape instead (e.g. text, content), as HF
    /// hub datasets and datatrove write them.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long, value_name = "NAME"))]
    pub text_field: Option<String>,
    /// Partitions to encode: train, valid, test (comma-separated) or all.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long, default_value = "all"))]
    pub partition: Partitions,
    /// The partition of records that name none (as `tokenizer train` and `pack` take it).
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub rule: pytorrent_corpus::PartitionRule,
    /// Output: .jsonl (one JSON array of ids per text, streamed; default standard output) or
    /// .npy (all ids in one uint32 array, plus <name>.offsets.npy with n+1 int64 offsets).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: Option<PathBuf>,
    /// Leave out <s> and </s>.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub no_special_tokens: bool,
}

fn default_field() -> TextView {
    TextView::Code
}

impl EncodeConfig {
    pub fn new(tokenizer: String, inputs: Vec<PathBuf>) -> EncodeConfig {
        EncodeConfig {
            tokenizer,
            input: InputConfig::new(inputs),
            text: Vec::new(),
            field: default_field(),
            text_field: None,
            partition: Partitions::All,
            rule: Default::default(),
            out: None,
            no_special_tokens: false,
        }
    }

    pub fn validate(&self) -> Result<()> {
        match (self.text.is_empty(), self.input.inputs.is_empty()) {
            (false, false) => Err(Error::Usage(
                "give either --text or corpus inputs, not both".into(),
            )),
            (true, true) => Err(Error::Usage(
                "nothing to encode: give corpus inputs or --text".into(),
            )),
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct EncodeReport {
    pub texts: u64,
    pub tokens: u64,
    pub out: Option<PathBuf>,
    /// What the corpus reader saw (absent for literal texts).
    pub read: Option<ReadSummary>,
}

/// Where ids go: JSONL (a file appearing when complete, or standard output) or npy.
enum IdSink {
    Jsonl(Box<dyn Write>),
    JsonlFile(pytorrent_io::CompressedWriter),
    Npy { ids: NpyWriter, offsets: NpyWriter },
}

impl IdSink {
    fn open(out: Option<&Path>) -> Result<IdSink> {
        Ok(match out {
            Some(p) if p.extension().is_some_and(|e| e == "npy") => {
                let mut offsets =
                    NpyWriter::create_1d(&p.with_extension("offsets.npy"), Dtype::Int64)?;
                offsets.push_i64(&[0])?;
                IdSink::Npy {
                    ids: NpyWriter::create_1d(p, Dtype::Uint32)?,
                    offsets,
                }
            }
            Some(p) if p != Path::new("-") => {
                IdSink::JsonlFile(pytorrent_io::CompressedWriter::create(
                    p,
                    pytorrent_io::Compression::from_extension(p),
                )?)
            }
            _ => IdSink::Jsonl(Box::new(std::io::BufWriter::new(std::io::stdout()))),
        })
    }

    fn push(&mut self, ids: &[u32]) -> Result<()> {
        let line = |w: &mut dyn Write| -> std::io::Result<()> {
            serde_json::to_writer(&mut *w, ids)?;
            w.write_all(b"\n")
        };
        match self {
            IdSink::Jsonl(w) => line(w.as_mut()).map_err(|e| pytorrent_io::Error::io("-", e))?,
            IdSink::JsonlFile(w) => {
                let path = w.path().to_path_buf();
                line(w).map_err(|e| pytorrent_io::Error::io(path, e))?
            }
            IdSink::Npy { ids: all, offsets } => {
                all.push_row(ids)?;
                offsets.push_i64(&[all.rows() as i64])?;
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<()> {
        match self {
            IdSink::Jsonl(mut w) => w.flush().map_err(|e| pytorrent_io::Error::io("-", e))?,
            IdSink::JsonlFile(w) => {
                w.finish()?;
            }
            IdSink::Npy { ids, offsets } => {
                ids.finish()?;
                offsets.finish()?;
            }
        }
        Ok(())
    }
}

/// Texts given literally, `-` read whole from standard input.
fn literal_texts(text: &[String]) -> Result<Vec<String>> {
    text.iter()
        .map(|t| {
            if t == "-" {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                    .map_err(|e| pytorrent_io::Error::io("<stdin>", e))?;
                Ok(s)
            } else {
                Ok(t.clone())
            }
        })
        .collect()
}

/// Encodes `batch` and writes the ids; returns (texts, tokens).
fn flush(
    enc: &dyn Encoder,
    batch: &mut Vec<String>,
    special: bool,
    sink: &mut IdSink,
) -> Result<(u64, u64)> {
    let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
    let all = enc.encode_batch(&refs, special)?;
    let mut tokens = 0;
    for ids in &all {
        sink.push(ids)?;
        tokens += ids.len() as u64;
    }
    batch.clear();
    Ok((all.len() as u64, tokens))
}

pub fn run(cfg: &EncodeConfig, reporter: &dyn Reporter) -> Result<EncodeReport> {
    cfg.validate()?;
    cfg.rule.validate().map_err(Error::Usage)?;
    let tok = crate::load(&cfg.tokenizer)?.tokenizer;
    let enc = crate::encoder(&tok);
    let special = !cfg.no_special_tokens;
    let mut sink = IdSink::open(cfg.out.as_deref())?;
    let mut read = None;
    let (texts, tokens) = if !cfg.text.is_empty() {
        let mut batch = literal_texts(&cfg.text)?;
        flush(enc.as_ref(), &mut batch, special, &mut sink)?
    } else {
        let files = cfg.input.discover()?;
        reporter.begin("encode", Unit::Bytes, None);
        let streamed = with_texts(
            &files,
            &cfg.input.options(cfg.out.as_deref()),
            &TextSource::new(cfg.field, cfg.text_field.as_deref()),
            &cfg.partition,
            &cfg.rule,
            reporter,
            |stream| -> Result<(u64, u64)> {
                let (mut n, mut t) = (0, 0);
                let mut batch: Vec<String> = Vec::with_capacity(1024);
                for (_, text) in stream {
                    batch.push(text);
                    if batch.len() == 1024 {
                        let (bn, bt) = flush(enc.as_ref(), &mut batch, special, &mut sink)?;
                        (n, t) = (n + bn, t + bt);
                    }
                }
                let (bn, bt) = flush(enc.as_ref(), &mut batch, special, &mut sink)?;
                Ok((n + bn, t + bt))
            },
        );
        reporter.end();
        let (counted, summary, _) = streamed?;
        read = Some(summary);
        counted?
    };
    sink.finish()?;
    Ok(EncodeReport {
        texts,
        tokens,
        out: cfg.out.clone(),
        read,
    })
}

impl std::fmt::Display for EncodeReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(r) = &self.read {
            write!(f, "{}", pytorrent_corpus::read::skipped_lines(r))?;
        }
        writeln!(
            f,
            "encoded {} into {}",
            pytorrent_io::reporter::plural(self.texts, "text", "texts"),
            pytorrent_io::reporter::plural(self.tokens, "token", "tokens")
        )
    }
}
