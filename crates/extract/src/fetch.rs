//! Downloading packages from a Python package index: the JSON metadata document (kept in
//! PyTorrent's `Package_Metadata/pypi_packages/<name>.json` layout) and one release archive
//! (sdist preferred, wheel as fallback), checked against the sha256 the metadata gives.
//!
//! The index is never built in: it comes from the caller (flags, `PYTORRENT_INDEX_URL`,
//! pip's own configuration, or the local pip's default), so the tool follows the user's pip,
//! mirrors included. Downloads are written to a temporary name and renamed once the digest
//! matches; an archive already present with the right digest is not fetched again.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use pytorrent_corpus::metadata::normalize_name;
use pytorrent_io::size::ByteSize;
use serde::Serialize;

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

/// Spaces requests evenly: at most `rate` a second over every thread that shares it.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    next: std::sync::Mutex<std::time::Instant>,
}

impl RateLimiter {
    pub fn new(rate: f64) -> RateLimiter {
        RateLimiter {
            interval: Duration::from_secs_f64(1.0 / rate),
            next: std::sync::Mutex::new(std::time::Instant::now()),
        }
    }

    fn wait(&self) {
        let at = {
            let mut next = self.next.lock().expect("not poisoned");
            let now = std::time::Instant::now();
            let at = (*next).max(now);
            *next = at + self.interval;
            at
        };
        let now = std::time::Instant::now();
        if at > now {
            std::thread::sleep(at - now);
        }
    }
}

/// The JSON API base for a simple-index URL: a trailing `/simple` becomes `/pypi`.
pub fn json_api_from_index(index: &str) -> String {
    let trimmed = index.trim_end_matches('/');
    match trimmed.strip_suffix("/simple") {
        Some(base) => format!("{base}/pypi"),
        None => format!("{trimmed}/pypi"),
    }
}

/// `index-url` in the `[global]` (or `[install]`/`[download]`) section of a pip.conf.
fn pip_conf_index(text: &str) -> Option<String> {
    let mut section = String::new();
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with('[') && l.ends_with(']') {
            section = l[1..l.len() - 1].trim().to_ascii_lowercase();
        } else if matches!(section.as_str(), "global" | "install" | "download") {
            if let Some((k, v)) = l.split_once(['=', ':']) {
                if k.trim().eq_ignore_ascii_case("index-url")
                    || k.trim().eq_ignore_ascii_case("index_url")
                {
                    return Some(v.trim().to_string());
                }
            }
        }
    }
    None
}

/// Where the index URL came from, for the summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndexChoice {
    pub index_url: String,
    pub source: String,
}

/// The index to use: the flag, `PYTORRENT_INDEX_URL`, `PIP_INDEX_URL`, pip's configuration
/// files (`PIP_CONFIG_FILE`, then the user's and the system's pip.conf), else what the local
/// `python3 -m pip` uses by default.
pub fn resolve_index(flag: Option<&str>) -> Option<IndexChoice> {
    let choice = |url: String, source: &str| {
        Some(IndexChoice {
            index_url: url,
            source: source.into(),
        })
    };
    if let Some(f) = flag {
        return choice(f.to_string(), "--index-url");
    }
    for var in ["PYTORRENT_INDEX_URL", "PIP_INDEX_URL"] {
        if let Ok(v) = std::env::var(var) {
            if !v.trim().is_empty() {
                return choice(v.trim().to_string(), var);
            }
        }
    }
    let mut files: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("PIP_CONFIG_FILE") {
        files.push(p.into());
    }
    if let Some(home) = std::env::var_os("HOME") {
        let home = PathBuf::from(home);
        let xdg = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".config"));
        files.push(xdg.join("pip/pip.conf"));
        files.push(home.join(".pip/pip.conf"));
    }
    files.push(PathBuf::from("/etc/pip.conf"));
    for f in files {
        if let Some(url) = std::fs::read_to_string(&f)
            .ok()
            .as_deref()
            .and_then(pip_conf_index)
        {
            return choice(url, &f.display().to_string());
        }
    }
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "from pip._internal.models.index import PyPI; print(PyPI.simple_url)",
        ])
        .output()
        .ok()?;
    let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !url.is_empty()).then(|| IndexChoice {
        index_url: url,
        source: "python3 -m pip default".into(),
    })
}

pub fn agent(timeout: Duration) -> ureq::Agent {
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::PlatformVerifier)
        .build();
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .tls_config(tls)
        // Statuses come back as responses, so a 429/503's Retry-After can be read.
        .http_status_as_error(false)
        .build()
        .into()
}

/// Longest wait a server's Retry-After may ask for.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

