//! `pytorrent extract`: Python packages (sdists, wheels, folders) → a PyTorrent corpus.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use pytorrent_corpus::writer::{CorpusWriter, Layout, Target, WriterOptions};
use pytorrent_extract::package::{extract_package, ExtractOptions, Filters, PackageReport, Split};
use pytorrent_extract::units::Scenario;
use rayon::prelude::*;
use serde::Serialize;

use crate::output::{print_json, OutputArgs};
use crate::UsageError;

#[derive(Args)]
pub struct ExtractArgs {
    /// Package archives (.tar.gz, .tgz, .tar.bz2, .zip, .whl, .conda), package folders, or folders of
    /// archives (a folder holding archives is read as one package per archive).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Output folder, in PyTorrent's layout: <out>/<scenario>/<partition>/…_chk_N.jsonl.gz.
    #[arg(long)]
    out: PathBuf,
    /// Scenarios, comma-separated: docstrings, comments, both.
    #[arg(long, default_value = "docstrings")]
    scenario: String,
    /// Percent of packages in train and valid (the rest is test), by a hash of the name.
    #[arg(long, default_value = "80,10")]
    split: String,
    /// Records per output chunk file.
    #[arg(long, default_value_t = 30_000)]
    chunk_records: u64,
    /// Keep test files (test folders, test_*.py, *_test.py, conftest.py).
    #[arg(long)]
    keep_tests: bool,
    /// Keep __dunder__ methods.
    #[arg(long)]
    keep_dunder: bool,
    /// Keep functions whose body is only pass, ... and raise.
    #[arg(long)]
    keep_trivial: bool,
    /// Fewest non-blank lines of code a record needs.
    #[arg(long, default_value_t = 3)]
    min_code_lines: usize,
    /// Fewest words of natural language a record needs.
    #[arg(long, default_value_t = 3)]
    min_nl_words: usize,
    /// Opt-out list: package names, or `package:glob` for files (one a line, # comments).
    #[arg(long)]
    opt_out: Option<PathBuf>,
    /// Keep secrets and e-mail addresses (by default replaced by <SECRET> and <EMAIL>).
    #[arg(long)]
    keep_secrets: bool,
    /// Keep exact duplicates (same code tokens) across packages.
    #[arg(long)]
    keep_duplicates: bool,
    /// Jaccard similarity of code-token 3-shingles (MinHash estimate) at or above which a
    /// record is a near duplicate of an earlier one and dropped.
    #[arg(long, default_value_t = 0.85)]
    near_dup_threshold: f64,
    /// Keep near duplicates.
    #[arg(long)]
    keep_near_duplicates: bool,
    /// Also print corpus statistics of the output (with --metadata, licenses too).
    #[arg(long)]
    stats: bool,
    /// Package metadata for --stats.
    #[arg(long)]
    metadata: Vec<PathBuf>,
    #[command(flatten)]
    output: OutputArgs,
}

const ARCHIVE_SUFFIXES: &[&str] = &[".tar.gz", ".tgz", ".tar.bz2", ".zip", ".whl", ".conda"];

fn is_archive(p: &Path) -> bool {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    p.is_file() && ARCHIVE_SUFFIXES.iter().any(|s| name.ends_with(s))
}

/// Inputs → packages, in a stable order.
fn packages(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for input in inputs {
        if !input.exists() {
            return Err(UsageError(format!("{}: no such file or folder", input.display())).into());
        }
        if input.is_dir() {
            let mut archives: Vec<PathBuf> = std::fs::read_dir(input)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| is_archive(p))
                .collect();
            if archives.is_empty() {
                out.push(input.clone());
            } else {
                archives.sort();
                out.extend(archives);
            }
        } else {
            out.push(input.clone());
        }
    }
    Ok(out)
}

