//! `pytorrent pack` (corpus + tokenizer → shards) and `pytorrent shards verify|inspect|merge`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use pytorrent_pack::inspect::InspectConfig;
use pytorrent_pack::merge::MergeConfig;
use pytorrent_pack::verify::VerifyConfig;
use pytorrent_pack::PackConfig;

use crate::console::{Console, OutputArgs};
use crate::error::CliError;

#[derive(Args)]
pub struct PackArgs {
    #[command(flatten)]
    config: PackConfig,
    #[command(flatten)]
    output: OutputArgs,
}

pub fn run(a: PackArgs) -> Result<ExitCode, CliError> {
    let console = Console::new(&a.output);
    console.summary(&pytorrent_pack::run(&a.config, &console)?)
}

#[derive(clap::Subcommand)]
pub enum ShardsCommand {
    /// Check every shard a manifest lists: presence, sha256, dtype, shape, ids < vocabulary.
    Verify(VerifyArgs),
    /// Print rows of a shard folder decoded back to text.
    Inspect(InspectArgs),
    /// Combine the task folders of a scaled-out `pack` into one output.
    Merge(MergeArgs),
}

#[derive(Args)]
pub struct VerifyArgs {
    /// Packed output folders (or partition folders of them).
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args)]
pub struct InspectArgs {
    /// Packed output folders, or partition folders of them.
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// First row (over all shards of the folder).
    #[arg(long, default_value_t = 0)]
    row: u64,
    /// Number of rows.
    #[arg(long, default_value_t = 3)]
    count: u64,
    /// Tokenizer to decode with (default: the one the manifest names).
    #[arg(long)]
    tokenizer: Option<String>,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args)]
pub struct MergeArgs {
    /// The --out folder the tasks wrote into (holding task-IIIII-of-NNNNN folders).
    dir: PathBuf,
    #[command(flatten)]
    output: OutputArgs,
}

pub fn shards(cmd: ShardsCommand) -> Result<ExitCode, CliError> {
    match cmd {
        ShardsCommand::Verify(a) => {
            let console = Console::new(&a.output);
            let report = pytorrent_pack::verify::run(&VerifyConfig { dirs: a.dirs }, &console)?;
            console.summary_of::<pytorrent_pack::verify::Verify>(&report)
        }
        ShardsCommand::Inspect(a) => {
            let console = Console::new(&a.output);
            let cfg = InspectConfig {
                dirs: a.dirs,
                row: a.row,
                count: a.count,
                tokenizer: a.tokenizer,
            };
            console.result(&pytorrent_pack::inspect::run(&cfg, &console)?)
        }
        ShardsCommand::Merge(a) => {
            let console = Console::new(&a.output);
            console.summary(&pytorrent_pack::merge::run(
                &MergeConfig { dir: a.dir },
                &console,
            )?)
        }
    }
}
