//! `tokenizer inspect`: vocabulary size, special tokens, merges and a sample encoding.

use std::collections::BTreeMap;

use pytorrent_io::Reporter;
use serde::{Deserialize, Serialize};

use crate::Result;

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

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Sample {
    pub text: String,
    pub ids: Vec<u32>,
    pub tokens: Vec<String>,
}

/// What each special token does, as packing reads it (`None` where the tokenizer has none).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Roles {
    pub start: Option<String>,
    pub end: Option<String>,
    /// Between the two texts of a pair, after the first one's end.
    pub pair_middle: Vec<String>,
    pub pad: Option<String>,
    pub mask: Option<String>,
    /// Why start and end could not be read (no post-processor, several tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct InspectReport {
    pub source: String,
    /// BPE, WordPiece, Unigram or WordLevel.
    pub model: String,
    pub vocab_size: usize,
    pub vocab_size_without_added: usize,
    pub merges: usize,
    /// Every special token and its id.
    pub special_tokens: BTreeMap<String, u32>,
    pub roles: Roles,
    pub sample: Sample,
}

fn roles(tok: &tokenizers::Tokenizer) -> Roles {
    let name = |id: u32| tok.id_to_token(id).unwrap_or_default();
    match crate::SpecialIds::of(tok) {
        Ok(s) => Roles {
            start: Some(name(s.bos)),
            end: Some(name(s.eos)),
            pair_middle: s.pair_middle.iter().map(|i| name(*i)).collect(),
            pad: s.pad.map(name),
            mask: s.mask.map(name),
            problem: None,
        },
        Err(e) => Roles {
            start: None,
            end: None,
            pair_middle: Vec::new(),
            pad: None,
            mask: None,
            problem: Some(e.to_string()),
        },
    }
}

pub fn run(cfg: &InspectConfig, _reporter: &dyn Reporter) -> Result<InspectReport> {
    let loaded = crate::load(&cfg.tokenizer)?;
    let tok = &loaded.tokenizer;
    let enc = tok.encode(cfg.text.as_str(), true)?;
    let model = match tok.get_model() {
        tokenizers::ModelWrapper::BPE(_) => "BPE",
        tokenizers::ModelWrapper::WordPiece(_) => "WordPiece",
        tokenizers::ModelWrapper::Unigram(_) => "Unigram",
        tokenizers::ModelWrapper::WordLevel(_) => "WordLevel",
    };
    Ok(InspectReport {
        source: loaded.source.to_string(),
        model: model.into(),
        vocab_size: tok.get_vocab_size(true),
        vocab_size_without_added: tok.get_vocab_size(false),
        merges: crate::merges_in_source(&loaded.source),
        special_tokens: tok
            .get_added_tokens_decoder()
            .into_iter()
            .filter(|(_, t)| t.special)
            .map(|(id, t)| (t.content, id))
            .collect(),
        roles: roles(tok),
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
        writeln!(f, "model             {}", self.model)?;
        writeln!(
            f,
            "vocabulary        {} ({} without added tokens)",
            self.vocab_size, self.vocab_size_without_added
        )?;
        writeln!(f, "merges            {}", self.merges)?;
        let mut specials: Vec<(&String, &u32)> = self.special_tokens.iter().collect();
        specials.sort_by_key(|(_, id)| **id);
        writeln!(f, "special tokens")?;
        for (t, id) in specials {
            writeln!(f, "  {t:<10} {id}")?;
        }
        let r = &self.roles;
        match &r.problem {
            Some(p) => writeln!(f, "wrapping          {p}")?,
            None => writeln!(
                f,
                "wrapping          {} text {}; pairs: … {} {}…",
                r.start.as_deref().unwrap_or("?"),
                r.end.as_deref().unwrap_or("?"),
                r.end.as_deref().unwrap_or("?"),
                r.pair_middle.join(" ")
            )?,
        }
        writeln!(
            f,
            "padding, mask     {}, {}",
            r.pad.as_deref().unwrap_or("absent"),
            r.mask.as_deref().unwrap_or("absent")
        )?;
        writeln!(f, "sample            {:?}", self.sample.text)?;
        writeln!(f, "  ids             {:?}", self.sample.ids)?;
        writeln!(f, "  tokens          {:?}", self.sample.tokens)
    }
}
