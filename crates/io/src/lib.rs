//! Small, boring file plumbing shared by every pytorrent stage.
//!
//! - [`atomic`]: output files that appear under their final name only once complete.
//! - [`compression`]: gzip (multi-member) and zstd, detected by magic bytes, checked against
//!   the file extension so a mislabelled file is an error rather than garbage.
//! - [`fingerprint`]: sha256 of files and byte streams.

pub mod atomic;
pub mod compression;
pub mod fingerprint;

pub use atomic::AtomicFile;
pub use compression::{open_input, CompressedWriter, Compression};
pub use fingerprint::{sha256_file, Sha256Writer};

use std::path::PathBuf;

/// Errors of this crate carry the path they concern.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub fn path(&self) -> &std::path::Path {
        match self {
            Error::Io { path, .. } | Error::Format { path, .. } => path,
        }
    }

    /// True when the error is a missing input rather than bad data in one.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
