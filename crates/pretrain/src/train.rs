//! `pytorrent pretrain`: the typed config and the training loop.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use pytorrent_io::{Reporter, Unit};
use pytorrent_model::device::DeviceSpec;
use pytorrent_pack::mask::MaskSpec;
use pytorrent_tokenizer::SpecialIds;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::checkpoint::{self, TrainerState};
use crate::curve::{self, LogRow, Series, Valid};
use crate::data::{batch, Masking, Order, Partition, Row};
use crate::model::{Batch, MlmModel};
use crate::nn::{seed_of, Dropout};
use crate::optim::{add_grads, clip_grad_norm, gradients, lr_at, zero_grads, AdamW, AdamWConfig};
use crate::spec::{Arch, ModelSpec};
use crate::{Error, Result};

pytorrent_io::word_enum! {
    "dtype";
    /// The dtype of the matrix multiplies; weights, gradients and optimiser state stay f32.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum TrainDtype {
        #[default]
        F32 = "f32",
        Bf16 = "bf16",
    }
}

pytorrent_io::word_enum! {
    "save dtype";
    /// The dtype of the final `model.safetensors` (checkpoints stay f32 for resuming).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum SaveDtype {
        #[default]
        F32 = "f32",
        F16 = "f16",
    }
}

/// Everything `pytorrent pretrain` takes; the keys are the CLI's flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct PretrainConfig {
    /// A `pytorrent pack` output folder (train/ and valid/ partitions, npy or megatron).
    pub shards: PathBuf,
    /// Run folder: checkpoint-N/, log.csv, loss.svg, and the final model (HF layout).
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
    /// The model's size: a TOML file such as configs/models/small.toml.
    #[serde(default)]
    #[cfg_attr(
        feature = "cli",
        arg(long, required_unless_present = "init", conflicts_with = "init")
    )]
    pub model_config: Option<PathBuf>,
    /// Token positions of the new model, in place of the --model-config file's
    /// max_positions (e.g. 256-token shards with configs/models/tiny.toml's 128).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long, conflicts_with = "init"))]
    pub max_positions: Option<usize>,
    /// Continue from a Hugging Face RoBERTa checkpoint folder.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub init: Option<PathBuf>,
    /// The tokenizer, when the one named by the shards' manifest has moved.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub tokenizer: Option<String>,
    /// Optimiser steps (the schedule decays to 0 at the last).
    #[serde(default = "max_steps")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = max_steps()))]
    pub max_steps: u64,
    /// Rows per micro-batch.
    #[serde(default = "batch_size")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = batch_size()))]
    pub batch_size: usize,
    /// Micro-batches per optimiser step.
    #[serde(default = "one")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = one()))]
    pub grad_accum: usize,
    /// Peak learning rate.
    #[serde(default = "lr")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = lr()))]
    pub lr: f64,
    /// Steps of linear warm-up, then linear decay to 0 (default: a tenth of --max-steps).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub warmup_steps: Option<u64>,
    /// AdamW weight decay (biases and LayerNorm weights are not decayed).
    #[serde(default = "weight_decay")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = weight_decay()))]
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
    /// Share of tokens masked on the fly (shards without static labels).
    #[serde(default = "mlm_probability")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = mlm_probability()))]
    pub mlm_probability: f64,
    /// Validate every N steps (default: a tenth of --max-steps) and at the end.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub eval_every: Option<u64>,
    /// Rows of valid/ used for validation.
    #[serde(default = "eval_rows")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = eval_rows()))]
    pub eval_rows: u64,
    /// Save a checkpoint every N steps (default: as --eval-every) and at the end.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub save_every: Option<u64>,
    /// Checkpoints kept (the newest).
    #[serde(default = "keep")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = keep()))]
    pub keep_checkpoints: usize,
    /// Seed of the initial weights, data order, masks and dropout.
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

fn max_steps() -> u64 {
    1000
}
fn batch_size() -> usize {
    32
}
fn one() -> usize {
    1
}
fn lr() -> f64 {
    AdamWConfig::default().lr
}
fn weight_decay() -> f64 {
    AdamWConfig::default().weight_decay
}
fn beta1() -> f64 {
    AdamWConfig::default().beta1
}
fn beta2() -> f64 {
    AdamWConfig::default().beta2
}
fn adam_eps() -> f64 {
    AdamWConfig::default().eps
}
fn max_grad_norm() -> f64 {
    1.0
}
fn mlm_probability() -> f64 {
    0.15
}
fn eval_rows() -> u64 {
    1000
}
fn keep() -> usize {
    2
}

