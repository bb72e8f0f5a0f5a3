//! Small, boring plumbing shared by every pytorrent stage.
//!
//! - [`atomic`]: output files that appear under their final name only once complete.
//! - [`compression`]: gzip (multi-member) and zstd, detected by magic bytes, checked against
//!   the file extension so a mislabelled file is an error rather than garbage.
//! - [`fingerprint`]: sha256 of files and byte streams.
//! - [`npy`]: the streaming `.npy` writer and header reader every stage uses.
//! - [`owner`]: which output folders a command may write into, and which files it may replace.
//! - [`reporter`]: how a stage reports progress, log lines and warnings to its caller.
//! - [`kind`]: usage vs data errors, which the command line maps to exit codes 2 and 1.
//! - [`stage`]: the trait every stage implements beside its `run`.
//! - [`tasks`]: one job split among tasks (flags, Slurm arrays, Kubernetes Indexed Jobs).
//! - [`sorted`]: files of fixed-width rows, sorted in bounded memory, read by range, merged.
//! - [`lists`]: files of names, one a line, `#` comments.
//! - [`size`]: byte sizes such as `512M`; [`names`]: one spelling of a setting for flags, configs
//!   and manifests.

pub mod atomic;
pub mod compression;
pub mod fingerprint;
pub mod kind;
pub mod lists;
pub mod names;
pub mod npy;
pub mod owner;
pub mod reporter;
pub mod size;
pub mod sorted;
pub mod stage;
pub mod tasks;

pub use atomic::AtomicFile;
pub use compression::{open_input, CompressedWriter, Compression};
pub use fingerprint::{sha256_file, Sha256Writer};
pub use kind::{Classify, ErrorKind};
pub use reporter::{Reporter, Silent, Unit};
pub use tasks::Tasks;

use std::path::PathBuf;

/// Errors of this crate carry the path they concern.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {}", describe_io(source))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
    /// A request that cannot be met as asked (exit code 2).
    #[error("{0}")]
    Usage(String),
}

/// An I/O error in words people use: `no such file or folder` rather than the OS's text.
fn describe_io(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or folder".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            message: message.into(),
        }
    }

    /// The path the error concerns, if any.
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            Error::Io { path, .. } | Error::Format { path, .. } => Some(path),
            Error::Usage(_) => None,
        }
    }

    /// True when the error is a missing input rather than bad data in one.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A file name that stays in its folder and in sight: not empty, no path separator, not
/// hidden, no control character. Names from data made elsewhere (index metadata, repodata,
/// shard manifests) must pass it before they name a file.
pub fn plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && !name.contains(['/', '\\'])
        && !name.chars().any(char::is_control)
}

/// Longest package name accepted: far above any real one, well below a file name's limit
/// once `.json` is added.
pub const MAX_PROJECT_NAME: usize = 200;

/// Why a package name cannot be used, if it cannot: it must be 1 to [`MAX_PROJECT_NAME`]
/// ASCII letters, digits, `-`, `_` and `.`, with at least one letter or digit (PEP 508's
/// characters; conda's names use the same). Every name, whether typed on the command line or
/// listed by an index, a JSON document or a conda channel, passes this one check before it
/// names a file or a URL: once normalised (`-_.` runs made `-`) it is a plain file name.
pub fn project_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("an empty package name".into());
    }
    if name.len() > MAX_PROJECT_NAME {
        return Some(format!(
            "a package name of {} bytes (at most {MAX_PROJECT_NAME})",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Some(format!(
            "{:?} in a package name (only letters, digits, '-', '_' and '.')",
            c
        ));
    }
    if !name.chars().any(|c| c.is_ascii_alphanumeric()) {
        return Some("a package name without a letter or digit".into());
    }
    None
}

/// Runs a third-party decoder on untrusted bytes, turning a panic (some decoders assert on
/// malformed input instead of returning an error: the `parquet` crate on a negative column
/// offset) into an error message, so a bad file is a data error that names it, not a crash.
pub fn guard_decoder<T>(f: impl FnOnce() -> T) -> std::result::Result<T, String> {
    let was = GUARDED.with(|g| g.replace(true));
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(was));
    caught.map_err(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown failure".into());
        format!("the decoder failed on malformed data: {message}")
    })
}

thread_local! {
    /// Whether this thread runs a guarded decoder: its panics are reported as errors.
    static GUARDED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Installs a panic hook that stays silent for panics [`guard_decoder`] turns into errors
/// (the error is reported instead) and prints every other panic as before. For binaries.
pub fn quiet_guarded_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !GUARDED.with(|g| g.get()) {
            previous(info);
        }
    }));
}

/// Seconds since 1970-01-01 UTC → `(year, month, day, hour, minute, second)`. Hand-written
/// (Howard Hinnant's civil-from-days algorithm): two date stamps do not justify a date crate.
pub fn civil_utc(secs: i64) -> (i64, i64, i64, i64, i64, i64) {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, rem / 3600, rem / 60 % 60, rem % 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn plain_file_names_stay_in_their_folder_and_in_sight() {
        for ok in ["shard-00000.npy", "six-1.17.0.tar.gz", "a b.whl"] {
            assert!(super::plain_file_name(ok), "{ok}");
        }
        for bad in [
            "", "../x.npy", "a/b", "a\\b", ".hidden", "..", "e\rt.py", "x\0",
        ] {
            assert!(!super::plain_file_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn package_names_become_plain_file_names_or_are_refused() {
        for ok in [
            "six",
            "Django",
            "zope.interface",
            "typing_extensions",
            "_r-mutex",
            "a",
        ] {
            assert_eq!(super::project_name_problem(ok), None, "{ok}");
        }
        let long = "a".repeat(super::MAX_PROJECT_NAME + 1);
        for bad in [
            "",
            "/tmp/x",
            "../../etc/x",
            "a/b",
            "a\\b",
            "..",
            "-_.",
            "x\0",
            "é",
            &long,
        ] {
            assert!(super::project_name_problem(bad).is_some(), "{bad:?}");
        }
    }
}
