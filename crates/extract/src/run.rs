//! `extract`: packages (archives, folders, folders of archives) → a PyTorrent corpus, with
//! filters, de-duplication, opt-out and scrubbing, and a summary of everything that happened.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pytorrent_corpus::convert::CorpusFormat;
use pytorrent_corpus::metadata::MetadataIndex;
use pytorrent_corpus::parquet_out::{Card, ParquetCorpusWriter};
use pytorrent_corpus::stats::CorpusStats;
use pytorrent_corpus::writer::{CorpusWriter, Layout, Target, WriterOptions, WrittenFile};
use pytorrent_io::owner::{Owner, Previous};
use pytorrent_io::{Reporter, Unit};
use serde::{Deserialize, Serialize};

use crate::dedup::{DedupOptions, Deduper, Duplicate};
use crate::error::{Error, Result};
use crate::package::{package_name, ExtractOptions, Filters, Output, PackageReport, Split};
use crate::units::Scenario;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct ExtractConfig {
    /// Package archives (.tar.gz, .tgz, .tar.bz2, .zip, .whl, .conda), package folders, or folders of
    /// archives (a folder holding archives is read as one package per archive).
    #[cfg_attr(feature = "cli", arg(required = true))]
    pub inputs: Vec<PathBuf>,
    /// Output folder, in PyTorrent's layout: <out>/<scenario>/<partition>/…_chk_N.jsonl.gz
    /// (a task of several: <out>/task-IIIII-of-NNNNN/…).
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
    /// Scenarios, comma-separated: docstrings, comments, both.
    #[serde(
        default = "default_scenario",
        deserialize_with = "pytorrent_io::names::list"
    )]
    #[cfg_attr(
        feature = "cli",
        arg(long, value_delimiter = ',', default_value = "docstrings")
    )]
    pub scenario: Vec<Scenario>,
    /// Percent of packages in train and valid (the rest is test), by a hash of the name.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long, default_value = "80,10"))]
    pub split: Split,
    /// Records per output chunk file.
    #[serde(default = "default_chunk_records")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = default_chunk_records()))]
    pub chunk_records: u64,
    /// Keep test files (test folders, test_*.py, *_test.py, conftest.py).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub keep_tests: bool,
    /// Keep vendored third-party code (virtualenvs, site-packages/, node_modules/, _vendor/,
    /// vendor/, vendored/, third_party/, extern/ inside a package; see docs/extract.md).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub keep_vendored: bool,
    /// Keep __dunder__ methods.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub keep_dunder: bool,
    /// Keep functions whose body is only pass, ... and raise.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub keep_trivial: bool,
    /// Fewest non-blank lines of code a record needs.
    #[serde(default = "default_min_lines")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = default_min_lines()))]
    pub min_code_lines: usize,
    /// Fewest words of natural language a record needs.
    #[serde(default = "default_min_words")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = default_min_words()))]
    pub min_nl_words: usize,
    /// Opt-out list: package names, or `package:glob` for files (one a line, # comments).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub opt_out: Option<PathBuf>,
    /// Keep secrets and e-mail addresses (by default replaced by <SECRET> and <EMAIL>).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub keep_secrets: bool,
    /// Keep exact duplicates (same code tokens) across packages.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub keep_duplicates: bool,
    /// Jaccard similarity of code-token 3-shingles (MinHash estimate) at or above which a
    /// record is a near duplicate of an earlier one and dropped.
    #[serde(default = "default_near_dup")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = default_near_dup()))]
    pub near_dup_threshold: f64,
    /// Keep near duplicates.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub keep_near_duplicates: bool,
    /// Also print corpus statistics of the output (with --metadata, licenses too).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub stats: bool,
    /// Package metadata for --stats (default: a Package_Metadata folder in or beside an input
    /// folder, as `fetch` writes it).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub metadata: Vec<PathBuf>,
    /// A package that cannot be read as a whole: fail (exit 1 once all are done) or skip.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long, default_value = "fail"))]
    pub on_error: pytorrent_corpus::OnError,
    /// jsonl (PyTorrent's layout), or parquet: the Hugging Face layout with a dataset card, a
    /// config per scenario.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long, default_value = "jsonl"))]
    pub format: CorpusFormat,
    /// Continue a killed run of the same settings in --out from its journal (the output is
    /// byte-identical to an uninterrupted run's).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub resume: bool,
    /// Split the packages among N tasks by a hash of the package name (default:
    /// SLURM_ARRAY_TASK_COUNT); `pytorrent corpus dedup` merges the task outputs.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub num_tasks: Option<usize>,
    /// This task's index, 0-based (default: Slurm's or a Kubernetes Indexed Job's). Tasks
    /// share one --out: each writes its own task-IIIII-of-NNNNN/ folder in it.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub task_index: Option<usize>,
    /// Write into an output folder that another command (or someone) made; only files of the
    /// names this run writes are replaced.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub force: bool,
}