pub(crate) enum GetError {
    Status(u16),
    Network(String),
    /// The sink failed on this side (a full disk): not worth retrying.
    Local(String),
    /// The body is (or says it is) larger than the limit: not worth retrying either.
    TooLarge(String),
}

impl GetError {
    /// The error in words, after the URL it concerns.
    pub(crate) fn describe(&self) -> String {
        match self {
            GetError::Status(c) => format!("HTTP {c}"),
            GetError::Network(m) | GetError::Local(m) | GetError::TooLarge(m) => m.clone(),
        }
    }
}

/// A response body that remembers whether reading it failed, so that a body cut short is
/// told apart from the sink's own errors, and that stops at `limit` bytes: a server that
/// sends without end costs at most that much memory or disk.
struct BodyReader<R> {
    inner: R,
    failed: bool,
    read: u64,
    limit: u64,
    too_large: bool,
}

impl<R: Read> Read for BodyReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // One byte past the limit is asked for, so that a body of exactly `limit` passes.
        let room = (self.limit + 1).saturating_sub(self.read);
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let r = self.inner.read(&mut buf[..want]);
        match r {
            Ok(n) => {
                self.read += n as u64;
                if self.read > self.limit {
                    self.too_large = true;
                    return Err(std::io::Error::other(format!(
                        "more than {} bytes",
                        self.limit
                    )));
                }
                Ok(n)
            }
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }
}

/// Takes a response body and its content type; called again from the start when a retry
/// follows a body cut short.
pub(crate) type Sink<'a> = dyn FnMut(&mut dyn Read, Option<&str>) -> std::io::Result<()> + 'a;

/// GET with retries on network errors, 429 and 5xx; a `Retry-After` (in seconds) of a 429
/// or 503 is waited out instead of the back-off. A body over `limit` bytes (announced by its
/// `Content-Length`, or counted as it arrives) is refused before the sink sees more of it.
pub(crate) fn get(
    agent: &ureq::Agent,
    url: &str,
    opts: &FetchOptions,
    accept: Option<&str>,
    limit: u64,
    sink: &mut Sink<'_>,
) -> Result<(), GetError> {
    let mut delay = opts.backoff;
    let mut attempt = 0;
    loop {
        if let Some(l) = &opts.limiter {
            l.wait();
        }
        let mut req = agent.get(url);
        if let Some(a) = accept {
            req = req.header("Accept", a);
        }
        let mut wait = delay;
        let retryable = match req.call() {
            Ok(mut resp) => {
                let code = resp.status().as_u16();
                if (200..300).contains(&code) {
                    let header = |name: &str| {
                        resp.headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string)
                    };
                    let ctype = header("content-type");
                    if let Some(n) = header("content-length")
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .filter(|n| *n > limit)
                    {
                        return Err(GetError::TooLarge(format!(
                            "the server announces {n} bytes, more than the {limit} allowed"
                        )));
                    }
                    let mut body = BodyReader {
                        inner: resp.body_mut().with_config().limit(u64::MAX).reader(),
                        failed: false,
                        read: 0,
                        limit,
                        too_large: false,
                    };
                    match sink(&mut body, ctype.as_deref()) {
                        Ok(()) => return Ok(()),
                        Err(_) if body.too_large => {
                            return Err(GetError::TooLarge(format!(
                                "the server sent more than the {limit} bytes allowed"
                            )))
                        }
                        // A body cut short (a dropped connection, fewer bytes than its
                        // length) is tried again; the sink starts afresh each time.
                        Err(e) if body.failed => GetError::Network(format!("body cut short: {e}")),
                        Err(e) => return Err(GetError::Local(e.to_string())),
                    }
                } else {
                    retry_status(&resp, code, &mut wait)?
                }
            }
            Err(e) => GetError::Network(e.to_string()),
        };
        if attempt >= opts.retries {
            return Err(retryable);
        }
        attempt += 1;
        std::thread::sleep(wait);
        delay *= 2;
    }
}

/// A status other than success: 429 and 5xx are worth another try (after `Retry-After`, in
/// seconds, when the server names one); any other is final.
fn retry_status<B>(
    resp: &ureq::http::Response<B>,
    code: u16,
    wait: &mut Duration,
) -> Result<GetError, GetError> {
    if code != 429 && code < 500 {
        return Err(GetError::Status(code));
    }
    if let Some(secs) = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        *wait = Duration::from_secs(secs).min(MAX_RETRY_AFTER);
    }
    Ok(GetError::Status(code))
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