#[derive(Serialize, Default)]
struct Summary {
    packages: u64,
    python_files: u64,
    files_with_syntax_errors: u64,
    files_decoded_with_replacement: u64,
    functions: u64,
    records: BTreeMap<String, BTreeMap<String, u64>>,
    refused_members: BTreeMap<String, u64>,
    filtered: BTreeMap<String, u64>,
    opted_out_packages: Vec<String>,
    opted_out_files: u64,
    /// Secrets and e-mail addresses replaced, by kind.
    scrubbed: BTreeMap<String, u64>,
    /// Records dropped as duplicates of an earlier one, by scenario and kind.
    duplicates: BTreeMap<String, BTreeMap<String, u64>>,
    packages_with_problems: Vec<PackageReport>,
    written: Vec<pytorrent_corpus::writer::WrittenFile>,
}

pub fn run(a: ExtractArgs) -> Result<ExitCode> {
    let scenarios: Vec<Scenario> = a
        .scenario
        .split(',')
        .map(|s| {
            Scenario::parse(s.trim()).ok_or_else(|| {
                UsageError(format!(
                    "unknown scenario '{s}' (expected docstrings, comments or both)"
                ))
            })
        })
        .collect::<Result<_, _>>()?;
    let split: Vec<u64> = a
        .split
        .split(',')
        .map(|x| {
            x.trim()
                .parse::<u64>()
                .map_err(|_| UsageError(format!("--split: not a percentage: '{x}'")))
        })
        .collect::<Result<_, _>>()?;
    let [train, valid] = split[..] else {
        return Err(UsageError(
            "--split takes two percentages: train,valid (test is the rest)".into(),
        )
        .into());
    };
    if train + valid > 100 {
        return Err(UsageError("--split: train + valid must be at most 100".into()).into());
    }
    let filters = Filters {
        test_paths: !a.keep_tests,
        dunder: !a.keep_dunder,
        trivial_bodies: !a.keep_trivial,
        min_code_lines: a.min_code_lines,
        min_nl_words: a.min_nl_words,
    };
    let opt_out = a
        .opt_out
        .as_deref()
        .map(pytorrent_corpus::optout::OptOut::load)
        .transpose()?
        .map(std::sync::Arc::new);
    let opts = ExtractOptions {
        scenarios,
        split: Split { train, valid },
        limits: Default::default(),
        filters,
        opt_out,
        scrub: !a.keep_secrets,
    };
    let pkgs = packages(&a.inputs)?;
    let out = &a.output;
    let bar = out.count_progress("extract", pkgs.len() as u64, "packages");
    let mut writer = CorpusWriter::new(
        &a.out,
        WriterOptions {
            layout: Layout::PyTorrent,
            compression: None,
            chunk_records: Some(a.chunk_records),
            chunk_bytes: None,
        },
    )?;
    if !(0.0..=1.0).contains(&a.near_dup_threshold) {
        return Err(UsageError("--near-dup-threshold must be between 0 and 1".into()).into());
    }
    let dedup = pytorrent_extract::dedup::DedupOptions {
        exact: !a.keep_duplicates,
        near_threshold: (!a.keep_near_duplicates).then_some(a.near_dup_threshold),
        shingle: 3,
    };
    // One de-duplicator per scenario: the same function is expected once in each.
    let mut dedupers: BTreeMap<&'static str, pytorrent_extract::dedup::Deduper> = BTreeMap::new();
    let mut summary = Summary::default();
    // Packages in parallel, a batch at a time (bounded memory), written in input order.
    for batch in pkgs.chunks(rayon::current_num_threads() * 4) {
        let results: Vec<_> = batch
            .par_iter()
            .map(|p| extract_package(p, &opts))
            .collect();
        for (outputs, report) in results {
            summary.packages += 1;
            summary.python_files += report.python_files;
            summary.files_with_syntax_errors += report.files_with_syntax_errors;
            summary.files_decoded_with_replacement += report.files_decoded_with_replacement;
            summary.functions += report.functions;
            if report.opted_out {
                summary.opted_out_packages.push(report.package.clone());
            }
            summary.opted_out_files += report.opted_out_files;
            for (kind, n) in &report.scrubbed {
                *summary.scrubbed.entry(kind.clone()).or_default() += n;
            }
            for (reason, n) in &report.filtered {
                *summary.filtered.entry(reason.clone()).or_default() += n;
            }
            for (kind, members) in &report.refused {
                *summary.refused_members.entry(kind.clone()).or_default() += members.len() as u64;
            }
            for o in outputs {
                let deduper = dedupers
                    .entry(o.scenario.name())
                    .or_insert_with(|| pytorrent_extract::dedup::Deduper::new(dedup.clone()));
                if let Some(kind) = deduper.check(&o.record.code_tokens) {
                    let kind = match kind {
                        pytorrent_extract::dedup::Duplicate::Exact => "exact",
                        pytorrent_extract::dedup::Duplicate::Near => "near",
                    };
                    *summary
                        .duplicates
                        .entry(o.scenario.name().into())
                        .or_default()
                        .entry(kind.into())
                        .or_default() += 1;
                    continue;
                }
                let target = Target::Partitioned {
                    scenario: o.scenario.name().into(),
                    partition: o.partition,
                };
                writer.write(&target, &serde_json::to_vec(&o.record)?)?;
                *summary
                    .records
                    .entry(o.scenario.name().into())
                    .or_default()
                    .entry(o.partition.as_str().into())
                    .or_default() += 1;
            }
            if report.has_problems() {
                summary.packages_with_problems.push(report);
            }
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    summary.written = writer.finish()?;
    if !out.quiet {
        eprintln!(
            "extracted {} packages: {} Python files ({} with syntax errors, {} decoded with replacement), {} functions",
            summary.packages,
            summary.python_files,
            summary.files_with_syntax_errors,
            summary.files_decoded_with_replacement,
            summary.functions
        );
        for (scenario, parts) in &summary.records {
            let p: Vec<String> = parts.iter().map(|(k, v)| format!("{k} {v}")).collect();
            eprintln!("  {scenario}: {}", p.join(", "));
        }
        if !summary.filtered.is_empty() {
            let f: Vec<String> = summary
                .filtered
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            eprintln!("  left out by filters: {}", f.join(", "));
        }
        if !summary.opted_out_packages.is_empty() || summary.opted_out_files > 0 {
            eprintln!(
                "  opted out: {} packages ({}), {} files",
                summary.opted_out_packages.len(),
                summary.opted_out_packages.join(", "),
                summary.opted_out_files
            );
        }
        if !summary.scrubbed.is_empty() {
            let k: Vec<String> = summary
                .scrubbed
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            eprintln!("  replaced: {}", k.join(", "));
        }
        for (scenario, kinds) in &summary.duplicates {
            let k: Vec<String> = kinds.iter().map(|(k, v)| format!("{k} {v}")).collect();
            eprintln!("  duplicates dropped ({scenario}): {}", k.join(", "));
        }
        for r in &summary.packages_with_problems {
            eprintln!("  problems in {} ({}):", r.package, r.path);
            if let Some(e) = &r.error {
                eprintln!("    stopped: {e}");
            }
            for (kind, members) in &r.refused {
                eprintln!("    {kind}: {}", members.join(", "));
            }
        }
        eprintln!(
            "  wrote {} files under {}",
            summary.written.len(),
            a.out.display()
        );
    }
    if a.output.json {
        print_json(&summary)?;
    }
    if a.stats {
        let files = pytorrent_corpus::discover(std::slice::from_ref(&a.out))?;
        let metadata = crate::corpus_cmd::load_metadata(&a.metadata, out)?;
        let opts = pytorrent_corpus::ReadOptions::default();
        let no_bar = pytorrent_corpus::read::NoProgress;
        let stats = pytorrent_corpus::stats::corpus_stats(
            &files,
            &opts,
            &no_bar,
            None,
            20,
            metadata.as_ref(),
        )?;
        print!("{}", stats.to_table());
    }
    Ok(ExitCode::SUCCESS)
}