fn default_scenario() -> Vec<Scenario> {
    vec![Scenario::Docstrings]
}
fn default_chunk_records() -> u64 {
    30_000
}
fn default_min_lines() -> usize {
    Filters::default().min_code_lines
}
fn default_min_words() -> usize {
    Filters::default().min_nl_words
}
fn default_near_dup() -> f64 {
    0.85
}

impl ExtractConfig {
    pub fn new(inputs: Vec<PathBuf>, out: PathBuf) -> ExtractConfig {
        ExtractConfig {
            inputs,
            out,
            scenario: default_scenario(),
            split: Split::default(),
            chunk_records: default_chunk_records(),
            keep_tests: false,
            keep_vendored: false,
            keep_dunder: false,
            keep_trivial: false,
            min_code_lines: default_min_lines(),
            min_nl_words: default_min_words(),
            opt_out: None,
            keep_secrets: false,
            keep_duplicates: false,
            near_dup_threshold: default_near_dup(),
            keep_near_duplicates: false,
            stats: false,
            metadata: Vec::new(),
            on_error: pytorrent_corpus::OnError::Fail,
            format: CorpusFormat::Jsonl,
            resume: false,
            num_tasks: None,
            task_index: None,
            force: false,
        }
    }

    /// sha256 of what decides the records and their files: the journal of a resumed run or
    /// of the tasks of a merge must have been made with the same.
    fn fingerprint(&self, packages: &[PathBuf]) -> String {
        use sha2::Digest;
        let mut doc = serde_json::to_value(self).expect("configs serialise");
        if let Some(m) = doc.as_object_mut() {
            for key in [
                "out",
                "resume",
                "force",
                "num_tasks",
                "task_index",
                "stats",
                "metadata",
                "on_error",
            ] {
                m.remove(key);
            }
        }
        let list: Vec<String> = packages.iter().map(|p| p.display().to_string()).collect();
        let bytes = serde_json::to_vec(&(doc, list)).expect("plain JSON");
        pytorrent_io::fingerprint::hex(&sha2::Sha256::digest(&bytes))
    }

    pub fn validate(&self) -> Result<()> {
        if self.scenario.is_empty() {
            return Err(Error::Usage("give at least one scenario".into()));
        }
        if !(0.0..=1.0).contains(&self.near_dup_threshold) {
            return Err(Error::Usage(
                "--near-dup-threshold must be between 0 and 1".into(),
            ));
        }
        if self.chunk_records == 0 {
            return Err(Error::Usage("--chunk-records must be at least 1".into()));
        }
        Ok(())
    }

    fn options(&self) -> Result<ExtractOptions> {
        Ok(ExtractOptions {
            scenarios: self.scenario.clone(),
            split: self.split,
            limits: Default::default(),
            filters: Filters {
                vendored: !self.keep_vendored,
                test_paths: !self.keep_tests,
                dunder: !self.keep_dunder,
                trivial_bodies: !self.keep_trivial,
                min_code_lines: self.min_code_lines,
                min_nl_words: self.min_nl_words,
            },
            opt_out: self
                .opt_out
                .as_deref()
                .map(pytorrent_corpus::optout::OptOut::load)
                .transpose()?
                .map(std::sync::Arc::new),
            scrub: !self.keep_secrets,
        })
    }

    pub(crate) fn dedup(&self) -> DedupOptions {
        DedupOptions {
            exact: !self.keep_duplicates,
            near_threshold: (!self.keep_near_duplicates).then_some(self.near_dup_threshold),
            shingle: 3,
        }
    }
}

