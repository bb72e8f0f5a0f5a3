//! RoBERTa masked-language-model pretraining on candle, on the CPU or one GPU.
//!
//! - [`spec`] — the model's shape from `configs/models/*.toml` (or an HF checkpoint's
//!   `config.json` for `--init`), written back as transformers' `config.json`.
//! - [`nn`] — the layers whose candle-nn forms have no backward pass (LayerNorm, softmax),
//!   written from differentiable ops, and dropout from our own seeded masks.
//! - [`fused`] — the same layers (and bias + GELU, log-softmax) as one parallel CPU pass
//!   each way, with hand-written backward passes; [`nn`] uses them for f32 on the CPU.
//! - [`model`] — `RobertaForMaskedLM` as trainable variables under transformers' names; the
//!   loss on masked positions only.
//! - [`optim`] — AdamW as PyTorch computes it, with the parameter groups, schedule and
//!   clipping of HF `Trainer`.
//! - [`data`] — rows of `pytorrent pack` shards in a seeded order, masked on the fly (or
//!   with the shards' static labels).
//! - [`checkpoint`] — HF-layout checkpoints plus the training state `--resume` needs.
//! - [`train`] — the typed [`PretrainConfig`] and [`run`].
//!
//! Everything random (initial weights, data order, masks, dropout) is drawn from generators
//! seeded by the run seed and the step, never from a global generator, so a resumed run
//! computes what an uninterrupted one does.

pub mod checkpoint;
pub mod curve;
pub mod data;
pub mod fused;
pub mod model;
pub mod nn;
pub mod optim;
pub mod spec;
pub mod train;

use std::path::PathBuf;

pub use train::{run, Pretrain, PretrainConfig, PretrainReport};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad request: flags that contradict each other, a missing model config …
    #[error("{0}")]
    Usage(String),
    /// An input file is wrong; the message names it.
    #[error("{path}: {message}")]
    Data { path: PathBuf, message: String },
    #[error(transparent)]
    Io(#[from] pytorrent_io::Error),
    #[error(transparent)]
    Pack(#[from] pytorrent_pack::Error),
    #[error(transparent)]
    Tokenizer(#[from] pytorrent_tokenizer::Error),
    #[error(transparent)]
    Model(#[from] pytorrent_model::Error),
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
            Error::Pack(e) => e.kind(),
            Error::Tokenizer(e) => e.kind(),
            Error::Model(e) => e.kind(),
            Error::Data { .. } | Error::Candle(_) => ErrorKind::Data,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
