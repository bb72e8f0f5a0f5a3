//! The shape of the model to train: a `configs/models/*.toml` file plus the tokenizer's
//! vocabulary and special ids, or the `config.json` of a checkpoint to continue from.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{Error, Result};

/// A model size as `configs/models/*.toml` gives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub layers: usize,
    pub hidden: usize,
    pub heads: usize,
    pub intermediate: usize,
    /// The longest input in tokens, special tokens included. RoBERTa numbers positions from
    /// `padding_idx + 1`, so `config.json`'s `max_position_embeddings` is this plus 2.
    pub max_positions: usize,
    #[serde(default = "dropout")]
    pub hidden_dropout: f64,
    #[serde(default = "dropout")]
    pub attention_dropout: f64,
    #[serde(default = "eps")]
    pub layer_norm_eps: f64,
    /// Standard deviation of the initial weights (transformers' `initializer_range`).
    #[serde(default = "init_range")]
    pub initializer_range: f64,
}

fn dropout() -> f64 {
    0.1
}
fn eps() -> f64 {
    1e-5
}
fn init_range() -> f64 {
    0.02
}

impl ModelSpec {
    pub fn read(path: &Path) -> Result<ModelSpec> {
        let text = std::fs::read_to_string(path).map_err(|e| pytorrent_io::Error::io(path, e))?;
        let spec: ModelSpec =
            toml::from_str(&text).map_err(|e| Error::data(path, e.to_string()))?;
        spec.check().map_err(|m| Error::data(path, m))?;
        Ok(spec)
    }

    fn check(&self) -> std::result::Result<(), String> {
        if self.layers == 0 || self.hidden == 0 || self.heads == 0 || self.intermediate == 0 {
            return Err("layers, hidden, heads and intermediate must be positive".into());
        }
        if !self.hidden.is_multiple_of(self.heads) {
            return Err(format!(
                "hidden ({}) must be a multiple of heads ({})",
                self.hidden, self.heads
            ));
        }
        for (name, p) in [
            ("hidden_dropout", self.hidden_dropout),
            ("attention_dropout", self.attention_dropout),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(format!("{name} must be in [0, 1), not {p}"));
            }
        }
        if self.max_positions < 3 {
            return Err("max_positions must be at least 3".into());
        }
        positive("layer_norm_eps", self.layer_norm_eps)?;
        positive("initializer_range", self.initializer_range)
    }
}

/// A setting that must be a positive, finite number (LayerNorm's epsilon: 0 divides by zero
/// on a constant row, a negative one takes the root of a negative number).
fn positive(name: &str, v: f64) -> std::result::Result<(), String> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(format!("{name} must be a positive number, not {v}"))
    }
}

/// Everything that decides the parameters' shapes and the forward pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Arch {
    pub vocab_size: usize,
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub intermediate: usize,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub hidden_dropout: f64,
    pub attention_dropout: f64,
    pub layer_norm_eps: f64,
    pub initializer_range: f64,
    pub pad_id: u32,
    pub bos_id: u32,
    pub eos_id: u32,
    /// BERT numbers positions from 0; RoBERTa from `pad_id + 1` over non-padding tokens.
    /// (Encoders only: masked-LM training is RoBERTa's.)
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bert: bool,
}

impl Arch {
    pub fn new(spec: &ModelSpec, vocab_size: usize, pad: u32, bos: u32, eos: u32) -> Arch {
        Arch {
            vocab_size,
            hidden: spec.hidden,
            layers: spec.layers,
            heads: spec.heads,
            intermediate: spec.intermediate,
            max_position_embeddings: spec.max_positions + pad as usize + 1,
            type_vocab_size: 1,
            hidden_dropout: spec.hidden_dropout,
            attention_dropout: spec.attention_dropout,
            layer_norm_eps: spec.layer_norm_eps,
            initializer_range: spec.initializer_range,
            pad_id: pad,
            bos_id: bos,
            eos_id: eos,
            bert: false,
        }
    }

    /// The longest row this model takes.
    pub fn max_tokens(&self) -> usize {
        if self.bert {
            self.max_position_embeddings
        } else {
            self.max_position_embeddings - self.pad_id as usize - 1
        }
    }

    pub fn head_dim(&self) -> usize {
        self.hidden / self.heads
    }

