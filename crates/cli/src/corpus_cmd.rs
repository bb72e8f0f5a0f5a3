//! `pytorrent corpus validate | stats | filter | convert`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use pytorrent_corpus::convert::{ConvertConfig, CorpusFormat};
use pytorrent_corpus::filter::FilterConfig;
use pytorrent_corpus::license::LicenseClass;
use pytorrent_corpus::stats::StatsConfig;
use pytorrent_corpus::validate::ValidateConfig;
use pytorrent_corpus::writer::Layout;
use pytorrent_corpus::{Partition, Partitions};
use pytorrent_io::Compression;

use crate::args::InputArgs;
use crate::console::{Console, OutputArgs};
use crate::error::CliError;

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
    /// Merge the outputs of `extract --num-tasks N` into the corpus one task alone would have
    /// written: exact and near duplicates dropped across tasks, the first in input order kept.
    Dedup(DedupArgs),
}

#[derive(Args)]
pub struct DedupArgs {
    /// The --out the extract tasks shared (holding their task-IIIII-of-NNNNN folders), or
    /// the task folders themselves.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// Also print corpus statistics of the output.
    #[arg(long)]
    stats: bool,
    /// Write into an output folder that another command (or someone) made; only files of the
    /// names this run writes are replaced.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    input: InputArgs,
    /// List at most this many problems in --json output (all are counted).
    #[arg(long, default_value_t = ValidateConfig::new(Default::default()).max_listed)]
    max_listed: usize,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args)]
pub struct StatsArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Package metadata (a Package_Metadata folder, or PyPI / Anaconda JSON files) for
    /// license statistics.
    #[arg(long)]
    metadata: Vec<PathBuf>,
    /// Partitions to count: train, valid, test (comma-separated) or all.
    #[arg(long, default_value = "all")]
    partition: Partitions,
    /// How many packages to list, most records first.
    #[arg(long, default_value_t = StatsConfig::new(Default::default()).top)]
    top: usize,
    /// Also write a self-contained HTML report with plots.
    #[arg(long)]
    report: Option<PathBuf>,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args)]
pub struct FilterArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Output file (one input file; - for stdout), a folder to put that file in, or a folder
    /// mirroring a folder or several inputs.
    #[arg(long)]
    out: PathBuf,
    /// Package metadata, needed for license filters.
    #[arg(long)]
    metadata: Vec<PathBuf>,
    /// Keep packages of these license classes: permissive, copyleft, unknown (comma-separated).
    #[arg(long, value_delimiter = ',')]
    license: Option<Vec<LicenseClass>>,
    /// Keep packages with one of these license ids, e.g. MIT,Apache-2.0,BSD-3-Clause.
    #[arg(long, value_delimiter = ',')]
    spdx: Option<Vec<String>>,
    /// Keep these partitions: train, valid, test (comma-separated) or all.
    #[arg(long, default_value = "all")]
    partition: Partitions,
    /// Keep only these packages (comma-separated).
    #[arg(long, value_delimiter = ',')]
    packages: Option<Vec<String>>,
    /// Keep only the packages listed in this file (one name per line, # comments).
    #[arg(long)]
    packages_file: Option<PathBuf>,
    /// Drop these packages (comma-separated).
    #[arg(long, value_delimiter = ',')]
    exclude_packages: Vec<String>,
    /// Opt-out list: package names, or `package:glob` for files (one a line, # comments).
    #[arg(long)]
    opt_out: Option<PathBuf>,
    /// Keep records whose code has at least this many characters.
    #[arg(long)]
    min_code_chars: Option<u64>,
    /// Keep records whose code has at most this many characters.
    #[arg(long)]
    max_code_chars: Option<u64>,
    /// Write into an output folder that another command (or someone) made; only files of the
    /// names this run writes are replaced.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args)]
