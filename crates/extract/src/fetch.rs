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
        Io = "io",
    }
}

/// What happened to one package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Downloaded { file: PathBuf, bytes: u64 },
    AlreadyPresent { file: PathBuf },
    OptedOut,
    Failed { reason: FailReason, message: String },
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
        .build()
        .into()
}

enum GetError {
    Status(u16),
    Network(String),
}

/// GET with retries on network errors, 429 and 5xx.
fn get(
    agent: &ureq::Agent,
    url: &str,
    opts: &FetchOptions,
    sink: &mut dyn FnMut(&mut dyn Read) -> std::io::Result<()>,
) -> Result<(), GetError> {
    let mut delay = opts.backoff;
    let mut attempt = 0;
    loop {
        let result = agent.get(url).call();
        let retryable = match result {
            Ok(mut resp) => {
                let mut reader = resp.body_mut().with_config().limit(u64::MAX).reader();
                return sink(&mut reader).map_err(|e| GetError::Network(e.to_string()));
            }
            Err(ureq::Error::StatusCode(code)) => {
                if code == 429 || code >= 500 {
                    GetError::Status(code)
                } else {
                    return Err(GetError::Status(code));
                }
            }
            Err(e) => GetError::Network(e.to_string()),
        };
        if attempt >= opts.retries {
            return Err(retryable);
        }
        attempt += 1;
        std::thread::sleep(delay);
        delay *= 2;
    }
}

fn fail(reason: FailReason, message: impl Into<String>) -> Outcome {
    Outcome::Failed {
        reason,
        message: message.into(),
    }
}

fn digest_of(path: &Path) -> Option<String> {
    pytorrent_io::sha256_file(path).ok()
}

/// Fetches one package's metadata document and archive.
pub fn fetch(agent: &ureq::Agent, name: &str, opts: &FetchOptions) -> Outcome {
    let norm = normalize_name(name);
    let doc_url = format!("{}/{}/json", opts.json_api.trim_end_matches('/'), norm);
    let mut body = Vec::new();
    match get(agent, &doc_url, opts, &mut |r| {
        r.read_to_end(&mut body).map(|_| ())
    }) {
        Ok(()) => {}
        Err(GetError::Status(404)) => return fail(FailReason::NotFound, format!("{doc_url}: 404")),
        Err(GetError::Status(c)) => return fail(FailReason::Http, format!("{doc_url}: HTTP {c}")),
        Err(GetError::Network(m)) => return fail(FailReason::Network, format!("{doc_url}: {m}")),
    }
    let doc: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return fail(
                FailReason::BadMetadata,
                format!("{doc_url}: invalid JSON: {e}"),
            )
        }
    };
    let meta_path = opts
        .out
        .join("Package_Metadata/pypi_packages")
        .join(format!("{norm}.json"));
    if let Err(e) = pytorrent_io::atomic::write_atomic(&meta_path, &body) {
        return fail(FailReason::Io, e.to_string());
    }
    let version = match &opts.version {
        Some(v) => v.clone(),
        None => match doc["info"]["version"].as_str() {
            Some(v) => v.to_string(),
            None => {
                return fail(
                    FailReason::BadMetadata,
                    format!("{doc_url}: no info.version"),
                )
            }
        },
    };
    let files = match doc["releases"].get(&version).and_then(|v| v.as_array()) {
        Some(f) => f.clone(),
        None if opts.version.is_none() => doc["urls"].as_array().cloned().unwrap_or_default(),
        None => return fail(FailReason::NoSuchVersion, format!("no release {version}")),
    };
    // An sdist first; else a pure-Python wheel; else any wheel.
    let rank = |f: &serde_json::Value| {
        let kind = f["packagetype"].as_str().unwrap_or("");
        let file = f["filename"].as_str().unwrap_or("");
        match (kind, file.ends_with("-none-any.whl")) {
            ("sdist", _) => 0,
            ("bdist_wheel", true) => 1,
            ("bdist_wheel", false) => 2,
            _ => 3,
        }
    };
    let Some(chosen) = files.iter().filter(|f| rank(f) < 3).min_by_key(|f| rank(f)) else {
        return fail(
            FailReason::NoArchive,
            format!("{version}: no sdist or wheel"),
        );
    };
    let (Some(filename), Some(href), Some(sha)) = (
        chosen["filename"].as_str(),
        chosen["url"].as_str(),
        chosen["digests"]["sha256"].as_str(),
    ) else {
        return fail(
            FailReason::BadMetadata,
            format!("{version}: file entry without filename, url or sha256"),
        );
    };
    if filename.contains(['/', '\\']) || filename.starts_with('.') {
        return fail(
            FailReason::BadMetadata,
            format!("{name}: unsafe file name {filename:?}"),
        );
    }
    let target = opts.out.join("packages").join(filename);
    if target.is_file() && digest_of(&target).as_deref() == Some(sha) {
        return Outcome::AlreadyPresent { file: target };
    }
    // Mirrors may give file URLs relative to the document.
    let file_url = match url::Url::parse(&doc_url).and_then(|base| base.join(href)) {
        Ok(u) => u.to_string(),
        Err(e) => {
            return fail(
                FailReason::BadMetadata,
                format!("{name}: bad file URL {href:?}: {e}"),
            )
        }
    };
    let mut outcome = None;
    let result = get(agent, &file_url, opts, &mut |r| {
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
    match result {
        Ok(()) => outcome.unwrap_or_else(|| fail(FailReason::Io, "download produced nothing")),
        Err(GetError::Status(c)) => fail(FailReason::Http, format!("{file_url}: HTTP {c}")),
        Err(GetError::Network(m)) => fail(FailReason::Network, format!("{file_url}: {m}")),
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
    if !plain(name) || version.is_some_and(|v| !plain(v) || v.contains('*')) {
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
}

fn default_jobs() -> usize {
    4
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
        if specs.is_empty() {
            return Err(usage(
                "no package names (give names, or --from-file)".into(),
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
    pub index_url: String,
    pub index_source: String,
    pub json_api: String,
    pub downloaded: u64,
    pub already_present: u64,
    pub opted_out: Vec<String>,
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
    let names = cfg.requirements()?;
    let (index, json_api) = cfg.index()?;
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
    };
    let http = agent(opts.timeout);
    reporter.log(&format!(
        "index {} (from {}); JSON API {json_api}",
        index.index_url, index.source
    ));
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
                let outcome = if opt_out.as_ref().is_some_and(|o| o.package(n)) {
                    Outcome::OptedOut
                } else if pinned.is_some() {
                    let pinned = FetchOptions {
                        version: pinned.clone(),
                        ..opts.clone()
                    };
                    fetch(&http, n, &pinned)
                } else {
                    fetch(&http, n, &opts)
                };
                reporter.advance(1);
                (n.clone(), outcome)
            })
            .collect()
    });
    reporter.end();
    let mut report = FetchReport {
        index_url: index.index_url,
        index_source: index.source,
        json_api,
        downloaded: 0,
        already_present: 0,
        opted_out: Vec::new(),
        failed: BTreeMap::new(),
        packages: Vec::new(),
        out: cfg.out.clone(),
    };
    for (name, outcome) in &results {
        match outcome {
            Outcome::Downloaded { .. } => report.downloaded += 1,
            Outcome::AlreadyPresent { .. } => report.already_present += 1,
            Outcome::OptedOut => report.opted_out.push(name.clone()),
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
