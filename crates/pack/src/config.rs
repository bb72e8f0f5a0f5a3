//! What `pack` is asked to do: the [`Settings`] that determine the shards' bytes (recorded in
//! every manifest and fingerprinted), and the [`PackConfig`] around them (inputs, tokenizer,
//! output, partitions, task split, resume).

use std::path::PathBuf;

use pytorrent_corpus::{InputConfig, PartitionRule, Partitions, TextSource, TextView};
use pytorrent_io::size::ByteSize;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::shards::Format;
use crate::{Mode, Remainder};

/// Everything that determines the rows and shards, given the inputs and the tokenizer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct Settings {
    /// Text view of PyTorrent records: code, docstring, summary, code_with_docstrings,
    /// original_string, nl+code (packed as the tokenizer's pair, <s> NL </s></s> code </s>).
    #[serde(default = "default_field")]
    #[cfg_attr(feature = "cli", arg(long, default_value = "code"))]
    pub field: TextView,
    /// Pack this string field of records of any shape instead (e.g. text, content), as HF hub
    /// datasets and datatrove write them.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long, value_name = "NAME"))]
    pub text_field: Option<String>,
    /// Tokens per row, special tokens included.
    #[serde(default = "default_seq_len")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = default_seq_len()))]
    pub seq_len: usize,
    /// concat (records joined and cut into blocks) or record (one record per row).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long, default_value = "concat"))]
    pub mode: Mode,
    /// The last partial block of each segment in concat mode: drop or pad.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long, default_value = "drop"))]
    pub remainder: Remainder,
    /// npy ([rows, seq_len] arrays), megatron (.bin + .idx indexed dataset) or parquet
    /// (input_ids / attention_mask / labels list columns, as datasets loads them).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long, default_value = "npy"))]
    pub format: Format,
    /// Rows per shard.
    #[serde(default = "default_shard_rows")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = default_shard_rows()))]
    pub shard_rows: usize,
    /// Bytes of ids per shard (e.g. 512M, 2G); a shard closes at whichever limit comes first.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub shard_bytes: Option<ByteSize>,
    /// Seed of the shuffle and of static masks.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0))]
    pub seed: u64,
    /// Keep records in input order.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub no_shuffle: bool,
    /// Lines per segment: the unit of shuffling, packing, resumption and task split (0: a
    /// whole file, held in memory).
    #[serde(default = "default_segment_lines")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = default_segment_lines()))]
    pub segment_lines: u64,
    /// Write input_ids + labels with masks drawn once (default: ids only, masked at training).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub static_mask: bool,
    /// Share of the tokens of a row selected for masking (80% <mask>, 10% random, 10% kept).
    #[serde(default = "default_mlm_probability")]
    #[cfg_attr(
        feature = "cli",
        arg(long, default_value_t = default_mlm_probability(), requires = "static_mask")
    )]
    pub mlm_probability: f64,
    /// Copies of each row, each with its own mask.
    #[serde(default = "default_dupe_factor")]
    #[cfg_attr(
        feature = "cli",
        arg(long, default_value_t = default_dupe_factor(), requires = "static_mask")
    )]
    pub dupe_factor: usize,
    /// Mask whole words (pre-tokens) rather than single tokens.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long, requires = "static_mask"))]
    pub whole_word_mask: bool,
}

fn default_field() -> TextView {
    TextView::Code
}
/// The longest row packed (2^20 tokens).
pub const MAX_SEQ_LEN: usize = 1 << 20;

fn default_seq_len() -> usize {
    512
}
fn default_shard_rows() -> usize {
    100_000
}
fn default_segment_lines() -> u64 {
    10_000
}
fn default_mlm_probability() -> f64 {
    0.15
}
fn default_dupe_factor() -> usize {
    1
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            field: default_field(),
            text_field: None,
            seq_len: default_seq_len(),
            mode: Mode::Concat,
            remainder: Remainder::Drop,
            format: Format::Npy,
            shard_rows: default_shard_rows(),
            shard_bytes: None,
            seed: 0,
            no_shuffle: false,
            segment_lines: default_segment_lines(),
            static_mask: false,
            mlm_probability: default_mlm_probability(),
            dupe_factor: default_dupe_factor(),
            whole_word_mask: false,
        }
    }
}

