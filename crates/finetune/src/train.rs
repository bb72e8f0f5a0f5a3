//! `pytorrent finetune`: the training loop.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use pytorrent_eval::pairs::{from_corpus, Selection};
use pytorrent_io::{Reporter, Unit};
use pytorrent_model::text::ModelTokenizer;
use pytorrent_pretrain::checkpoint::{self, TrainerState};
use pytorrent_pretrain::curve::{plot, plot_labelled, Points, Series};
use pytorrent_pretrain::model::MlmModel;
use pytorrent_pretrain::nn::seed_of;
use pytorrent_pretrain::optim::{clip_grad_norm, lr_at, AdamW};
use pytorrent_pretrain::spec::Arch;
use pytorrent_pretrain::train::{tune_allocator, SaveDtype, TrainDtype};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::FinetuneConfig;
use crate::data::{plan_epoch, EpochPlan, Pairs};
use crate::folder::{self, Template};
use crate::objective::{column, embed_all, loss_and_grads, pool_mrr, Micro};
use crate::{Error, Result};

/// What a run did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FinetuneReport {
    pub out: PathBuf,
    pub init: String,
    pub parameters: usize,
    /// Training pairs, and the records left out for an empty query.
    pub train_pairs: usize,
    pub without_query: u64,
    /// Validation pairs (each query ranked against all their codes).
    pub valid_pairs: usize,
    /// Texts cut to `max_seq_length` tokens.
    pub texts_cut: usize,
    pub max_seq_length: usize,
    pub hard_negatives: usize,
    /// Micro-batches of the first epoch, and its pairs put off or left out to keep repeated
    /// texts out of a batch.
    pub batches_per_epoch: usize,
    pub deferred: usize,
    pub left_out: usize,
    pub steps: u64,
    pub max_steps: u64,
    pub resumed_from: Option<u64>,
    pub epochs: f64,
    pub elapsed_s: f64,
    /// Training pairs per second of the training steps themselves.
    pub pairs_per_s: f64,
    /// Mean loss over the last `train_loss_steps` steps, and the last step's.
    pub train_loss: Option<f64>,
    pub train_loss_steps: u64,
    pub last_loss: Option<f64>,
    /// Validation MRR (pool protocol) of the starting model and of the last validation.
    pub valid_mrr_init: Option<f64>,
    pub valid_mrr: Option<f64>,
    /// (step, MRR) of every validation, the starting model's at step 0.
    pub valid_curve: Vec<(u64, f64)>,
    pub finished: bool,
    pub device: String,
}

/// Validation pairs as token ids.
struct ValidSet {
    queries: Vec<Vec<u32>>,
    codes: Vec<Vec<u32>>,
}

const HEADER: &str = "step,epoch,lr,loss,grad_norm,pairs,elapsed_s,pairs_per_s,valid_mrr";

struct Setup {
    model: MlmModel,
    template: Template,
    pairs: Pairs,
    valid: Option<ValidSet>,
    without_query: u64,
    init_fingerprint: String,
    max_len: usize,
}

/// sha256 of the starting checkpoint's config and weight files.
fn fingerprint_files(paths: &[PathBuf]) -> Result<String> {
    let mut h = Sha256::new();
    for p in paths {
        let mut f = std::fs::File::open(p).map_err(|e| pytorrent_io::Error::io(p, e))?;
        std::io::copy(&mut f, &mut h).map_err(|e| pytorrent_io::Error::io(p, e))?;
    }
    Ok(format!("{:x}", h.finalize()))
}

fn weight_paths(w: &pytorrent_model::source::Weights) -> Vec<PathBuf> {
    match w {
        pytorrent_model::source::Weights::Safetensors(p) => p.clone(),
        pytorrent_model::source::Weights::Pytorch(p) => vec![p.clone()],
    }
}