pub struct ConvertArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Output file (flat layout; - for stdout) or folder (chunked layouts).
    #[arg(long)]
    out: PathBuf,
    /// flat (one file), pytorrent (<scenario>/<partition>/…_chk_N.jsonl.gz) or codesearchnet
    /// (python/final/jsonl/<partition>/python_<partition>_N.jsonl.gz).
    #[arg(long, default_value = "flat")]
    layout: Layout,
    /// none, gzip or zstd (default: from the output name; gzip for chunked layouts).
    #[arg(long)]
    compression: Option<Compression>,
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
    default_partition: Option<Partition>,
    /// Partitions to keep: train, valid, test (comma-separated) or all.
    #[arg(long, default_value = "all")]
    partition: Partitions,
    /// jsonl, or parquet: data/{train,validation,test}-NNNNN-of-MMMMM.parquet and a dataset
    /// card that datasets.load_dataset(OUT) reads with its splits.
    #[arg(long, default_value = "jsonl")]
    format: CorpusFormat,
    /// Package metadata for the license summary of a Parquet dataset card.
    #[arg(long)]
    metadata: Vec<PathBuf>,
    /// Write into an output folder that another command (or someone) made; only files of the
    /// names this run writes are replaced.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    output: OutputArgs,
}

impl From<&ValidateArgs> for ValidateConfig {
    fn from(a: &ValidateArgs) -> Self {
        ValidateConfig {
            input: a.input.config(),
            max_listed: a.max_listed,
        }
    }
}

impl From<&StatsArgs> for StatsConfig {
    fn from(a: &StatsArgs) -> Self {
        StatsConfig {
            input: a.input.config(),
            metadata: a.metadata.clone(),
            partition: a.partition.clone(),
            top: a.top,
            report: a.report.clone(),
        }
    }
}

impl From<&FilterArgs> for FilterConfig {
    fn from(a: &FilterArgs) -> Self {
        FilterConfig {
            input: a.input.config(),
            out: a.out.clone(),
            metadata: a.metadata.clone(),
            license: a.license.clone(),
            spdx: a.spdx.clone(),
            partition: a.partition.clone(),
            packages: a.packages.clone(),
            packages_file: a.packages_file.clone(),
            exclude_packages: a.exclude_packages.clone(),
            opt_out: a.opt_out.clone(),
            min_code_chars: a.min_code_chars,
            max_code_chars: a.max_code_chars,
            force: a.force,
        }
    }
}

impl From<&ConvertArgs> for ConvertConfig {
    fn from(a: &ConvertArgs) -> Self {
        ConvertConfig {
            input: a.input.config(),
            out: a.out.clone(),
            layout: a.layout,
            compression: a.compression,
            chunk_records: a.chunk_records,
            chunk_bytes: a.chunk_bytes,
            scenario: a.scenario.clone(),
            default_partition: a.default_partition,
            partition: a.partition.clone(),
            format: a.format,
            metadata: a.metadata.clone(),
            force: a.force,
        }
    }
}

pub fn run(cmd: CorpusCommand) -> Result<ExitCode, CliError> {
    match cmd {
        CorpusCommand::Validate(a) => {
            let console = Console::new(&a.output);
            let report = pytorrent_corpus::validate::run(&(&a).into(), &console)?;
            console.summary_of::<pytorrent_corpus::validate::Validate>(&report)
        }
        CorpusCommand::Stats(a) => {
            let console = Console::new(&a.output);
            console.result(&pytorrent_corpus::stats::run(&(&a).into(), &console)?)
        }
        CorpusCommand::Filter(a) => {
            let console = Console::new(&a.output);
            console.summary(&pytorrent_corpus::filter::run(&(&a).into(), &console)?)
        }
        CorpusCommand::Convert(a) => {
            let console = Console::new(&a.output);
            console.summary(&pytorrent_corpus::convert::run(&(&a).into(), &console)?)
        }
        CorpusCommand::Dedup(a) => {
            let console = Console::new(&a.output);
            let cfg = pytorrent_extract::run::MergeConfig {
                inputs: a.inputs.clone(),
                out: a.out.clone(),
                stats: a.stats,
                force: a.force,
            };
            let report = pytorrent_extract::run::merge(&cfg, &console)?;
            crate::extract_cmd::print_report(&report, &a.output)
        }
    }
}
