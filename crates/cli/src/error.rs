//! What a failed command prints and which exit code it returns: 2 for a usage error, 1 for a
//! data error, as the library error itself says (`pytorrent_io::Classify`).

use pytorrent_io::{Classify, ErrorKind};

#[derive(Debug)]
pub struct CliError {
    pub kind: ErrorKind,
    pub message: String,
}

impl CliError {
    pub fn usage(message: impl Into<String>) -> CliError {
        CliError {
            kind: ErrorKind::Usage,
            message: message.into(),
        }
    }

    /// Writing to standard output failed (a closed pipe is not a failure).
    pub fn stdout(e: std::io::Error) -> CliError {
        CliError {
            kind: Classify::kind(&e),
            message: format!("writing to standard output: {e}"),
        }
    }
}

/// Every library error: its kind decides the exit code, its text (which names the file,
/// line and cause) is printed once.
impl<E: Classify + std::fmt::Display> From<E> for CliError {
    fn from(e: E) -> CliError {
        CliError {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}
