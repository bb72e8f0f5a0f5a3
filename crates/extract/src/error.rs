//! Errors of the extract stage (problems inside one package are not errors: they
//! are counted in its report and the run goes on).

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is wrong: bad settings, missing inputs (exit code 2).
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Io(#[from] pytorrent_io::Error),
    #[error(transparent)]
    Corpus(#[from] pytorrent_corpus::Error),
}

impl pytorrent_io::Classify for Error {
    fn kind(&self) -> pytorrent_io::ErrorKind {
        match self {
            Error::Usage(_) => pytorrent_io::ErrorKind::Usage,
            Error::Io(e) => e.kind(),
            Error::Corpus(e) => e.kind(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