impl PretrainConfig {
    pub fn new(shards: PathBuf, out: PathBuf) -> PretrainConfig {
        serde_json::from_value(serde_json::json!({"shards": shards, "out": out})).expect("defaults")
    }

    pub fn warmup(&self) -> u64 {
        self.warmup_steps.unwrap_or(self.max_steps / 10)
    }

    pub fn eval_interval(&self) -> u64 {
        self.eval_every
            .unwrap_or((self.max_steps / 10).max(1))
            .max(1)
    }

    pub fn save_interval(&self) -> u64 {
        self.save_every.unwrap_or(self.eval_interval()).max(1)
    }

    fn validate(&self) -> Result<()> {
        let usage = |m: &str| Err(Error::Usage(m.into()));
        match (&self.model_config, &self.init) {
            (None, None) => {
                return usage(
                    "give --model-config FILE (a model size) or --init DIR (a checkpoint)",
                )
            }
            (Some(_), Some(_)) => return usage("--model-config and --init exclude each other"),
            _ => {}
        }
        match self.max_positions {
            Some(_) if self.init.is_some() => {
                return usage("--max-positions sizes a new model: not with --init")
            }
            // The position table is allocated from it: a bound before any allocation.
            Some(n) if !(3..=1 << 20).contains(&n) => {
                return usage("--max-positions must be between 3 and 1048576")
            }
            _ => {}
        }
        if self.max_steps == 0 || self.batch_size == 0 || self.grad_accum == 0 {
            return usage("--max-steps, --batch-size and --grad-accum must be positive");
        }
        if self.lr <= 0.0 || !self.lr.is_finite() {
            return usage("--lr must be positive");
        }
        if !(0.0..1.0).contains(&self.mlm_probability) || self.mlm_probability == 0.0 {
            return usage("--mlm-probability must be in (0, 1)");
        }
        if self.warmup() > self.max_steps {
            return usage("--warmup-steps exceeds --max-steps");
        }
        crate::optim::check_settings(&self.adamw(), self.max_grad_norm).map_err(Error::Usage)
    }

    /// The optimiser's settings.
    pub fn adamw(&self) -> AdamWConfig {
        AdamWConfig {
            lr: self.lr,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.adam_eps,
            weight_decay: self.weight_decay,
        }
    }

    /// What must not change across `--resume`.
    fn fingerprint(&self, arch: &Arch, train: &Partition) -> String {
        let keep = serde_json::json!({
            "arch": arch,
            "data": train.manifest.fingerprint,
            "max_steps": self.max_steps, "batch_size": self.batch_size,
            "grad_accum": self.grad_accum, "lr": self.lr, "warmup": self.warmup(),
            "weight_decay": self.weight_decay, "betas": [self.beta1, self.beta2],
            "eps": self.adam_eps, "clip": self.max_grad_norm,
            "mlm_probability": self.mlm_probability, "seed": self.seed, "dtype": self.dtype,
        });
        format!("{:x}", Sha256::digest(keep.to_string().as_bytes()))
    }
}

/// What a run did.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct PretrainReport {
    pub out: PathBuf,
    pub parameters: usize,
    pub steps: u64,
    pub max_steps: u64,
    /// The step the run continued from, when it resumed.
    pub resumed_from: Option<u64>,
    pub tokens: u64,
    pub elapsed_s: f64,
    /// Tokens per second of the training steps themselves (validation and checkpoints left
    /// out), in this run.
    pub tokens_per_s: f64,
    /// Mean training loss over the last [`PretrainReport::train_loss_steps`] steps (50, or
    /// fewer in a shorter run).
    pub train_loss: Option<f64>,
    #[serde(default)]
    pub train_loss_steps: u64,
    /// The training loss of the last step.
    #[serde(default)]
    pub last_loss: Option<f64>,
    pub valid: Option<Valid>,
    /// A random-initialised model of the same size scores ln(vocab) on average.
    pub uniform_loss: f64,
    pub finished: bool,
    pub device: String,
}

