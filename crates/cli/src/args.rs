//! Argument groups several subcommands share, and their conversion into the stage configs.

use std::path::PathBuf;

use clap::Args;
use pytorrent_corpus::{InputConfig, OnError, TextView};
use pytorrent_model::device::{DeviceSpec, Precision};
use pytorrent_model::embed::{Choices, Pooling};
use pytorrent_model::options::ModelOptions;

/// What to do with bad lines of a corpus.
#[derive(Args, Debug, Clone)]
pub struct BadLineArgs {
    /// What to do with a bad line: stop (exit 1) or skip it into the quarantine file.
    #[arg(long, default_value = "fail")]
    pub on_error: OnError,
    /// Where skipped lines go, verbatim, with file, line and reason (TSV). Default:
    /// `<out>.rejected.tsv`; commands without --out write none unless given this.
    #[arg(long)]
    pub quarantine: Option<PathBuf>,
    /// Lines longer than this many bytes are rejected without being held in memory.
    #[arg(long, default_value_t = InputConfig::default().max_line_bytes)]
    pub max_line_bytes: usize,
    /// Bytes of input per parallel work unit (memory ≈ a few times this).
    #[arg(long, default_value_t = InputConfig::default().read_chunk_bytes, hide = true)]
    pub read_chunk_bytes: usize,
}

impl BadLineArgs {
    pub fn config(&self, inputs: Vec<PathBuf>) -> InputConfig {
        InputConfig {
            inputs,
            on_error: self.on_error,
            quarantine: self.quarantine.clone(),
            max_line_bytes: self.max_line_bytes,
            read_chunk_bytes: self.read_chunk_bytes,
        }
    }
}

/// Which text of each record a stage reads, and where records without a partition go.
#[derive(Args, Debug, Clone)]
pub struct TextArgs {
    /// Text view of PyTorrent records: code, docstring, summary, code_with_docstrings,
    /// original_string, nl+code.
    #[arg(long, default_value = "code")]
    pub field: TextView,
    /// Read this string field of records of any shape instead (e.g. text, content), as HF hub
    /// datasets and datatrove write them.
    #[arg(long, value_name = "NAME")]
    pub text_field: Option<String>,
}

/// How a model's token states become one vector (`embed`, `eval retrieval`).
#[derive(Args, Debug, Clone)]
pub struct PoolingArgs {
    /// mean (masked), cls or pooler (default: a sentence-transformers folder's, else mean).
    #[arg(long)]
    pub pooling: Option<Pooling>,
    /// L2-normalise each vector (a sentence-transformers Normalize module does it anyway).
    #[arg(long)]
    pub normalize: bool,
    /// Cut inputs to this many tokens (default: a sentence-transformers max_seq_length, else
    /// what the model's position table holds).
    #[arg(long)]
    pub max_length: Option<usize>,
}

impl PoolingArgs {
    pub fn choices(&self) -> Choices {
        Choices {
            pooling: self.pooling,
            normalize: self.normalize,
            max_length: self.max_length,
        }
    }
}

/// A model a command may run without (`eval retrieval` scores embedding files or BM25 alone);
/// `eval cloze` makes `--model` required.
#[derive(Args, Debug, Clone)]
pub struct MaybeModelArgs {
    /// Model folder or a model id in the local Hugging Face cache.
    #[arg(long)]
    pub model: Option<String>,
    /// Tokenizer (default: the model's).
    #[arg(long)]
    pub tokenizer: Option<String>,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceSpec,
    /// f32, or f16 / bf16 on a GPU.
    #[arg(long, default_value = "f32")]
    pub dtype: Precision,
}

impl MaybeModelArgs {
    pub fn options(&self, batch_size: usize) -> Option<ModelOptions> {
        self.model.as_ref().map(|m| ModelOptions {
            model: m.clone(),
            tokenizer: self.tokenizer.clone(),
            device: self.device,
            dtype: self.dtype,
            batch_size,
        })
    }
}