/// The files of the release to fetch: the pinned version, else with `as_of` the newest
/// release uploaded by then (none: `Ok(None)`), else the latest. Yanked releases are passed
/// over unless pinned, as pip does.
fn select_release(
    doc: &serde_json::Value,
    pinned: Option<&str>,
    as_of: Option<&str>,
) -> Result<Option<Vec<serde_json::Value>>, Outcome> {
    if let Some(v) = pinned {
        return match doc["releases"].get(v).and_then(|x| x.as_array()) {
            Some(f) => Ok(Some(f.clone())),
            None => Err(fail(FailReason::NoSuchVersion, format!("no release {v}"))),
        };
    }
    let Some(cutoff) = as_of else {
        let version = doc["info"]["version"].as_str();
        let files = version
            .and_then(|v| doc["releases"].get(v))
            .and_then(|x| x.as_array())
            .cloned()
            .or_else(|| doc["urls"].as_array().cloned());
        return match (version, files) {
            (_, Some(f)) => Ok(Some(f)),
            (None, None) => Err(fail(FailReason::BadMetadata, "no info.version")),
            (Some(v), None) => Err(fail(FailReason::NoSuchVersion, format!("no release {v}"))),
        };
    };
    // A release's time is its first file's upload; the newest release by then wins.
    let mut best: Option<(String, &Vec<serde_json::Value>)> = None;
    if let Some(releases) = doc["releases"].as_object() {
        for files in releases.values().filter_map(|f| f.as_array()) {
            let live: Vec<&serde_json::Value> = files
                .iter()
                .filter(|f| !f["yanked"].as_bool().unwrap_or(false))
                .collect();
            let Some(first) = live.iter().filter_map(|f| upload_time(f)).min() else {
                continue;
            };
            if first.as_str() <= cutoff && best.as_ref().is_none_or(|(t, _)| first > *t) {
                best = Some((first, files));
            }
        }
    }
    Ok(best.map(|(_, f)| f.clone()))
}

/// A file's upload time as `YYYY-MM-DDTHH:MM:SS` (UTC), from `upload_time_iso_8601` or
/// `upload_time`.
fn upload_time(f: &serde_json::Value) -> Option<String> {
    let t = f["upload_time_iso_8601"]
        .as_str()
        .or_else(|| f["upload_time"].as_str())?;
    (t.len() >= 19).then(|| t[..19].replace(' ', "T"))
}

/// `--as-of`: `YYYY-MM-DD` (the end of that day, UTC) or `YYYY-MM-DDTHH:MM:SS`, as the
/// cutoff compared with upload times.
pub fn parse_as_of(s: &str) -> Result<String, String> {
    let s = s.trim();
    let digits = |x: &str| x.chars().all(|c| c.is_ascii_digit());
    let date_ok = |d: &str| {
        let p: Vec<&str> = d.split('-').collect();
        p.len() == 3
            && p[0].len() == 4
            && p[1].len() == 2
            && p[2].len() == 2
            && p.iter().all(|x| digits(x))
    };
    match s.len() {
        10 if date_ok(s) => Ok(format!("{s}T23:59:59")),
        19.. if date_ok(&s[..10]) && s.as_bytes()[10] == b'T' => Ok(s[..19].to_string()),
        _ => Err(format!(
            "--as-of {s:?}: give a date, YYYY-MM-DD, or a time, YYYY-MM-DDTHH:MM:SS (UTC)"
        )),
    }
}

/// The platform wheels are chosen for: this machine's.
struct Platform {
    os: &'static str,
    arch: &'static str,
}

impl Platform {
    fn running() -> Platform {
        Platform {
            os: std::env::consts::OS,
            arch: std::env::consts::ARCH,
        }
    }

    /// Whether a wheel's platform tag (`manylinux_2_17_x86_64.manylinux2014_x86_64`,
    /// `macosx_11_0_arm64`, `win_amd64`) is one this machine runs.
    fn runs(&self, tag: &str) -> bool {
        tag.split('.').any(|t| match self.os {
            "linux" => t.contains("linux") && t.ends_with(self.arch),
            "macos" => {
                let arch = if self.arch == "aarch64" {
                    "arm64"
                } else {
                    self.arch
                };
                t.starts_with("macosx") && (t.ends_with(arch) || t.ends_with("universal2"))
            }
            "windows" => {
                let arch = if self.arch == "aarch64" {
                    "arm64"
                } else {
                    "amd64"
                };
                t == format!("win_{arch}")
            }
            _ => false,
        })
    }
}

/// Which file of a release to take, lowest first: the sdist (the package's source as its
/// authors wrote it); else a pure-Python wheel; else a wheel for this platform; else one for
/// another platform (its Python files are still source); 4: not an archive we read.
fn rank(f: &serde_json::Value, platform: &Platform) -> u8 {
    let kind = f["packagetype"].as_str().unwrap_or("");
    let file = f["filename"].as_str().unwrap_or("");
    match kind {
        "sdist" => 0,
        "bdist_wheel" => {
            let tag = file
                .strip_suffix(".whl")
                .and_then(|stem| stem.rsplit('-').next())
                .unwrap_or("");
            if tag == "any" {
                1
            } else if platform.runs(tag) {
                2
            } else {
                3
            }
        }
        _ => 4,
    }
}