/// The tokenizer's files to ship with the model: the loaded file(s) and the HF files saved
/// beside them.
fn tokenizer_files(loaded: &pytorrent_tokenizer::Loaded) -> Vec<PathBuf> {
    let (dir, mut files) = match &loaded.source {
        pytorrent_tokenizer::Source::TokenizerJson(p) => {
            (p.parent().map(Path::to_path_buf), vec![p.clone()])
        }
        pytorrent_tokenizer::Source::VocabMerges { vocab, merges } => (
            vocab.parent().map(Path::to_path_buf),
            vec![vocab.clone(), merges.clone()],
        ),
    };
    if let Some(dir) = dir {
        for name in pytorrent_tokenizer::OUTPUT_FILES {
            let p = dir.join(name);
            if p.is_file() && !files.iter().any(|f| f.file_name() == p.file_name()) {
                files.push(p);
            }
        }
    }
    files
}

struct Setup {
    model: MlmModel,
    train: Partition,
    valid: Option<Partition>,
    masking: Masking,
    pad: u32,
    tok_files: Vec<PathBuf>,
}

fn setup(cfg: &PretrainConfig, device: &Device, reporter: &dyn Reporter) -> Result<Setup> {
    let train_dir = cfg.shards.join("train");
    let train_dir = if train_dir.is_dir() {
        train_dir
    } else {
        cfg.shards.clone()
    };
    let train = Partition::open(&train_dir)?;
    if train.rows == 0 {
        return Err(Error::data(
            train_dir.join("manifest.json"),
            "no rows to train on",
        ));
    }
    let valid_dir = cfg.shards.join("valid");
    let valid = if valid_dir.join("manifest.json").is_file() {
        Some(Partition::open(&valid_dir)?).filter(|p| p.rows > 0)
    } else {
        None
    };
    if valid.is_none() {
        reporter.warn(&format!(
            "{}: no valid/ partition with rows: no validation",
            cfg.shards.display()
        ));
    }
    let info = &train.manifest.tokenizer;
    let spec = cfg.tokenizer.clone().unwrap_or_else(|| info.spec());
    let loaded = match pytorrent_tokenizer::load(&spec) {
        Ok(l) => l,
        Err(e) if cfg.tokenizer.is_none() => {
            return Err(Error::Usage(format!(
                "the tokenizer the shards were packed with ({spec}, as {} records it) does not \
                 load from here ({e}); give its files with --tokenizer",
                train_dir.join("manifest.json").display()
            )))
        }
        Err(e) => return Err(e.into()),
    };
    if cfg.tokenizer.is_some() && loaded.info()? != *info {
        let now = loaded.info()?;
        let same = serde_json::to_value(&now).ok().map(|v| strip_paths(&v))
            == serde_json::to_value(info).ok().map(|v| strip_paths(&v));
        if !same {
            return Err(Error::Usage(format!(
                "--tokenizer {spec} is not the tokenizer the shards were packed with (its files' sha256 differ from {}'s)",
                train_dir.join("manifest.json").display()
            )));
        }
    }
    let tok = &loaded.tokenizer;
    let ids = SpecialIds::of(tok)?;
    let pad = ids.require_pad("batching rows")?;
    let mask_id = match ids.mask {
        Some(m) => m,
        None if train.has_labels() => 0,
        None => ids.require_mask()?,
    };
    let vocab = tok.get_vocab_size(true);
    let compute = match cfg.dtype {
        TrainDtype::F32 => DType::F32,
        TrainDtype::Bf16 => DType::BF16,
    };
    let model = match (&cfg.model_config, &cfg.init) {
        (Some(spec_path), _) => {
            let mut spec = ModelSpec::read(spec_path)?;
            if let Some(n) = cfg.max_positions {
                spec.max_positions = n;
            }
            let arch = Arch::new(&spec, vocab, pad, ids.bos, ids.eos);
            MlmModel::init(arch, cfg.seed, device, compute)?
        }
        (None, Some(dir)) => {
            let arch = Arch::from_config_json(&dir.join(checkpoint::CONFIG))?;
            if arch.vocab_size < vocab {
                return Err(Error::Usage(format!(
                    "{}: vocab_size {} is smaller than the tokenizer's {vocab}",
                    dir.display(),
                    arch.vocab_size
                )));
            }
            let w = dir.join(checkpoint::WEIGHTS);
            let weights = candle_core::safetensors::load(&w, &Device::Cpu)
                .map_err(|e| Error::data(&w, e.to_string()))?;
            MlmModel::from_tensors(arch, weights, device, compute, &w.display().to_string())?
        }
        (None, None) => unreachable!("validated"),
    };
    let longest = train.seq_len();
    if longest > model.arch.max_tokens() {
        return Err(Error::Usage(format!(
            "the shards hold rows of {longest} tokens; the model takes at most {} (max_positions){}",
            model.arch.max_tokens(),
            if cfg.init.is_none() {
                format!(": give --max-positions {longest} (or a model config with more)")
            } else {
                " of the checkpoint it continues".to_string()
            }
        )));
    }
    let mut special = ids.all.clone();
    special.push(pad);
    special.sort_unstable();
    special.dedup();
    Ok(Setup {
        model,
        train,
        valid,
        masking: Masking {
            spec: MaskSpec {
                probability: cfg.mlm_probability,
                whole_word: false,
                dupe_factor: 1,
                mask_id,
                vocab_size: vocab as u32,
            },
            special,
        },
        pad,
        tok_files: tokenizer_files(&loaded),
    })
}

