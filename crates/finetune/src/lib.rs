//! Contrastive fine-tuning for code search: a bi-encoder trained on a corpus's own
//! `<docstring, code>` pairs with in-batch negatives, as sentence-transformers'
//! `MultipleNegativesRankingLoss` trains one, from any RoBERTa or BERT checkpoint.
//!
//! - [`config`] — the typed [`FinetuneConfig`] (the CLI's flags).
//! - [`data`] — pairs read from the corpus, tokenized as sentence-transformers tokenizes them;
//!   batches in a seeded order without repeated texts (a repeat is a false negative); BM25
//!   hard negatives.
//! - [`objective`] — mean pooling, cosine similarity and the loss, built from ops with a
//!   backward pass, on the trainable encoder of `pytorrent-pretrain`.
//! - [`folder`] — the sentence-transformers folder written at the end and at each checkpoint.
//! - [`train`] — [`run`]: the loop (AdamW with HF `Trainer`'s schedule and clipping, gradient
//!   accumulation, validation MRR, bit-exact `--resume`).

pub mod config;
pub mod data;
pub mod folder;
pub mod objective;
pub mod train;

use std::path::PathBuf;

pub use config::{FinetuneConfig, Loss};
pub use train::{run, Finetune, FinetuneReport};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad request: flags that contradict each other, a model that cannot be trained …
    #[error("{0}")]
    Usage(String),
    /// An input file is wrong; the message names it.
    #[error("{path}: {message}")]
    Data { path: PathBuf, message: String },
    #[error(transparent)]
    Io(#[from] pytorrent_io::Error),
    #[error(transparent)]
    Model(#[from] pytorrent_model::Error),
    #[error(transparent)]
    Eval(#[from] pytorrent_eval::Error),
    #[error(transparent)]
    Pretrain(#[from] pytorrent_pretrain::Error),
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
}

impl Error {
    pub fn data(path: impl Into<PathBuf>, message: impl Into<String>) -> Error {
        Error::Data {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl pytorrent_io::Classify for Error {
    fn kind(&self) -> pytorrent_io::ErrorKind {
        use pytorrent_io::ErrorKind;
        match self {
            Error::Usage(_) => ErrorKind::Usage,
            Error::Io(e) => e.kind(),
            Error::Model(e) => e.kind(),
            Error::Eval(e) => e.kind(),
            Error::Pretrain(e) => e.kind(),
            Error::Data { .. } | Error::Candle(_) => ErrorKind::Data,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
