//! `pytorrent corpus validate | stats | filter | convert`.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use pytorrent_corpus::filter::{FilterCounts, FilterSpec};
use pytorrent_corpus::license::LicenseClass;
use pytorrent_corpus::metadata::{normalize_name, MetadataIndex};
use pytorrent_corpus::read::effective_partition;
use pytorrent_corpus::stats::corpus_stats;
use pytorrent_corpus::writer::{with_partition, CorpusWriter, Layout, Target, WriterOptions};
use pytorrent_corpus::{discover, read_corpus, Item, OnError, Partition, Problem, ReadOptions};
use pytorrent_io::Compression;
use serde::Serialize;

use crate::output::{print_json, OutputArgs};
use crate::UsageError;

#[derive(Subcommand)]
pub enum CorpusCommand {
    /// Check every record; print every problem as `file:line: what`, then a summary.
    Validate(ValidateArgs),
    /// Counts, length percentiles, docstring share, duplicates and (with --metadata) licenses.
    Stats(StatsArgs),
    /// Keep records by license, partition, package or code length; output keeps the input layout.
    Filter(FilterArgs),
    /// Change layout or compression (one big JSONL ⇄ PyTorrent / CodeSearchNet chunked layout).
    Convert(ConvertArgs),
}

/// Inputs and error policy, shared by every corpus command.
#[derive(Args, Debug, Clone)]
pub struct ReadArgs {
    /// Corpus files (.jsonl, .jsonl.gz, .jsonl.zst), folders (PyTorrent or CodeSearchNet
    /// layout), or - for standard input.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// What to do with a bad line: stop (exit 1) or skip it into the quarantine file.
    #[arg(long, default_value = "fail", value_parser = ["fail", "skip"])]
    pub on_error: String,
    /// Where skipped lines go, verbatim, with file, line and reason (TSV). Default:
    /// `<out>.rejected.tsv`, or `pytorrent-rejected.tsv` for commands without --out.
    #[arg(long)]
    pub quarantine: Option<PathBuf>,
    /// Lines longer than this many bytes are rejected without being held in memory.
    #[arg(long, default_value_t = 256 << 20)]
    pub max_line_bytes: usize,
    /// Bytes of input per parallel work unit (memory ≈ a few times this).
    #[arg(long, default_value_t = 4 << 20, hide = true)]
    pub read_chunk_bytes: usize,
    #[command(flatten)]
    pub output: OutputArgs,
}

impl ReadArgs {
    pub fn options(&self, out: Option<&Path>) -> ReadOptions {
        let on_error: OnError = self.on_error.parse().expect("clap checked the value");
        let quarantine = match on_error {
            OnError::Fail => None,
            OnError::Skip => Some(self.quarantine.clone().unwrap_or_else(|| match out {
                Some(o) if o != Path::new("-") => {
                    let mut s = o.as_os_str().to_owned();
                    s.push(".rejected.tsv");
                    PathBuf::from(s)
                }
                _ => PathBuf::from("pytorrent-rejected.tsv"),
            })),
        };
        ReadOptions {
            on_error,
            max_line_bytes: self.max_line_bytes,
            chunk_bytes: self.read_chunk_bytes,
            quarantine,
        }
    }
}

