//! Conda channels, PyTorrent's other source: a channel's `repodata.json` (its `noarch`
//! subdir and this platform's) → the newest package of each name, its `.conda` or
//! `.tar.bz2` archive checked against the digest the repodata gives, and a metadata document
//! in PyTorrent's Anaconda layout (`Package_Metadata/anaconda_packages/<name>.json`: `title`,
//! `summary`, `detail.meta.license`, `detail.platform_versions`, `detail.files`).
//!
//! Channels are never built in: they come from `--channel URL` or the user's `.condarc`
//! (`channels`, with `channel_alias`, `custom_channels` and `default_channels` to turn names
//! into URLs). The repodata is kept under `conda_channels/` (beside `Package_Metadata/`, which holds only package documents) and used again
//! by a later run unless `--refresh-metadata`.

use std::collections::BTreeMap;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use pytorrent_corpus::metadata::normalize_name;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::http::{get, GetError};
use crate::pypi::{fail, unsafe_file_name, FailReason, FetchOptions, Outcome};

/// The channels to read and where they were configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelChoice {
    pub urls: Vec<String>,
    pub source: String,
}

/// What `.condarc` files say about channels (later files override earlier ones, as conda
/// reads them).
#[derive(Debug, Default)]
struct Condarc {
    channels: Option<(Vec<String>, PathBuf)>,
    channel_alias: Option<String>,
    default_channels: Option<Vec<String>>,
    custom_channels: BTreeMap<String, String>,
}

/// `.condarc` files in the order conda reads them, lowest precedence first.
fn condarc_paths() -> Vec<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let mut paths = vec![
        PathBuf::from("/etc/conda/.condarc"),
        PathBuf::from("/etc/conda/condarc"),
    ];
    if let Some(x) = env("XDG_CONFIG_HOME") {
        paths.push(x.join("conda/.condarc"));
    }
    if let Some(h) = env("HOME") {
        paths.push(h.join(".config/conda/.condarc"));
        paths.push(h.join(".conda/.condarc"));
        paths.push(h.join(".condarc"));
    }
    if let Some(p) = env("CONDA_PREFIX") {
        paths.push(p.join(".condarc"));
    }
    if let Some(c) = env("CONDARC") {
        paths.push(c);
    }
    paths
}