fn strip_paths(v: &serde_json::Value) -> serde_json::Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        for k in ["file", "vocab", "merges"] {
            o.remove(k);
        }
    }
    v
}

/// Mean loss, perplexity and accuracy on the first `eval_rows` validation rows, with masks
/// that are the same at every evaluation.
fn validate(s: &mut Setup, cfg: &PretrainConfig) -> Result<Option<Valid>> {
    let Some(valid) = s.valid.as_mut() else {
        return Ok(None);
    };
    let n = valid.rows.min(cfg.eval_rows);
    let sizes = valid.sizes().to_vec();
    let (mut nll, mut count, mut correct) = (0f64, 0usize, 0usize);
    let mut k = 0u64;
    while k < n {
        let m = (n - k).min(cfg.batch_size as u64);
        let mut rows = Vec::new();
        let mut seeds = Vec::new();
        for r in k..k + m {
            let (shard, row) = locate(&sizes, r);
            rows.push(valid.row(shard, row)?);
            seeds.push(seed_of(&[cfg.seed, 0x7A11D, r]));
        }
        let b = batch(&rows, s.pad, &s.masking, &seeds);
        let loss = s.model.loss(&b, &mut Dropout::new(0, false))?;
        nll += loss.nll_sum.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        count += b.targets.len();
        correct += loss.correct;
        k += m;
    }
    if count == 0 {
        return Ok(None);
    }
    let loss = nll / count as f64;
    Ok(Some(Valid {
        loss,
        ppl: loss.exp(),
        acc: correct as f64 / count as f64,
    }))
}

/// Shard and row of the `r`-th stored row.
fn locate(sizes: &[usize], mut r: u64) -> (usize, usize) {
    for (i, s) in sizes.iter().enumerate() {
        if r < *s as u64 {
            return (i, r as usize);
        }
        r -= *s as u64;
    }
    (sizes.len() - 1, 0)
}

/// The micro-batches of optimiser step `step`.
fn step_batches(
    s: &mut Setup,
    order: &mut Order,
    cfg: &PretrainConfig,
    step: u64,
) -> Result<Vec<Batch>> {
    let per_step = (cfg.batch_size * cfg.grad_accum) as u64;
    let mut out = Vec::with_capacity(cfg.grad_accum);
    for k in 0..cfg.grad_accum as u64 {
        let mut rows: Vec<Row> = Vec::with_capacity(cfg.batch_size);
        let mut seeds = Vec::with_capacity(cfg.batch_size);
        for i in 0..cfg.batch_size as u64 {
            let place = step * per_step + k * cfg.batch_size as u64 + i;
            let (shard, row) = order.at(place);
            rows.push(s.train.row(shard, row)?);
            seeds.push(seed_of(&[cfg.seed, 0x3A5C, place]));
        }
        out.push(batch(&rows, s.pad, &s.masking, &seeds));
    }
    Ok(out)
}

