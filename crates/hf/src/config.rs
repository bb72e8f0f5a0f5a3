//! `config.json` as transformers 4.x and 5.x write it for RoBERTa- and BERT-family encoders.
//!
//! Only what the forward pass needs is read; anything absent takes the default of the
//! transformers config class (5.x, for one, no longer writes `position_embedding_type`).

use serde::Deserialize;

use crate::{Error, Result};

/// How positions are numbered and which weights the heads use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Positions start at `padding_idx + 1` and skip padding; MLM head `lm_head.*`.
    Roberta,
    /// Positions `0..len`; MLM head `cls.predictions.*`.
    Bert,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `gelu`: the exact, erf-based GELU.
    GeluErf,
    /// `gelu_new`, `gelu_pytorch_tanh`, `gelu_fast`: the tanh approximation.
    GeluTanh,
    Relu,
}

#[derive(Debug, Clone, Deserialize)]
struct Raw {
    #[serde(default)]
    model_type: Option<String>,
    vocab_size: usize,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    #[serde(default)]
    hidden_act: Option<String>,
    max_position_embeddings: usize,
    #[serde(default)]
    type_vocab_size: Option<usize>,
    #[serde(default)]
    layer_norm_eps: Option<f64>,
    #[serde(default)]
    pad_token_id: Option<u32>,
    #[serde(default)]
    position_embedding_type: Option<String>,
    #[serde(default)]
    tie_word_embeddings: Option<bool>,
    #[serde(default)]
    architectures: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    pub model_type: String,
    pub family: Family,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub head_dim: usize,
    pub intermediate_size: usize,
    pub activation: Activation,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    pub pad_token_id: u32,
    pub tie_word_embeddings: bool,
    pub architectures: Vec<String>,
}

impl ModelConfig {
    pub fn parse(text: &str, origin: &std::path::Path) -> Result<ModelConfig> {
        let bad = |message: String| Error::Config {
            path: origin.to_path_buf(),
            message,
        };
        let raw: Raw = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        let model_type = raw.model_type.unwrap_or_default();
        let family = match model_type.as_str() {
            "roberta" | "xlm-roberta" | "camembert" | "data2vec-text" => Family::Roberta,
            "bert" | "" => Family::Bert,
            other => {
                return Err(bad(format!(
                    "model_type '{other}' is not a RoBERTa- or BERT-family encoder"
                )))
            }
        };
        match raw.position_embedding_type.as_deref() {
            None | Some("absolute") => {}
            Some(other) => {
                return Err(bad(format!(
                    "position_embedding_type '{other}' is not supported (only absolute)"
                )))
            }
        }
        let activation = match raw.hidden_act.as_deref().unwrap_or("gelu") {
            "gelu" => Activation::GeluErf,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::GeluTanh,
            "relu" => Activation::Relu,
            other => return Err(bad(format!("hidden_act '{other}' is not supported"))),
        };
        if raw.num_attention_heads == 0 || !raw.hidden_size.is_multiple_of(raw.num_attention_heads)
        {
            return Err(bad(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                raw.hidden_size, raw.num_attention_heads
            )));
        }
        let layer_norm_eps = raw.layer_norm_eps.unwrap_or(1e-12);
        if !(layer_norm_eps.is_finite() && layer_norm_eps > 0.0) {
            return Err(bad(format!(
                "layer_norm_eps {layer_norm_eps} must be a positive number"
            )));
        }
        Ok(ModelConfig {
            family,
            vocab_size: raw.vocab_size,
            hidden_size: raw.hidden_size,
            num_layers: raw.num_hidden_layers,
            num_heads: raw.num_attention_heads,
            head_dim: raw.hidden_size / raw.num_attention_heads,
            intermediate_size: raw.intermediate_size,
            activation,
            max_position_embeddings: raw.max_position_embeddings,
            type_vocab_size: raw.type_vocab_size.unwrap_or(2),
            layer_norm_eps,
            pad_token_id: raw.pad_token_id.unwrap_or(match family {
                Family::Roberta => 1,
                Family::Bert => 0,
            }),
            tie_word_embeddings: raw.tie_word_embeddings.unwrap_or(true),
            architectures: raw.architectures.unwrap_or_default(),
            model_type,
        })
    }

    /// The longest input (special tokens included) the position table holds.
    pub fn max_tokens(&self) -> usize {
        usable_positions(
            &self.model_type,
            self.max_position_embeddings,
            Some(self.pad_token_id),
        )
    }
}