fn read_condarc() -> Result<Condarc> {
    use yaml_rust2::{Yaml, YamlLoader};
    let mut rc = Condarc::default();
    for path in condarc_paths() {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let docs = YamlLoader::load_from_str(&text)
            .map_err(|e| Error::Usage(format!("{}: not valid YAML: {e}", path.display())))?;
        let Some(doc) = docs.first() else { continue };
        let strings = |y: &Yaml| -> Option<Vec<String>> {
            y.as_vec().map(|v| {
                v.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
        };
        if let Some(c) = strings(&doc["channels"]) {
            rc.channels = Some((c, path.clone()));
        }
        if let Some(a) = doc["channel_alias"].as_str() {
            rc.channel_alias = Some(a.to_string());
        }
        if let Some(d) = strings(&doc["default_channels"]) {
            rc.default_channels = Some(d);
        }
        if let Some(h) = doc["custom_channels"].as_hash() {
            for (k, v) in h {
                if let (Some(k), Some(v)) = (k.as_str(), v.as_str()) {
                    rc.custom_channels.insert(k.to_string(), v.to_string());
                }
            }
        }
    }
    Ok(rc)
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// Channel URLs from `--channel` values (URLs or names) or, with none, `.condarc`'s
/// `channels`. A name needs `custom_channels` or `channel_alias`, and `defaults` needs
/// `default_channels`: no host is assumed.
pub fn resolve_channels(flags: &[String]) -> Result<ChannelChoice> {
    let rc = read_condarc()?;
    let (names, source) = if flags.is_empty() {
        match &rc.channels {
            Some((c, path)) if !c.is_empty() => (c.clone(), path.display().to_string()),
            _ => {
                return Err(Error::Usage(
                    "no conda channel: give --channel URL, or list channels in .condarc".into(),
                ))
            }
        }
    } else {
        (flags.to_vec(), "--channel".to_string())
    };
    let mut urls = Vec::new();
    for n in &names {
        let n = n.trim().trim_end_matches('/');
        if is_url(n) {
            urls.push(n.to_string());
        } else if n == "defaults" {
            let Some(d) = &rc.default_channels else {
                return Err(Error::Usage(
                    "channel `defaults` has no URL: set default_channels in .condarc, or give \
                     --channel URL"
                        .into(),
                ));
            };
            urls.extend(
                d.iter()
                    .filter(|u| is_url(u))
                    .map(|u| u.trim_end_matches('/').to_string()),
            );
        } else if let Some(host) = rc.custom_channels.get(n) {
            urls.push(format!("{}/{n}", host.trim_end_matches('/')));
        } else if let Some(alias) = &rc.channel_alias {
            urls.push(format!("{}/{n}", alias.trim_end_matches('/')));
        } else {
            return Err(Error::Usage(format!(
                "channel {n:?} is a name, not a URL: give its URL, or set channel_alias in \
                 .condarc"
            )));
        }
    }
    urls.dedup();
    Ok(ChannelChoice { urls, source })
}

/// The conda subdir of this machine (`linux-64`, `osx-arm64`, …); `noarch` is read besides.
pub fn running_subdir() -> &'static str {
    match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => "linux-64",
        ("linux", "aarch64") => "linux-aarch64",
        ("linux", "powerpc64") => "linux-ppc64le",
        ("linux", "s390x") => "linux-s390x",
        ("macos", "x86_64") => "osx-64",
        ("macos", "aarch64") => "osx-arm64",
        ("windows", "x86_64") => "win-64",
        ("windows", "aarch64") => "win-arm64",
        _ => "noarch",
    }
}

#[derive(Deserialize)]
struct Repodata {
    #[serde(default)]
    packages: BTreeMap<String, RepoEntry>,
    #[serde(default, rename = "packages.conda")]
    packages_conda: BTreeMap<String, RepoEntry>,
}

#[derive(Deserialize)]
struct RepoEntry {
    name: String,
    version: String,
    #[serde(default)]
    build: String,
    #[serde(default)]
    build_number: u64,
    #[serde(default)]
    depends: Vec<String>,
    #[serde(default)]
    license: Option<String>,
    #[serde(default)]
    sha256: Option<String>,
    #[serde(default)]
    md5: Option<String>,
    #[serde(default)]
    size: Option<u64>,
    /// Milliseconds since the epoch (older repodata: seconds).
    #[serde(default)]
    timestamp: Option<u64>,
    #[serde(default)]
    noarch: Option<serde_json::Value>,
}

/// One package file of a channel, with what choosing and describing it needs.
#[derive(Debug, Clone)]
struct Entry {
    channel: usize,
    subdir: String,
    filename: String,
    name: String,
    version: String,
    build: String,
    build_number: u64,
    license: Option<String>,
    sha256: Option<String>,
    md5: Option<String>,
    size: Option<u64>,
    /// `YYYY-MM-DDTHH:MM:SS`, UTC.
    uploaded: Option<String>,
    /// Depends on `python` or is `noarch: python`.
    python: bool,
}

#[derive(Debug, Default, Clone, Deserialize)]
struct ChannelPackage {
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    home: Option<String>,
    #[serde(default)]
    doc_url: Option<String>,
    #[serde(default)]
    dev_url: Option<String>,
    #[serde(default)]
    license: Option<String>,
}

#[derive(Deserialize)]
struct ChannelData {
    #[serde(default)]
    packages: BTreeMap<String, ChannelPackage>,
}

/// Every package file the channels list, by normalised name, with each channel's
/// `channeldata.json` descriptions where it has one.
#[derive(Debug, Default)]
pub struct Catalog {
    pub channels: Vec<String>,
    pub subdirs: Vec<String>,
    by_name: BTreeMap<String, Vec<Entry>>,
    described: Vec<BTreeMap<String, ChannelPackage>>,
    /// Names the repodata listed that are not package names: left out, and reported.
    pub refused_names: Vec<String>,
}

/// A folder name for a channel URL: its host and path with other characters as `_`.
fn channel_slug(url: &str) -> String {
    let bare = url.split_once("://").map_or(url, |(_, r)| r);
    bare.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Seconds or milliseconds since the epoch → `YYYY-MM-DDTHH:MM:SS` (UTC).
fn iso_time(ts: u64) -> String {
    // Repodata switched from seconds to milliseconds; no real upload is before 1973 in ms.
    let secs = if ts > 100_000_000_000 { ts / 1000 } else { ts } as i64;
    let (y, m, d, hour, minute, second) = pytorrent_io::civil_utc(secs);
    format!("{y:04}-{m:02}-{d:02}T{hour:02}:{minute:02}:{second:02}")
}

/// GETs `url` into `cache` (atomically) unless it is kept there already; `Ok(false)`: 404.
fn cached_get(agent: &ureq::Agent, url: &str, cache: &Path, opts: &FetchOptions) -> Result<bool> {
    if !opts.refresh_metadata && cache.is_file() {
        return Ok(true);
    }
    let result = get(
        agent,
        url,
        opts,
        None,
        opts.max_repodata_bytes,
        &mut |r, _| {
            let mut f = pytorrent_io::AtomicFile::create(cache).map_err(std::io::Error::other)?;
            std::io::copy(r, &mut f)?;
            f.commit().map(|_| ()).map_err(std::io::Error::other)
        },
    );
    match result {
        Ok(()) => Ok(true),
        Err(GetError::Status(404)) => Ok(false),
        Err(e @ GetError::TooLarge(_)) => Err(Error::Remote(format!(
            "{url}: {} (raise --max-repodata-bytes)",
            e.describe()
        ))),
        Err(e) => Err(Error::Remote(format!("{url}: {}", e.describe()))),
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path, url: &str) -> Result<T> {
    let f = std::fs::File::open(path).map_err(|e| pytorrent_io::Error::io(path, e))?;
    serde_json::from_reader(BufReader::with_capacity(1 << 20, f)).map_err(|e| {
        Error::Remote(format!(
            "{url} (kept as {}): not a repodata document: {e}",
            path.display()
        ))
    })
}

impl Catalog {
    /// Reads (or downloads, then keeps) each channel's repodata of `subdirs` and its
    /// channeldata. A subdir a channel lacks is passed over; a channel with none of them is
    /// an error.
    pub fn load(
        agent: &ureq::Agent,
        channels: &[String],
        subdirs: &[String],
        opts: &FetchOptions,
    ) -> Result<Catalog> {
        let mut cat = Catalog {
            channels: channels.to_vec(),
            subdirs: subdirs.to_vec(),
            ..Default::default()
        };
        let root = opts.out.join("conda_channels");
        for (ci, ch) in channels.iter().enumerate() {
            let dir = root.join(channel_slug(ch));
            let mut found = 0;
            for sd in subdirs {
                let url = format!("{ch}/{sd}/repodata.json");
                let cache = dir.join(sd).join("repodata.json");
                if !cached_get(agent, &url, &cache, opts)? {
                    continue;
                }
                found += 1;
                let data: Repodata = read_json(&cache, &url)?;
                for (filename, e) in data.packages.into_iter().chain(data.packages_conda) {
                    if pytorrent_io::project_name_problem(&e.name).is_some() {
                        cat.refused_names.push(e.name);
                        continue;
                    }
                    let python = e.noarch.as_ref().and_then(|v| v.as_str()) == Some("python")
                        || e.depends
                            .iter()
                            .any(|d| d.split_whitespace().next() == Some("python"));
                    cat.by_name
                        .entry(normalize_name(&e.name))
                        .or_default()
                        .push(Entry {
                            channel: ci,
                            subdir: sd.clone(),
                            filename,
                            name: e.name,
                            version: e.version,
                            build: e.build,
                            build_number: e.build_number,
                            license: e.license,
                            sha256: e.sha256,
                            md5: e.md5,
                            size: e.size,
                            uploaded: e.timestamp.map(iso_time),
                            python,
                        });
                }
            }
            if found == 0 {
                return Err(Error::Remote(format!(
                    "{ch}: no repodata.json for any of {} (is it a conda channel?)",
                    subdirs.join(", ")
                )));
            }
            let url = format!("{ch}/channeldata.json");
            let cache = dir.join("channeldata.json");
            let described = if cached_get(agent, &url, &cache, opts)? {
                read_json::<ChannelData>(&cache, &url)?.packages
            } else {
                BTreeMap::new()
            };
            cat.described.push(described);
        }
        cat.refused_names.sort();
        cat.refused_names.dedup();
        Ok(cat)
    }

    /// Names of the Python packages (depending on `python`, or `noarch: python`), sorted.
    pub fn python_packages(&self) -> Vec<String> {
        self.by_name
            .iter()
            .filter(|(_, es)| es.iter().any(|e| e.python))
            .map(|(n, _)| n.clone())
            .collect()
    }
}

/// The file to fetch among a name's entries: the first channel listing the name wins (conda's
/// strict channel priority); in it, the pinned version or, with `as_of`, files uploaded by
/// then; the highest version, build number, newest upload, `.conda` before `.tar.bz2`.
fn choose<'a>(
    entries: &'a [Entry],
    pinned: Option<&str>,
    as_of: Option<&str>,
) -> std::result::Result<Option<(&'a Entry, Vec<&'a Entry>)>, Outcome> {
    let Some(channel) = entries.iter().map(|e| e.channel).min() else {
        return Ok(None);
    };
    let mut live: Vec<&Entry> = entries.iter().filter(|e| e.channel == channel).collect();
    if let Some(v) = pinned {
        live.retain(|e| e.version == v);
        if live.is_empty() {
            return Err(fail(FailReason::NoSuchVersion, format!("no release {v}")));
        }
    }
    if let Some(cutoff) = as_of {
        live.retain(|e| e.uploaded.as_deref().is_some_and(|t| t <= cutoff));
    }
    let best = live.iter().copied().max_by(|a, b| {
        VersionOrder::parse(&a.version)
            .cmp(&VersionOrder::parse(&b.version))
            .then(a.build_number.cmp(&b.build_number))
            .then(a.uploaded.cmp(&b.uploaded))
            .then(
                a.filename
                    .ends_with(".conda")
                    .cmp(&b.filename.ends_with(".conda")),
            )
            .then(b.subdir.cmp(&a.subdir))
            .then(b.filename.cmp(&a.filename))
    });
    Ok(best.map(|b| (b, live)))
}

/// Human size as the Anaconda pages write it (`7.4 kB`).
fn human_size(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        0..1_000 => format!("{bytes} B"),
        1_000..1_000_000 => format!("{:.1} kB", b / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", b / 1e6),
        _ => format!("{:.1} GB", b / 1e9),
    }
}

/// The metadata document of the chosen file, in PyTorrent's Anaconda layout, with the
/// channel's own facts under `conda`.
fn document(cat: &Catalog, chosen: &Entry, live: &[&Entry]) -> serde_json::Value {
    use serde_json::json;
    let ch = &cat.channels[chosen.channel];
    let about = cat.described[chosen.channel]
        .get(&chosen.name)
        .cloned()
        .unwrap_or_default();
    let mut newest: BTreeMap<&str, &str> = BTreeMap::new();
    for e in live {
        let v = newest.entry(&e.subdir).or_insert(&e.version);
        if VersionOrder::parse(&e.version) > VersionOrder::parse(v) {
            *v = &e.version;
        }
    }
    let mut files: Vec<&&Entry> = live.iter().collect();
    files.sort_by(|a, b| (&a.subdir, &a.filename).cmp(&(&b.subdir, &b.filename)));
    let license = chosen.license.clone().or(about.license.clone());
    json!({
        "title": chosen.name,
        "access": "public",
        "summary": about.summary,
        "updated": chosen.uploaded.as_deref().map(|t| &t[..10]),
        "detail": {
            "meta": {
                "license": license,
                "license_url": null,
                "home": about.home,
                "home_url": about.home,
                "documentation": about.doc_url,
                "documentation_url": about.doc_url,
                "development": about.dev_url,
                "development_url": about.dev_url,
                "download_count": null,
                "last_upload": chosen.uploaded,
            },
            "installers": [format!("conda install -c {ch} {}", chosen.name)],
            "platform_versions": newest.iter().map(|(s, v)| json!([s, format!("v{v}")])).collect::<Vec<_>>(),
            "files": files.iter().map(|e| json!({
                "type": "conda",
                "size": e.size.map(human_size),
                "file": {"name": format!("{}/{}", e.subdir, e.filename),
                         "href": format!("{ch}/{}/{}", e.subdir, e.filename)},
                "uploaded": e.uploaded,
                "labels": [],
            })).collect::<Vec<_>>(),
        },
        "conda": {
            "channel": ch,
            "subdir": chosen.subdir,
            "filename": chosen.filename,
            "version": chosen.version,
            "build": chosen.build,
            "build_number": chosen.build_number,
            "sha256": chosen.sha256,
            "md5": chosen.md5,
        },
    })
}

/// Both digests of what passes through.
struct Digests<W> {
    inner: W,
    sha: sha2::Sha256,
    md5: md5::Md5,
}

impl<W: Write> Write for Digests<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use sha2::Digest;
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        self.md5.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn file_digests(path: &Path) -> Option<(String, String)> {
    use sha2::Digest;
    let mut f = std::fs::File::open(path).ok()?;
    let mut w = Digests {
        inner: std::io::sink(),
        sha: sha2::Sha256::new(),
        md5: md5::Md5::new(),
    };
    std::io::copy(&mut f, &mut w).ok()?;
    Some((hex(&w.sha.finalize()), hex(&w.md5.finalize())))
}

/// Whether the file's digests agree with the entry's (sha256 where given, else md5).
fn digest_matches(e: &Entry, sha: &str, md5: &str) -> bool {
    match (&e.sha256, &e.md5) {
        (Some(s), _) => s.eq_ignore_ascii_case(sha),
        (None, Some(m)) => m.eq_ignore_ascii_case(md5),
        (None, None) => false,
    }
}

/// Fetches one package from the channels: its newest (or pinned, or `as_of`) archive and
/// its metadata document, written only once the archive is in place.
pub fn fetch(agent: &ureq::Agent, cat: &Catalog, name: &str, opts: &FetchOptions) -> Outcome {
    if let Some(refused) = crate::pypi::unsafe_project_name(name) {
        return refused;
    }
    let norm = normalize_name(name);
    let Some(entries) = cat.by_name.get(&norm) else {
        return fail(
            FailReason::NotFound,
            format!("in none of the channels ({})", cat.channels.join(", ")),
        );
    };
    let (chosen, live) = match choose(entries, opts.version.as_deref(), opts.as_of.as_deref()) {
        Ok(Some(c)) => c,
        Ok(None) => return Outcome::NotYetReleased,
        Err(o) => return o,
    };
    if chosen.sha256.is_none() && chosen.md5.is_none() {
        return fail(
            FailReason::BadMetadata,
            format!("{}: no sha256 or md5 in the repodata", chosen.filename),
        );
    }
    let filename = &chosen.filename;
    if let Some(refused) = unsafe_file_name(filename) {
        return refused;
    }
    let limit = match crate::pypi::archive_limit(chosen.size, filename, opts) {
        Ok(l) => l,
        Err(refused) => return refused,
    };
    let meta_path = opts
        .out
        .join("Package_Metadata/anaconda_packages")
        .join(format!("{norm}.json"));
    let write_document = |outcome: Outcome| -> Outcome {
        let body = serde_json::to_vec_pretty(&document(cat, chosen, &live)).expect("JSON value");
        if std::fs::read(&meta_path).ok().as_deref() == Some(&body[..]) {
            return outcome;
        }
        match pytorrent_io::atomic::write_atomic(&meta_path, &body) {
            Ok(()) => outcome,
            Err(e) => fail(FailReason::Io, e.to_string()),
        }
    };
    let target = opts.out.join("packages").join(filename);
    if let Some((sha, md5)) = target.is_file().then(|| file_digests(&target)).flatten() {
        if digest_matches(chosen, &sha, &md5) {
            return write_document(Outcome::AlreadyPresent { file: target });
        }
    }
    let url = format!(
        "{}/{}/{}",
        cat.channels[chosen.channel], chosen.subdir, filename
    );
    let mut outcome = None;
    let result = get(
        agent,
        &url,
        opts,
        None,
        limit,
        &mut |r: &mut dyn Read, _| {
            use sha2::Digest;
            let file = pytorrent_io::AtomicFile::create(&target).map_err(std::io::Error::other)?;
            let mut w = Digests {
                inner: file,
                sha: sha2::Sha256::new(),
                md5: md5::Md5::new(),
            };
            let bytes = std::io::copy(r, &mut w)?;
            w.flush()?;
            let (sha, md5) = (hex(&w.sha.finalize()), hex(&w.md5.finalize()));
            if !digest_matches(chosen, &sha, &md5) {
                let (kind, want, got) = match &chosen.sha256 {
                    Some(s) => ("sha256", s.as_str(), sha),
                    None => ("md5", chosen.md5.as_deref().unwrap_or(""), md5),
                };
                outcome = Some(fail(
                    FailReason::DigestMismatch,
                    format!("{filename}: {kind} {got}, repodata says {want}"),
                ));
                return Ok(());
            }
            w.inner.commit().map_err(std::io::Error::other)?;
            outcome = Some(Outcome::Downloaded {
                file: target.clone(),
                bytes,
            });
            Ok(())
        },
    );
    let outcome = crate::pypi::download_outcome(result, outcome, &url);
    match outcome {
        Outcome::Downloaded { .. } => write_document(outcome),
        other => other,
    }
}

/// Conda's version order (`1.1dev1 < 1.1a1 < 1.1 == 1.1.0 < 1.1.post1`, epochs `N!`, local
/// parts after `+`). Hand-written: the crates that implement it bring a whole conda solver.
#[derive(Debug)]
struct VersionOrder {
    epoch: u64,
    main: Vec<Vec<Part>>,
    local: Vec<Vec<Part>>,
}

/// One piece of a version component; the derived order is conda's: `dev` lowest, then other
/// strings, then numbers, then `post`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    Dev,
    Text(String),
    Num(u64),
    Post,
}

impl VersionOrder {
    fn parse(v: &str) -> VersionOrder {
        let v = v.trim().to_ascii_lowercase();
        let (epoch, rest) = match v.split_once('!') {
            Some((e, r)) => (e.parse().unwrap_or(0), r.to_string()),
            None => (0, v),
        };
        let (main, local) = match rest.split_once('+') {
            Some((m, l)) => (m.to_string(), l.to_string()),
            None => (rest, String::new()),
        };
        let components = |s: &str| -> Vec<Vec<Part>> {
            let out: Vec<Vec<Part>> = s
                .split(['.', '_', '-'])
                .filter(|c| !c.is_empty())
                .map(|c| {
                    let mut parts = Vec::new();
                    let mut rest = c;
                    // A component that starts with letters has an implicit 0 first.
                    if !rest.starts_with(|ch: char| ch.is_ascii_digit()) {
                        parts.push(Part::Num(0));
                    }
                    while !rest.is_empty() {
                        let digits = rest.starts_with(|ch: char| ch.is_ascii_digit());
                        let end = rest
                            .find(|ch: char| ch.is_ascii_digit() != digits)
                            .unwrap_or(rest.len());
                        let (piece, tail) = rest.split_at(end);
                        parts.push(if digits {
                            Part::Num(piece.parse().unwrap_or(u64::MAX))
                        } else {
                            match piece {
                                "dev" => Part::Dev,
                                "post" => Part::Post,
                                t => Part::Text(t.to_string()),
                            }
                        });
                        rest = tail;
                    }
                    parts
                })
                .collect();
            out
        };
        VersionOrder {
            epoch,
            main: components(&main),
            local: components(&local),
        }
    }
}

/// Components compared with missing parts as 0 (`1.1 == 1.1.0`, `1.1a1 < 1.1`).
fn cmp_padded<T: Clone + Ord>(
    a: &[T],
    b: &[T],
    pad: &T,
    inner: impl Fn(&T, &T) -> std::cmp::Ordering,
) -> std::cmp::Ordering {
    for i in 0..a.len().max(b.len()) {
        let o = inner(a.get(i).unwrap_or(pad), b.get(i).unwrap_or(pad));
        if o.is_ne() {
            return o;
        }
    }
    std::cmp::Ordering::Equal
}

impl Ord for VersionOrder {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let zero = vec![Part::Num(0)];
        let comps = |a: &Vec<Vec<Part>>, b: &Vec<Vec<Part>>| {
            cmp_padded(a, b, &zero, |x, y| {
                cmp_padded(x, y, &Part::Num(0), Ord::cmp)
            })
        };
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| comps(&self.main, &other.main))
            .then_with(|| comps(&self.local, &other.local))
    }
}