/// One optimiser step's forward and backward passes: the mean loss over every target of the
/// accumulated micro-batches (so accumulation equals one larger batch) and the gradients.
pub fn loss_and_grads(
    model: &MlmModel,
    batches: &[Batch],
    dropout_seed: u64,
) -> Result<(f64, Vec<Tensor>, usize)> {
    let total: usize = batches.iter().map(|b| b.targets.len()).sum();
    let mut grads: Option<Vec<Tensor>> = None;
    let mut nll = 0f64;
    let mut correct = 0;
    for (k, b) in batches.iter().enumerate() {
        if b.targets.is_empty() {
            continue;
        }
        let mut drop = Dropout::new(seed_of(&[dropout_seed, k as u64]), true);
        let loss = model.loss(b, &mut drop)?;
        correct += loss.correct;
        nll += loss.nll_sum.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        let g = (loss.nll_sum / total as f64)?.backward()?;
        let g = gradients(model.params(), &g)?;
        grads = Some(add_grads(grads, g)?);
    }
    let grads = match grads {
        Some(g) => g,
        None => zero_grads(model.params())?,
    };
    Ok((
        if total == 0 { 0.0 } else { nll / total as f64 },
        grads,
        correct,
    ))
}

/// Keeps freed tensor buffers in the heap for the next step. A training step allocates and
/// frees hundreds of multi-megabyte tensors; glibc serves each from a fresh `mmap` (zeroed
/// pages, a page fault per 4 KiB) and returns it on free, which took a quarter of the CPU
/// time. With these thresholds the same memory is reused: about 1.5× the steps per second.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator thresholds; it is safe to call at any time.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

/// The pretraining stage.
pub struct Pretrain;

impl pytorrent_io::stage::Stage for Pretrain {
    type Config = PretrainConfig;
    type Report = PretrainReport;
    type Error = Error;
    const COMMAND: &'static str = "pretrain";
    const READS: &'static [&'static str] = &["shards", "model_config", "init"];
    const READS_OR_ID: &'static [&'static str] = &["tokenizer"];
    const UNHASHED: &'static [&'static str] = &["resume", "stop_after"];
    const RESUMES: bool = true;

    fn run(
        config: &PretrainConfig,
        reporter: &dyn pytorrent_io::Reporter,
    ) -> Result<PretrainReport, Error> {
        run(config, reporter)
    }
    fn set_resume(config: &mut PretrainConfig, resume: bool) {
        config.resume = resume;
    }

    fn paused(report: &PretrainReport) -> bool {
        !report.finished
    }
}

