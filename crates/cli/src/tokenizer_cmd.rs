//! `pytorrent tokenizer train | encode | decode | inspect | eval`.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use pytorrent_tokenizer::decode::DecodeConfig;
use pytorrent_tokenizer::encode::EncodeConfig;
use pytorrent_tokenizer::eval::EvalConfig;
use pytorrent_tokenizer::inspect::InspectConfig;
use pytorrent_tokenizer::TrainConfig;

use crate::console::{Console, OutputArgs};
use crate::error::CliError;

#[derive(Subcommand)]
pub enum TokenizerCommand {
    /// Train a RoBERTa-layout byte-level BPE on one text view of a corpus.
    Train(TrainArgs),
    /// Text, standard input or a corpus view → token ids (JSONL or npy).
    Encode(EncodeArgs),
    /// Token ids → text.
    Decode(DecodeArgs),
    /// Vocabulary size, special tokens, merges and a sample encoding.
    Inspect(InspectArgs),
    /// Bytes per token and tokens per record on a partition, optionally against another tokenizer.
    Eval(EvalArgs),
}

#[derive(Args)]
pub struct TrainArgs {
    #[command(flatten)]
    config: TrainConfig,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args)]
pub struct EncodeArgs {
    #[command(flatten)]
    config: EncodeConfig,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args)]
pub struct DecodeArgs {
    /// Tokenizer: tokenizer.json, a folder, or a model id in the local Hugging Face cache.
    #[arg(long)]
    tokenizer: String,
    /// Ids (space- or comma-separated); without them, JSON arrays of ids are read from
    /// standard input, one per line.
    ids: Vec<String>,
    /// Keep special tokens (<s>, </s>, <pad>, …) in the text.
    #[arg(long)]
    keep_special_tokens: bool,
    /// Each text as a JSON string on its own line (texts may hold newlines).
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct InspectArgs {
    /// Tokenizer: tokenizer.json, a folder, or a model id in the local Hugging Face cache.
    #[arg(long)]
    tokenizer: String,
    /// Text for the sample encoding.
    #[arg(long, default_value_t = pytorrent_tokenizer::inspect::default_text())]
    text: String,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args)]
pub struct EvalArgs {
    #[command(flatten)]
    config: EvalConfig,
    #[command(flatten)]
    output: OutputArgs,
}

pub fn run(cmd: TokenizerCommand) -> Result<ExitCode, CliError> {
    use pytorrent_tokenizer as tk;
    match cmd {
        TokenizerCommand::Train(a) => {
            let console = Console::new(&a.output);
            console.summary(&tk::train_corpus::run(&a.config, &console)?)
        }
        TokenizerCommand::Encode(a) => {
            let console = Console::new(&a.output);
            let report = tk::encode::run(&a.config, &console)?;
            // Ids are what stdout carries here; the summary goes to stderr only.
            if !a.output.quiet && !a.output.json {
                eprint!("{report}");
            }
            Ok(ExitCode::SUCCESS)
        }
        TokenizerCommand::Decode(a) => {
            let cfg = DecodeConfig {
                tokenizer: a.tokenizer,
                ids: a.ids,
                keep_special_tokens: a.keep_special_tokens,
            };
            tk::decode::run(&cfg, a.json, &pytorrent_io::Silent)?;
            Ok(ExitCode::SUCCESS)
        }
        TokenizerCommand::Inspect(a) => {
            let cfg = InspectConfig {
                tokenizer: a.tokenizer,
                text: a.text,
            };
            let console = Console::new(&a.output);
            console.result(&tk::inspect::run(&cfg, &console)?)
        }
        TokenizerCommand::Eval(a) => {
            let console = Console::new(&a.output);
            console.result(&tk::eval::run(&a.config, &console)?)
        }
    }
}