#[derive(Debug, Serialize, serde::Deserialize, Default)]
pub struct ExtractReport {
    pub packages: u64,
    pub python_files: u64,
    pub files_with_syntax_errors: u64,
    pub files_decoded_with_replacement: u64,
    pub functions: u64,
    /// Records written, by scenario and partition.
    pub records: BTreeMap<String, BTreeMap<String, u64>>,
    pub refused_members: BTreeMap<String, u64>,
    pub filtered: BTreeMap<String, u64>,
    pub opted_out_packages: Vec<String>,
    pub opted_out_files: u64,
    /// Files of vendored third-party code left out, by rule.
    #[serde(default)]
    pub vendored: BTreeMap<String, u64>,
    /// The same files by the vendored project their path names (`site-packages/<name>/`).
    #[serde(default)]
    pub vendored_projects: BTreeMap<String, u64>,
    /// Secrets and e-mail addresses replaced, by kind.
    pub scrubbed: BTreeMap<String, u64>,
    /// Tool pragmas (`noqa`, `type: ignore`, `pragma: no cover` …) left out of the comments
    /// scenarios' natural language.
    pub pragma_comments: u64,
    /// Records whose natural language held control characters (`\r` from an unescaped
    /// `\ref` in a docstring, `\b`, `\x00`), written as escapes in the NL fields.
    #[serde(default)]
    pub nl_control_chars: u64,
    /// Records dropped as duplicates of an earlier one, by scenario and kind.
    pub duplicates: BTreeMap<String, BTreeMap<String, u64>>,
    pub packages_with_problems: Vec<PackageReport>,
    /// Packages that could not be read as a whole.
    pub failed_packages: Vec<String>,
    /// What became of every function, by scenario: `record` (written), `duplicate_exact`,
    /// `duplicate_near`, or why it was left out (`no_nl`: no docstring or comments,
    /// `short_code`, `short_nl`, `dunder`, `trivial_body`). Each scenario adds up to
    /// `functions`.
    pub functions_by_scenario: BTreeMap<String, BTreeMap<String, u64>>,
    /// The run succeeded: no package failed as a whole, or the policy was `skip`.
    pub ok: bool,
    pub written: Vec<WrittenFile>,
    #[serde(skip)]
    pub out: PathBuf,
    /// Statistics of the output, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<CorpusStats>,
    /// This task's share of the packages (`index` of `count`).
    pub task: pytorrent_io::tasks::Tasks,
}

const ARCHIVE_SUFFIXES: &[&str] = &[".tar.gz", ".tgz", ".tar.bz2", ".zip", ".whl", ".conda"];

fn is_archive(p: &Path) -> bool {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    p.is_file() && ARCHIVE_SUFFIXES.iter().any(|s| name.ends_with(s))
}

