//! One project from a Python package index: its JSON metadata document (kept in PyTorrent's
//! `Package_Metadata/pypi_packages/<name>.json` layout) and one release archive, checked
//! against the sha256 the metadata gives. Downloads are written to a temporary name and
//! renamed once the digest matches; an archive already present with the right digest is not
//! fetched again.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pytorrent_corpus::metadata::normalize_name;
use serde::Serialize;

use crate::http::{get, GetError, RateLimiter};
use crate::select::{rank, select_release, Platform};

pytorrent_io::word_enum! {
    "failure reason";
    /// Why a package could not be fetched.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub enum FailReason {
        NotFound = "not_found",
        NoSuchVersion = "no_such_version",
        NoArchive = "no_archive",
        BadMetadata = "bad_metadata",
        Http = "http",
        Network = "network",
        DigestMismatch = "digest_mismatch",
        /// The server sent (or announced) more than the size limit allows.
        TooLarge = "too_large",
        Io = "io",
    }
}

/// What happened to one package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Downloaded {
        file: PathBuf,
        bytes: u64,
    },
    AlreadyPresent {
        file: PathBuf,
    },
    OptedOut,
    /// `--as-of`: the package had no release on or before that date.
    NotYetReleased,
    Failed {
        reason: FailReason,
        message: String,
    },
}

#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Base of the JSON API (`…/pypi`): documents at `<base>/<name>/json`.
    pub json_api: String,
    /// Output folder: `<out>/Package_Metadata/pypi_packages/` and `<out>/packages/`.
    pub out: PathBuf,
    pub version: Option<String>,
    pub retries: u32,
    /// First retry delay; doubled for each further one.
    pub backoff: Duration,
    pub timeout: Duration,
    /// The newest release uploaded at or before this time (`YYYY-MM-DDTHH:MM:SS`, UTC).
    pub as_of: Option<String>,
    /// Download the metadata document again even when one is kept from an earlier run.
    pub refresh_metadata: bool,
    /// Requests per second at most, over all downloads.
    pub limiter: Option<std::sync::Arc<RateLimiter>>,
    /// Largest metadata document or project listing accepted, in bytes.
    pub max_metadata_bytes: u64,
    /// Largest archive accepted, in bytes (a smaller size the metadata gives wins).
    pub max_archive_bytes: u64,
    /// Largest conda `repodata.json` / `channeldata.json` accepted, in bytes.
    pub max_repodata_bytes: u64,
}

pub(crate) fn fail(reason: FailReason, message: impl Into<String>) -> Outcome {
    Outcome::Failed {
        reason,
        message: message.into(),
    }
}

fn digest_of(path: &Path) -> Option<String> {
    pytorrent_io::sha256_file(path).ok()
}

