//! `pytorrent pretrain`: packed shards → a RoBERTa masked-language model.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use pytorrent_model::device::DeviceSpec;
use pytorrent_pretrain::train::{SaveDtype, TrainDtype};
use pytorrent_pretrain::PretrainConfig;

use crate::console::{Console, OutputArgs};
use crate::error::CliError;

fn default() -> PretrainConfig {
    PretrainConfig::new(PathBuf::new(), PathBuf::new())
}

#[derive(Args)]
pub struct PretrainArgs {
    /// A `pytorrent pack` output folder (train/ and valid/ partitions, npy or megatron).
    shards: PathBuf,
    /// Run folder: checkpoint-N/, log.csv, loss.svg, and the final model (HF layout).
    #[arg(long)]
    out: PathBuf,
    /// The model's size: a TOML file such as configs/models/small.toml.
    #[arg(long, required_unless_present = "init", conflicts_with = "init")]
    model_config: Option<PathBuf>,
    /// Continue from a Hugging Face RoBERTa checkpoint folder.
    #[arg(long)]
    init: Option<PathBuf>,
    /// The tokenizer, when the one named by the shards' manifest has moved.
    #[arg(long)]
    tokenizer: Option<String>,
    /// Optimiser steps (the schedule decays to 0 at the last).
    #[arg(long, default_value_t = default().max_steps)]
    max_steps: u64,
    /// Rows per micro-batch.
    #[arg(long, default_value_t = default().batch_size)]
    batch_size: usize,
    /// Micro-batches per optimiser step.
    #[arg(long, default_value_t = default().grad_accum)]
    grad_accum: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = default().lr)]
    lr: f64,
    /// Steps of linear warm-up, then linear decay to 0 (default: a tenth of --max-steps).
    #[arg(long)]
    warmup_steps: Option<u64>,
    /// AdamW weight decay (biases and LayerNorm weights are not decayed).
    #[arg(long, default_value_t = default().weight_decay)]
    weight_decay: f64,
    /// AdamW β₁.
    #[arg(long, default_value_t = default().beta1)]
    beta1: f64,
    /// AdamW β₂.
    #[arg(long, default_value_t = default().beta2)]
    beta2: f64,
    /// AdamW ε.
    #[arg(long, default_value_t = default().adam_eps)]
    adam_eps: f64,
    /// Clip the global gradient norm to this (0: off).
    #[arg(long, default_value_t = default().max_grad_norm)]
    max_grad_norm: f64,
    /// Share of tokens masked on the fly (shards without static labels).
    #[arg(long, default_value_t = default().mlm_probability)]
    mlm_probability: f64,
    /// Validate every N steps (default: a tenth of --max-steps) and at the end.
    #[arg(long)]
    eval_every: Option<u64>,
    /// Rows of valid/ used for validation.
    #[arg(long, default_value_t = default().eval_rows)]
    eval_rows: u64,
    /// Save a checkpoint every N steps (default: as --eval-every) and at the end.
    #[arg(long)]
    save_every: Option<u64>,
    /// Checkpoints kept (the newest).
    #[arg(long, default_value_t = default().keep_checkpoints)]
    keep_checkpoints: usize,
    /// Seed of the initial weights, data order, masks and dropout.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Continue from the newest checkpoint in --out (starts afresh when there is none).
    #[arg(long)]
    resume: bool,
    /// Stop after this many steps (with a checkpoint), to continue later with --resume.
    #[arg(long)]
    stop_after: Option<u64>,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
    /// Matrix-multiply dtype: f32, or bf16 (f32 master weights and optimiser state).
    #[arg(long, default_value = "f32")]
    dtype: TrainDtype,
    /// dtype of the final model.safetensors: f32 or f16 (checkpoints stay f32).
    #[arg(long, default_value = "f32")]
    save_dtype: SaveDtype,
    #[command(flatten)]
    output: OutputArgs,
}

impl From<&PretrainArgs> for PretrainConfig {
    fn from(a: &PretrainArgs) -> Self {
        PretrainConfig {
            shards: a.shards.clone(),
            out: a.out.clone(),
            model_config: a.model_config.clone(),
            init: a.init.clone(),
            tokenizer: a.tokenizer.clone(),
            max_steps: a.max_steps,
            batch_size: a.batch_size,
            grad_accum: a.grad_accum,
            lr: a.lr,
            warmup_steps: a.warmup_steps,
            weight_decay: a.weight_decay,
            beta1: a.beta1,
            beta2: a.beta2,
            adam_eps: a.adam_eps,
            max_grad_norm: a.max_grad_norm,
            mlm_probability: a.mlm_probability,
            eval_every: a.eval_every,
            eval_rows: a.eval_rows,
            save_every: a.save_every,
            keep_checkpoints: a.keep_checkpoints,
            seed: a.seed,
            resume: a.resume,
            stop_after: a.stop_after,
            device: a.device,
            dtype: a.dtype,
            save_dtype: a.save_dtype,
        }
    }
}

pub fn run(a: PretrainArgs) -> Result<ExitCode, CliError> {
    let console = Console::new(&a.output);
    console.summary(&pytorrent_pretrain::run(&(&a).into(), &console)?)
}