/// The pooler of the checkpoint, or a fresh one (normal(0, initializer_range), zero bias, from
/// the seed) when it has none: transformers' `RobertaModel` expects one; mean pooling does not
/// use it.
fn pooler(
    tensors: &HashMap<String, Tensor>,
    arch: &Arch,
    seed: u64,
    origin: &Path,
) -> Result<HashMap<String, Tensor>> {
    let h = arch.hidden;
    let mut p: HashMap<String, Tensor> = tensors
        .iter()
        .filter(|(n, _)| n.starts_with("pooler."))
        .map(|(n, t)| (n.clone(), t.clone()))
        .collect();
    if p.len() == 2 {
        for (name, shape) in [
            ("pooler.dense.weight", vec![h, h]),
            ("pooler.dense.bias", vec![h]),
        ] {
            let dims = p.get(name).map(|t| t.dims().to_vec());
            if dims.as_deref() != Some(shape.as_slice()) {
                return Err(Error::data(
                    origin,
                    format!("{name} has shape {dims:?}, the config says {shape:?}"),
                ));
            }
        }
        return Ok(p);
    }
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed_of(&[seed, 0x9001]));
    let w: Vec<f32> = (0..h * h)
        .map(|_| {
            use rand::Rng;
            let (u1, u2): (f64, f64) = (1.0 - rng.random::<f64>(), rng.random::<f64>());
            ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos() * arch.initializer_range)
                as f32
        })
        .collect();
    p.insert(
        "pooler.dense.weight".into(),
        Tensor::from_vec(w, (h, h), &Device::Cpu)?,
    );
    p.insert(
        "pooler.dense.bias".into(),
        Tensor::zeros(h, DType::F32, &Device::Cpu)?,
    );
    Ok(p)
}

fn setup(cfg: &FinetuneConfig, device: &Device, reporter: &dyn Reporter) -> Result<Setup> {
    let files = pytorrent_model::source::resolve(&cfg.init)?;
    let arch = Arch::from_encoder_config_json(&files.config)?;
    let tensors = pytorrent_model::encoder::encoder_tensors(&files)?;
    let compute = match cfg.dtype {
        TrainDtype::F32 => DType::F32,
        TrainDtype::Bf16 => DType::BF16,
    };
    // The encoder first: it checks every tensor against the config's sizes, so the pooler
    // below is sized from a hidden width the weights confirm.
    let model = MlmModel::encoder(
        arch.clone(),
        folder::trainer_names(tensors.clone()),
        device,
        compute,
        &files.folder.display().to_string(),
    )?;
    let pooler = pooler(&tensors, &arch, cfg.seed, &files.folder)?;
    let tok = ModelTokenizer::load(&files.folder, cfg.tokenizer.as_deref())?;
    let tok_dir = match cfg.tokenizer.as_deref().map(Path::new) {
        Some(p) if p.is_dir() => p.to_path_buf(),
        Some(p) => p.parent().unwrap_or(Path::new(".")).to_path_buf(),
        None => files.folder.clone(),
    };
    let max_len = cfg.max_seq_length.unwrap_or(arch.max_tokens().min(256));
    if max_len > arch.max_tokens() {
        return Err(Error::Usage(format!(
            "--max-seq-length {max_len}: {} takes {} tokens",
            cfg.init,
            arch.max_tokens()
        )));
    }
    let fields = cfg.query_field.as_deref().zip(cfg.code_field.as_deref());
    let read = |partitions| {
        from_corpus(
            &cfg.input,
            &Selection {
                partitions,
                rule: &cfg.rule,
                query: cfg.query,
                fields,
            },
            reporter,
        )
    };
    let train = read(&cfg.partition)?;
    if train.texts.len() < 2 {
        return Err(Error::data(
            cfg.input.inputs.first().cloned().unwrap_or_default(),
            format!(
                "{} <query, code> pairs in partition {} ({} records without a query): \
                 contrastive training needs at least 2",
                train.texts.len(),
                cfg.partition,
                train.without_query
            ),
        ));
    }
    reporter.log(&format!(
        "{} training pairs; tokenizing (at most {max_len} tokens a text)",
        train.texts.len()
    ));
    let mut pairs = Pairs::encode(&tok, &train.texts, &train.codes, max_len)?;
    if cfg.hard_negatives > 0 {
        reporter.log(&format!(
            "mining {} BM25 hard negatives a pair",
            cfg.hard_negatives
        ));
        pairs.mine_negatives(&train.texts, &train.codes, cfg.hard_negatives);
        let short = pairs.negatives_short(cfg.hard_negatives);
        if short > 0 {
            return Err(Error::data(
                cfg.input.inputs.first().cloned().unwrap_or_default(),
                format!(
                    "{short} pairs have fewer than {} other distinct codes to take as hard negatives",
                    cfg.hard_negatives
                ),
            ));
        }
    }
    let valid_set = read(&cfg.valid_partition)?;
    let valid = if valid_set.texts.len() < 2 {
        reporter.warn(&format!(
            "{} pairs in partition {}: no validation MRR",
            valid_set.texts.len(),
            cfg.valid_partition
        ));
        None
    } else {
        let n = valid_set.texts.len().min(cfg.eval_pairs.max(2));
        let v = Pairs::encode(&tok, &valid_set.texts[..n], &valid_set.codes[..n], max_len)?;
        Some(ValidSet {
            queries: v.queries,
            codes: v.codes,
        })
    };
    let mut init_files = vec![files.config.clone()];
    init_files.extend(weight_paths(&files.weights));
    let card = String::new();
    Ok(Setup {
        template: Template {
            config: serde_json::from_slice(
                &std::fs::read(&files.config)
                    .map_err(|e| pytorrent_io::Error::io(&files.config, e))?,
            )
            .map_err(|e| Error::data(&files.config, e.to_string()))?,
            pooler,
            tokenizer_files: folder::tokenizer_files(&tok_dir),
            max_seq_length: max_len,
            max_tokens: arch.max_tokens(),
            card,
        },
        model,
        pairs,
        valid,
        without_query: train.without_query,
        init_fingerprint: fingerprint_files(&init_files)?,
        max_len,
    })
}

