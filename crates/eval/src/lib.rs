//! Checks of code models and of the data they are trained on.
//!
//! - [`metrics`] — pure functions over ranks and ranked lists: CodeSearchNet's MRR (ties count
//!   against the model), MRR@k, and the IR metrics as sentence-transformers'
//!   `InformationRetrievalEvaluator` computes them; the exact expected MRR of a random ranking.
//! - [`search`] — exact top-k search in blocks (cosine or dot), parallel, in bounded memory,
//!   that also counts each query's rank of its positive.
//! - [`bm25`] — an Okapi BM25 baseline over identifier parts of code.
//! - [`retrieval`] — `eval retrieval`: pairs from a corpus partition (or BEIR files), the `csn`
//!   and `pool` protocols, a model's embeddings or npy files, beside BM25 and random.

pub mod bm25;
pub mod cloze;
pub mod embeddings;
pub mod fill_mask;
pub mod metrics;
pub mod overlap;
pub mod pairs;
pub mod retrieval;
pub mod search;

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Flags that cannot work together, or a setting out of range.
    #[error("{0}")]
    Usage(String),
    /// An input file that is not what it should be; the message says what and where.
    #[error("{path}: {message}")]
    Data { path: PathBuf, message: String },
    /// Inputs that are readable but cannot be evaluated (too few pairs, no queries …).
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Io(#[from] pytorrent_io::Error),
    #[error(transparent)]
    Corpus(#[from] pytorrent_corpus::Error),
    #[error(transparent)]
    Model(#[from] pytorrent_model::Error),
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
            Error::Data { .. } | Error::Input(_) => ErrorKind::Data,
            Error::Io(e) => e.kind(),
            Error::Corpus(e) => e.kind(),
            Error::Model(e) => e.kind(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