/// Inputs → packages, in a stable order: an archive or a package folder is one package; a
/// folder holding archives is one package per archive.
pub fn packages(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for input in inputs {
        if !input.exists() {
            return Err(Error::Usage(format!(
                "{}: no such file or folder",
                input.display()
            )));
        }
        if !input.is_dir() {
            out.push(input.clone());
            continue;
        }
        let mut archives: Vec<PathBuf> = std::fs::read_dir(input)
            .map_err(|e| pytorrent_io::Error::io(input, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| is_archive(p))
            .collect();
        if archives.is_empty() {
            out.push(input.clone());
        } else {
            archives.sort();
            out.extend(archives);
        }
    }
    Ok(out)
}

impl ExtractReport {
    /// Counts one package's report in.
    fn add_package(&mut self, report: &PackageReport) {
        self.packages += 1;
        self.python_files += report.python_files;
        self.files_with_syntax_errors += report.files_with_syntax_errors;
        self.files_decoded_with_replacement += report.files_decoded_with_replacement;
        self.functions += report.functions;
        if report.opted_out {
            self.opted_out_packages.push(report.package.clone());
        }
        self.opted_out_files += report.opted_out_files;
        for (rule, n) in &report.vendored {
            *self.vendored.entry(rule.clone()).or_default() += n;
        }
        for (project, n) in &report.vendored_projects {
            *self.vendored_projects.entry(project.clone()).or_default() += n;
        }
        self.pragma_comments += report.pragma_comments;
        self.nl_control_chars += report.nl_control_chars;
        for (kind, n) in &report.scrubbed {
            *self.scrubbed.entry(kind.clone()).or_default() += n;
        }
        for (reason, n) in &report.filtered {
            *self.filtered.entry(reason.clone()).or_default() += n;
        }
        for (kind, members) in &report.refused {
            *self.refused_members.entry(kind.clone()).or_default() += members.len() as u64;
        }
        for (scenario, outcomes) in &report.outcomes {
            let mine = self
                .functions_by_scenario
                .entry(scenario.clone())
                .or_default();
            for (what, n) in outcomes {
                *mine.entry(what.clone()).or_default() += n;
            }
        }
        if report.failed() {
            self.failed_packages.push(report.package.clone());
        }
    }

    fn count(map: &mut BTreeMap<String, BTreeMap<String, u64>>, outer: &str, inner: &str) {
        *map.entry(outer.into())
            .or_default()
            .entry(inner.into())
            .or_default() += 1;
    }
}

/// The records of the packages, de-duplicated within each scenario (the same function is
/// expected once in each), written in input order.
pub(crate) struct Sink {
    writer: Writer,
    decide: Decide,
    /// Duplicates of the package being written: (scenario, kind).
    duplicates: Vec<(&'static str, &'static str)>,
    /// The package being written, and its records so far by scenario: a record's global id.
    package: u64,
    ordinals: BTreeMap<&'static str, u64>,
}

/// Which records are duplicates: found here, in input order, or read from the staged
/// de-duplication's decisions.
pub(crate) enum Decide {
    InProcess {
        dedupers: BTreeMap<&'static str, Deduper>,
        opts: DedupOptions,
    },
    Dropped(crate::staged::write::Dropped),
}

/// PyTorrent's JSONL layout, or Parquet in the Hugging Face layout (a config per scenario).
enum Writer {
    Jsonl(CorpusWriter),
    Parquet(ParquetCorpusWriter),
}

/// A record made ready for the writer on a parsing thread: serialised, with its
/// de-duplication keys, so the writer (one thread, in input order) only looks them up.
pub(crate) struct Prepared {
    scenario: &'static str,
    partition: pytorrent_corpus::Partition,
    repo: String,
    line: Vec<u8>,
    keys: crate::dedup::Keys,
}

impl Prepared {
    fn new(o: Output, dedup: &DedupOptions) -> Prepared {
        Prepared {
            scenario: o.scenario.name(),
            partition: o.partition,
            keys: dedup.keys(&o.record.code_tokens),
            line: serde_json::to_vec(&o.record).expect("records serialise"),
            repo: o.record.repo,
        }
    }
}

/// A serialised record, borrowed as JSON to embed (serde_json checks it without copying).
fn raw_json(line: &[u8]) -> &serde_json::value::RawValue {
    let text = std::str::from_utf8(line).expect("JSON is UTF-8");
    serde_json::from_str(text).expect("a record serialises to valid JSON")
}

impl Prepared {
    fn stored(&self) -> crate::journal::RecordRef<'_> {
        crate::journal::RecordRef {
            scenario: self.scenario,
            partition: self.partition.as_str(),
            repo: &self.repo,
            line: raw_json(&self.line),
            keys: (&self.keys).into(),
        }
    }

    pub(crate) fn from_stored(r: crate::journal::StoredRecord, at: &Path) -> Result<Prepared> {
        let bad = |m: String| Error::Io(pytorrent_io::Error::format(at, m));
        let scenario = Scenario::parse(&r.scenario)
            .ok_or_else(|| bad(format!("unknown scenario {:?}", r.scenario)))?
            .name();
        let partition = pytorrent_corpus::Partition::parse(&r.partition)
            .ok_or_else(|| bad(format!("unknown partition {:?}", r.partition)))?;
        Ok(Prepared {
            scenario,
            partition,
            repo: r.repo,
            line: r.line.get().as_bytes().to_vec(),
            keys: r.keys.try_into().map_err(bad)?,
        })
    }
}

impl Sink {
    pub(crate) fn write(
        &mut self,
        outputs: Vec<Prepared>,
        report: &mut ExtractReport,
    ) -> Result<()> {
        for o in outputs {
            let scenario = o.scenario;
            let ordinal = self.ordinals.entry(scenario).or_default();
            let id = crate::staged::keys::gid(self.package, *ordinal);
            *ordinal += 1;
            let duplicate = match &mut self.decide {
                Decide::InProcess { dedupers, opts } => dedupers
                    .entry(scenario)
                    .or_insert_with(|| Deduper::new(opts.clone()))
                    .check_keys(o.keys),
                Decide::Dropped(d) => d.kind(scenario, id)?,
            };
            if let Some(kind) = duplicate {
                let kind = match kind {
                    Duplicate::Exact => "exact",
                    Duplicate::Near => "near",
                };
                ExtractReport::count(&mut report.duplicates, scenario, kind);
                // The package's outcomes are counted in at its end ([`Sink::end_package`]).
                self.duplicates.push((scenario, kind));
                continue;
            }
            match &mut self.writer {
                Writer::Jsonl(w) => {
                    let target = Target::Partitioned {
                        scenario: scenario.into(),
                        partition: o.partition,
                    };
                    w.write(&target, &o.line)?
                }
                Writer::Parquet(w) => w.write(scenario, o.partition, &o.repo, &o.line)?,
            }
            ExtractReport::count(&mut report.records, scenario, o.partition.as_str());
        }
        Ok(())
    }
}

