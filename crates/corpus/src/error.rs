//! Errors and per-record problems. Every problem names the file, the line and what is wrong,
//! so the CLI can print `file:line: what` without guessing.

use std::fmt;
use std::path::PathBuf;

use pytorrent_io::{Classify, ErrorKind};

/// What kind of problem a line or file has; used for counts in summaries.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    InvalidJson,
    InvalidUtf8,
    NotAnObject,
    MissingField,
    WrongType,
    LineTooLong,
    /// A fill-mask input with no mask token: nothing to fill.
    NoMask,
    /// The compressed stream is truncated, corrupt or not what its name says.
    Compression,
    /// Reading the file failed.
    Io,
}

impl ProblemKind {
    pub fn name(self) -> &'static str {
        match self {
            ProblemKind::InvalidJson => "invalid_json",
            ProblemKind::InvalidUtf8 => "invalid_utf8",
            ProblemKind::NotAnObject => "not_an_object",
            ProblemKind::MissingField => "missing_field",
            ProblemKind::WrongType => "wrong_type",
            ProblemKind::LineTooLong => "line_too_long",
            ProblemKind::NoMask => "no_mask",
            ProblemKind::Compression => "compression",
            ProblemKind::Io => "io",
        }
    }
}

/// One bad line (or, with `line == 0`, a problem with a whole file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub line: u64,
    pub kind: ProblemKind,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.path, self.message)
        } else {
            write!(f, "{}:{}: {}", self.path, self.line, self.message)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad data in an input (exit code 1).
    #[error("{0}")]
    Data(Problem),
    /// A file could not be read or written (exit code 1, or 2 for a missing input).
    #[error(transparent)]
    Io(#[from] pytorrent_io::Error),
    /// A metadata document could not be understood.
    #[error("{path}: {message}")]
    Metadata { path: PathBuf, message: String },
    /// The request itself is wrong: no inputs, conflicting options (exit code 2).
    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// True when the fault lies in how the command was called rather than in the data.
    pub fn is_usage(&self) -> bool {
        self.kind() == ErrorKind::Usage
    }
}

impl Classify for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::Usage(_) => ErrorKind::Usage,
            Error::Io(e) => e.kind(),
            Error::Data(_) | Error::Metadata { .. } => ErrorKind::Data,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
