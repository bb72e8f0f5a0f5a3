//! `pytorrent pack` (corpus + tokenizer → shards) and `pytorrent shards verify|inspect|merge`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use pytorrent_corpus::Partitions;
use pytorrent_io::size::ByteSize;
use pytorrent_pack::inspect::InspectConfig;
use pytorrent_pack::merge::MergeConfig;
use pytorrent_pack::shards::Format;
use pytorrent_pack::verify::VerifyConfig;
use pytorrent_pack::{Mode, PackConfig, Remainder, Settings};

use crate::args::{InputArgs, RuleArgs, TextArgs};
use crate::console::{Console, OutputArgs};
use crate::error::CliError;

#[derive(Args)]
pub struct PackArgs {
    #[command(flatten)]
    input: InputArgs,
    /// tokenizer.json, a folder with it (or vocab.json + merges.txt), or a model id in the
    /// local Hugging Face cache.
    #[arg(long)]
    tokenizer: String,
    /// Output folder: <out>/<partition>/shard-NNNNN.npy and manifest.json.
    #[arg(long)]
    out: PathBuf,
    /// (`--field nl+code` is packed as the tokenizer's pair, <s> NL </s></s> code </s>.)
    #[command(flatten)]
    text: TextArgs,
    /// Partitions to pack: train, valid, test (comma-separated) or all.
    #[arg(long, default_value = "all")]
    partition: Partitions,
    #[command(flatten)]
    rule: RuleArgs,
    /// Tokens per row, special tokens included.
    #[arg(long, default_value_t = Settings::default().seq_len)]
    seq_len: usize,
    /// A model (folder, config.json, or id in the local Hugging Face cache) whose position
    /// table must hold --seq-len tokens.
    #[arg(long)]
    model: Option<String>,
    /// concat (records joined and cut into blocks) or record (one record per row).
    #[arg(long, default_value = "concat")]
    mode: Mode,
    /// The last partial block of each segment in concat mode: drop or pad.
    #[arg(long, default_value = "drop")]
    remainder: Remainder,
    /// npy ([rows, seq_len] arrays), megatron (.bin + .idx indexed dataset) or parquet
    /// (input_ids / attention_mask / labels list columns, as datasets loads them).
    #[arg(long, default_value = "npy")]
    format: Format,
    /// Rows per shard.
    #[arg(long, default_value_t = Settings::default().shard_rows)]
    shard_rows: usize,
    /// Bytes of ids per shard (e.g. 512M, 2G); a shard closes at whichever limit comes first.
    #[arg(long)]
    shard_bytes: Option<ByteSize>,
    /// Seed of the shuffle and of static masks.
    #[arg(long, default_value_t = Settings::default().seed)]
    seed: u64,
    /// Keep records in input order.
    #[arg(long)]
    no_shuffle: bool,
    /// Lines per segment: the unit of shuffling, packing, resumption and task split (0: a
    /// whole file, held in memory).
    #[arg(long, default_value_t = Settings::default().segment_lines)]
    segment_lines: u64,
    /// Write input_ids + labels with masks drawn once (default: ids only, masked at training).
    #[arg(long)]
    static_mask: bool,
    /// Share of the tokens of a row selected for masking (80% <mask>, 10% random, 10% kept).
    #[arg(long, default_value_t = Settings::default().mlm_probability, requires = "static_mask")]
    mlm_probability: f64,
    /// Copies of each row, each with its own mask.
    #[arg(long, default_value_t = Settings::default().dupe_factor, requires = "static_mask")]
    dupe_factor: usize,
    /// Mask whole words (pre-tokens) rather than single tokens.
    #[arg(long, requires = "static_mask")]
    whole_word_mask: bool,
    /// Number of tasks the input is split among (default: SLURM_ARRAY_TASK_COUNT, else 1).
    #[arg(long)]
    num_tasks: Option<usize>,
    /// This task's index (default: SLURM_ARRAY_TASK_ID less SLURM_ARRAY_TASK_MIN, else
    /// JOB_COMPLETION_INDEX of a Kubernetes Indexed Job).
    #[arg(long)]
    task_index: Option<usize>,
    /// Continue an interrupted run with the same command; the result is byte-identical to an
    /// uninterrupted one.
    #[arg(long)]
    resume: bool,
    #[command(flatten)]
    output: OutputArgs,
}

impl From<&PackArgs> for PackConfig {
    fn from(a: &PackArgs) -> Self {
        PackConfig {
            input: a.input.config(),
            tokenizer: a.tokenizer.clone(),
            out: a.out.clone(),
            settings: Settings {
                field: a.text.field,
                text_field: a.text.text_field.clone(),
                seq_len: a.seq_len,
                mode: a.mode,
                remainder: a.remainder,
                format: a.format,
                shard_rows: a.shard_rows,
                shard_bytes: a.shard_bytes,
                seed: a.seed,
                no_shuffle: a.no_shuffle,
                segment_lines: a.segment_lines,
                static_mask: a.static_mask,
                mlm_probability: a.mlm_probability,
                dupe_factor: a.dupe_factor,
                whole_word_mask: a.whole_word_mask,
            },
            partition: a.partition.clone(),
            rule: a.rule.rule(),
            model: a.model.clone(),
            num_tasks: a.num_tasks,
            task_index: a.task_index,
            resume: a.resume,
        }
    }
}

pub fn run(a: PackArgs) -> Result<ExitCode, CliError> {
    let console = Console::new(&a.output);
    console.summary(&pytorrent_pack::run(&(&a).into(), &console)?)
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