impl Settings {
    pub fn validate(&self) -> Result<()> {
        let usage = |m: &str| Err(Error::Usage(m.into()));
        if self.seq_len < 2 {
            return usage("--seq-len must be at least 2 (<s> and </s>)");
        }
        if self.seq_len > MAX_SEQ_LEN {
            return Err(Error::Usage(format!(
                "--seq-len {} is above {MAX_SEQ_LEN} tokens: no encoder takes rows that long, \
                 and a row's buffers are sized by it",
                self.seq_len
            )));
        }
        if self.shard_rows == 0 {
            return usage("--shard-rows must be at least 1");
        }
        if !(self.mlm_probability > 0.0 && self.mlm_probability < 1.0) {
            return usage("--mlm-probability must be between 0 and 1");
        }
        if self.dupe_factor == 0 {
            return usage("--dupe-factor must be at least 1");
        }
        if self.format == Format::Megatron && self.static_mask {
            return usage(
                "--static-mask writes labels, which the Megatron format has no place for; \
                 Megatron masks at training time (use --format npy for static masks)",
            );
        }
        Ok(())
    }

    /// The text each record gives.
    pub fn source(&self) -> TextSource {
        TextSource::new(self.field, self.text_field.as_deref())
    }

    /// Rows carry padding (and so an attention mask).
    pub fn padded(&self) -> bool {
        self.mode == Mode::Record || self.remainder == Remainder::Pad
    }
}

/// `pack`: corpus + tokenizer → fixed-length MLM shards and a manifest per partition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct PackConfig {
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub input: InputConfig,
    /// tokenizer.json, a folder with it (or vocab.json + merges.txt), or a model id in the
    /// local Hugging Face cache.
    #[cfg_attr(feature = "cli", arg(long))]
    pub tokenizer: String,
    /// Output folder: <out>/<partition>/shard-NNNNN.npy and manifest.json.
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub settings: Settings,
    /// Partitions to pack: train, valid, test (comma-separated) or all.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long, default_value = "all"))]
    pub partition: Partitions,
    /// Where records that name no partition go.
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub rule: PartitionRule,
    /// A model (folder, config.json, or id in the local Hugging Face cache) whose position
    /// table must hold --seq-len tokens.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub model: Option<String>,
    /// Number of tasks the input is split among (default: SLURM_ARRAY_TASK_COUNT, else 1).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub num_tasks: Option<usize>,
    /// This task's index (default: SLURM_ARRAY_TASK_ID less SLURM_ARRAY_TASK_MIN, else
    /// JOB_COMPLETION_INDEX of a Kubernetes Indexed Job).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub task_index: Option<usize>,
    /// Continue an interrupted run with the same command; the result is byte-identical to an
    /// uninterrupted one.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub resume: bool,
}

impl PackConfig {
    pub fn new(inputs: Vec<PathBuf>, tokenizer: impl Into<String>, out: PathBuf) -> PackConfig {
        PackConfig {
            input: InputConfig::new(inputs),
            tokenizer: tokenizer.into(),
            out,
            settings: Settings::default(),
            partition: Partitions::All,
            rule: PartitionRule::default(),
            model: None,
            num_tasks: None,
            task_index: None,
            resume: false,
        }
    }

    pub fn validate(&self) -> Result<()> {
        self.settings.validate()?;
        self.rule.validate().map_err(Error::Usage)?;
        if let Some(m) = &self.model {
            let (config, limit) = pytorrent_hf::config::positions_of(m)?;
            if self.settings.seq_len > limit {
                return Err(Error::Usage(format!(
                    "--seq-len {} does not fit {}: its position table holds {limit} tokens",
                    self.settings.seq_len,
                    config.display()
                )));
            }
        }
        Ok(())
    }
}