/// A package as pip names it on a command line: `name`, or `name==version` (an exact pin).
/// Other specifiers (`>=`, `~=`, `!=`, extras, markers, URLs) are refused: fetch gets one
/// release, the newest or a given one.
pub fn parse_requirement(spec: &str) -> Result<(String, Option<String>), String> {
    let spec = spec.trim();
    let (name, version) = match spec.split_once("==") {
        Some((n, v)) if !v.starts_with('=') => (n.trim(), Some(v.trim())),
        _ => (spec, None),
    };
    let plain = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+' | '!'))
    };
    // The name passes the check every name from an index or channel passes too.
    if pytorrent_io::project_name_problem(name).is_some()
        || version.is_some_and(|v| !plain(v) || v.contains('*'))
    {
        return Err(format!(
            "{spec}: give a package name, or name==version for one exact release \
             (other version specifiers, extras and markers are not understood)"
        ));
    }
    Ok((name.to_string(), version.map(str::to_string)))
}

/// `fetch`: package names → metadata documents and release archives from the index pip
/// uses.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct FetchConfig {
    /// Package names.
    #[serde(default)]
    pub names: Vec<String>,
    /// A file of package names, one a line (`#` comments).
    #[serde(default)]
    pub from_file: Option<PathBuf>,
    /// Output folder: `Package_Metadata/pypi_packages/<name>.json` and `packages/<archive>`.
    pub out: PathBuf,
    /// Release to fetch (default: the latest).
    #[serde(default)]
    pub version: Option<String>,
    /// Simple-index URL (default: `PYTORRENT_INDEX_URL`, `PIP_INDEX_URL`, pip.conf, else
    /// pip's own default).
    #[serde(default)]
    pub index_url: Option<String>,
    /// JSON API base (default: the index URL with a trailing /simple made /pypi).
    #[serde(default)]
    pub json_api_url: Option<String>,
    /// Downloads at once.
    #[serde(default = "default_jobs")]
    pub jobs: usize,
    /// Retries of a failed request (network errors, 429, 5xx), with doubling back-off.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Seconds before a request is given up.
    #[serde(default = "default_timeout")]
    pub timeout: u64,
    /// Opt-out list: these packages are not fetched.
    #[serde(default)]
    pub opt_out: Option<PathBuf>,
    /// Every project the index lists (its simple-index root, PEP 691 JSON or HTML) instead
    /// of names.
    #[serde(default)]
    pub all: bool,
    /// For each package the newest release uploaded on or before this date (`YYYY-MM-DD`,
    /// or `YYYY-MM-DDTHH:MM:SS`, UTC): a snapshot of the index as it was then.
    #[serde(default)]
    pub as_of: Option<String>,
    /// Download metadata documents again even when an earlier run kept them.
    #[serde(default)]
    pub refresh_metadata: bool,
    /// Requests per second at most, over all downloads (default: no limit).
    #[serde(default)]
    pub rate: Option<f64>,
    /// Split the packages among this many tasks, by a hash of the name (default:
    /// `SLURM_ARRAY_TASK_COUNT`, else one).
    #[serde(default)]
    pub num_tasks: Option<usize>,
    /// This task's index (default: from Slurm's or a Kubernetes Indexed Job's variables).
    #[serde(default)]
    pub task_index: Option<usize>,
    /// Conda channels (URLs, or names that `.condarc`'s `channel_alias` or
    /// `custom_channels` resolve) to fetch from instead of the package index.
    #[serde(default)]
    pub channels: Vec<String>,
    /// Fetch from conda channels; without `channels`, those `.condarc` lists.
    #[serde(default)]
    pub conda: bool,
    /// Conda subdirs to read (default: `noarch` and this machine's, e.g. `linux-64`).
    #[serde(default)]
    pub subdirs: Vec<String>,
    /// Largest metadata document or project listing accepted (`64M`, or bytes): a server that
    /// sends more is refused, so one reply cannot fill memory.
    #[serde(default = "default_max_metadata_bytes")]
    pub max_metadata_bytes: ByteSize,
    /// Largest archive accepted when the metadata gives no size (`2G`, or bytes); an archive
    /// larger than the size its metadata gives is refused whatever this says.
    #[serde(default = "default_max_archive_bytes")]
    pub max_archive_bytes: ByteSize,
    /// Largest conda `repodata.json` or `channeldata.json` accepted.
    #[serde(default = "default_max_repodata_bytes")]
    pub max_repodata_bytes: ByteSize,
}

