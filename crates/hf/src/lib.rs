//! The Hugging Face folder as every stage reads it: model ids resolved in the local cache
//! ([`hub`], no network code) and `config.json` ([`config`]), in one place so that a stage
//! that only needs a checkpoint's length (pack) does not link the model runtime.

pub mod config;
pub mod hub;

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A path that does not exist (and cannot be a hub id), or a file that cannot be read.
    #[error("{path}: {message}")]
    Load { path: PathBuf, message: String },
    #[error(
        "{id}: no such file or folder; nor is it a model id in the local Hugging Face cache \
         ({cache}: {message}). Nothing is downloaded here: give a folder, or fill the cache \
         first, e.g. `hf download {id}` (huggingface_hub) on a machine with network access, \
         then point HF_HUB_CACHE or HF_HOME at it"
    )]
    NotCached {
        id: String,
        cache: PathBuf,
        message: String,
    },
    /// A `config.json` that is not one this tool reads, naming the file.
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error(transparent)]
    Io(#[from] pytorrent_io::Error),
}

impl pytorrent_io::Classify for Error {
    fn kind(&self) -> pytorrent_io::ErrorKind {
        use pytorrent_io::ErrorKind;
        match self {
            Error::NotCached { .. } => ErrorKind::Usage,
            Error::Load { path, .. } if !path.exists() => ErrorKind::Usage,
            Error::Load { .. } | Error::Config { .. } => ErrorKind::Data,
            Error::Io(e) => e.kind(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
