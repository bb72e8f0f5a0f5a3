//! `pytorrent corpus validate | stats | filter | convert`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use pytorrent_corpus::convert::ConvertConfig;
use pytorrent_corpus::filter::FilterConfig;
use pytorrent_corpus::stats::StatsConfig;
use pytorrent_corpus::validate::ValidateConfig;

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
    config: ValidateConfig,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args)]
pub struct StatsArgs {
    #[command(flatten)]
    config: StatsConfig,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args)]
pub struct FilterArgs {
    #[command(flatten)]
    config: FilterConfig,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args)]
pub struct ConvertArgs {
    #[command(flatten)]
    config: ConvertConfig,
    #[command(flatten)]
    output: OutputArgs,
}

pub fn run(cmd: CorpusCommand) -> Result<ExitCode, CliError> {
    match cmd {
        CorpusCommand::Validate(a) => {
            let console = Console::new(&a.output);
            let report = pytorrent_corpus::validate::run(&a.config, &console)?;
            console.summary_of::<pytorrent_corpus::validate::Validate>(&report)
        }
        CorpusCommand::Stats(a) => {
            let console = Console::new(&a.output);
            console.result(&pytorrent_corpus::stats::run(&a.config, &console)?)
        }
        CorpusCommand::Filter(a) => {
            let console = Console::new(&a.output);
            console.summary(&pytorrent_corpus::filter::run(&a.config, &console)?)
        }
        CorpusCommand::Convert(a) => {
            let console = Console::new(&a.output);
            console.summary(&pytorrent_corpus::convert::run(&a.config, &console)?)
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
