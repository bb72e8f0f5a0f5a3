//! Usage errors and data errors: every library error says which it is, and the command line
//! turns that into its exit code (2 for a usage error, 1 for a data error) without knowing
//! each crate's error type.

/// Whether a failure lies in how the work was asked for or in the data it met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Bad flags or settings, a missing input, conflicting options: exit code 2.
    Usage,
    /// Bad records, unreadable or corrupt files, a failed download: exit code 1.
    Data,
}

impl ErrorKind {
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Usage => 2,
            ErrorKind::Data => 1,
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
            e if e.is_not_found() => ErrorKind::Usage,
            _ => ErrorKind::Data,
        }
    }
}

impl Classify for std::io::Error {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Data
    }
}
