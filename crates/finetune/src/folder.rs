//! The sentence-transformers folder a run writes: the encoder as transformers'
//! `RobertaModel`/`BertModel` (`config.json`, `model.safetensors`), the tokenizer's files,
//! and the modules `SentenceTransformer(DIR)` reads (`modules.json`, `1_Pooling/config.json`,
//! `sentence_bert_config.json`, `config_sentence_transformers.json`). Checkpoints are the
//! same folder plus the optimiser moments and the trainer state.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Tensor};
use pytorrent_pretrain::checkpoint::{fit_model_max_length, on_cpu, save_tensors, TrainerState};
use pytorrent_pretrain::model::MlmModel;
use pytorrent_pretrain::optim::AdamW;
use serde_json::json;

use crate::Result;

/// The files a tokenizer folder may hold that a model folder carries.
const TOKENIZER_FILES: [&str; 7] = [
    "tokenizer.json",
    "vocab.json",
    "merges.txt",
    "vocab.txt",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
];

/// What every written folder shares: the starting checkpoint's `config.json`, its pooler (kept
/// as it was: mean pooling does not use it, transformers expects it), the tokenizer's files,
/// the length limit.
pub struct Template {
    pub config: serde_json::Value,
    pub pooler: HashMap<String, Tensor>,
    pub tokenizer_files: Vec<PathBuf>,
    pub max_seq_length: usize,
    pub max_tokens: usize,
    pub card: String,
}

/// The tokenizer files beside `folder`'s tokenizer.
pub fn tokenizer_files(folder: &Path) -> Vec<PathBuf> {
    TOKENIZER_FILES
        .iter()
        .map(|n| folder.join(n))
        .filter(|p| p.is_file())
        .collect()
}

fn io<T>(path: &Path, r: std::io::Result<T>) -> Result<T> {
    r.map_err(|e| pytorrent_io::Error::io(path, e).into())
}

fn write_json(path: &Path, v: &serde_json::Value) -> Result<()> {
    let mut text = serde_json::to_vec_pretty(v).expect("json");
    text.push(b'\n');
    io(path, std::fs::write(path, text))
}

/// The encoder's tensors under the bare model's names (`embeddings.…`, `encoder.…`).
pub fn bare_names(model: &MlmModel) -> HashMap<String, Tensor> {
    model
        .tensors()
        .into_iter()
        .map(|(n, t)| (n.strip_prefix("roberta.").unwrap_or(&n).to_string(), t))
        .collect()
}

/// Tensors of a written folder back under the trainer's names (`roberta.…`).
pub fn trainer_names(tensors: HashMap<String, Tensor>) -> HashMap<String, Tensor> {
    tensors
        .into_iter()
        .filter(|(n, _)| !n.starts_with("pooler."))
        .map(|(n, t)| (format!("roberta.{n}"), t))
        .collect()
}