pub fn run(cfg: &PretrainConfig, reporter: &dyn Reporter) -> Result<PretrainReport> {
    cfg.validate()?;
    tune_allocator();
    let device = cfg.device.open()?;
    let mut s = setup(cfg, &device, reporter)?;
    let out = &cfg.out;
    std::fs::create_dir_all(out).map_err(|e| pytorrent_io::Error::io(out, e))?;
    // A killed run leaves half-written checkpoints, logs and final files under temporary
    // names; they go before this run writes its own.
    let leftovers = pytorrent_io::atomic::remove_leftovers(out, &[".final."], None)?;
    if leftovers > 0 {
        reporter.log(&format!(
            "removed {leftovers} temporary files of an interrupted run from {}",
            out.display()
        ));
    }
    let fingerprint = cfg.fingerprint(&s.model.arch, &s.train);
    let adam = cfg.adamw();
    let existing = checkpoint::list(out);
    let mut opt = AdamW::new(s.model.params(), adam.clone())?;
    let (mut step, mut tokens, elapsed_before, resumed_from) = match existing.last() {
        Some((n, dir)) if cfg.resume => {
            let ck = checkpoint::load(dir)?;
            if ck.state.fingerprint != fingerprint {
                return Err(Error::Usage(format!(
                    "{}: made with other settings (model, data, batch, schedule, seed or dtype); \
                     resume with the settings it was started with",
                    dir.display()
                )));
            }
            s.model = MlmModel::from_tensors(
                s.model.arch.clone(),
                ck.weights,
                &device,
                s.model.compute,
                &dir.display().to_string(),
            )?;
            opt = AdamW::new(s.model.params(), adam)?;
            opt.restore(ck.state.step, &ck.moments)?;
            reporter.log(&format!("resuming from {} (step {n})", dir.display()));
            (
                ck.state.step,
                ck.state.tokens,
                ck.state.elapsed_s,
                Some(ck.state.step),
            )
        }
        Some((_, dir)) => {
            return Err(Error::Usage(format!(
            "{} already holds checkpoints ({}): pass --resume to continue, or choose another --out",
            out.display(),
            dir.display()
        )))
        }
        None => {
            if cfg.resume {
                reporter.log(&format!(
                    "{}: no checkpoint yet, starting from step 0",
                    out.display()
                ));
            }
            (0, 0, 0.0, None)
        }
    };
    let mut log = curve::open_log(out, curve::HEADER, resumed_from)?;
    let log_path = out.join("log.csv");
    reporter.log(&format!(
        "{} parameters, {} train rows of {} tokens, {} × {} rows per step, {} steps, {} {}",
        s.model.arch.parameters(),
        s.train.rows,
        s.train.seq_len(),
        cfg.batch_size,
        cfg.grad_accum,
        cfg.max_steps,
        cfg.device,
        cfg.dtype.name()
    ));
    let mut order = Order::new(cfg.seed, s.train.sizes());
    let rows_per_step = (cfg.batch_size * cfg.grad_accum) as f64;
    let stop = cfg
        .stop_after
        .map_or(cfg.max_steps, |n| n.min(cfg.max_steps));
    let started = Instant::now();
    let tokens_at_start = tokens;
    let mut recent: std::collections::VecDeque<f64> = Default::default();
    let mut last_valid = None;
    // The bar counts token positions (rows × seq_len), so it shows tokens/s and the ETA.
    let positions_per_step = (cfg.batch_size * cfg.grad_accum * s.train.seq_len()) as u64;
    reporter.begin(
        "pretraining",
        Unit::Items("tokens"),
        Some(cfg.max_steps * positions_per_step),
    );
    reporter.set_position(step * positions_per_step);
    // Seconds spent on training steps alone (validation and checkpoints left out), for tokens/s.
    let mut train_secs = 0f64;
    while step < stop {
        let step_started = Instant::now();
        let batches = step_batches(&mut s, &mut order, cfg, step)?;
        tokens += batches
            .iter()
            .map(|b| b.attention.iter().filter(|a| **a == 1).count() as u64)
            .sum::<u64>();
        let (loss, mut grads, _) =
            loss_and_grads(&s.model, &batches, seed_of(&[cfg.seed, 0xD80, step]))?;
        if !loss.is_finite() {
            return Err(Error::data(
                &log_path,
                format!("the loss became {loss} at step {}", step + 1),
            ));
        }
        let norm = clip_grad_norm(&mut grads, cfg.max_grad_norm)?;
        let lr = lr_at(cfg.lr, step, cfg.warmup(), cfg.max_steps);
        opt.step(&grads, lr)?;
        train_secs += step_started.elapsed().as_secs_f64();
        step += 1;
        recent.push_back(loss);
        if recent.len() > 50 {
            recent.pop_front();
        }
        let secs = started.elapsed().as_secs_f64();
        let elapsed = elapsed_before + secs;
        let valid = if step % cfg.eval_interval() == 0 || step == stop {
            let v = validate(&mut s, cfg)?;
            if let Some(v) = &v {
                reporter.log(&format!(
                    "step {step}: loss {loss:.4}, valid loss {:.4}, perplexity {:.2}, masked-token accuracy {:.3}, {:.0} tokens/s",
                    v.loss,
                    v.ppl,
                    v.acc,
                    (tokens - tokens_at_start) as f64 / train_secs.max(1e-9)
                ));
            }
            last_valid = v.or(last_valid);
            v
        } else {
            None
        };
        let row = LogRow {
            step,
            epoch: step as f64 * rows_per_step / s.train.rows as f64,
            lr,
            loss,
            grad_norm: norm,
            tokens,
            elapsed_s: elapsed,
            tokens_per_s: (tokens - tokens_at_start) as f64 / train_secs.max(1e-9),
            valid,
        };
        writeln!(log, "{}", row.csv()).map_err(|e| pytorrent_io::Error::io(&log_path, e))?;
        reporter.set_position(step * positions_per_step);
        if step % cfg.save_interval() == 0 || step == stop {
            let state = TrainerState {
                step,
                tokens,
                elapsed_s: elapsed,
                fingerprint: fingerprint.clone(),
            };
            checkpoint::save(
                &out.join(format!("checkpoint-{step}")),
                &s.model,
                &opt,
                &state,
                &s.tok_files,
            )?;
            checkpoint::prune(out, cfg.keep_checkpoints)?;
        }
    }
    reporter.end();
    drop(log);
    let finished = step >= cfg.max_steps;
    if finished {
        write_final(&s, cfg)?;
    }
    let (train, valid) = curve::read_log(&log_path)?;
    // A resumed run with nothing left to do reports the losses its log ends with.
    let mut last_loss = recent.back().copied();
    if recent.is_empty() {
        recent.extend(train.iter().rev().take(50).map(|p| p.1));
        last_loss = train.last().map(|p| p.1);
        last_valid = last_valid.or_else(|| curve::last_valid(&log_path));
    }
    curve::plot(
        &out.join("loss.svg"),
        "pytorrent pretrain",
        &[
            Series {
                name: "train loss",
                points: train,
            },
            Series {
                name: "valid loss",
                points: valid,
            },
        ],
    )?;
    let secs = started.elapsed().as_secs_f64();
    Ok(PretrainReport {
        out: out.clone(),
        parameters: s.model.arch.parameters(),
        steps: step,
        max_steps: cfg.max_steps,
        resumed_from,
        tokens,
        elapsed_s: elapsed_before + secs,
        tokens_per_s: (tokens - tokens_at_start) as f64 / train_secs.max(1e-9),
        train_loss: (!recent.is_empty()).then(|| recent.iter().sum::<f64>() / recent.len() as f64),
        train_loss_steps: recent.len() as u64,
        last_loss,
        valid: last_valid,
        uniform_loss: (s.model.arch.vocab_size as f64).ln(),
        finished,
        device: cfg.device.to_string(),
    })
}

