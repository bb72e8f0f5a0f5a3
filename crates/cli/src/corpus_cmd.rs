//! `pytorrent corpus validate | stats | filter | convert`.

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
    /// De-duplicate the outputs of `extract --num-tasks N` across tasks (exact and near
    /// duplicates, the first in input order kept): in one process, or as stages of array jobs
    /// (--stage buckets | clusters | write).
    Dedup(DedupArgs),
}

#[derive(Args)]
pub struct DedupArgs {
    #[command(flatten)]
    config: pytorrent_extract::staged::MergeConfig,
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
            use pytorrent_extract::staged::{Outcome, StageReport};
            match pytorrent_extract::staged::dedup(&a.config, &console)? {
                Outcome::All(report) => crate::extract_cmd::print_report(&report, &a.output),
                Outcome::Stage {
                    report: StageReport::Write(report),
                    ..
                } => crate::extract_cmd::print_report(&report, &a.output),
                Outcome::Stage { report, .. } => console.summary(&report),
            }
        }
    }
}
