//! Text in and out of the model's tokenizer, as the `transformers` pipelines do it.

use std::path::Path;

use tokenizers::Tokenizer;

use crate::{Error, Result};

/// The model's tokenizer and the decoding settings of its `tokenizer_config.json`.
pub struct ModelTokenizer {
    pub tokenizer: Tokenizer,
    /// `clean_up_tokenization_spaces` (transformers' default when the config is silent: false).
    pub clean_up_spaces: bool,
    pub pad_id: Option<u32>,
    pub mask_id: Option<u32>,
    pub mask_token: Option<String>,
}

impl ModelTokenizer {
    /// The tokenizer in `folder` (tokenizer.json, or vocab.json + merges.txt), or `spec`.
    pub fn load(folder: &Path, spec: Option<&str>) -> Result<ModelTokenizer> {
        let spec = spec
            .map(String::from)
            .unwrap_or_else(|| folder.display().to_string());
        let tokenizer = pytorrent_tokenizer::load(&spec)?.tokenizer;
        let cfg: serde_json::Value = std::fs::read(Path::new(&spec).join("tokenizer_config.json"))
            .ok()
            .or_else(|| std::fs::read(folder.join("tokenizer_config.json")).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let name = |key: &str, fallback: &[&str]| -> Option<String> {
            let v = &cfg[key];
            v.as_str()
                .or(v["content"].as_str())
                .map(String::from)
                .or_else(|| {
                    fallback
                        .iter()
                        .find(|t| tokenizer.token_to_id(t).is_some())
                        .map(|t| t.to_string())
                })
        };
        let mask_token = name("mask_token", &["<mask>", "[MASK]"]);
        let pad = name("pad_token", &["<pad>", "[PAD]"]);
        Ok(ModelTokenizer {
            clean_up_spaces: cfg["clean_up_tokenization_spaces"]
                .as_bool()
                .unwrap_or(false),
            pad_id: pad.as_deref().and_then(|t| tokenizer.token_to_id(t)),
            mask_id: mask_token.as_deref().and_then(|t| tokenizer.token_to_id(t)),
            mask_token,
            tokenizer,
        })
    }

    /// Ids with the model's special tokens.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self
            .tokenizer
            .encode(text, true)
            .map_err(|e| Error::Usage(format!("tokenizing: {e}")))?
            .get_ids()
            .to_vec())
    }

    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        let s = self
            .tokenizer
            .decode(ids, skip_special)
            .map_err(|e| Error::Usage(format!("decoding: {e}")))?;
        Ok(if self.clean_up_spaces {
            clean_up_tokenization(&s)
        } else {
            s
        })
    }
}

/// transformers' `clean_up_tokenization`.
pub fn clean_up_tokenization(s: &str) -> String {
    s.replace(" .", ".")
        .replace(" ?", "?")
        .replace(" !", "!")
        .replace(" ,", ",")
        .replace(" ' ", "'")
        .replace(" n't", "n't")
        .replace(" 'm", "'m")
        .replace(" 's", "'s")
        .replace(" 've", "'ve")
        .replace(" 're", "'re")
}

/// Cuts `ids` to `max` tokens keeping the closing special token, as `truncation=True` does
/// for a single sequence; returns whether it cut.
pub fn truncate(ids: &mut Vec<u32>, max: usize, closing: Option<u32>) -> bool {
    if ids.len() <= max {
        return false;
    }
    let last = *ids.last().expect("longer than max");
    ids.truncate(max);
    if closing == Some(last) && max > 0 {
        ids[max - 1] = last;
    }
    true
}

/// Each input encoded with special tokens and cut to `max` tokens; `cut` hears the index of
/// each input that was cut.
pub fn encode_inputs<S: AsRef<str>>(
    tok: &ModelTokenizer,
    texts: &[S],
    max: usize,
    cut: &dyn Fn(usize),
) -> Result<Vec<Vec<u32>>> {
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut ids = tok.encode(t.as_ref())?;
            let closing = ids.last().copied();
            if truncate(&mut ids, max, closing) {
                cut(i);
            }
            Ok(ids)
        })
        .collect()
}

/// Indices of `encoded`, longest first, in batches of `size` (less padding per batch).
pub fn length_batches(encoded: &[Vec<u32>], size: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..encoded.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(encoded[i].len()));
    order.chunks(size.max(1)).map(<[usize]>::to_vec).collect()
}