impl PartialOrd for VersionOrder {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for VersionOrder {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for VersionOrder {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conda_version_order() {
        // The order conda's own documentation gives.
        let ordered = [
            "0.4",
            "0.4.1.rc",
            "0.4.1",
            "0.5a1",
            "0.5b3",
            "0.5c1",
            "0.5",
            "0.9.6",
            "0.960923",
            "1.0",
            "1.1dev1",
            "1.1a1",
            "1.1.0dev1",
            "1.1.0rc1",
            "1.1.0",
            "1.1.0post1",
            "1996.07.12",
            "1!0.4.1",
            "1!3.1.1.6",
            "2!0.4.1",
        ];
        for w in ordered.windows(2) {
            assert!(
                VersionOrder::parse(w[0]) < VersionOrder::parse(w[1]),
                "{} < {}",
                w[0],
                w[1]
            );
        }
        assert_eq!(VersionOrder::parse("1.1"), VersionOrder::parse("1.1.0"));
        assert_eq!(
            VersionOrder::parse("0.4.1.RC"),
            VersionOrder::parse("0.4.1.rc")
        );
        assert!(VersionOrder::parse("1.10") > VersionOrder::parse("1.9"));
    }

    #[test]
    fn epoch_times() {
        assert_eq!(iso_time(0), "1970-01-01T00:00:00");
        assert_eq!(iso_time(1_608_076_800_000), "2020-12-16T00:00:00");
        assert_eq!(iso_time(1_608_076_800), "2020-12-16T00:00:00");
        assert_eq!(iso_time(951_782_400), "2000-02-29T00:00:00");
    }

    #[test]
    fn channel_folders_are_plain_names() {
        assert_eq!(
            channel_slug("https://conda.invalid/my-channel/"),
            "conda.invalid_my-channel_"
        );
    }
}
