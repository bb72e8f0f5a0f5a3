//! `pytorrent tokenizer train | encode | decode | inspect | eval`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use pytorrent_corpus::Partitions;
use pytorrent_tokenizer::decode::DecodeConfig;
use pytorrent_tokenizer::encode::EncodeConfig;
use pytorrent_tokenizer::eval::EvalConfig;
use pytorrent_tokenizer::inspect::InspectConfig;
use pytorrent_tokenizer::TrainConfig;

use crate::args::{BadLineArgs, InputArgs, RuleArgs, TextArgs};
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

fn train_defaults() -> TrainConfig {
    TrainConfig::new(Default::default(), PathBuf::new())
}

#[derive(Args)]
pub struct TrainArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Output folder: tokenizer.json, vocab.json, merges.txt, tokenizer_config.json,
    /// special_tokens_map.json.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    text: TextArgs,
    /// Partitions to learn from (default train: valid and test never leak into the vocabulary).
    #[arg(long, default_value = "train")]
    partition: Partitions,
    #[command(flatten)]
    rule: RuleArgs,
    /// Vocabulary size, the 5 special tokens and 256 byte symbols included.
    #[arg(long, default_value_t = train_defaults().vocab_size)]
    vocab_size: usize,
    /// Fewest occurrences a pair needs to become a merge.
    #[arg(long, default_value_t = train_defaults().min_frequency)]
    min_frequency: u64,
    /// Longest input the target model takes, written to tokenizer_config.json.
    #[arg(long, default_value_t = train_defaults().model_max_length)]
    model_max_length: usize,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args)]
pub struct EncodeArgs {
    /// Tokenizer: tokenizer.json, a folder, or a model id in the local Hugging Face cache.
    #[arg(long)]
    tokenizer: String,
    /// Corpus inputs (files, folders, - for standard input) whose --field view is encoded.
    inputs: Vec<PathBuf>,
    #[command(flatten)]
    policy: BadLineArgs,
    /// Literal text to encode (repeatable; - reads plain text from standard input).
    #[arg(long)]
    text: Vec<String>,
    #[command(flatten)]
    view: TextArgs,
    /// Partitions to encode: train, valid, test (comma-separated) or all.
    #[arg(long, default_value = "all")]
    partition: Partitions,
    /// Output: .jsonl (one JSON array of ids per text, streamed; default standard output) or
    /// .npy (all ids in one uint32 array, plus <name>.offsets.npy with n+1 int64 offsets).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Leave out <s> and </s>.
    #[arg(long)]
    no_special_tokens: bool,
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
    input: InputArgs,
    /// Tokenizer: tokenizer.json, a folder, or a model id in the local Hugging Face cache.
    #[arg(long)]
    tokenizer: String,
    /// A second tokenizer to compare with.
    #[arg(long)]
    compare: Option<String>,
    #[command(flatten)]
    text: TextArgs,
    /// Partitions to measure: train, valid, test (comma-separated) or all.
    #[arg(long, default_value = "test")]
    partition: Partitions,
    #[command(flatten)]
    output: OutputArgs,
}

impl From<&TrainArgs> for TrainConfig {
    fn from(a: &TrainArgs) -> Self {
        TrainConfig {
            input: a.input.config(),
            out: a.out.clone(),
            field: a.text.field,
            text_field: a.text.text_field.clone(),
            rule: a.rule.rule(),
            partition: a.partition.clone(),
            vocab_size: a.vocab_size,
            min_frequency: a.min_frequency,
            model_max_length: a.model_max_length,
        }
    }
}

impl From<&EncodeArgs> for EncodeConfig {
    fn from(a: &EncodeArgs) -> Self {
        EncodeConfig {
            tokenizer: a.tokenizer.clone(),
            input: a.policy.config(a.inputs.clone()),
            text: a.text.clone(),
            field: a.view.field,
            text_field: a.view.text_field.clone(),
            partition: a.partition.clone(),
            out: a.out.clone(),
            no_special_tokens: a.no_special_tokens,
        }
    }
}

impl From<&EvalArgs> for EvalConfig {
    fn from(a: &EvalArgs) -> Self {
        EvalConfig {
            input: a.input.config(),
            tokenizer: a.tokenizer.clone(),
            compare: a.compare.clone(),
            field: a.text.field,
            text_field: a.text.text_field.clone(),
            partition: a.partition.clone(),
        }
    }
}

pub fn run(cmd: TokenizerCommand) -> Result<ExitCode, CliError> {
    use pytorrent_tokenizer as tk;
    match cmd {
        TokenizerCommand::Train(a) => {
            let console = Console::new(&a.output);
            console.summary(&tk::train_corpus::run(&(&a).into(), &console)?)
        }
        TokenizerCommand::Encode(a) => {
            let console = Console::new(&a.output);
            let report = tk::encode::run(&(&a).into(), &console)?;
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
            console.result(&tk::eval::run(&(&a).into(), &console)?)
        }
    }
}