    /// Parameters in all.
    pub fn parameters(&self) -> usize {
        let (h, i, v) = (self.hidden, self.intermediate, self.vocab_size);
        let emb = (v + self.max_position_embeddings + self.type_vocab_size) * h + 2 * h;
        let layer = 4 * (h * h + h) + 2 * h * i + i + h + 4 * h;
        let head = h * h + h + 2 * h + v;
        emb + self.layers * layer + head
    }

    /// transformers' `config.json` of a `RobertaForMaskedLM`.
    pub fn config_json(&self) -> serde_json::Value {
        json!({
            "architectures": ["RobertaForMaskedLM"],
            "model_type": "roberta",
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden,
            "num_hidden_layers": self.layers,
            "num_attention_heads": self.heads,
            "intermediate_size": self.intermediate,
            "hidden_act": "gelu",
            "hidden_dropout_prob": self.hidden_dropout,
            "attention_probs_dropout_prob": self.attention_dropout,
            "max_position_embeddings": self.max_position_embeddings,
            "type_vocab_size": self.type_vocab_size,
            "initializer_range": self.initializer_range,
            "layer_norm_eps": self.layer_norm_eps,
            "pad_token_id": self.pad_id,
            "bos_token_id": self.bos_id,
            "eos_token_id": self.eos_id,
            "position_embedding_type": "absolute",
            "tie_word_embeddings": true,
            "dtype": "float32",
            "torch_dtype": "float32",
        })
    }

    /// The shape of a RoBERTa checkpoint's `config.json` (for `--init`).
    pub fn from_config_json(path: &Path) -> Result<Arch> {
        Self::read_config_json(path, &["roberta"])
    }

    /// The shape of a RoBERTa or BERT checkpoint's `config.json`, for training its encoder.
    pub fn from_encoder_config_json(path: &Path) -> Result<Arch> {
        Self::read_config_json(path, &["roberta", "bert"])
    }

    fn read_config_json(path: &Path, families: &[&str]) -> Result<Arch> {
        let text = std::fs::read_to_string(path).map_err(|e| pytorrent_io::Error::io(path, e))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| Error::data(path, e.to_string()))?;
        let bad = |m: String| Error::data(path, m);
        let model_type = v.get("model_type").and_then(|t| t.as_str()).unwrap_or("");
        if !families.contains(&model_type) {
            return Err(bad(format!(
                "model_type '{model_type}': this trains {} checkpoints only",
                families.join(" and ")
            )));
        }
        let bert = model_type == "bert";
        let int = |k: &str| -> Result<usize> {
            v.get(k)
                .and_then(serde_json::Value::as_u64)
                .map(|n| n as usize)
                .ok_or_else(|| bad(format!("no integer {k}")))
        };
        let float = |k: &str, d: f64| v.get(k).and_then(serde_json::Value::as_f64).unwrap_or(d);
        let act = v
            .get("hidden_act")
            .and_then(|a| a.as_str())
            .unwrap_or("gelu");
        if act != "gelu" {
            return Err(bad(format!(
                "hidden_act '{act}': only gelu (erf) is trained here"
            )));
        }
        let arch = Arch {
            vocab_size: int("vocab_size")?,
            hidden: int("hidden_size")?,
            layers: int("num_hidden_layers")?,
            heads: int("num_attention_heads")?,
            intermediate: int("intermediate_size")?,
            max_position_embeddings: int("max_position_embeddings")?,
            type_vocab_size: int("type_vocab_size").unwrap_or(1),
            hidden_dropout: float("hidden_dropout_prob", 0.1),
            attention_dropout: float("attention_probs_dropout_prob", 0.1),
            layer_norm_eps: float("layer_norm_eps", 1e-5),
            initializer_range: float("initializer_range", 0.02),
            pad_id: int("pad_token_id").unwrap_or(if bert { 0 } else { 1 }) as u32,
            bos_id: int("bos_token_id").unwrap_or(0) as u32,
            eos_id: int("eos_token_id").unwrap_or(2) as u32,
            bert,
        };
        if arch.heads == 0 || !arch.hidden.is_multiple_of(arch.heads) {
            return Err(bad(
                "hidden_size is not a multiple of num_attention_heads".into()
            ));
        }
        positive("layer_norm_eps", arch.layer_norm_eps).map_err(bad)?;
        positive("initializer_range", arch.initializer_range).map_err(bad)?;
        for (name, p) in [
            ("hidden_dropout_prob", arch.hidden_dropout),
            ("attention_probs_dropout_prob", arch.attention_dropout),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(bad(format!("{name} must be in [0, 1), not {p}")));
            }
        }
        Ok(arch)
    }
}
