//! `pytorrent extract`: Python packages (sdists, wheels, folders) → a PyTorrent corpus.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use pytorrent_extract::package::Split;
use pytorrent_extract::units::Scenario;
use pytorrent_extract::ExtractConfig;

use crate::console::{print_json, write_stdout, Console, OutputArgs};
use crate::error::CliError;

fn defaults() -> ExtractConfig {
    ExtractConfig::new(Vec::new(), PathBuf::new())
}

#[derive(Args)]
pub struct ExtractArgs {
    /// Package archives (.tar.gz, .tgz, .tar.bz2, .zip, .whl, .conda), package folders, or folders of
    /// archives (a folder holding archives is read as one package per archive).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Output folder, in PyTorrent's layout: <out>/<scenario>/<partition>/…_chk_N.jsonl.gz
    /// (a task of several: <out>/task-IIIII-of-NNNNN/…).
    #[arg(long)]
    out: PathBuf,
    /// Scenarios, comma-separated: docstrings, comments, both.
    #[arg(long, value_delimiter = ',', default_value = "docstrings")]
    scenario: Vec<Scenario>,
    /// Percent of packages in train and valid (the rest is test), by a hash of the name.
    #[arg(long, default_value = "80,10")]
    split: Split,
    /// Records per output chunk file.
    #[arg(long, default_value_t = defaults().chunk_records)]
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
    #[arg(long, default_value_t = defaults().min_code_lines)]
    min_code_lines: usize,
    /// Fewest words of natural language a record needs.
    #[arg(long, default_value_t = defaults().min_nl_words)]
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
    #[arg(long, default_value_t = defaults().near_dup_threshold)]
    near_dup_threshold: f64,
    /// Keep near duplicates.
    #[arg(long)]
    keep_near_duplicates: bool,
    /// Also print corpus statistics of the output (with --metadata, licenses too).
    #[arg(long)]
    stats: bool,
    /// Package metadata for --stats (default: a Package_Metadata folder in or beside an input
    /// folder, as `fetch` writes it).
    #[arg(long)]
    metadata: Vec<PathBuf>,
    /// A package that cannot be read as a whole: fail (exit 1 once all are done) or skip.
    #[arg(long, default_value = "fail")]
    on_error: pytorrent_corpus::OnError,
    /// jsonl (PyTorrent's layout), or parquet: the Hugging Face layout with a dataset card, a
    /// config per scenario.
    #[arg(long, default_value = "jsonl")]
    format: pytorrent_corpus::convert::CorpusFormat,
    /// Continue a killed run of the same settings in --out from its journal (the output is
    /// byte-identical to an uninterrupted run's).
    #[arg(long)]
    resume: bool,
    /// Split the packages among N tasks by a hash of the package name (default:
    /// SLURM_ARRAY_TASK_COUNT); `pytorrent corpus dedup` merges the task outputs.
    #[arg(long)]
    num_tasks: Option<usize>,
    /// This task's index, 0-based (default: Slurm's or a Kubernetes Indexed Job's). Tasks
    /// share one --out: each writes its own task-IIIII-of-NNNNN/ folder in it.
    #[arg(long)]
    task_index: Option<usize>,
    /// Write into an output folder that another command (or someone) made; only files of the
    /// names this run writes are replaced.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    output: OutputArgs,
}

impl From<&ExtractArgs> for ExtractConfig {
    fn from(a: &ExtractArgs) -> Self {
        ExtractConfig {
            inputs: a.inputs.clone(),
            out: a.out.clone(),
            scenario: a.scenario.clone(),
            split: a.split,
            chunk_records: a.chunk_records,
            keep_tests: a.keep_tests,
            keep_dunder: a.keep_dunder,
            keep_trivial: a.keep_trivial,
            min_code_lines: a.min_code_lines,
            min_nl_words: a.min_nl_words,
            opt_out: a.opt_out.clone(),
            keep_secrets: a.keep_secrets,
            keep_duplicates: a.keep_duplicates,
            near_dup_threshold: a.near_dup_threshold,
            keep_near_duplicates: a.keep_near_duplicates,
            stats: a.stats,
            metadata: a.metadata.clone(),
            on_error: a.on_error,
            format: a.format,
            resume: a.resume,
            num_tasks: a.num_tasks,
            task_index: a.task_index,
            force: a.force,
        }
    }
}

pub fn run(a: ExtractArgs) -> Result<ExitCode, CliError> {
    let console = Console::new(&a.output);
    let report = pytorrent_extract::run::run(&(&a).into(), &console)?;
    print_report(&report, &a.output)
}

/// Prints an extract report (also `corpus dedup`'s): the summary, the JSON, the statistics.
pub fn print_report(
    report: &pytorrent_extract::ExtractReport,
    output: &OutputArgs,
) -> Result<ExitCode, CliError> {
    if !output.quiet {
        eprint!("{}", report.summary());
    }
    if output.json {
        print_json(report)?;
    } else if let Some(stats) = &report.stats {
        write_stdout(&stats.to_table())?;
    }
    Ok(crate::console::gate::<pytorrent_extract::Extract>(report))
}