/// Writes the model folder's files into `dir` (which exists).
pub fn write_model(dir: &Path, model: &MlmModel, t: &Template, dtype: DType) -> Result<()> {
    let mut config = t.config.clone();
    let bert = model.arch.bert;
    config["architectures"] = json!([if bert { "BertModel" } else { "RobertaModel" }]);
    let name = if dtype == DType::F16 {
        "float16"
    } else {
        "float32"
    };
    config["dtype"] = name.into();
    config["torch_dtype"] = name.into();
    write_json(&dir.join("config.json"), &config)?;
    let mut tensors = bare_names(model);
    tensors.extend(t.pooler.clone());
    let weights = dir.join("model.safetensors");
    save_tensors(&on_cpu(tensors, dtype)?, &weights)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        io(
            &weights,
            std::fs::set_permissions(&weights, std::fs::Permissions::from_mode(0o644)),
        )?;
    }
    for f in &t.tokenizer_files {
        let name = f.file_name().expect("a file");
        let to = dir.join(name);
        if name == "tokenizer_config.json" {
            let text = io(f, std::fs::read(f))?;
            io(
                &to,
                std::fs::write(&to, fit_model_max_length(&text, t.max_tokens)),
            )?;
        } else {
            io(f, std::fs::copy(f, &to))?;
        }
    }
    write_json(
        &dir.join("modules.json"),
        &json!([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}
        ]),
    )?;
    write_json(
        &dir.join("sentence_bert_config.json"),
        &json!({"max_seq_length": t.max_seq_length, "do_lower_case": false}),
    )?;
    let pooling = dir.join("1_Pooling");
    io(&pooling, std::fs::create_dir_all(&pooling))?;
    write_json(
        &pooling.join("config.json"),
        &json!({
            "word_embedding_dimension": model.arch.hidden,
            "pooling_mode_cls_token": false,
            "pooling_mode_mean_tokens": true,
            "pooling_mode_max_tokens": false,
            "pooling_mode_mean_sqrt_len_tokens": false,
            "pooling_mode_weightedmean_tokens": false,
            "pooling_mode_lasttoken": false,
            "include_prompt": true
        }),
    )?;
    write_json(
        &dir.join("config_sentence_transformers.json"),
        &json!({
            "model_type": "SentenceTransformer",
            "prompts": {},
            "default_prompt_name": null,
            "similarity_fn_name": "cosine",
            "__version__": {"pytorrent": env!("CARGO_PKG_VERSION")}
        }),
    )?;
    let card = dir.join("README.md");
    io(&card, std::fs::write(&card, &t.card))?;
    Ok(())
}

/// A complete checkpoint folder at `dir` (the model folder, the moments, the state), written
/// under a temporary name and renamed when whole.
pub fn save_checkpoint(
    dir: &Path,
    model: &MlmModel,
    t: &Template,
    opt: &AdamW,
    state: &TrainerState,
) -> Result<()> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    let name = dir.file_name().expect("a folder name").to_string_lossy();
    let tmp = io(
        parent,
        tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .tempdir_in(parent),
    )?;
    write_model(tmp.path(), model, t, DType::F32)?;
    save_tensors(
        &on_cpu(opt.state(), DType::F32)?,
        &tmp.path().join(pytorrent_pretrain::checkpoint::OPTIMIZER),
    )?;
    write_json(
        &tmp.path().join(pytorrent_pretrain::checkpoint::STATE),
        &serde_json::to_value(state).expect("json"),
    )?;
    if dir.exists() {
        io(dir, std::fs::remove_dir_all(dir))?;
    }
    let tmp = tmp.keep();
    io(dir, std::fs::rename(&tmp, dir))
}

/// Refuses an `out` whose `1_Pooling/` holds what this command does not write there: the
/// final model replaces that folder. Checked before training, so no run is lost to it.
pub fn check_out(out: &Path) -> Result<()> {
    let pooling = out.join("1_Pooling");
    let Ok(entries) = std::fs::read_dir(&pooling) else {
        return Ok(());
    };
    if let Some(f) = entries
        .filter_map(|e| e.ok())
        .find(|e| e.file_name() != "config.json")
    {
        return Err(crate::Error::Usage(format!(
            "{}: holds {}, which finetune does not write; choose another --out",
            pooling.display(),
            f.file_name().to_string_lossy()
        )));
    }
    Ok(())
}

/// The final model into `out` itself, each entry written under a temporary folder first and
/// moved in when all are written.
pub fn write_final(out: &Path, model: &MlmModel, t: &Template, dtype: DType) -> Result<()> {
    let tmp = io(
        out,
        tempfile::Builder::new().prefix(".final.").tempdir_in(out),
    )?;
    write_model(tmp.path(), model, t, dtype)?;
    for e in io(tmp.path(), std::fs::read_dir(tmp.path()))? {
        let e = io(tmp.path(), e)?;
        let to = out.join(e.file_name());
        if to.is_dir() && e.path().is_dir() {
            // 1_Pooling of an earlier run of this command (check_out refused any other).
            io(&to, std::fs::remove_dir_all(&to))?;
        }
        io(&to, std::fs::rename(e.path(), &to))?;
    }
    Ok(())
}
