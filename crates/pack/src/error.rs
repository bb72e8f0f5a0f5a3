use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is wrong or conflicts with what is on disk (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// A shard folder or a task's output is not what it should be (exit code 1).
    #[error("{path}: {message}")]
    Data { path: PathBuf, message: String },
    #[error(transparent)]
    Io(#[from] pytorrent_io::Error),
    #[error(transparent)]
    Corpus(#[from] pytorrent_corpus::Error),
    #[error(transparent)]
    Tokenizer(#[from] pytorrent_tokenizer::Error),
}

impl Error {
    pub fn is_usage(&self) -> bool {
        match self {
            Error::Usage(_) => true,
            Error::Corpus(e) => e.is_usage(),
            Error::Tokenizer(pytorrent_tokenizer::Error::NotCached { .. }) => true,
            _ => false,
        }
    }

    pub(crate) fn data(path: impl Into<PathBuf>, message: impl Into<String>) -> Error {
        Error::Data {
            path: path.into(),
            message: message.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// JSON (de)serialisation of our own small files.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| pytorrent_io::Error::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::data(path, format!("not valid: {e}")))
}

pub(crate) fn write_json(path: &std::path::Path, value: &impl serde::Serialize) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("serialisable");
    bytes.push(b'\n');
    pytorrent_io::atomic::write_atomic(path, &bytes)?;
    Ok(())
}
