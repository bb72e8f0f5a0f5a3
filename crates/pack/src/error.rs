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
    #[error(transparent)]
    Hf(#[from] pytorrent_hf::Error),
}

impl pytorrent_io::Classify for Error {
    fn kind(&self) -> pytorrent_io::ErrorKind {
        use pytorrent_io::ErrorKind;
        match self {
            Error::Usage(_) => ErrorKind::Usage,
            Error::Data { .. } => ErrorKind::Data,
            Error::Io(e) => e.kind(),
            Error::Corpus(e) => e.kind(),
            Error::Tokenizer(e) => e.kind(),
            Error::Hf(e) => e.kind(),
        }
    }
}

impl Error {
    pub(crate) fn data(path: impl Into<PathBuf>, message: impl Into<String>) -> Error {
        Error::Data {
            path: path.into(),
            message: message.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