/// Fetches one package's metadata document and archive. The document is written (or kept)
/// only when the archive is in place, so a package that failed leaves no metadata claiming
/// it was fetched.
pub fn fetch(agent: &ureq::Agent, name: &str, opts: &FetchOptions) -> Outcome {
    if let Some(refused) = unsafe_project_name(name) {
        return refused;
    }
    let norm = normalize_name(name);
    let doc_url = format!("{}/{}/json", opts.json_api.trim_end_matches('/'), norm);
    let meta_path = opts
        .out
        .join("Package_Metadata/pypi_packages")
        .join(format!("{norm}.json"));
    // A document kept from an earlier run is used again (resume), unless asked to refresh.
    let kept = (!opts.refresh_metadata)
        .then(|| std::fs::read(&meta_path).ok())
        .flatten()
        .filter(|b| serde_json::from_slice::<serde_json::Value>(b).is_ok());
    let from_network = kept.is_none();
    let body = match kept {
        Some(b) => b,
        None => {
            let mut body = Vec::new();
            let got = get(
                agent,
                &doc_url,
                opts,
                None,
                opts.max_metadata_bytes,
                &mut |r, _| {
                    body.clear();
                    r.read_to_end(&mut body).map(|_| ())
                },
            );
            if let Err(e) = got {
                return match e {
                    GetError::Status(404) => fail(FailReason::NotFound, format!("{doc_url}: 404")),
                    e => get_failure(e, &doc_url, "--max-metadata-bytes"),
                };
            }
            body
        }
    };
    let doc: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return fail(
                FailReason::BadMetadata,
                format!("{doc_url}: invalid JSON: {e}"),
            )
        }
    };
    // The document must be the one asked for: a document naming another package would be
    // kept under this name and joined to this package's records.
    if let Some(named) = doc["info"]["name"].as_str() {
        if normalize_name(named) != norm {
            return fail(
                FailReason::BadMetadata,
                format!("{doc_url}: the document describes {named:?}, not {name:?}"),
            );
        }
    }
    let keep_metadata = || -> Option<Outcome> {
        if from_network {
            if let Err(e) = pytorrent_io::atomic::write_atomic(&meta_path, &body) {
                return Some(fail(FailReason::Io, e.to_string()));
            }
        }
        None
    };
    let files = match select_release(&doc, opts.version.as_deref(), opts.as_of.as_deref()) {
        Ok(Some(files)) => files,
        Ok(None) => return Outcome::NotYetReleased,
        Err(outcome) => return outcome,
    };
    let platform = Platform::running();
    let Some(chosen) = files
        .iter()
        .filter(|f| rank(f, &platform) < 4)
        .min_by_key(|f| rank(f, &platform))
    else {
        return fail(FailReason::NoArchive, "no sdist or wheel in the release");
    };
    let (Some(filename), Some(href), Some(sha)) = (
        chosen["filename"].as_str(),
        chosen["url"].as_str(),
        chosen["digests"]["sha256"].as_str(),
    ) else {
        return fail(
            FailReason::BadMetadata,
            "a file entry without filename, url or sha256",
        );
    };
    if let Some(refused) = unsafe_file_name(filename) {
        return refused;
    }
    let limit = match archive_limit(chosen["size"].as_u64(), filename, opts) {
        Ok(l) => l,
        Err(refused) => return refused,
    };
    let target = opts.out.join("packages").join(filename);
    if target.is_file() && digest_of(&target).as_deref() == Some(sha) {
        return keep_metadata().unwrap_or(Outcome::AlreadyPresent { file: target });
    }
    // Mirrors may give file URLs relative to the document.
    let file_url = match url::Url::parse(&doc_url).and_then(|base| base.join(href)) {
        Ok(u) => u.to_string(),
        Err(e) => {
            return fail(
                FailReason::BadMetadata,
                format!("bad file URL {href:?}: {e}"),
            )
        }
    };
    let mut outcome = None;
    let result = get(agent, &file_url, opts, None, limit, &mut |r, _| {
        let file = pytorrent_io::AtomicFile::create(&target).map_err(std::io::Error::other)?;
        let mut w = pytorrent_io::Sha256Writer::new(file);
        let bytes = std::io::copy(r, &mut w)?;
        w.flush()?;
        let (file, got) = w.finish();
        if got != sha {
            // Dropping the temporary file leaves nothing under the final name.
            outcome = Some(fail(
                FailReason::DigestMismatch,
                format!("{filename}: sha256 {got}, metadata says {sha}"),
            ));
            return Ok(());
        }
        file.commit().map_err(std::io::Error::other)?;
        outcome = Some(Outcome::Downloaded {
            file: target.clone(),
            bytes,
        });
        Ok(())
    });
    let outcome = download_outcome(result, outcome, &file_url);
    match outcome {
        Outcome::Downloaded { .. } => keep_metadata().unwrap_or(outcome),
        other => other,
    }
}

/// A failure when a package name (from the command line, an index listing or a channel)
/// fails [`pytorrent_io::project_name_problem`]: it would name files and URLs.
pub(crate) fn unsafe_project_name(name: &str) -> Option<Outcome> {
    pytorrent_io::project_name_problem(name).map(|why| {
        fail(
            FailReason::BadMetadata,
            format!("unsafe package name {name:?}: {why}"),
        )
    })
}

/// The most bytes an archive may have: the size its metadata gives (when it gives one), which
/// must itself be within `--max-archive-bytes`.
pub(crate) fn archive_limit(
    size: Option<u64>,
    filename: &str,
    opts: &FetchOptions,
) -> Result<u64, Outcome> {
    match size {
        Some(n) if n > opts.max_archive_bytes => Err(fail(
            FailReason::TooLarge,
            format!(
                "{filename}: {n} bytes by its metadata, more than --max-archive-bytes {}",
                opts.max_archive_bytes
            ),
        )),
        Some(n) => Ok(n),
        None => Ok(opts.max_archive_bytes),
    }
}

/// A failed request as a package's outcome; `flag` is the setting that raises a size limit.
pub(crate) fn get_failure(e: GetError, url: &str, flag: &str) -> Outcome {
    match e {
        GetError::Status(c) => fail(FailReason::Http, format!("{url}: HTTP {c}")),
        GetError::Network(m) => fail(FailReason::Network, format!("{url}: {m}")),
        GetError::Local(m) => fail(FailReason::Io, format!("{url}: {m}")),
        GetError::TooLarge(m) => fail(FailReason::TooLarge, format!("{url}: {m} ({flag})")),
    }
}

/// A failure when a file name from metadata could escape the output folder or hide in it
/// (empty, a path separator, a leading dot, a control character).
pub(crate) fn unsafe_file_name(filename: &str) -> Option<Outcome> {
    (!pytorrent_io::plain_file_name(filename)).then(|| {
        fail(
            FailReason::BadMetadata,
            format!("unsafe file name {filename:?}"),
        )
    })
}

/// What a download ended as: the sink's outcome, or the request's failure.
pub(crate) fn download_outcome(
    result: Result<(), GetError>,
    outcome: Option<Outcome>,
    url: &str,
) -> Outcome {
    match result {
        Ok(()) => outcome.unwrap_or_else(|| fail(FailReason::Io, "download produced nothing")),
        Err(e) => get_failure(e, url, "its metadata's size, --max-archive-bytes"),
    }
}