/// The longest input a position table of `max_position_embeddings` holds, for any
/// `model_type` (the loader reads only some; `pack --model` checks any). RoBERTa-style models
/// number positions from `padding_idx + 1`, so two entries (514 → 512 tokens) are never used
/// by real tokens.
pub fn usable_positions(
    model_type: &str,
    max_position_embeddings: usize,
    pad_token_id: Option<u32>,
) -> usize {
    match model_type {
        "roberta" | "xlm-roberta" | "xlm-roberta-xl" | "camembert" | "longformer"
        | "data2vec-text" | "mpnet" => {
            max_position_embeddings.saturating_sub(pad_token_id.unwrap_or(1) as usize + 1)
        }
        _ => max_position_embeddings,
    }
}

/// The longest input (special tokens included) the checkpoint `spec` takes — a folder, its
/// `config.json`, or a model id in the local Hugging Face cache — read from `config.json`
/// alone, for any `model_type`. Returns the config file with it.
pub fn positions_of(spec: &str) -> Result<(std::path::PathBuf, usize)> {
    let p = std::path::Path::new(spec);
    let config = if p.is_file() {
        p.to_path_buf()
    } else if p.is_dir() {
        p.join("config.json")
    } else {
        crate::hub::snapshot_folder(spec, &["config.json"])?.join("config.json")
    };
    let text = std::fs::read_to_string(&config).map_err(|e| pytorrent_io::Error::io(&config, e))?;
    let bad = |message: String| Error::Config {
        path: config.clone(),
        message,
    };
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let max = v["max_position_embeddings"]
        .as_u64()
        .ok_or_else(|| bad("no max_position_embeddings".into()))? as usize;
    let limit = usable_positions(
        v["model_type"].as_str().unwrap_or(""),
        max,
        v["pad_token_id"].as_u64().map(|p| p as u32),
    );
    Ok((config, limit))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn transformers_5_config_without_position_embedding_type() {
        let c = ModelConfig::parse(
            r#"{"model_type":"roberta","vocab_size":60000,"hidden_size":768,"num_hidden_layers":6,
                "num_attention_heads":16,"intermediate_size":3072,"max_position_embeddings":514,
                "type_vocab_size":1,"pad_token_id":1,"dtype":"float32","transformers_version":"5.23.0"}"#,
            Path::new("config.json"),
        )
        .unwrap();
        assert_eq!(c.family, Family::Roberta);
        assert_eq!(c.head_dim, 48);
        assert_eq!(c.layer_norm_eps, 1e-12);
        assert_eq!(c.max_tokens(), 512);
        assert!(c.tie_word_embeddings);
    }

    #[test]
    fn transformers_4_config_and_refusals() {
        let c = ModelConfig::parse(
            r#"{"model_type":"bert","vocab_size":30522,"hidden_size":384,"num_hidden_layers":6,
                "num_attention_heads":12,"intermediate_size":1536,"max_position_embeddings":512,
                "hidden_act":"gelu","layer_norm_eps":1e-12,"position_embedding_type":"absolute",
                "torch_dtype":"float32","transformers_version":"4.8.2","type_vocab_size":2}"#,
            Path::new("config.json"),
        )
        .unwrap();
        assert_eq!(
            (c.family, c.pad_token_id, c.max_tokens()),
            (Family::Bert, 0, 512)
        );
        let e = ModelConfig::parse(
            r#"{"model_type":"gpt2","vocab_size":1,"hidden_size":4,"num_hidden_layers":1,
                "num_attention_heads":1,"intermediate_size":4,"max_position_embeddings":8}"#,
            Path::new("x/config.json"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("x/config.json") && e.contains("gpt2"), "{e}");
    }
}