/// The final model into `out` itself (config, weights in the save dtype, tokenizer), each
/// file written under a temporary name first.
fn write_final(s: &Setup, cfg: &PretrainConfig) -> Result<()> {
    let out = &cfg.out;
    let tmp = tempfile::Builder::new()
        .prefix(".final.")
        .tempdir_in(out)
        .map_err(|e| pytorrent_io::Error::io(out, e))?;
    let dtype = match cfg.save_dtype {
        SaveDtype::F32 => DType::F32,
        SaveDtype::F16 => DType::F16,
    };
    checkpoint::write_model(tmp.path(), &s.model, dtype, &s.tok_files)?;
    for e in std::fs::read_dir(tmp.path()).map_err(|e| pytorrent_io::Error::io(tmp.path(), e))? {
        let e = e.map_err(|e| pytorrent_io::Error::io(tmp.path(), e))?;
        let to = out.join(e.file_name());
        std::fs::rename(e.path(), &to).map_err(|e| pytorrent_io::Error::io(&to, e))?;
    }
    Ok(())
}

impl std::fmt::Display for PretrainReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let resumed = self
            .resumed_from
            .map_or(String::new(), |s| format!(" (resumed at step {s})"));
        writeln!(
            f,
            "{} steps of {}{resumed}: {} tokens in {:.1} s ({:.0} tokens/s) on {}, {} parameters",
            self.steps,
            self.max_steps,
            self.tokens,
            self.elapsed_s,
            self.tokens_per_s,
            self.device,
            self.parameters
        )?;
        if let Some(l) = self.train_loss {
            let last = self
                .last_loss
                .map_or(String::new(), |x| format!("; the last step's {x:.4}"));
            writeln!(
                f,
                "train loss {l:.4} (the mean of the last {} steps{last}; a uniform guess: {:.4})",
                self.train_loss_steps, self.uniform_loss
            )?;
        }
        if let Some(v) = &self.valid {
            writeln!(
                f,
                "valid loss {:.4}, perplexity {:.2}, masked-token accuracy {:.3}",
                v.loss, v.ppl, v.acc
            )?;
        }
        if self.finished {
            writeln!(
                f,
                "model: {} (log.csv, loss.svg beside it)",
                self.out.display()
            )
        } else {
            writeln!(
                f,
                "stopped early: continue with --resume (checkpoints in {})",
                self.out.display()
            )
        }
    }
}