/// sha256 of the tokenized pairs and their negatives.
fn data_fingerprint(p: &Pairs) -> String {
    let mut h = Sha256::new();
    for side in [&p.queries, &p.codes, &p.negatives] {
        for row in side.iter() {
            h.update((row.len() as u64).to_le_bytes());
            for id in row {
                h.update(id.to_le_bytes());
            }
        }
    }
    format!("{:x}", h.finalize())
}

/// The micro-batches of every epoch, planned on demand (each epoch's plan depends only on the
/// seed and its number).
struct Schedule<'a> {
    pairs: &'a Pairs,
    batch_size: usize,
    seed: u64,
    /// (first global micro-batch index, plan) of the epoch planned last.
    current: (u64, u64, EpochPlan),
}

impl<'a> Schedule<'a> {
    fn new(pairs: &'a Pairs, batch_size: usize, seed: u64) -> Schedule<'a> {
        let plan = plan_epoch(pairs, batch_size, seed, 0);
        Schedule {
            pairs,
            batch_size,
            seed,
            current: (0, 0, plan),
        }
    }

    /// The pairs of global micro-batch `g`, and its epoch.
    fn micro(&mut self, g: u64) -> (u64, &[u32]) {
        if g < self.current.1 {
            self.current = (0, 0, plan_epoch(self.pairs, self.batch_size, self.seed, 0));
        }
        loop {
            let (epoch, start, plan) = &self.current;
            let n = plan.batches.len() as u64;
            if g < start + n {
                break;
            }
            let next = epoch + 1;
            let start = start + n.max(1);
            self.current = (
                next,
                start,
                plan_epoch(self.pairs, self.batch_size, self.seed, next),
            );
        }
        let (epoch, start, plan) = &self.current;
        (*epoch, &plan.batches[(g - start) as usize])
    }
}

fn micro_of(pairs: &Pairs, idx: &[u32], negatives: usize, pad: u32) -> Micro {
    let pick = |rows: &[Vec<u32>], at: &dyn Fn(usize) -> usize| {
        let refs: Vec<&[u32]> = idx
            .iter()
            .map(|&i| rows[at(i as usize)].as_slice())
            .collect();
        column(&refs, pad)
    };
    let mut columns = vec![pick(&pairs.queries, &|i| i), pick(&pairs.codes, &|i| i)];
    for k in 0..negatives {
        columns.push(pick(&pairs.codes, &|i| pairs.negatives[i][k] as usize));
    }
    Micro { columns }
}

fn validate_mrr(s: &Setup, batch_size: usize) -> Result<Option<f64>> {
    let Some(v) = &s.valid else {
        return Ok(None);
    };
    let pad = s.model.arch.pad_id;
    let qe = embed_all(&s.model, &v.queries, batch_size, pad)?;
    let ce = embed_all(&s.model, &v.codes, batch_size, pad)?;
    Ok(Some(pool_mrr(&qe, &ce)))
}

/// (step, loss) and (step, valid MRR) points of a log.
pub fn read_log(path: &Path) -> Result<(Points, Points)> {
    let text = std::fs::read_to_string(path).map_err(|e| pytorrent_io::Error::io(path, e))?;
    let (mut loss, mut mrr) = (Vec::new(), Vec::new());
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
        if let Some(step) = num(0) {
            if let Some(l) = num(3) {
                loss.push((step, l));
            }
            if let Some(m) = num(8) {
                mrr.push((step, m));
            }
        }
    }
    Ok((loss, mrr))
}

