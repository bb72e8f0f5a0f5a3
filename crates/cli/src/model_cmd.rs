//! `pytorrent fill-mask` and `pytorrent embed`.

use std::process::ExitCode;

use clap::Args;
use pytorrent_model::embed::EmbedConfig;
use pytorrent_model::fill_mask::FillMaskConfig;

use crate::console::{Console, OutputArgs};
use crate::error::CliError;

#[derive(Args)]
pub struct FillMaskArgs {
    #[command(flatten)]
    config: FillMaskConfig,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args)]
pub struct EmbedArgs {
    #[command(flatten)]
    config: EmbedConfig,
    #[command(flatten)]
    output: OutputArgs,
}

pub fn fill_mask(a: FillMaskArgs) -> Result<ExitCode, CliError> {
    let console = Console::new(&a.output);
    console.result(&pytorrent_model::fill_mask::run(&a.config, &console)?)
}

pub fn embed(a: EmbedArgs) -> Result<ExitCode, CliError> {
    let console = Console::new(&a.output);
    console.summary(&pytorrent_model::embed::run(&a.config, &console)?)
}