impl Sink {
    pub(crate) fn open(cfg: &ExtractConfig, out: Owner) -> Result<Sink> {
        let decide = Decide::InProcess {
            dedupers: BTreeMap::new(),
            opts: cfg.dedup(),
        };
        Sink::deciding(cfg, out, decide)
    }

    pub(crate) fn deciding(cfg: &ExtractConfig, out: Owner, decide: Decide) -> Result<Sink> {
        let writer = match cfg.format {
            CorpusFormat::Jsonl => Writer::Jsonl(CorpusWriter::owned(
                out,
                WriterOptions {
                    layout: Layout::PyTorrent,
                    compression: None,
                    chunk_records: Some(cfg.chunk_records),
                    chunk_bytes: None,
                },
            )?),
            CorpusFormat::Parquet => Writer::Parquet(ParquetCorpusWriter::owned(
                out,
                pytorrent_corpus::parquet_out::DEFAULT_FILE_BYTES,
            )?),
        };
        Ok(Sink {
            writer,
            decide,
            duplicates: Vec::new(),
            package: 0,
            ordinals: BTreeMap::new(),
        })
    }

    /// The package whose records come next (its place in the whole input list).
    pub(crate) fn begin_package(&mut self, index: u64) {
        self.package = index;
        self.ordinals.clear();
    }

    /// Counts in the report of a package whose records were written: its duplicates move
    /// from `record` to `duplicate_*` in the outcomes.
    pub(crate) fn end_package(&mut self, package: PackageReport, report: &mut ExtractReport) {
        report.add_package(&package);
        for (scenario, kind) in self.duplicates.drain(..) {
            let outcomes = report
                .functions_by_scenario
                .entry(scenario.into())
                .or_default();
            let records = outcomes.entry("record".into()).or_default();
            *records = records.saturating_sub(1);
            *outcomes.entry(format!("duplicate_{kind}")).or_default() += 1;
        }
        if package.has_problems() {
            report.packages_with_problems.push(package);
        }
    }

    /// Closes the files; the report gets what was written.
    pub(crate) fn finish(
        self,
        cfg: &ExtractConfig,
        report: &mut ExtractReport,
        reporter: &dyn Reporter,
    ) -> Result<()> {
        report.written = match self.writer {
            Writer::Jsonl(w) => w.finish()?,
            Writer::Parquet(w) => {
                let metadata = MetadataIndex::load_logged(&metadata_paths(cfg), reporter)?;
                w.finish(&Card {
                    title: format!(
                        "PyTorrent corpus of {}",
                        pytorrent_io::reporter::plural(report.packages, "package", "packages")
                    ),
                    tool: format!("pytorrent {} (extract)", env!("CARGO_PKG_VERSION")),
                    metadata: metadata.as_ref(),
                })?
            }
        };
        Ok(())
    }
}

/// Records waiting for the writer, in bytes, beyond which parsing waits.
const WINDOW_BYTES: usize = 256 << 20;
/// Records handed to the writer at a time, in bytes.
const CHUNK_BYTES: usize = 1 << 20;
/// A prepared record's size beside its line: keys, signature, vector and string headers.
const PREPARED_OVERHEAD: usize = 4 * crate::dedup::PERMUTATIONS + 128;

/// One package's records, each handed to `emit`; a panic while reading it (a defect, never
/// expected) fails that package with the message instead of stopping the run (the records
/// made before it are kept, as for an archive that breaks off).
fn prepare_package(
    path: &Path,
    opts: &crate::package::ExtractOptions,
    emit: &mut dyn FnMut(Output),
) -> PackageReport {
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        crate::package::extract_package_each(path, opts, emit)
    }));
    caught.unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        PackageReport {
            package: package_name(path),
            path: path.display().to_string(),
            error: Some(format!(
                "internal error while reading the package: {message}"
            )),
            ..Default::default()
        }
    })
}

/// The extract stage.
pub struct Extract;

impl pytorrent_io::stage::Stage for Extract {
    type Config = ExtractConfig;
    type Report = ExtractReport;
    type Error = Error;
    const COMMAND: &'static str = "extract";
    const READS: &'static [&'static str] = &["inputs", "metadata", "opt_out"];
    const UNHASHED: &'static [&'static str] = &["resume"];

    fn run(
        config: &ExtractConfig,
        reporter: &dyn pytorrent_io::Reporter,
    ) -> Result<ExtractReport, Error> {
        run(config, reporter)
    }

    fn gate_failure(report: &ExtractReport) -> Option<String> {
        (!report.ok).then(|| {
            format!(
                "{} could not be read ({}); --on-error skip accepts that",
                pytorrent_io::reporter::plural(
                    report.failed_packages.len() as u64,
                    "package",
                    "packages"
                ),
                report.failed_packages.join(", ")
            )
        })
    }
}

