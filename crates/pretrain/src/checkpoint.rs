//! Checkpoints in Hugging Face's layout — `config.json` (`RobertaForMaskedLM`),
//! `model.safetensors` under transformers' tensor names, the tokenizer's files — plus, for
//! `--resume`, the optimiser moments (`optimizer.safetensors`) and `trainer_state.json`.
//!
//! A checkpoint folder is written under a temporary name and renamed when complete, so a
//! killed run never leaves a folder that looks whole.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::model::MlmModel;
use crate::optim::AdamW;
use crate::spec::Arch;
use crate::{Error, Result};

pub const CONFIG: &str = "config.json";
pub const WEIGHTS: &str = "model.safetensors";
pub const OPTIMIZER: &str = "optimizer.safetensors";
pub const STATE: &str = "trainer_state.json";

/// What `--resume` needs besides the weights and moments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Optimiser steps done.
    pub step: u64,
    /// Tokens (not padding) trained on.
    pub tokens: u64,
    /// Seconds of training so far.
    pub elapsed_s: f64,
    /// sha256 of the settings that must not change across a resume (seed, batch, schedule,
    /// model, data): a resume with other settings is refused.
    pub fingerprint: String,
}

fn io<T>(path: &Path, r: std::io::Result<T>) -> Result<T> {
    r.map_err(|e| pytorrent_io::Error::io(path, e).into())
}

pub fn on_cpu(t: HashMap<String, Tensor>, dtype: DType) -> Result<HashMap<String, Tensor>> {
    t.into_iter()
        .map(|(n, t)| Ok((n, t.to_device(&Device::Cpu)?.to_dtype(dtype)?)))
        .collect()
}

/// A safetensors file, its write errors (a full disk) naming it.
pub fn save_tensors(tensors: &HashMap<String, Tensor>, path: &Path) -> Result<()> {
    candle_core::safetensors::save(tensors, path).map_err(|e| match e {
        candle_core::Error::Io(e) => pytorrent_io::Error::io(path, e).into(),
        e => Error::data(path, e.to_string()),
    })
}

/// The model's own files (config, weights, tokenizer) into `dir`, which must exist.
pub fn write_model(
    dir: &Path,
    model: &MlmModel,
    dtype: DType,
    tokenizer_files: &[PathBuf],
) -> Result<()> {
    let config = serde_json::to_vec_pretty(&config_json(&model.arch, dtype)).expect("json");
    io(&dir.join(CONFIG), std::fs::write(dir.join(CONFIG), config))?;
    let weights = dir.join(WEIGHTS);
    save_tensors(&on_cpu(model.tensors(), dtype)?, &weights)?;
    // The writer creates the file owner-only; a model is for others to read too.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        io(
            &weights,
            std::fs::set_permissions(&weights, std::fs::Permissions::from_mode(0o644)),
        )?;
    }
    for f in tokenizer_files {
        let name = f.file_name().expect("a file");
        if name == "tokenizer_config.json" {
            let text = std::fs::read(f).map_err(|e| pytorrent_io::Error::io(f, e))?;
            let fitted = fit_model_max_length(&text, model.arch.max_tokens());
            io(&dir.join(name), std::fs::write(dir.join(name), fitted))?;
        } else {
            io(f, std::fs::copy(f, dir.join(name)))?;
        }
    }
    Ok(())
}

/// The tokenizer's `tokenizer_config.json` with `model_max_length` no longer than the model's
/// position table holds: `transformers` truncates to it, and a longer one (a tokenizer made for
/// 512 tokens beside a model trained on 128) makes the forward pass index past the table.
pub fn fit_model_max_length(text: &[u8], max_tokens: usize) -> Vec<u8> {
    let Ok(serde_json::Value::Object(mut config)) = serde_json::from_slice(text) else {
        return text.to_vec();
    };
    let fits = config
        .get("model_max_length")
        .and_then(serde_json::Value::as_u64)
        .is_some_and(|n| n <= max_tokens as u64);
    if fits {
        return text.to_vec();
    }
    config.insert("model_max_length".into(), max_tokens.into());
    let mut out = serde_json::to_vec_pretty(&config).expect("json");
    out.push(b'\n');
    out
}

fn config_json(arch: &Arch, dtype: DType) -> serde_json::Value {
    let mut v = arch.config_json();
    let name = match dtype {
        DType::F16 => "float16",
        DType::BF16 => "bfloat16",
        _ => "float32",
    };
    v["dtype"] = name.into();
    v["torch_dtype"] = name.into();
    v
}

/// Writes a complete checkpoint folder at `dir` (replacing one of the same name).
pub fn save(
    dir: &Path,
    model: &MlmModel,
    opt: &AdamW,
    state: &TrainerState,
    tokenizer_files: &[PathBuf],
) -> Result<()> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    io(parent, std::fs::create_dir_all(parent))?;
    let name = dir.file_name().expect("a folder name").to_string_lossy();
    let tmp = io(
        parent,
        tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .tempdir_in(parent),
    )?;
    write_model(tmp.path(), model, DType::F32, tokenizer_files)?;
    save_tensors(
        &on_cpu(opt.state(), DType::F32)?,
        &tmp.path().join(OPTIMIZER),
    )?;
    let st = serde_json::to_vec_pretty(state).expect("json");
    io(tmp.path(), std::fs::write(tmp.path().join(STATE), st))?;
    if dir.exists() {
        io(dir, std::fs::remove_dir_all(dir))?;
    }
    let tmp = tmp.keep();
    io(dir, std::fs::rename(&tmp, dir))?;
    Ok(())
}

/// `checkpoint-N` folders under `out`, by step.
pub fn list(out: &Path) -> Vec<(u64, PathBuf)> {
    let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(out)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let step = name.strip_prefix("checkpoint-")?.parse().ok()?;
            e.path().join(STATE).is_file().then(|| (step, e.path()))
        })
        .collect();
    found.sort();
    found
}

/// Removes all but the newest `keep` (at least one) `checkpoint-N` folders under `out`.
pub fn prune(out: &Path, keep: usize) -> Result<()> {
    let all = list(out);
    for (_, old) in all.iter().take(all.len().saturating_sub(keep.max(1))) {
        io(old, std::fs::remove_dir_all(old))?;
    }
    Ok(())
}

/// Weights, moments and state of a checkpoint folder.
pub struct Loaded {
    pub weights: HashMap<String, Tensor>,
    pub moments: HashMap<String, Tensor>,
    pub state: TrainerState,
}

pub fn load(dir: &Path) -> Result<Loaded> {
    let read = |name: &str| -> Result<HashMap<String, Tensor>> {
        let p = dir.join(name);
        candle_core::safetensors::load(&p, &Device::Cpu).map_err(|e| Error::data(&p, e.to_string()))
    };
    let sp = dir.join(STATE);
    let text = io(&sp, std::fs::read_to_string(&sp))?;
    let state = serde_json::from_str(&text).map_err(|e| Error::data(&sp, e.to_string()))?;
    Ok(Loaded {
        weights: read(WEIGHTS)?,
        moments: read(OPTIMIZER)?,
        state,
    })
}
