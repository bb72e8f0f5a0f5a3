//! Where a model's files are: a folder in Hugging Face layout, or a model id resolved in the
//! local Hugging Face cache (`HF_HUB_CACHE`, `HF_HOME`; nothing is downloaded).

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The files of one checkpoint.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    /// The folder given (or the cache snapshot): a sentence-transformers folder keeps its
    /// `modules.json` here.
    pub root: PathBuf,
    /// The folder of `config.json` and the weights (the root, or the Transformer module's
    /// folder of a sentence-transformers model).
    pub folder: PathBuf,
    pub config: PathBuf,
    /// `model.safetensors`, the shards of `model.safetensors.index.json`, or
    /// `pytorch_model.bin`.
    pub weights: Weights,
}

#[derive(Debug, Clone)]
pub enum Weights {
    Safetensors(Vec<PathBuf>),
    Pytorch(PathBuf),
}

const WEIGHT_FILES: [&str; 3] = [
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
];

/// Resolves `spec`: an existing folder, else a model id (`org/name[@revision]`) in the cache.
pub fn resolve(spec: &str) -> Result<ModelFiles> {
    let p = Path::new(spec);
    let folder = if p.is_dir() {
        p.to_path_buf()
    } else if p.exists() {
        return Err(Error::Usage(format!(
            "{spec}: give the model's folder (with config.json), not a file"
        )));
    } else {
        pytorrent_hf::hub::snapshot_folder(spec, &WEIGHT_FILES)?
    };
    let root = folder.clone();
    let folder = match crate::sentence::SentenceConfig::read(&root)? {
        Some(st) if !root.join("config.json").is_file() => st.transformer,
        _ => root.clone(),
    };
    let config = folder.join("config.json");
    if !config.is_file() {
        // A tokenizer folder given where a model goes is a wrong argument, not bad data.
        let tokenizer_only = ["tokenizer.json", "vocab.json", "tokenizer_config.json"]
            .iter()
            .any(|f| folder.join(f).is_file());
        if tokenizer_only {
            return Err(Error::Usage(format!(
                "{}: a tokenizer folder, not a model (no config.json or weights): give the \
                 model's folder (a pretrain output, or a checkpoint with config.json and \
                 model.safetensors); a tokenizer goes to --tokenizer",
                folder.display()
            )));
        }
        return Err(Error::Config {
            path: config,
            message: "missing: a model folder needs config.json".into(),
        });
    }
    let weights = if folder.join("model.safetensors").is_file() {
        Weights::Safetensors(vec![folder.join("model.safetensors")])
    } else if folder.join("model.safetensors.index.json").is_file() {
        let idx = folder.join("model.safetensors.index.json");
        let text = std::fs::read_to_string(&idx).map_err(|e| pytorrent_io::Error::io(&idx, e))?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Weights {
            path: idx.clone(),
            message: e.to_string(),
        })?;
        let mut files: Vec<String> = v["weight_map"]
            .as_object()
            .map(|m| {
                m.values()
                    .filter_map(|f| f.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files.dedup();
        if files.is_empty() {
            return Err(Error::Weights {
                path: idx,
                message: "no weight_map".into(),
            });
        }
        Weights::Safetensors(files.into_iter().map(|f| folder.join(f)).collect())
    } else if folder.join("pytorch_model.bin").is_file() {
        Weights::Pytorch(folder.join("pytorch_model.bin"))
    } else {
        return Err(Error::Weights {
            path: folder.clone(),
            message: format!("no weights: expected one of {}", WEIGHT_FILES.join(", ")),
        });
    };
    Ok(ModelFiles {
        root,
        folder,
        config,
        weights,
    })
}