pub fn run(cfg: &ExtractConfig, reporter: &dyn Reporter) -> Result<ExtractReport> {
    cfg.validate()?;
    pytorrent_corpus::writer::check_folder_out(&cfg.out, "extract")?;
    let opts = cfg.options()?;
    let task = pytorrent_io::tasks::Tasks::resolve(cfg.num_tasks, cfg.task_index)?;
    // From here on `out` is this task's own folder.
    let cfg = &ExtractConfig {
        out: task.root(&cfg.out),
        ..cfg.clone()
    };
    let all = packages(&cfg.inputs)?;
    // This task's packages, with their places in the whole list.
    let mine: Vec<(u64, &PathBuf)> = all
        .iter()
        .enumerate()
        .filter(|(_, p)| task.owns_unit(pytorrent_corpus::metadata::name_hash(&package_name(p))))
        .map(|(i, p)| (i as u64, p))
        .collect();
    let journal_dir = cfg.out.join(crate::journal::DIR);
    let settings = crate::journal::Settings {
        fingerprint: cfg.fingerprint(&all),
        config: serde_json::to_value(cfg).expect("configs serialise"),
        task,
        packages: all.len() as u64,
    };
    let resuming = cfg.resume
        && crate::journal::settings(&journal_dir)
            .is_some_and(|s| s.fingerprint == settings.fingerprint && s.task == settings.task);
    if cfg.resume && !resuming && journal_dir.exists() {
        return Err(Error::Usage(format!(
            "--resume: {} was made with other settings, inputs or task split; run without \
             --resume to start over",
            journal_dir.display()
        )));
    }
    // Only a folder this command made is written into: a new run removes the files its last
    // run made there (a resumed one rewrites them), and nothing else.
    let previous = if resuming {
        Previous::Keep
    } else {
        Previous::Remove
    };
    let owner = Owner::claim(&cfg.out, "extract", cfg.force, previous)?;
    if !resuming {
        remove_dir(&journal_dir)?;
    }
    // Half-written files of a killed run (`.NAME.XXXXXX.tmp`) go: this run rewrites them.
    remove_temp_files(&cfg.out);
    let mut sink = Sink::open(cfg, owner)?;
    let dedup = cfg.dedup();
    // A task of several writes its records' keys for the staged `corpus dedup`.
    let mut keys = if task.count > 1 {
        Some(crate::staged::keys::KeyWriter::create(
            &journal_dir.join(crate::staged::keys::DIR),
            &settings.fingerprint,
            task,
            &dedup,
        )?)
    } else {
        None
    };
    let mut report = ExtractReport {
        out: cfg.out.clone(),
        ..Default::default()
    };
    reporter.begin("extract", Unit::Items("packages"), Some(mine.len() as u64));
    // A resumed run replays what the journal holds (no parsing), then goes on.
    let mut done = 0;
    if resuming {
        use crate::journal::Event;
        let mut package = 0;
        crate::journal::replay(&journal_dir, &mut |event| {
            match event {
                Event::Begin(index) => {
                    if mine.get(done).map(|(i, _)| *i) != Some(index) {
                        return Err(Error::Io(pytorrent_io::Error::format(
                            &journal_dir,
                            format!(
                                "the journal's package {index} is not the next of this run's list"
                            ),
                        )));
                    }
                    package = index;
                    sink.begin_package(index);
                }
                Event::Record(r) => {
                    let p = Prepared::from_stored(r, &journal_dir)?;
                    if let Some(k) = &mut keys {
                        k.record(package, p.scenario, &p.keys)?;
                    }
                    sink.write(vec![p], &mut report)?;
                }
                Event::End(package_report) => {
                    sink.end_package(package_report, &mut report);
                    done += 1;
                    reporter.advance(1);
                }
            }
            Ok(())
        })?;
        reporter.log(&format!(
            "resumed: {} from the journal",
            pytorrent_io::reporter::plural(done as u64, "package", "packages")
        ));
    }
    let mut journal = crate::journal::Journal::create(&journal_dir, &settings, mine.len())?;
    // Packages are parsed on every thread, each taking the next package as it finishes one;
    // their records flow in chunks to this thread, which de-duplicates, journals and
    // compresses them in input order meanwhile — the package being written even while it is
    // still parsed. The window bounds what waits: packages at most 32 a thread ahead (so a
    // large package does not idle the other threads), records
    // at most WINDOW_BYTES, so memory stays flat however many or large the packages are.
    let rest = &mine[done..];
    let threads = rayon::current_num_threads().max(1);
    let window = crate::window::Window::new(rest.len(), threads * 32, WINDOW_BYTES);
    let written = std::thread::scope(|scope| -> Result<()> {
        let opts = &opts;
        let dedup = &dedup;
        for _ in 0..threads {
            let (window, dedup) = (&window, dedup.clone());
            scope.spawn(move || {
                window.work(|k, push| {
                    let (_, p) = rest[k];
                    let mut chunk = Vec::new();
                    let mut bytes = 0;
                    let package = prepare_package(p, opts, &mut |o| {
                        let r = Prepared::new(o, &dedup);
                        bytes += r.line.len() + r.repo.len() + PREPARED_OVERHEAD;
                        chunk.push(r);
                        if bytes >= CHUNK_BYTES {
                            push(std::mem::take(&mut chunk), std::mem::take(&mut bytes));
                        }
                    });
                    if !chunk.is_empty() {
                        push(chunk, bytes);
                    }
                    package
                })
            });
        }
        let result = (|| {
            use crate::window::Next;
            for (k, (index, _)) in rest.iter().enumerate() {
                journal.begin(*index)?;
                sink.begin_package(*index);
                loop {
                    match window.next(k) {
                        Next::Chunk(prepared) => {
                            journal.records(prepared.iter().map(Prepared::stored))?;
                            if let Some(keys) = &mut keys {
                                for r in &prepared {
                                    keys.record(*index, r.scenario, &r.keys)?;
                                }
                            }
                            sink.write(prepared, &mut report)?;
                        }
                        Next::End(package) => {
                            journal.end(&package)?;
                            sink.end_package(package, &mut report);
                            break;
                        }
                    }
                }
                reporter.advance(1);
            }
            Ok(())
        })();
        // The workers stop on an error; they are done otherwise.
        window.stop();
        result
    });
    reporter.end();
    written?;
    journal.flush()?;
    if let Some(keys) = keys {
        keys.finish()?;
    }
    sink.finish(cfg, &mut report, reporter)?;
    // The journal is what a merge reads from a task; a run alone needs it no more.
    if task.count == 1 {
        remove_dir(&journal_dir)?;
    }
    report.task = task;
    report.ok =
        report.failed_packages.is_empty() || cfg.on_error == pytorrent_corpus::OnError::Skip;
    if cfg.stats {
        report.stats = Some(output_stats(cfg, reporter)?);
    }
    Ok(report)
}

