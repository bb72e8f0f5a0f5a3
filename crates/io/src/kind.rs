//! Usage errors and data errors: every library error says which it is, and the command line
//! turns that into its exit code (2 for a usage error, 1 for a data error) without knowing
//! each crate's error type.

/// Whether a failure lies in how the work was asked for or in the data it met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Bad flags or settings, a missing input, conflicting options: exit code 2.
    Usage,
    /// Bad records, unreadable or corrupt files, a failed download: exit code 1.
    Data,
    /// The reader of our standard output went away (`… | head`): nothing to report, exit 0.
    Closed,
}

impl ErrorKind {
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Usage => 2,
            ErrorKind::Data => 1,
            ErrorKind::Closed => 0,
        }
    }
}

/// An error that knows its [`ErrorKind`].
pub trait Classify {
    fn kind(&self) -> ErrorKind;
}

impl Classify for crate::Error {
    fn kind(&self) -> ErrorKind {
        match self {
            crate::Error::Usage(_) => ErrorKind::Usage,
            crate::Error::Io { source, .. } => Classify::kind(source),
            crate::Error::Format { .. } => ErrorKind::Data,
        }
    }
}

impl Classify for std::io::Error {
    /// A missing input is a usage error; a closed pipe is the reader's choice.
    fn kind(&self) -> ErrorKind {
        match std::io::Error::kind(self) {
            std::io::ErrorKind::NotFound => ErrorKind::Usage,
            std::io::ErrorKind::BrokenPipe => ErrorKind::Closed,
            _ => ErrorKind::Data,
        }
    }
}
