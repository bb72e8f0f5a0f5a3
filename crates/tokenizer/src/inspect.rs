//! `tokenizer inspect`: vocabulary size, special tokens, merges and a sample encoding.

use std::collections::BTreeMap;

use pytorrent_io::Reporter;
use serde::{Deserialize, Serialize};

use crate::{Result, SPECIAL_TOKENS};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InspectConfig {
    pub tokenizer: String,
    /// Text for the sample encoding.
    #[serde(default = "default_text")]
    pub text: String,
}

pub fn default_text() -> String {
    "def add(a, b):\n    \"\"\"Return the sum.\"\"\"\n    return a + b\n".into()
}

#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub text: String,
    pub ids: Vec<u32>,
    pub tokens: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct InspectReport {
    pub source: String,
    pub vocab_size: usize,
    pub vocab_size_without_added: usize,
    pub merges: usize,
    /// RoBERTa's special tokens and their ids (`null` when absent).
    pub special_tokens: BTreeMap<String, Option<u32>>,
    pub sample: Sample,
}

pub fn run(cfg: &InspectConfig, _reporter: &dyn Reporter) -> Result<InspectReport> {
    let loaded = crate::load(&cfg.tokenizer)?;
    let tok = &loaded.tokenizer;
    let enc = tok.encode(cfg.text.as_str(), true)?;
    Ok(InspectReport {
        source: loaded.source.to_string(),
        vocab_size: tok.get_vocab_size(true),
        vocab_size_without_added: tok.get_vocab_size(false),
        merges: crate::merges_count(tok),
        special_tokens: SPECIAL_TOKENS
            .iter()
            .map(|t| ((*t).to_string(), tok.token_to_id(t)))
            .collect(),
        sample: Sample {
            text: cfg.text.clone(),
            ids: enc.get_ids().to_vec(),
            tokens: enc.get_tokens().to_vec(),
        },
    })
}

impl std::fmt::Display for InspectReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "source            {}", self.source)?;
        writeln!(
            f,
            "vocabulary        {} ({} without added tokens)",
            self.vocab_size, self.vocab_size_without_added
        )?;
        writeln!(f, "merges            {}", self.merges)?;
        // In id order, as RoBERTa numbers them.
        for t in SPECIAL_TOKENS {
            let id = self.special_tokens.get(t).copied().flatten();
            writeln!(
                f,
                "  {t:<8} {}",
                id.map_or("absent".to_string(), |i| i.to_string())
            )?;
        }
        writeln!(f, "sample            {:?}", self.sample.text)?;
        writeln!(f, "  ids             {:?}", self.sample.ids)?;
        writeln!(f, "  tokens          {:?}", self.sample.tokens)
    }
}
