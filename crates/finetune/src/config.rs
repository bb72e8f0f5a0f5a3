//! `pytorrent finetune`'s settings; the keys are the CLI's flags.

use std::path::PathBuf;

use pytorrent_corpus::{InputConfig, Partition, PartitionRule, Partitions};
use pytorrent_eval::pairs::QueryText;
use pytorrent_model::device::DeviceSpec;
use pytorrent_pretrain::train::{SaveDtype, TrainDtype};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

pytorrent_io::word_enum! {
    "loss";
    /// The contrastive objective.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum Loss {
        /// sentence-transformers' `MultipleNegativesRankingLoss`: each query against every
        /// code of the batch (and the hard negatives).
        #[default]
        Mnrl = "mnrl",
        /// Its symmetric form: also each code against every query of the batch
        /// (`directions=("query_to_doc", "doc_to_query")`, a softmax per direction, averaged).
        Symmetric = "symmetric",
    }
}

/// Everything `pytorrent finetune` takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct FinetuneConfig {
    /// The corpus (files and folders, JSONL or Parquet) and the bad-line policy.
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub input: InputConfig,
    /// Run folder: the sentence-transformers model, checkpoint-N/, log.csv, loss.svg, mrr.svg.
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
    /// The checkpoint to start from: a RoBERTa or BERT folder (a pretrain output, a
    /// sentence-transformers folder) or a cached hub id.
    #[cfg_attr(feature = "cli", arg(long))]
    pub init: String,
    /// The tokenizer, when not the --init folder's.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub tokenizer: Option<String>,
    /// The query side of a PyTorrent pair: docstring, summary or first-line.
    #[serde(default = "default_query")]
    #[cfg_attr(feature = "cli", arg(long, default_value = "docstring"))]
    pub query: QueryText,
    /// Pairs from two string fields of records of any shape instead of PyTorrent records:
    /// the query side …
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long, requires = "code_field"))]
    pub query_field: Option<String>,
    /// … and the code side.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long, requires = "query_field"))]
    pub code_field: Option<String>,
    /// Partitions trained on.
    #[serde(default = "default_train")]
    #[cfg_attr(feature = "cli", arg(long, default_value = "train"))]
    pub partition: Partitions,
    /// Partitions whose pairs measure validation MRR (pool protocol).
    #[serde(default = "default_valid")]
    #[cfg_attr(feature = "cli", arg(long, default_value = "valid"))]
    pub valid_partition: Partitions,
    /// The partition of records that name none.
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub rule: PartitionRule,
    /// mnrl (MultipleNegativesRankingLoss) or symmetric.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long, default_value = "mnrl"))]
    pub loss: Loss,
    /// Cosine similarities are multiplied by this before the softmax (1 / temperature).
    #[serde(default = "default_scale")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = default_scale()))]
    pub scale: f64,
    /// Hard negatives per pair, mined with BM25 over the training codes (0: in-batch only).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0))]
    pub hard_negatives: usize,
    /// Tokens per text, special tokens included (default: the model's limit, at most 256).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub max_seq_length: Option<usize>,
    /// Pairs per micro-batch (each pair's code is a negative for the others).
    #[serde(default = "default_batch_size")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = default_batch_size()))]
    pub batch_size: usize,
    /// Micro-batches per optimiser step (negatives stay within a micro-batch).
    #[serde(default = "one")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = one()))]
    pub grad_accum: usize,
    /// Passes over the training pairs (when --max-steps is not given).
    #[serde(default = "one_epoch")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = one_epoch()))]
    pub epochs: u64,
    /// Optimiser steps, in place of --epochs (the schedule decays to 0 at the last).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub max_steps: Option<u64>,
    /// Peak learning rate.
    #[serde(default = "default_lr")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = default_lr()))]
    pub lr: f64,
    /// Steps of linear warm-up, then linear decay to 0 (default: a tenth of the steps).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub warmup_steps: Option<u64>,
    /// AdamW weight decay (biases and LayerNorm weights are not decayed).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0.0))]
    pub weight_decay: f64,
    /// AdamW β₁.
    #[serde(default = "beta1")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = beta1()))]
    pub beta1: f64,
    /// AdamW β₂.
    #[serde(default = "beta2")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = beta2()))]
    pub beta2: f64,
    /// AdamW ε.
    #[serde(default = "adam_eps")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = adam_eps()))]
    pub adam_eps: f64,
    /// Clip the global gradient norm to this (0: off).
    #[serde(default = "max_grad_norm")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = max_grad_norm()))]
    pub max_grad_norm: f64,
    /// Measure validation MRR every N steps (default: a tenth of the steps), before the
    /// first and after the last.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub eval_every: Option<u64>,
    /// Validation pairs (the first N of the validation partitions, in input order); each
    /// query is ranked against all their codes.
    #[serde(default = "eval_pairs")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = eval_pairs()))]
    pub eval_pairs: usize,
    /// Save a checkpoint every N steps (default: as --eval-every) and at the end.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub save_every: Option<u64>,
    /// Checkpoints kept (the newest).
    #[serde(default = "keep")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = keep()))]
    pub keep_checkpoints: usize,
    /// Seed of the pair order, negatives and dropout.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0))]
    pub seed: u64,
    /// Continue from the newest checkpoint in --out (starts afresh when there is none).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub resume: bool,
    /// Stop after this many steps (with a checkpoint), to continue later with --resume.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub stop_after: Option<u64>,
    /// cpu, cuda or cuda:N.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long, default_value = "cpu"))]
    pub device: DeviceSpec,
    /// Matrix-multiply dtype: f32, or bf16 (f32 master weights and optimiser state).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long, default_value = "f32"))]
    pub dtype: TrainDtype,
    /// dtype of the final model.safetensors: f32 or f16 (checkpoints stay f32).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long, default_value = "f32"))]
    pub save_dtype: SaveDtype,
}