/// Removes the temporary files of atomic writes (`.NAME.XXXXXX.tmp`) under `dir`.
fn remove_temp_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p.is_dir() {
            remove_temp_files(&p);
        } else if name.starts_with('.') && name.ends_with(".tmp") {
            let _ = std::fs::remove_file(&p);
        }
    }
}

/// Removes a folder and what it holds; one that is not there is fine.
pub(crate) fn remove_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(pytorrent_io::Error::io(dir, e).into()),
    }
}

/// The task folders the inputs name: a folder with a journal is one; another folder gives
/// the `task-IIIII-of-NNNNN` folders in it.
pub(crate) fn task_folders(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for dir in inputs {
        if dir.join(crate::journal::DIR).is_dir() {
            found.push(dir.clone());
            continue;
        }
        let rd = std::fs::read_dir(dir).map_err(|e| pytorrent_io::Error::io(dir, e))?;
        let mut tasks: Vec<PathBuf> = rd
            .flatten()
            .filter(|e| {
                pytorrent_io::Tasks::from_dir_name(&e.file_name().to_string_lossy()).is_some()
            })
            .map(|e| e.path())
            .collect();
        if tasks.is_empty() {
            return Err(Error::Usage(format!(
                "{}: no extract journal and no task-IIIII-of-NNNNN folders (run `extract \
                 --num-tasks N --task-index I --out {}` for each task first)",
                dir.display(),
                dir.display()
            )));
        }
        tasks.sort();
        found.extend(tasks);
    }
    Ok(found)
}

/// The metadata asked for, else what `fetch` left beside the inputs.
fn metadata_paths(cfg: &ExtractConfig) -> Vec<PathBuf> {
    if cfg.metadata.is_empty() {
        metadata_beside(&cfg.inputs)
    } else {
        cfg.metadata.clone()
    }
}

/// `Package_Metadata` folders in or beside the input folders (where `fetch` writes them:
/// `DIR/packages/` and `DIR/Package_Metadata/`).
pub fn metadata_beside(inputs: &[PathBuf]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for input in inputs.iter().filter(|p| p.is_dir()) {
        for candidate in [Some(input.as_path()), input.parent()]
            .into_iter()
            .flatten()
        {
            let m = candidate.join("Package_Metadata");
            if m.is_dir() && !found.contains(&m) {
                found.push(m);
            }
        }
    }
    found
}

