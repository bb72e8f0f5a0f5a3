//! RoBERTa- and BERT-family encoders on candle, computing what `transformers` computes.
//!
//! - [`source`] — a model folder or a model id in the local Hugging Face cache.
//! - [`config`] — `config.json` of transformers 4.x and 5.x (`pytorrent-hf`'s, re-exported).
//! - [`encoder`] — the forward pass: embeddings (RoBERTa positions from the padding mask, in
//!   integers), post-LayerNorm layers with erf GELU, the pooler and our MLM head (with
//!   `lm_head.bias`).
//! - [`fill_mask`] — the fill-mask pipeline's semantics; [`embed`] — pooled embeddings of
//!   text lines or a corpus view, written as npy. Both have a typed config and a `run`, and
//!   share [`options::ModelOptions`] (model, tokenizer, device, dtype, batch size).
//! - [`ops`], [`simd`] — element-wise work in parallel and vectorised (bias + GELU, adds);
//!   `simd` also serves pretraining's fused kernels.
//!
//! The encoder is our own code on candle-core/candle-nn rather than candle-transformers'
//! `bert`/`xlm_roberta`: those number RoBERTa positions from 0 (or in a float dtype, wrong
//! past 256), drop `lm_head.bias`, want `position_embedding_type` in the config, and run
//! per-batch-item matmuls and single-threaded element-wise ops that make them slower than
//! PyTorch on CPU. Here linear layers run as one 2-D matmul over all tokens, Q/K/V are one
//! fused matmul, and GELU runs in parallel.

pub use pytorrent_hf::config;
pub mod device;
pub mod embed;
pub mod encoder;
pub mod fill_mask;
pub mod ops;
pub mod options;
pub mod sentence;
pub mod simd;
pub mod source;
pub mod text;

use std::path::PathBuf;

pub use config::{Family, ModelConfig};
pub use encoder::{Batch, Model};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },
    /// A weight is missing, mis-shaped or unreadable; the message names the tensor.
    #[error("{path}: {message}")]
    Weights { path: PathBuf, message: String },
    /// The model cannot do what was asked (e.g. fill-mask without an MLM head).
    #[error("{0}")]
    Unsupported(String),
    /// Bad request: unknown device, dtype, pooling, no mask token in an input …
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Tokenizer(#[from] pytorrent_tokenizer::Error),
    #[error(transparent)]
    Hf(#[from] pytorrent_hf::Error),
    #[error(transparent)]
    Io(#[from] pytorrent_io::Error),
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    #[error(transparent)]
    Corpus(#[from] pytorrent_corpus::Error),
}

impl pytorrent_io::Classify for Error {
    fn kind(&self) -> pytorrent_io::ErrorKind {
        use pytorrent_io::ErrorKind;
        match self {
            Error::Usage(_) | Error::Unsupported(_) => ErrorKind::Usage,
            Error::Tokenizer(e) => e.kind(),
            Error::Hf(e) => e.kind(),
            Error::Io(e) => e.kind(),
            Error::Corpus(e) => e.kind(),
            Error::Config { .. } | Error::Weights { .. } | Error::Candle(_) => ErrorKind::Data,
        }
    }
}

impl Error {
    pub fn is_usage(&self) -> bool {
        pytorrent_io::Classify::kind(self) == pytorrent_io::ErrorKind::Usage
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