fn default_query() -> QueryText {
    QueryText::Docstring
}
fn default_train() -> Partitions {
    Partitions::only(Partition::Train)
}
fn default_valid() -> Partitions {
    Partitions::only(Partition::Valid)
}
fn default_scale() -> f64 {
    // sentence-transformers' default.
    20.0
}
fn default_batch_size() -> usize {
    32
}
fn one() -> usize {
    1
}
fn one_epoch() -> u64 {
    1
}
fn default_lr() -> f64 {
    // HF `TrainingArguments`' default, which sentence-transformers' trainer keeps.
    5e-5
}
fn beta1() -> f64 {
    0.9
}
fn beta2() -> f64 {
    0.999
}
fn adam_eps() -> f64 {
    1e-8
}
fn max_grad_norm() -> f64 {
    1.0
}
fn eval_pairs() -> usize {
    1000
}
fn keep() -> usize {
    2
}

impl FinetuneConfig {
    pub fn new(inputs: Vec<PathBuf>, init: impl Into<String>, out: PathBuf) -> FinetuneConfig {
        let mut v = serde_json::json!({"out": out, "init": init.into()});
        v["inputs"] = serde_json::to_value(inputs).expect("paths");
        serde_json::from_value(v).expect("defaults")
    }

    /// The optimiser steps of a run over `batches_per_epoch` micro-batches an epoch.
    pub fn total_steps(&self, batches_per_epoch: u64) -> u64 {
        self.max_steps
            .unwrap_or_else(|| (self.epochs * batches_per_epoch).div_ceil(self.grad_accum as u64))
    }

    pub fn warmup(&self, total: u64) -> u64 {
        self.warmup_steps.unwrap_or(total / 10)
    }

    pub fn eval_interval(&self, total: u64) -> u64 {
        self.eval_every.unwrap_or((total / 10).max(1)).max(1)
    }

    pub fn save_interval(&self, total: u64) -> u64 {
        self.save_every.unwrap_or(self.eval_interval(total)).max(1)
    }

    pub fn validate(&self) -> Result<()> {
        let usage = |m: String| Err(Error::Usage(m));
        self.rule.validate().map_err(Error::Usage)?;
        if self.input.inputs.is_empty() {
            return usage("give the corpus to train on".into());
        }
        if self.query_field.is_some() != self.code_field.is_some() {
            return usage("--query-field and --code-field go together".into());
        }
        if self.batch_size < 2 {
            return usage(format!(
                "--batch-size {}: in-batch negatives need at least 2 pairs a batch",
                self.batch_size
            ));
        }
        if self.grad_accum == 0 || self.epochs == 0 || self.max_steps == Some(0) {
            return usage("--grad-accum, --epochs and --max-steps must be positive".into());
        }
        // Allocations are sized from these: bounds before any.
        if self.hard_negatives > 64 {
            return usage(format!(
                "--hard-negatives {}: at most 64",
                self.hard_negatives
            ));
        }
        if self.batch_size > 1 << 16 {
            return usage(format!("--batch-size {}: at most 65536", self.batch_size));
        }
        if let Some(n) = self.max_seq_length {
            if n < 2 {
                return usage(format!(
                    "--max-seq-length {n}: at least 2 (the special tokens)"
                ));
            }
        }
        for (flag, v, ok, range) in [
            ("--lr", self.lr, self.lr > 0.0, "above 0"),
            ("--scale", self.scale, self.scale > 0.0, "above 0"),
        ] {
            if !(ok && v.is_finite()) {
                return usage(format!("{flag} {v}: must be a finite number {range}"));
            }
        }
        pytorrent_pretrain::optim::check_settings(&self.adamw(), self.max_grad_norm)
            .map_err(Error::Usage)
    }

    /// The optimiser's settings.
    pub fn adamw(&self) -> pytorrent_pretrain::optim::AdamWConfig {
        pytorrent_pretrain::optim::AdamWConfig {
            lr: self.lr,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.adam_eps,
            weight_decay: self.weight_decay,
        }
    }

    /// What must not change across `--resume`: the model it started from, the pairs, and
    /// every setting that shapes a step.
    pub fn fingerprint(&self, init: &str, data: &str, total: u64) -> String {
        let keep = serde_json::json!({
            "init": init, "data": data, "steps": total,
            "loss": self.loss, "scale": self.scale, "hard_negatives": self.hard_negatives,
            "max_seq_length": self.max_seq_length, "batch_size": self.batch_size,
            "grad_accum": self.grad_accum, "lr": self.lr, "warmup": self.warmup(total),
            "weight_decay": self.weight_decay, "betas": [self.beta1, self.beta2],
            "eps": self.adam_eps, "clip": self.max_grad_norm, "seed": self.seed,
            "dtype": self.dtype,
        });
        format!("{:x}", Sha256::digest(keep.to_string().as_bytes()))
    }
}
