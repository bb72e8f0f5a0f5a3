//! `pytorrent pretrain`: packed shards → a RoBERTa masked-language model.

use std::process::ExitCode;

use clap::Args;
use pytorrent_pretrain::PretrainConfig;

use crate::console::{Console, OutputArgs};
use crate::error::CliError;

#[derive(Args)]
pub struct PretrainArgs {
    #[command(flatten)]
    config: PretrainConfig,
    #[command(flatten)]
    output: OutputArgs,
}

pub fn run(a: PretrainArgs) -> Result<ExitCode, CliError> {
    let console = Console::new(&a.output);
    console.summary(&pytorrent_pretrain::run(&a.config, &console)?)
}