/// Statistics of what was just written.
pub(crate) fn output_stats(cfg: &ExtractConfig, reporter: &dyn Reporter) -> Result<CorpusStats> {
    let files = pytorrent_corpus::discover(std::slice::from_ref(&cfg.out))?;
    let metadata = MetadataIndex::load_logged(&metadata_paths(cfg), reporter)?;
    Ok(pytorrent_corpus::stats::corpus_stats(
        &files,
        &pytorrent_corpus::ReadOptions::default(),
        &pytorrent_io::Silent,
        &pytorrent_corpus::Partitions::All,
        20,
        metadata.as_ref(),
    )?)
}

fn joined(map: &BTreeMap<String, u64>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl ExtractReport {
    /// The summary for people (the statistics table, when computed, comes separately).
    pub fn summary(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "extracted {}: {} ({} with syntax errors, {} decoded with replacement), {}",
            pytorrent_io::reporter::plural(self.packages, "package", "packages"),
            pytorrent_io::reporter::plural(self.python_files, "Python file", "Python files"),
            self.files_with_syntax_errors,
            self.files_decoded_with_replacement,
            pytorrent_io::reporter::plural(self.functions, "function", "functions"),
        );
        for (scenario, parts) in &self.records {
            let _ = writeln!(s, "  {scenario}: {}", joined(parts));
        }
        if !self.filtered.is_empty() {
            let _ = writeln!(s, "  left out by filters: {}", joined(&self.filtered));
        }
        if !self.opted_out_packages.is_empty() || self.opted_out_files > 0 {
            let _ = writeln!(
                s,
                "  opted out: {} ({}), {}",
                pytorrent_io::reporter::plural(
                    self.opted_out_packages.len() as u64,
                    "package",
                    "packages"
                ),
                self.opted_out_packages.join(", "),
                pytorrent_io::reporter::plural(self.opted_out_files, "file", "files")
            );
        }
        if !self.vendored.is_empty() {
            let mut projects: Vec<(&String, &u64)> = self.vendored_projects.iter().collect();
            projects.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let named: Vec<String> = projects
                .iter()
                .take(10)
                .map(|(p, n)| format!("{p} {n}"))
                .collect();
            let _ = writeln!(
                s,
                "  vendored files left out (--keep-vendored keeps them): {}{}",
                joined(&self.vendored),
                if named.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; projects: {}{}",
                        named.join(", "),
                        if projects.len() > 10 { ", …" } else { "" }
                    )
                }
            );
        }
        if !self.scrubbed.is_empty() {
            let _ = writeln!(s, "  replaced: {}", joined(&self.scrubbed));
        }
        if self.nl_control_chars > 0 {
            let _ = writeln!(
                s,
                "  records whose docstring or comments held control characters (written as \
                 escapes): {}",
                self.nl_control_chars
            );
        }
        if self.pragma_comments > 0 {
            let _ = writeln!(
                s,
                "  tool pragmas left out of comments: {}",
                self.pragma_comments
            );
        }
        for (scenario, outcomes) in &self.functions_by_scenario {
            let _ = writeln!(s, "  functions ({scenario}): {}", joined(outcomes));
        }
        for r in &self.packages_with_problems {
            let _ = writeln!(s, "  problems in {} ({}):", r.package, r.path);
            if let Some(e) = &r.error {
                let _ = writeln!(s, "    stopped: {e}");
            }
            for (kind, members) in &r.refused {
                let _ = writeln!(s, "    {kind}: {}", members.join(", "));
            }
            for e in &r.syntax_errors {
                let _ = writeln!(
                    s,
                    "    syntax error: {}:{}: {}{}",
                    e.path,
                    e.line,
                    e.message,
                    if e.errors > 1 {
                        format!(" (and {} more)", e.errors - 1)
                    } else {
                        String::new()
                    }
                );
            }
        }
        if !self.failed_packages.is_empty() {
            let _ = writeln!(
                s,
                "  {} could not be read: {}",
                pytorrent_io::reporter::plural(
                    self.failed_packages.len() as u64,
                    "package",
                    "packages"
                ),
                self.failed_packages.join(", ")
            );
        }
        let _ = writeln!(
            s,
            "  wrote {} under {}",
            pytorrent_io::reporter::plural(self.written.len() as u64, "file", "files"),
            self.out.display()
        );
        s
    }
}