fn default_jobs() -> usize {
    4
}
fn default_max_metadata_bytes() -> ByteSize {
    ByteSize(64 << 20)
}
fn default_max_archive_bytes() -> ByteSize {
    ByteSize(2 << 30)
}
fn default_max_repodata_bytes() -> ByteSize {
    ByteSize(2 << 30)
}
fn default_retries() -> u32 {
    3
}
fn default_timeout() -> u64 {
    120
}

impl FetchConfig {
    pub fn new(names: Vec<String>, out: PathBuf) -> FetchConfig {
        FetchConfig {
            names,
            from_file: None,
            out,
            version: None,
            index_url: None,
            json_api_url: None,
            jobs: default_jobs(),
            retries: default_retries(),
            timeout: default_timeout(),
            opt_out: None,
            all: false,
            as_of: None,
            refresh_metadata: false,
            rate: None,
            num_tasks: None,
            task_index: None,
            channels: Vec::new(),
            conda: false,
            subdirs: Vec::new(),
            max_metadata_bytes: default_max_metadata_bytes(),
            max_archive_bytes: default_max_archive_bytes(),
            max_repodata_bytes: default_max_repodata_bytes(),
        }
    }

    /// Whether packages come from conda channels rather than the package index.
    pub fn is_conda(&self) -> bool {
        self.conda || !self.channels.is_empty()
    }

    /// The conda subdirs to read: as given, else `noarch` and this machine's.
    pub fn conda_subdirs(&self) -> Vec<String> {
        if self.subdirs.is_empty() {
            let mut s = vec!["noarch".to_string()];
            let here = crate::conda::running_subdir();
            if here != "noarch" {
                s.push(here.to_string());
            }
            s
        } else {
            self.subdirs.clone()
        }
    }

    /// The packages of the arguments and of the list file, each with its pinned version
    /// (`name==version`) if any.
    pub fn requirements(&self) -> crate::error::Result<Vec<(String, Option<String>)>> {
        let usage = crate::error::Error::Usage;
        let mut specs: Vec<String> = self.names.clone();
        if let Some(f) = &self.from_file {
            for e in pytorrent_io::lists::read_list(f)? {
                let at = format!("{}:{}", f.display(), e.line);
                parse_requirement(&e.text).map_err(|m| usage(format!("{at}: {m}")))?;
                specs.push(e.text);
            }
        }
        if self.all && !specs.is_empty() {
            return Err(usage(
                "--all fetches every project of the index: give no names with it".into(),
            ));
        }
        if specs.is_empty() && !self.all {
            return Err(usage(
                "no package names (give names, --from-file, or --all)".into(),
            ));
        }
        specs
            .iter()
            .map(|s| parse_requirement(s).map_err(usage))
            .collect()
    }

