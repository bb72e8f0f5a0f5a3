//! `pytorrent fill-mask` and `pytorrent embed`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use pytorrent_corpus::{Partitions, TextView};
use pytorrent_model::embed::EmbedConfig;
use pytorrent_model::fill_mask::FillMaskConfig;
use pytorrent_model::options::ModelOptions;

use crate::args::{BadLineArgs, ModelArgs, PoolingArgs};
use crate::console::{Console, OutputArgs};
use crate::error::CliError;

#[derive(Args)]
pub struct FillMaskArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Files of inputs, one a line (a JSON string, or an object with "text", or plain text);
    /// - for standard input.
    inputs: Vec<PathBuf>,
    #[command(flatten)]
    policy: BadLineArgs,
    /// An input given inline (repeatable), e.g. --text "return a <mask> b".
    #[arg(long)]
    text: Vec<String>,
    /// Candidates shown per mask.
    #[arg(long, default_value_t = FillMaskConfig::new(ModelOptions::new("")).top_k)]
    top_k: usize,
    /// Only score these candidates (comma-separated), as the pipeline's `targets`.
    #[arg(long, value_delimiter = ',')]
    targets: Option<Vec<String>>,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args)]
pub struct EmbedArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Text files (one input a line, as for fill-mask) or, with --field/--text-field, corpus
    /// files and folders (JSONL or Parquet); - for standard input.
    inputs: Vec<PathBuf>,
    #[command(flatten)]
    policy: BadLineArgs,
    /// An input given inline (repeatable).
    #[arg(long)]
    text: Vec<String>,
    /// Embed a corpus view (docstring, code, …) of every PyTorrent record instead of text lines.
    #[arg(long)]
    field: Option<TextView>,
    /// Embed this string field of records of any shape (e.g. text, content).
    #[arg(long, value_name = "NAME")]
    text_field: Option<String>,
    /// Partitions of a corpus to embed: train, valid, test (comma-separated) or all.
    #[arg(long, default_value = "all")]
    partition: Partitions,
    #[command(flatten)]
    pooling: PoolingArgs,
    /// Output .npy ([n, hidden] float32); `<out>.ids.jsonl` names each row.
    #[arg(long)]
    out: PathBuf,
    /// Inputs held in memory at once.
    #[arg(long, default_value_t = 4096, hide = true)]
    chunk: usize,
    #[command(flatten)]
    output: OutputArgs,
}

impl From<&FillMaskArgs> for FillMaskConfig {
    fn from(a: &FillMaskArgs) -> Self {
        FillMaskConfig {
            model: a.model.options(),
            input: a.policy.config(a.inputs.clone()),
            text: a.text.clone(),
            top_k: a.top_k,
            targets: a.targets.clone(),
        }
    }
}

impl From<&EmbedArgs> for EmbedConfig {
    fn from(a: &EmbedArgs) -> Self {
        EmbedConfig {
            model: a.model.options(),
            input: a.policy.config(a.inputs.clone()),
            text: a.text.clone(),
            field: a.field,
            text_field: a.text_field.clone(),
            partition: a.partition.clone(),
            choices: a.pooling.choices(),
            out: a.out.clone(),
            chunk: a.chunk,
        }
    }
}

pub fn fill_mask(a: FillMaskArgs) -> Result<ExitCode, CliError> {
    let console = Console::new(&a.output);
    console.result(&pytorrent_model::fill_mask::run(&(&a).into(), &console)?)
}

pub fn embed(a: EmbedArgs) -> Result<ExitCode, CliError> {
    let console = Console::new(&a.output);
    console.summary(&pytorrent_model::embed::run(&(&a).into(), &console)?)
}
