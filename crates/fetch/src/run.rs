//! `fetch`: package names (or a whole index's listing) → metadata documents and release
//! archives, over threads, split into array-job tasks by name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pytorrent_corpus::metadata::name_hash;
use pytorrent_io::size::ByteSize;
use serde::Serialize;

use crate::http::{agent, RateLimiter};
use crate::index::{json_api_from_index, list_projects, resolve_index, IndexChoice};
use crate::pypi::{fetch, FetchOptions, Outcome};
use crate::select::{parse_as_of, parse_requirement};

/// `fetch`: package names → metadata documents and release archives from the index pip
/// uses.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct FetchConfig {
    /// Package names.
    #[serde(default)]
    pub names: Vec<String>,
    /// A file of package names, one a line (# comments).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub from_file: Option<PathBuf>,
    /// Output folder: Package_Metadata/pypi_packages/<name>.json (anaconda_packages/ from
    /// conda channels) and packages/<archive>.
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
    /// Release to fetch (default: the latest).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub version: Option<String>,
    /// Simple-index URL (default: PYTORRENT_INDEX_URL, PIP_INDEX_URL, pip.conf, else pip's own
    /// default).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub index_url: Option<String>,
    /// JSON API base (default: the index URL with a trailing /simple made /pypi).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub json_api_url: Option<String>,
    /// Downloads at once.
    #[serde(default = "default_jobs")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = default_jobs()))]
    pub jobs: usize,
    /// Retries of a failed request (network errors, 429, 5xx), with doubling back-off.
    #[serde(default = "default_retries")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = default_retries()))]
    pub retries: u32,
    /// Seconds before a request is given up.
    #[serde(default = "default_timeout")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = default_timeout()))]
    pub timeout: u64,
    /// Opt-out list: these packages are not fetched.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub opt_out: Option<PathBuf>,
    /// Every project the index lists, instead of names.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub all: bool,
    /// The newest release uploaded on or before this date (YYYY-MM-DD or
    /// YYYY-MM-DDTHH:MM:SS, UTC): the index as it was then.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub as_of: Option<String>,
    /// Download metadata documents again even when an earlier run kept them.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub refresh_metadata: bool,
    /// Requests per second at most, over all downloads.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub rate: Option<f64>,
    /// Split the packages among N tasks by a hash of the name (default:
    /// SLURM_ARRAY_TASK_COUNT).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub num_tasks: Option<usize>,
    /// This task's index, 0-based (default: Slurm's or a Kubernetes Indexed Job's).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub task_index: Option<usize>,
    /// Fetch from this conda channel (a URL, or a name .condarc's channel_alias or
    /// custom_channels resolve) instead of the package index; repeat for more, first wins.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long = "channel", value_name = "URL"))]
    pub channels: Vec<String>,
    /// Fetch from conda channels; without --channel, those .condarc lists.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub conda: bool,
    /// Conda subdir to read (default: noarch and this machine's, e.g. linux-64); repeat for
    /// more.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long = "subdir", value_name = "SUBDIR"))]
    pub subdirs: Vec<String>,
    /// Largest metadata document or project listing accepted (e.g. 64M): a server that sends
    /// more is refused.
    #[serde(default = "default_max_metadata_bytes")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = default_max_metadata_bytes()))]
    pub max_metadata_bytes: ByteSize,
    /// Largest archive accepted when its metadata gives no size (e.g. 2G); one larger than the
    /// size its metadata gives is refused whatever this says.
    #[serde(default = "default_max_archive_bytes")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = default_max_archive_bytes()))]
    pub max_archive_bytes: ByteSize,
    /// Largest conda repodata.json or channeldata.json accepted.
    #[serde(default = "default_max_repodata_bytes")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = default_max_repodata_bytes()))]
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

#[derive(Debug, Serialize, serde::Deserialize)]
pub struct FetchReport {
    /// Conda channels read (empty when fetching from the package index).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
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

/// The fetch stage.
pub struct Fetch;

impl pytorrent_io::stage::Stage for Fetch {
    type Config = FetchConfig;
    type Report = FetchReport;
    type Error = crate::Error;
    const COMMAND: &'static str = "fetch";
    const READS: &'static [&'static str] = &["from_file", "opt_out"];
    const UNHASHED: &'static [&'static str] = &["jobs", "rate", "retries", "timeout"];
    const RESUMES: bool = true;

    fn run(
        config: &FetchConfig,
        reporter: &dyn pytorrent_io::Reporter,
    ) -> Result<FetchReport, crate::Error> {
        run(config, reporter)
    }

    /// A package that could not be fetched is a data error.
    fn gate_failure(report: &FetchReport) -> Option<String> {
        let n = report.failures();
        (n > 0).then(|| {
            format!(
                "{} could not be fetched",
                pytorrent_io::reporter::plural(n as u64, "package", "packages")
            )
        })
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
