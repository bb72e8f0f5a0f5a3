//! `pytorrent fetch`: package names → metadata documents and release archives from the index
//! pip is configured with.

use std::process::ExitCode;

use clap::Args;
use pytorrent_fetch::FetchConfig;

use crate::console::{Console, OutputArgs};
use crate::error::CliError;

#[derive(Args)]
pub struct FetchArgs {
    #[command(flatten)]
    config: FetchConfig,
    #[command(flatten)]
    output: OutputArgs,
}

pub fn run(a: FetchArgs) -> Result<ExitCode, CliError> {
    let console = Console::new(&a.output);
    let report = pytorrent_fetch::run(&a.config, &console)?;
    console.summary_of::<pytorrent_fetch::Fetch>(&report)
}