/// The fine-tuning stage.
pub struct Finetune;

impl pytorrent_io::stage::Stage for Finetune {
    type Config = FinetuneConfig;
    type Report = FinetuneReport;
    type Error = Error;
    const COMMAND: &'static str = "finetune";
    const READS: &'static [&'static str] = &["inputs"];
    const READS_OR_ID: &'static [&'static str] = &["init", "tokenizer"];
    const UNHASHED: &'static [&'static str] = &["resume", "stop_after"];
    const RESUMES: bool = true;

    fn run(config: &FinetuneConfig, reporter: &dyn Reporter) -> Result<FinetuneReport> {
        run(config, reporter)
    }
    fn set_resume(config: &mut FinetuneConfig, resume: bool) {
        config.resume = resume;
    }
    fn paused(report: &FinetuneReport) -> bool {
        !report.finished
    }
}

pub fn run(cfg: &FinetuneConfig, reporter: &dyn Reporter) -> Result<FinetuneReport> {
    cfg.validate()?;
    folder::check_out(&cfg.out)?;
    tune_allocator();
    let device = cfg.device.open()?;
    let mut s = setup(cfg, &device, reporter)?;
    let out = &cfg.out;
    std::fs::create_dir_all(out).map_err(|e| pytorrent_io::Error::io(out, e))?;
    let leftovers = pytorrent_io::atomic::remove_leftovers(out, &[".final."], None)?;
    if leftovers > 0 {
        reporter.log(&format!(
            "removed {leftovers} temporary files of an interrupted run from {}",
            out.display()
        ));
    }
    let first = plan_epoch(&s.pairs, cfg.batch_size, cfg.seed, 0);
    if first.batches.is_empty() {
        return Err(Error::data(
            cfg.input.inputs.first().cloned().unwrap_or_default(),
            "no batch of two pairs without a repeated text: the pairs all repeat one another",
        ));
    }
    let total = cfg.total_steps(first.batches.len() as u64);
    let fingerprint = cfg.fingerprint(&s.init_fingerprint, &data_fingerprint(&s.pairs), total);
    s.template.card = card(cfg, &s, total);
    let adam = cfg.adamw();
    let mut opt = AdamW::new(s.model.params(), adam.clone())?;
    let existing = checkpoint::list(out);
    let (mut step, mut seen, elapsed_before, resumed_from) = match existing.last() {
        Some((_, dir)) if cfg.resume => {
            let ck = checkpoint::load(dir)?;
            if ck.state.fingerprint != fingerprint {
                return Err(Error::Usage(format!(
                    "{}: made with other settings (model, pairs, batch, schedule, seed or dtype); \
                     resume with the settings it was started with",
                    dir.display()
                )));
            }
            s.model = MlmModel::encoder(
                s.model.arch.clone(),
                folder::trainer_names(ck.weights),
                &device,
                s.model.compute,
                &dir.display().to_string(),
            )?;
            opt = AdamW::new(s.model.params(), adam)?;
            opt.restore(ck.state.step, &ck.moments)?;
            reporter.log(&format!(
                "resuming from {} (step {})",
                dir.display(),
                ck.state.step
            ));
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
        None => (0, 0, 0.0, None),
    };
    let mut log = pytorrent_pretrain::curve::open_log(out, HEADER, resumed_from)?;
    let log_path = out.join("log.csv");
    let io_log = |e| pytorrent_io::Error::io(&log_path, e);
    reporter.log(&format!(
        "{} parameters; {} pairs in {} batches of up to {} an epoch ({} × {} a step), {} steps, {} {}",
        s.model.params().iter().map(|(_, v)| v.elem_count()).sum::<usize>(),
        s.pairs.len(),
        first.batches.len(),
        cfg.batch_size,
        cfg.batch_size,
        cfg.grad_accum,
        total,
        cfg.device,
        cfg.dtype.name()
    ));
    let mut curve: Vec<(u64, f64)> = Vec::new();
    if resumed_from.is_none() {
        let m = validate_mrr(&s, cfg.batch_size)?;
        if let Some(m) = m {
            reporter.log(&format!("step 0 (the starting model): valid MRR {m:.4}"));
            writeln!(log, "0,0,0,,,0,0,0,{m:.9}").map_err(io_log)?;
        }
    }
    let stop = cfg.stop_after.map_or(total, |n| n.min(total));
    let mut schedule = Schedule::new(&s.pairs, cfg.batch_size, cfg.seed);
    let started = Instant::now();
    let seen_at_start = seen;
    let mut recent: std::collections::VecDeque<f64> = Default::default();
    let mut train_secs = 0f64;
    reporter.begin("fine-tuning", Unit::Items("steps"), Some(total));
    reporter.set_position(step);
    while step < stop {
        let step_started = Instant::now();
        let mut micros = Vec::with_capacity(cfg.grad_accum);
        for k in 0..cfg.grad_accum as u64 {
            let (_, idx) = schedule.micro(step * cfg.grad_accum as u64 + k);
            seen += idx.len() as u64;
            micros.push(micro_of(
                &s.pairs,
                idx,
                cfg.hard_negatives,
                s.model.arch.pad_id,
            ));
        }
        let (loss, mut grads) = loss_and_grads(
            &s.model,
            &micros,
            cfg.scale,
            cfg.loss,
            seed_of(&[cfg.seed, 0xD80, step]),
        )?;
        if !loss.is_finite() {
            return Err(Error::data(
                &log_path,
                format!("the loss became {loss} at step {}", step + 1),
            ));
        }
        let norm = clip_grad_norm(&mut grads, cfg.max_grad_norm)?;
        let lr = lr_at(cfg.lr, step, cfg.warmup(total), total);
        opt.step(&grads, lr)?;
        train_secs += step_started.elapsed().as_secs_f64();
        step += 1;
        recent.push_back(loss);
        if recent.len() > 50 {
            recent.pop_front();
        }
        let elapsed = elapsed_before + started.elapsed().as_secs_f64();
        let rate = (seen - seen_at_start) as f64 / train_secs.max(1e-9);
        // Not at a --stop-after step: the log of a paused and resumed run stays the log of an
        // uninterrupted one.
        let mrr = if step % cfg.eval_interval(total) == 0 || step == total {
            let m = validate_mrr(&s, cfg.batch_size)?;
            if let Some(m) = m {
                reporter.log(&format!(
                    "step {step}: loss {loss:.4}, valid MRR {m:.4}, {rate:.1} pairs/s"
                ));
            }
            m
        } else {
            None
        };
        writeln!(
            log,
            "{step},{:.6},{lr:e},{loss:.9},{norm:.6},{seen},{elapsed:.3},{rate:.1},{}",
            seen as f64 / s.pairs.len() as f64,
            mrr.map_or(String::new(), |m| format!("{m:.9}"))
        )
        .map_err(io_log)?;
        reporter.set_position(step);
        if step % cfg.save_interval(total) == 0 || step == stop {
            let state = TrainerState {
                step,
                tokens: seen,
                elapsed_s: elapsed,
                fingerprint: fingerprint.clone(),
            };
            folder::save_checkpoint(
                &out.join(format!("checkpoint-{step}")),
                &s.model,
                &s.template,
                &opt,
                &state,
            )?;
            checkpoint::prune(out, cfg.keep_checkpoints)?;
        }
    }
    reporter.end();
    drop(log);
    let finished = step >= total;
    if finished {
        let dtype = match cfg.save_dtype {
            SaveDtype::F32 => DType::F32,
            SaveDtype::F16 => DType::F16,
        };
        folder::write_final(out, &s.model, &s.template, dtype)?;
    }
    let (train_points, mrr_points) = read_log(&log_path)?;
    curve.extend(mrr_points.iter().map(|(x, y)| (*x as u64, *y)));
    let mut last_loss = recent.back().copied();
    if recent.is_empty() {
        recent.extend(train_points.iter().rev().take(50).map(|p| p.1));
        last_loss = train_points.last().map(|p| p.1);
    }
    plot(
        &out.join("loss.svg"),
        "pytorrent finetune",
        &[Series {
            name: "train loss",
            points: train_points,
        }],
    )?;
    plot_labelled(
        &out.join("mrr.svg"),
        "pytorrent finetune: validation MRR (pool)",
        "MRR",
        &[Series {
            name: "valid MRR",
            points: mrr_points,
        }],
    )?;
    Ok(FinetuneReport {
        out: out.clone(),
        init: cfg.init.clone(),
        parameters: s.model.params().iter().map(|(_, v)| v.elem_count()).sum(),
        train_pairs: s.pairs.len(),
        without_query: s.without_query,
        valid_pairs: s.valid.as_ref().map_or(0, |v| v.queries.len()),
        texts_cut: s.pairs.cut,
        max_seq_length: s.max_len,
        hard_negatives: cfg.hard_negatives,
        batches_per_epoch: first.batches.len(),
        deferred: first.deferred,
        left_out: first.left_out,
        steps: step,
        max_steps: total,
        resumed_from,
        epochs: seen as f64 / s.pairs.len() as f64,
        elapsed_s: elapsed_before + started.elapsed().as_secs_f64(),
        pairs_per_s: (seen - seen_at_start) as f64 / train_secs.max(1e-9),
        train_loss: (!recent.is_empty()).then(|| recent.iter().sum::<f64>() / recent.len() as f64),
        train_loss_steps: recent.len() as u64,
        last_loss,
        valid_mrr_init: curve.iter().find(|p| p.0 == 0).map(|p| p.1),
        valid_mrr: curve.last().map(|p| p.1),
        valid_curve: curve,
        finished,
        device: cfg.device.to_string(),
    })
}

/// The model card written with the model.
fn card(cfg: &FinetuneConfig, s: &Setup, total: u64) -> String {
    format!(
        "---\nlibrary_name: sentence-transformers\npipeline_tag: sentence-similarity\ntags:\n- sentence-transformers\n- code-search\n---\n\n\
# Code search bi-encoder\n\n\
Fine-tuned with `pytorrent finetune` from `{init}` on {pairs} <{query}, code> pairs \
(partition {part}) with in-batch negatives{neg}: {loss} loss, scale {scale}, batch {batch} × {accum}, \
{total} steps, learning rate {lr} (linear warm-up {warm} steps, then linear decay), seed {seed}. \
Mean pooling over at most {len} tokens; compare embeddings by cosine similarity.\n\n\
```python\nfrom sentence_transformers import SentenceTransformer\nmodel = SentenceTransformer(\"PATH\")\n\
emb = model.encode([\"Return the sum of two numbers.\", \"def add(a, b):\\n    return a + b\"])\n```\n\n\
The run's `log.csv` beside this file holds the loss and the validation MRR (pool protocol) by step.\n",
        init = cfg.init,
        pairs = s.pairs.len(),
        query = cfg.query_field.as_deref().unwrap_or(cfg.query.name()),
        part = cfg.partition,
        neg = if cfg.hard_negatives > 0 {
            format!(" and {} BM25 hard negatives a pair", cfg.hard_negatives)
        } else {
            String::new()
        },
        loss = cfg.loss.name(),
        scale = cfg.scale,
        batch = cfg.batch_size,
        accum = cfg.grad_accum,
        lr = cfg.lr,
        warm = cfg.warmup(total),
        seed = cfg.seed,
        len = s.max_len,
    )
}

impl std::fmt::Display for FinetuneReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let resumed = self
            .resumed_from
            .map_or(String::new(), |s| format!(" (resumed at step {s})"));
        writeln!(
            f,
            "{} steps of {}{resumed} ({:.2} epochs of {} pairs) in {:.1} s ({:.1} pairs/s) on {}, {} parameters",
            self.steps,
            self.max_steps,
            self.epochs,
            self.train_pairs,
            self.elapsed_s,
            self.pairs_per_s,
            self.device,
            self.parameters
        )?;
        if self.deferred > 0 || self.left_out > 0 {
            writeln!(
                f,
                "repeated texts kept apart: {} pairs put off to a later batch, {} left out of the epoch",
                self.deferred, self.left_out
            )?;
        }
        if self.texts_cut > 0 {
            writeln!(
                f,
                "{} texts cut to {} tokens",
                self.texts_cut, self.max_seq_length
            )?;
        }
        if let Some(l) = self.train_loss {
            let last = self
                .last_loss
                .map_or(String::new(), |x| format!("; the last step's {x:.4}"));
            writeln!(
                f,
                "train loss {l:.4} (the mean of the last {} steps{last})",
                self.train_loss_steps
            )?;
        }
        match (self.valid_mrr_init, self.valid_mrr) {
            (Some(a), Some(b)) => writeln!(
                f,
                "valid MRR (pool of {} pairs) {b:.4}, from {a:.4} before fine-tuning",
                self.valid_pairs
            )?,
            (None, Some(b)) => {
                writeln!(f, "valid MRR (pool of {} pairs) {b:.4}", self.valid_pairs)?
            }
            _ => {}
        }
        if self.finished {
            writeln!(
                f,
                "model: {} (sentence-transformers folder; log.csv, loss.svg, mrr.svg beside it)",
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