/// `--partition train|valid|test|all` (comma-separated for several).
pub fn parse_partitions(s: &str) -> Result<Option<Vec<Partition>>, UsageError> {
    if s == "all" {
        return Ok(None);
    }
    s.split(',')
        .map(|p| {
            Partition::parse(p.trim()).ok_or_else(|| {
                UsageError(format!(
                    "unknown partition '{p}' (expected train, valid, test or all)"
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

#[derive(Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    read: ReadArgs,
    /// List at most this many problems in --json output (all are counted).
    #[arg(long, default_value_t = 1000)]
    max_listed: usize,
}

#[derive(Args)]
pub struct StatsArgs {
    #[command(flatten)]
    read: ReadArgs,
    /// Package metadata (a Package_Metadata folder, or PyPI / Anaconda JSON files) for
    /// license statistics.
    #[arg(long)]
    metadata: Vec<PathBuf>,
    /// Partitions to count: train, valid, test (comma-separated) or all.
    #[arg(long, default_value = "all")]
    partition: String,
    /// How many packages to list, most records first.
    #[arg(long, default_value_t = 20)]
    top: usize,
    /// Also write a self-contained HTML report with plots.
    #[arg(long)]
    report: Option<PathBuf>,
}

#[derive(Args)]
pub struct FilterArgs {
    #[command(flatten)]
    read: ReadArgs,
    /// Output file (single input file) or folder (folder or several inputs).
    #[arg(long)]
    out: PathBuf,
    /// Package metadata, needed for license filters.
    #[arg(long)]
    metadata: Vec<PathBuf>,
    /// Keep packages of these license classes: permissive, copyleft, unknown (comma-separated).
    #[arg(long)]
    license: Option<String>,
    /// Keep packages with one of these license ids, e.g. MIT,Apache-2.0,BSD-3-Clause.
    #[arg(long)]
    spdx: Option<String>,
    /// Keep these partitions: train, valid, test (comma-separated) or all.
    #[arg(long, default_value = "all")]
    partition: String,
    /// Keep only these packages (comma-separated).
    #[arg(long)]
    packages: Option<String>,
    /// Keep only the packages listed in this file (one name per line, # comments).
    #[arg(long)]
    packages_file: Option<PathBuf>,
    /// Drop these packages (comma-separated).
    #[arg(long)]
    exclude_packages: Option<String>,
    /// Opt-out list: package names, or `package:glob` for files (one a line, # comments).
    #[arg(long)]
    opt_out: Option<PathBuf>,
    #[arg(long)]
    min_code_chars: Option<u64>,
    #[arg(long)]
    max_code_chars: Option<u64>,
}

#[derive(Args)]
pub struct ConvertArgs {
    #[command(flatten)]
    read: ReadArgs,
    /// Output file (flat layout; - for stdout) or folder (chunked layouts).
    #[arg(long)]
    out: PathBuf,
    /// flat (one file), pytorrent (<scenario>/<partition>/…_chk_N.jsonl.gz) or codesearchnet
    /// (python/final/jsonl/<partition>/python_<partition>_N.jsonl.gz).
    #[arg(long, default_value = "flat")]
    layout: String,
    /// none, gzip or zstd (default: from the output name; gzip for chunked layouts).
    #[arg(long)]
    compression: Option<String>,
    /// Records per chunk file (chunked layouts; default 30000 unless --chunk-bytes is given).
    #[arg(long)]
    chunk_records: Option<u64>,
    /// Uncompressed bytes per chunk file (chunked layouts).
    #[arg(long)]
    chunk_bytes: Option<u64>,
    /// Scenario folder name for the pytorrent layout (default: the input's, else docstrings).
    #[arg(long)]
    scenario: Option<String>,
    /// Partition for records that have none, in a folder that names none.
    #[arg(long)]
    default_partition: Option<String>,
    /// Partitions to keep: train, valid, test (comma-separated) or all.
    #[arg(long, default_value = "all")]
    partition: String,
}

pub fn run(cmd: CorpusCommand) -> Result<ExitCode> {
    match cmd {
        CorpusCommand::Validate(a) => validate(a),
        CorpusCommand::Stats(a) => stats(a),
        CorpusCommand::Filter(a) => filter(a),
        CorpusCommand::Convert(a) => convert(a),
    }
}

#[derive(Serialize)]
struct ProblemJson<'a> {
    file: &'a str,
    line: u64,
    kind: &'static str,
    message: &'a str,
}

fn validate(a: ValidateArgs) -> Result<ExitCode> {
    let files = discover(&a.read.inputs)?;
    // Validation reports every problem, so it always reads on past them.
    let mut opts = a.read.options(None);
    opts.on_error = OnError::Skip;
    if a.read.quarantine.is_none() {
        opts.quarantine = None;
    }
    let out = &a.read.output;
    let bar = out.progress("validate");
    let mut listed: Vec<Problem> = Vec::new();
    let summary = read_corpus(
        &files,
        &opts,
        &bar,
        |_, _, _| (),
        |item| {
            if let Item::Rejected { problem } = item {
                if !out.json {
                    eprintln!("{problem}");
                }
                if listed.len() < a.max_listed {
                    listed.push(problem.clone());
                }
            }
            Ok(())
        },
    )?;
    let bad = summary.rejected_total();
    if out.json {
        let problems: Vec<ProblemJson> = listed
            .iter()
            .map(|p| ProblemJson {
                file: &p.path,
                line: p.line,
                kind: p.kind.name(),
                message: &p.message,
            })
            .collect();
        print_json(
            &serde_json::json!({ "valid": bad == 0, "summary": summary, "problems": problems }),
        )?;
    }
    out.log(format!(
        "{}: {} files, {} records, {} blank lines, {} problems",
        if bad == 0 { "valid" } else { "INVALID" },
        summary.files,
        summary.records,
        summary.blank_lines,
        bad
    ));
    for (k, n) in &summary.rejected {
        out.log(format!("  {:<16}{n}", k.name()));
    }
    Ok(if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub fn load_metadata(paths: &[PathBuf], out: &OutputArgs) -> Result<Option<MetadataIndex>> {
    if paths.is_empty() {
        return Ok(None);
    }
    let index = MetadataIndex::load(paths)?;
    out.log(format!("metadata: {} packages", index.len()));
    Ok(Some(index))
}

fn report_skips(out: &OutputArgs, summary: &pytorrent_corpus::ReadSummary) {
    if summary.rejected_total() > 0 {
        let kinds: Vec<String> = summary
            .rejected
            .iter()
            .map(|(k, n)| format!("{} {n}", k.name()))
            .collect();
        out.log(format!(
            "skipped {} bad lines ({})",
            summary.rejected_total(),
            kinds.join(", ")
        ));
        if let Some(q) = &summary.quarantine {
            out.log(format!("  rejected lines written to {}", q.display()));
        }
    }
}

fn stats(a: StatsArgs) -> Result<ExitCode> {
    let files = discover(&a.read.inputs)?;
    let partitions = parse_partitions(&a.partition)?;
    let metadata = load_metadata(&a.metadata, &a.read.output)?;
    let opts = a.read.options(None);
    let bar = a.read.output.progress("stats");
    let stats = corpus_stats(
        &files,
        &opts,
        &bar,
        partitions.as_deref(),
        a.top,
        metadata.as_ref(),
    )?;
    if let Some(path) = &a.report {
        let title = format!(
            "pytorrent corpus stats: {}",
            a.read
                .inputs
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let html =
            pytorrent_corpus::report::html_report(&stats, &title).map_err(anyhow::Error::msg)?;
        pytorrent_io::atomic::write_atomic(path, html.as_bytes())?;
        a.read
            .output
            .log(format!("report written to {}", path.display()));
    }
    if a.read.output.json {
        print_json(&stats)?;
    } else {
        print!("{}", stats.to_table());
    }
    Ok(ExitCode::SUCCESS)
}

fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|x| !x.is_empty())
}

fn read_package_file(path: &Path) -> Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

fn filter(a: FilterArgs) -> Result<ExitCode> {
    let files = discover(&a.read.inputs)?;
    let out = &a.read.output;
    let mut spec = FilterSpec {
        partitions: parse_partitions(&a.partition)?,
        min_code_chars: a.min_code_chars,
        max_code_chars: a.max_code_chars,
        ..FilterSpec::default()
    };
    if let Some(l) = &a.license {
        spec.license_classes = Some(
            split_list(l)
                .map(|c| {
                    LicenseClass::parse(c).ok_or_else(|| {
                        UsageError(format!("unknown license class '{c}' (expected permissive, copyleft or unknown)"))
                    })
                })
                .collect::<Result<_, _>>()?,
        );
    }
    if let Some(s) = &a.spdx {
        spec.license_ids = Some(split_list(s).map(str::to_owned).collect());
    }
    let mut keep: Option<HashSet<String>> = None;
    if let Some(p) = &a.packages {
        keep.get_or_insert_default()
            .extend(split_list(p).map(normalize_name));
    }
    if let Some(f) = &a.packages_file {
        keep.get_or_insert_default()
            .extend(read_package_file(f)?.iter().map(|n| normalize_name(n)));
    }
    spec.packages = keep;
    if let Some(x) = &a.exclude_packages {
        spec.exclude_packages = split_list(x).map(normalize_name).collect();
    }
    if let Some(p) = &a.opt_out {
        spec.opt_out = Some(std::sync::Arc::new(pytorrent_corpus::optout::OptOut::load(
            p,
        )?));
    }
    let metadata = load_metadata(&a.metadata, out)?;
    spec.check(metadata.as_ref())?;

    // One input file → one output file; a folder or several inputs → a folder mirroring them.
    let single_file = a.read.inputs.len() == 1 && !a.read.inputs[0].is_dir();
    let mut writer = CorpusWriter::new(
        &a.out,
        WriterOptions {
            layout: Layout::Mirror,
            compression: None,
            chunk_records: None,
            chunk_bytes: None,
        },
    )?;
    let opts = a.read.options(Some(&a.out));
    let bar = out.progress("filter");
    let mut counts = FilterCounts::default();
    let mut current: Option<Target> = None;
    let summary = read_corpus(
        &files,
        &opts,
        &bar,
        |file, _, rec| spec.decide(&rec, file, metadata.as_ref()),
        |item| {
            if let Item::Record { file, line, value } = item {
                let target = Target::Mirror {
                    rel: if single_file {
                        PathBuf::new()
                    } else {
                        file.rel.clone()
                    },
                };
                if current.as_ref() != Some(&target) {
                    writer.touch(&target)?;
                    current = Some(target.clone());
                }
                if value.is_ok() {
                    writer.write(&target, line.bytes)?;
                }
                counts.add(value);
            }
            Ok(())
        },
    )?;
    let written = writer.finish()?;
    report_skips(out, &summary);
    let dropped: u64 = counts.dropped.values().sum();
    out.log(format!(
        "kept {} of {} records into {} files under {}",
        counts.kept,
        counts.kept + dropped,
        written.len(),
        a.out.display()
    ));
    for (reason, n) in &counts.dropped {
        out.log(format!(
            "  dropped ({}): {n}",
            serde_json::to_value(reason)?.as_str().unwrap_or("?")
        ));
    }
    if out.json {
        print_json(&serde_json::json!({ "read": summary, "filter": counts, "written": written }))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn convert(a: ConvertArgs) -> Result<ExitCode> {
    let files = discover(&a.read.inputs)?;
    let out = &a.read.output;
    let layout: Layout = a.layout.parse().map_err(UsageError)?;
    if layout == Layout::Mirror {
        return Err(
            UsageError("convert writes flat, pytorrent or codesearchnet layouts".into()).into(),
        );
    }
    let compression: Option<Compression> = a
        .compression
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(UsageError)?;
    let default_partition = a
        .default_partition
        .as_deref()
        .map(|p| Partition::parse(p).ok_or_else(|| UsageError(format!("unknown partition '{p}'"))))
        .transpose()?;
    let partitions = parse_partitions(&a.partition)?;
    let chunked = layout != Layout::Flat;
    let chunk_records = match (chunked, a.chunk_records, a.chunk_bytes) {
        (true, None, None) => Some(30_000),
        (_, r, _) => r,
    };
    let mut writer = CorpusWriter::new(
        &a.out,
        WriterOptions {
            layout: layout.clone(),
            compression,
            chunk_records,
            chunk_bytes: a.chunk_bytes,
        },
    )?;
    let opts = a.read.options(Some(&a.out));
    let bar = out.progress("convert");
    let mut per_partition: BTreeMap<String, u64> = BTreeMap::new();
    let mut dropped_partition = 0u64;
    let summary = read_corpus(
        &files,
        &opts,
        &bar,
        |file, _, rec| {
            (
                rec.partition.is_some(),
                effective_partition(&rec, file).or(default_partition),
            )
        },
        |item| {
            let Item::Record {
                file,
                line,
                value: (has_field, partition),
            } = item
            else {
                return Ok(());
            };
            if let (Some(want), Some(p)) = (&partitions, partition) {
                if !want.contains(&p) {
                    dropped_partition += 1;
                    return Ok(());
                }
            }
            let target = if chunked {
                let Some(p) = partition else {
                    return Err(pytorrent_corpus::Error::Data(Problem {
                        path: file.display(),
                        line: line.line_no,
                        kind: pytorrent_corpus::ProblemKind::MissingField,
                        message: "record has no partition and its folder names none (give --default-partition)".into(),
                    }));
                };
                let scenario = a
                    .scenario
                    .clone()
                    .or_else(|| file.scenario.clone())
                    .unwrap_or_else(|| "docstrings".into());
                Target::Partitioned {
                    scenario,
                    partition: p,
                }
            } else {
                Target::Flat
            };
            *per_partition
                .entry(partition.map_or("none", |p| p.as_str()).into())
                .or_default() += 1;
            // A flat file cannot say which folder a record came from: write the partition in.
            match (chunked, has_field, partition) {
                (false, false, Some(p)) => {
                    let bytes = with_partition(line.bytes, p).expect("the line parsed as a record");
                    writer.write(&target, &bytes)
                }
                _ => writer.write(&target, line.bytes),
            }
        },
    )?;
    let written = writer.finish()?;
    report_skips(out, &summary);
    let total: u64 = per_partition.values().sum();
    out.log(format!(
        "wrote {total} records into {} files",
        written.len()
    ));
    if dropped_partition > 0 {
        out.log(format!(
            "  left out (other partitions): {dropped_partition}"
        ));
    }
    if out.json {
        print_json(
            &serde_json::json!({ "read": summary, "records_per_partition": per_partition, "written": written }),
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
