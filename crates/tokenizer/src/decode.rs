//! `tokenizer decode`: token ids → text. Ids come as arguments (one text) or as JSON arrays
//! on standard input, one per line. Each text is written as it is, followed by a newline, or,
//! with `json`, as one JSON string per line (for texts that hold newlines themselves).

use std::io::{BufRead, Write};

use pytorrent_io::Reporter;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecodeConfig {
    pub tokenizer: String,
    /// Ids, space- or comma-separated; empty: read JSON arrays from standard input.
    #[serde(default)]
    pub ids: Vec<String>,
    /// Keep special tokens (<s>, </s>, <pad>, …) in the text.
    #[serde(default)]
    pub keep_special_tokens: bool,
}

impl DecodeConfig {
    pub fn validate(&self) -> Result<()> {
        parse_ids(&self.ids.join(" ")).map(|_| ())
    }
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct DecodeReport {
    pub texts: u64,
}

fn parse_ids(s: &str) -> Result<Vec<u32>> {
    s.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|x| !x.is_empty())
        .map(|x| {
            x.parse::<u32>()
                .map_err(|_| Error::Usage(format!("not a token id: '{x}'")))
        })
        .collect()
}

/// Decodes from the arguments or standard input onto standard output (`json`: one JSON
/// string per text).
pub fn run(cfg: &DecodeConfig, json: bool, _reporter: &dyn Reporter) -> Result<DecodeReport> {
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout().lock();
    run_io(cfg, json, &mut stdin.lock(), &mut stdout)
}

/// [`run`] over any input and output.
pub fn run_io(
    cfg: &DecodeConfig,
    json: bool,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> Result<DecodeReport> {
    cfg.validate()?;
    let tok = crate::load(&cfg.tokenizer)?.tokenizer;
    let vocab = tok.get_vocab_size(true) as u32;
    let decode = |ids: &[u32], what: &str| -> Result<String> {
        if let Some(bad) = ids.iter().find(|i| **i >= vocab) {
            return Err(Error::Tokenizers(format!(
                "{what}: id {bad} is outside the vocabulary (size {vocab})"
            )));
        }
        Ok(tok.decode(ids, !cfg.keep_special_tokens)?)
    };
    let mut emit = |text: String| {
        let r = if json {
            writeln!(out, "{}", serde_json::Value::String(text))
        } else {
            writeln!(out, "{text}")
        };
        r.map_err(|e| Error::Io(pytorrent_io::Error::io("<stdout>", e)))
    };
    if !cfg.ids.is_empty() {
        emit(decode(&parse_ids(&cfg.ids.join(" "))?, "arguments")?)?;
        return Ok(DecodeReport { texts: 1 });
    }
    let mut texts = 0;
    for (i, line) in input.lines().enumerate() {
        let line = line.map_err(|e| Error::Io(pytorrent_io::Error::io("<stdin>", e)))?;
        if line.trim().is_empty() {
            continue;
        }
        let at = format!("<stdin>:{}", i + 1);
        let ids: Vec<u32> = serde_json::from_str(&line).map_err(|e| {
            Error::Tokenizers(format!("{at}: expected a JSON array of token ids ({e})"))
        })?;
        emit(decode(&ids, &at)?)?;
        texts += 1;
    }
    Ok(DecodeReport { texts })
}