    /// The index and its JSON API: flags, environment, pip's configuration.
    pub fn index(&self) -> crate::error::Result<(IndexChoice, String)> {
        let choice = resolve_index(self.index_url.as_deref());
        match (&self.json_api_url, choice) {
            (Some(api), c) => Ok((
                c.unwrap_or(IndexChoice {
                    index_url: String::new(),
                    source: String::new(),
                }),
                api.clone(),
            )),
            (None, Some(c)) => {
                let api = json_api_from_index(&c.index_url);
                Ok((c, api))
            }
            (None, None) => Err(crate::error::Error::Usage(
                "no package index configured: give --index-url, set PYTORRENT_INDEX_URL or \
                 PIP_INDEX_URL, or configure pip"
                    .into(),
            )),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct FetchReport {
    /// Conda channels read (empty when fetching from the package index).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subdirs: Vec<String>,
    pub index_url: String,
    pub index_source: String,
    pub json_api: String,
    /// This task's share (`index` of `count`) and the packages it took of the list.
    pub task: pytorrent_io::tasks::Tasks,
    pub listed: u64,
    pub taken: u64,
    pub as_of: Option<String>,
    pub downloaded: u64,
    pub already_present: u64,
    pub opted_out: Vec<String>,
    /// `--as-of`: packages with no release by then.
    pub not_yet_released: Vec<String>,
    /// Temporary files of an earlier, interrupted run that this run removed.
    pub stale_temp_files_removed: u64,
    /// Package names the index or the channels listed that are not package names (a path, a
    /// control character…): never fetched, never made a file name.
    pub refused_names: Vec<String>,
    /// `name: why` of each failed package, by reason.
    pub failed: BTreeMap<String, Vec<String>>,
    pub packages: Vec<(String, Outcome)>,
    #[serde(skip)]
    pub out: PathBuf,
}

impl FetchReport {
    pub fn failures(&self) -> usize {
        self.failed.values().map(Vec::len).sum()
    }
}

pub fn run(
    cfg: &FetchConfig,
    reporter: &dyn pytorrent_io::Reporter,
) -> crate::error::Result<FetchReport> {
    use rayon::prelude::*;
    let mut names = cfg.requirements()?;
    let conda = cfg.is_conda();
    let channels = conda
        .then(|| crate::conda::resolve_channels(&cfg.channels))
        .transpose()?;
    let (index, json_api) = match &channels {
        Some(c) => (
            IndexChoice {
                index_url: String::new(),
                source: c.source.clone(),
            },
            String::new(),
        ),
        None => cfg.index()?,
    };
    let as_of = cfg
        .as_of
        .as_deref()
        .map(parse_as_of)
        .transpose()
        .map_err(crate::error::Error::Usage)?;
    if let Some(r) = cfg.rate {
        if !(r > 0.0 && r.is_finite()) {
            return Err(crate::error::Error::Usage(format!(
                "--rate {r}: give requests per second above 0"
            )));
        }
    }
    let task = pytorrent_io::tasks::Tasks::resolve(cfg.num_tasks, cfg.task_index)?;
    let opt_out = cfg
        .opt_out
        .as_deref()
        .map(pytorrent_corpus::optout::OptOut::load)
        .transpose()?;
    let opts = FetchOptions {
        json_api: json_api.clone(),
        out: cfg.out.clone(),
        version: cfg.version.clone(),
        retries: cfg.retries,
        backoff: Duration::from_millis(500),
        timeout: Duration::from_secs(cfg.timeout),
        as_of: as_of.clone(),
        refresh_metadata: cfg.refresh_metadata,
        limiter: cfg.rate.map(|r| std::sync::Arc::new(RateLimiter::new(r))),
        max_metadata_bytes: cfg.max_metadata_bytes.0,
        max_archive_bytes: cfg.max_archive_bytes.0,
        max_repodata_bytes: cfg.max_repodata_bytes.0,
    };
    let http = agent(opts.timeout);
    match &channels {
        Some(c) => reporter.log(&format!(
            "conda channels {} (from {})",
            c.urls.join(", "),
            c.source
        )),
        None => reporter.log(&format!(
            "index {} (from {}); JSON API {json_api}",
            index.index_url, index.source
        )),
    }
    // Names an index or channel listed that fail the name check: reported, never used.
    let mut refused_names: Vec<String> = Vec::new();
    if cfg.all && conda {
        // Listed once the repodata is loaded, under the lock below.
    } else if cfg.all {
        if index.index_url.is_empty() {
            return Err(crate::error::Error::Usage(
                "--all reads the project list of the simple index: give --index-url".into(),
            ));
        }
        let (listed, refused) = list_projects(&http, &index.index_url, &opts)?;
        names = listed.into_iter().map(|n| (n, None)).collect();
        reporter.log(&format!("the index lists {} projects", names.len()));
        warn_refused(&refused, "the index", reporter);
        refused_names = refused;
    }
    let _lock;
    let stale_temp_files_removed = {
        // One task alone on its folder (the lock says so) removes every temporary file of an
        // earlier run; tasks sharing a folder only those too old to be a live download's.
        let lock_path = cfg.out.join(format!(".fetch-task-{}.lock", task.index));
        std::fs::create_dir_all(&cfg.out).map_err(|e| pytorrent_io::Error::io(&cfg.out, e))?;
        let f = std::fs::File::create(&lock_path)
            .map_err(|e| pytorrent_io::Error::io(&lock_path, e))?;
        if f.try_lock().is_err() {
            return Err(crate::error::Error::Usage(format!(
                "another fetch (task {}) is using {}",
                task.index,
                cfg.out.display()
            )));
        }
        _lock = f;
        let min_age = (task.count > 1).then(|| opts.timeout * 2);
        remove_stale_temp_files(&cfg.out, min_age)
    };
    if stale_temp_files_removed > 0 {
        reporter.log(&format!(
            "removed {stale_temp_files_removed} temporary files of an interrupted run"
        ));
    }
    let subdirs = if conda {
        cfg.conda_subdirs()
    } else {
        Vec::new()
    };
    // A subdir names a folder of the kept repodata: it must stay a plain name.
    if let Some(bad) = subdirs.iter().find(|s| !pytorrent_io::plain_file_name(s)) {
        return Err(crate::error::Error::Usage(format!(
            "--subdir {bad:?}: give a conda subdir name such as noarch or linux-64"
        )));
    }
    let catalog = match &channels {
        Some(c) => {
            let cat = crate::conda::Catalog::load(&http, &c.urls, &subdirs, &opts)?;
            warn_refused(&cat.refused_names, "the channels", reporter);
            refused_names.extend(cat.refused_names.iter().cloned());
            if cfg.all {
                names = cat
                    .python_packages()
                    .into_iter()
                    .map(|n| (n, None))
                    .collect();
                reporter.log(&format!(
                    "the channels list {} Python packages",
                    names.len()
                ));
            }
            Some(cat)
        }
        None => None,
    };
    let listed = names.len() as u64;
    names.retain(|(n, _)| task.owns_unit(name_hash(n)));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cfg.jobs.max(1))
        .build()
        .map_err(|e| crate::error::Error::Usage(format!("--jobs {}: {e}", cfg.jobs)))?;
    reporter.begin(
        "fetch",
        pytorrent_io::Unit::Items("packages"),
        Some(names.len() as u64),
    );
    let results: Vec<(String, Outcome)> = pool.install(|| {
        names
            .par_iter()
            .map(|(n, pinned)| {
                let pinned_opts;
                let o = if pinned.is_some() {
                    pinned_opts = FetchOptions {
                        version: pinned.clone(),
                        ..opts.clone()
                    };
                    &pinned_opts
                } else {
                    &opts
                };
                let outcome = if opt_out.as_ref().is_some_and(|o| o.package(n)) {
                    Outcome::OptedOut
                } else if let Some(cat) = &catalog {
                    crate::conda::fetch(&http, cat, n, o)
                } else {
                    fetch(&http, n, o)
                };
                reporter.advance(1);
                (n.clone(), outcome)
            })
            .collect()
    });
    reporter.end();
    let mut report = FetchReport {
        channels: channels.map(|c| c.urls).unwrap_or_default(),
        subdirs,
        index_url: index.index_url,
        index_source: index.source,
        json_api,
        task,
        listed,
        taken: names.len() as u64,
        as_of,
        downloaded: 0,
        already_present: 0,
        opted_out: Vec::new(),
        not_yet_released: Vec::new(),
        stale_temp_files_removed,
        refused_names,
        failed: BTreeMap::new(),
        packages: Vec::new(),
        out: cfg.out.clone(),
    };
    for (name, outcome) in &results {
        match outcome {
            Outcome::Downloaded { .. } => report.downloaded += 1,
            Outcome::AlreadyPresent { .. } => report.already_present += 1,
            Outcome::OptedOut => report.opted_out.push(name.clone()),
            Outcome::NotYetReleased => report.not_yet_released.push(name.clone()),
            Outcome::Failed { reason, message } => report
                .failed
                .entry(reason.name().to_string())
                .or_default()
                .push(format!("{name}: {message}")),
        }
    }
    report.packages = results;
    Ok(report)
}

/// A stable hash of a package's normalised name: which task fetches it.
pub fn name_hash(name: &str) -> u64 {
    use sha2::Digest;
    let d = sha2::Sha256::digest(normalize_name(name).as_bytes());
    u64::from_le_bytes(d[..8].try_into().expect("8 bytes"))
}

/// The projects a simple index lists at its root: PEP 691 JSON (`{"projects": [{"name"}]}`)
/// when the index speaks it, else the anchors of its PEP 503 HTML page.
/// Returns the names that pass [`pytorrent_io::project_name_problem`] and, apart, those that
/// do not.
fn list_projects(
    agent: &ureq::Agent,
    index_url: &str,
    opts: &FetchOptions,
) -> crate::error::Result<(Vec<String>, Vec<String>)> {
    let url = format!("{}/", index_url.trim_end_matches('/'));
    let mut body = Vec::new();
    let mut ctype = None;
    get(
        agent,
        &url,
        opts,
        Some("application/vnd.pypi.simple.v1+json, text/html;q=0.1"),
        opts.max_metadata_bytes,
        &mut |r, t| {
            ctype = t.map(str::to_string);
            body.clear();
            r.read_to_end(&mut body).map(|_| ())
        },
    )
    .map_err(|e| {
        let hint = match e {
            GetError::TooLarge(_) => " (raise --max-metadata-bytes)",
            _ => "",
        };
        crate::error::Error::Remote(format!("{url}: {}{hint}", e.describe()))
    })?;
    let bad = |m: String| crate::error::Error::Remote(format!("{url}: {m}"));
    let names: Vec<String> = if ctype.as_deref().is_some_and(|t| t.contains("json")) {
        let doc: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| bad(format!("invalid JSON: {e}")))?;
        doc["projects"]
            .as_array()
            .ok_or_else(|| bad("no `projects` list".into()))?
            .iter()
            .filter_map(|p| p["name"].as_str().map(str::to_string))
            .collect()
    } else {
        let text = String::from_utf8_lossy(&body);
        text.split("<a")
            .skip(1)
            .filter_map(|a| {
                let inner = a.split_once('>')?.1;
                let name = inner.split_once("</a>")?.0.trim();
                (!name.is_empty()).then(|| name.to_string())
            })
            .collect()
    };
    let (mut names, refused): (Vec<String>, Vec<String>) = names
        .into_iter()
        .partition(|n| pytorrent_io::project_name_problem(n).is_none());
    names.sort_by_key(|n| normalize_name(n));
    names.dedup_by_key(|n| normalize_name(n));
    Ok((names, refused))
}

/// Warns of the names a listing held that are not package names, quoting a few.
fn warn_refused(refused: &[String], by: &str, reporter: &dyn pytorrent_io::Reporter) {
    if refused.is_empty() {
        return;
    }
    let shown: Vec<String> = refused.iter().take(5).map(|n| format!("{n:?}")).collect();
    reporter.warn(&format!(
        "{by} listed {} that {} not a package name and {} refused: {}{}",
        pytorrent_io::reporter::plural(refused.len() as u64, "name", "names"),
        if refused.len() == 1 { "is" } else { "are" },
        if refused.len() == 1 { "is" } else { "are" },
        shown.join(", "),
        if refused.len() > 5 { ", …" } else { "" }
    ));
}

/// Removes the temporary files (`.NAME.XXXXXX.tmp`) an interrupted run left in the output
/// folders; with `min_age`, only those not written to for that long.
fn remove_stale_temp_files(out: &Path, min_age: Option<Duration>) -> u64 {
    let mut dirs = vec![
        out.join("packages"),
        out.join("Package_Metadata/pypi_packages"),
        out.join("Package_Metadata/anaconda_packages"),
    ];
    // Kept repodata: conda_channels/<channel>/ and its subdirs.
    let subfolders = |d: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(d)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect()
    };
    for ch in subfolders(&out.join("conda_channels")) {
        dirs.extend(subfolders(&ch));
        dirs.push(ch);
    }
    // Best effort: a temporary file that cannot be removed costs only its space.
    dirs.iter()
        .map(|d| pytorrent_io::atomic::remove_leftovers(d, &[], min_age).unwrap_or(0))
        .sum()
}

