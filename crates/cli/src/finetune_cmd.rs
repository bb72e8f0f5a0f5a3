//! `pytorrent finetune`: corpus pairs → a sentence-transformers code-search model.

use std::process::ExitCode;

use clap::Args;
use pytorrent_finetune::FinetuneConfig;

use crate::console::{Console, OutputArgs};
use crate::error::CliError;

#[derive(Args)]
pub struct FinetuneArgs {
    #[command(flatten)]
    config: FinetuneConfig,
    #[command(flatten)]
    output: OutputArgs,
}

pub fn run(a: FinetuneArgs) -> Result<ExitCode, CliError> {
    let console = Console::new(&a.output);
    console.summary(&pytorrent_finetune::run(&a.config, &console)?)
}
