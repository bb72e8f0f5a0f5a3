//! `pytorrent run CONFIG.toml`: the whole pipeline, stages skipped when up to date, and one
//! HTML report.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use pytorrent_pipeline::{PipelineFile, RunOptions, Stage};

use crate::console::{Console, OutputArgs};
use crate::error::CliError;

#[derive(Args)]
pub struct RunArgs {
    /// A pipeline file (configs/sample.toml): one table per stage, paths relative to it.
    config: PathBuf,
    /// Run folder (default: the file's [pipeline] out).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Start at this stage (earlier outputs are used as they are).
    #[arg(long, value_parser = parse_stage)]
    from: Option<Stage>,
    /// Stop after this stage.
    #[arg(long, value_parser = parse_stage)]
    until: Option<Stage>,
    /// Only these stages (comma-separated).
    #[arg(long, value_delimiter = ',', value_parser = parse_stage)]
    only: Vec<Stage>,
    /// Run the selected stages even when they are up to date.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    output: OutputArgs,
}

fn parse_stage(s: &str) -> Result<Stage, String> {
    s.parse()
}

pub fn run(a: RunArgs) -> Result<ExitCode, CliError> {
    let console = Console::new(&a.output);
    let file = PipelineFile::load(&a.config, a.out.as_deref())?;
    let opts = RunOptions {
        tool: crate::TOOL.to_string(),
        command: std::iter::once("pytorrent".to_string())
            .chain(std::env::args().skip(1))
            .collect::<Vec<_>>()
            .join(" "),
        from: a.from,
        until: a.until,
        only: a.only,
        force: a.force,
    };
    let report = pytorrent_pipeline::run(&file, &opts, &console)?;
    let code = console.summary(&report)?;
    Ok(if report.failed.is_empty() {
        code
    } else {
        ExitCode::from(1)
    })
}