impl std::fmt::Display for FetchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use pytorrent_io::reporter::plural;
        writeln!(
            f,
            "fetched {} ({} already present, {} opted out, {} failed) into {}",
            plural(self.downloaded, "package", "packages"),
            self.already_present,
            self.opted_out.len(),
            self.failures(),
            self.out.display()
        )?;
        if self.task.count > 1 {
            writeln!(
                f,
                "  task {} of {}: {} of {} packages",
                self.task.index, self.task.count, self.taken, self.listed
            )?;
        }
        if let Some(t) = &self.as_of {
            writeln!(
                f,
                "  as of {t}: {} had no release yet",
                plural(self.not_yet_released.len() as u64, "package", "packages")
            )?;
        }
        if !self.refused_names.is_empty() {
            writeln!(
                f,
                "  refused {} listed that are not package names",
                plural(self.refused_names.len() as u64, "name", "names")
            )?;
        }
        for (reason, list) in &self.failed {
            writeln!(f, "  failed ({reason}):")?;
            for l in list {
                writeln!(f, "    {l}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn requirements_are_names_or_exact_pins() {
        assert_eq!(
            super::parse_requirement("six").unwrap(),
            ("six".into(), None)
        );
        assert_eq!(
            super::parse_requirement("six==1.16.0").unwrap(),
            ("six".into(), Some("1.16.0".into()))
        );
        for bad in [
            "six>=1.0",
            "six~=1.0",
            "six[extra]",
            "six==1.*",
            "six===1.0",
            "six; python_version>'3'",
            "",
        ] {
            let e = super::parse_requirement(bad).unwrap_err();
            assert!(e.contains("name==version"), "{bad}: {e}");
        }
    }

    use super::*;

    #[test]
    fn json_api_is_derived_from_the_simple_index() {
        assert_eq!(
            json_api_from_index("https://index.invalid/simple/"),
            "https://index.invalid/pypi"
        );
        assert_eq!(
            json_api_from_index("https://mirror.invalid/repo/simple"),
            "https://mirror.invalid/repo/pypi"
        );
    }

    #[test]
    fn pip_conf_sections() {
        let conf = "[global]\ntimeout = 60\nindex-url = https://mirror.invalid/simple\n[install]\nindex-url = https://other.invalid/simple\n";
        assert_eq!(
            pip_conf_index(conf).as_deref(),
            Some("https://mirror.invalid/simple")
        );
        assert_eq!(pip_conf_index("[global]\ncert = x\n"), None);
    }
}
