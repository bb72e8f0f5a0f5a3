//! `pytorrent extract`: Python packages (sdists, wheels, folders) → a PyTorrent corpus.

use std::process::ExitCode;

use clap::Args;
use pytorrent_extract::ExtractConfig;

use crate::console::{print_json, write_stdout, Console, OutputArgs};
use crate::error::CliError;

#[derive(Args)]
pub struct ExtractArgs {
    #[command(flatten)]
    config: ExtractConfig,
    #[command(flatten)]
    output: OutputArgs,
}

pub fn run(a: ExtractArgs) -> Result<ExitCode, CliError> {
    let console = Console::new(&a.output);
    let report = pytorrent_extract::run::run(&a.config, &console)?;
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
