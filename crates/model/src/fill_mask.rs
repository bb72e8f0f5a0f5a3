//! `fill-mask` with the semantics of transformers' `FillMaskPipeline`: for each mask, the
//! softmax over the whole vocabulary at that position, the top-k (optionally among
//! `targets` only, without renormalising), each with `score`, `token`, `token_str` and the
//! `sequence` with that mask filled. With several masks each is scored independently and the
//! other masks stay in the sequence (special tokens are then kept, as the pipeline does).

use candle_core::DType;
use pytorrent_corpus::read::{read_records, Item};
use pytorrent_corpus::schema::{Refusal, Schema, TextLines, TextRecord};
use pytorrent_corpus::{InputConfig, ProblemKind, ReadSummary};
use pytorrent_io::Reporter;
use serde::{Deserialize, Serialize};

use crate::encoder::Model;
use crate::text::{encode_inputs, length_batches, ModelTokenizer};
use crate::{Error, Result};

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Candidate {
    pub score: f32,
    pub token: u32,
    pub token_str: String,
    pub sequence: String,
}

#[derive(Debug, Clone)]
pub struct FillMaskOptions {
    pub top_k: usize,
    pub targets: Option<Vec<String>>,
    pub batch_size: usize,
}

/// (row, position) of every mask token in a batch, row by row: where `Model::mlm_logits` is
/// asked for logits.
pub fn mask_positions(rows: &[Vec<u32>], mask_id: u32) -> Vec<(usize, usize)> {
    rows.iter()
        .enumerate()
        .flat_map(|(r, ids)| {
            ids.iter()
                .enumerate()
                .filter(move |(_, id)| **id == mask_id)
                .map(move |(p, _)| (r, p))
        })
        .collect()
}

/// Per input: per mask, the candidates best first. `reporter` hears about truncated inputs,
/// unknown targets, and the progress in inputs.
pub fn fill_mask(
    model: &Model,
    tok: &ModelTokenizer,
    texts: &[String],
    opts: &FillMaskOptions,
    reporter: &dyn Reporter,
) -> Result<Vec<Vec<Vec<Candidate>>>> {
    let warn = |m: String| reporter.warn(&m);
    if !model.has_mlm_head() {
        return Err(Error::Unsupported(
            model.mlm_missing.clone().unwrap_or_default(),
        ));
    }
    let mask_id = tok
        .mask_id
        .ok_or_else(|| Error::Usage("the tokenizer has no mask token (<mask> or [MASK])".into()))?;
    let mask_token = tok.mask_token.clone().unwrap_or_default();
    let target_ids: Option<Vec<u32>> = match &opts.targets {
        None => None,
        Some(t) => {
            let mut ids = Vec::new();
            for target in t {
                let id = match tok.tokenizer.token_to_id(target) {
                    Some(id) => id,
                    // As the pipeline: a target that is not a token stands for its first token.
                    None => {
                        let enc = tok
                            .tokenizer
                            .encode(target.as_str(), false)
                            .map_err(|e| Error::Usage(format!("target {target:?}: {e}")))?;
                        let first = *enc.get_ids().first().ok_or_else(|| {
                            Error::Usage(format!("target {target:?} has no tokens"))
                        })?;
                        warn(format!(
                            "target {target:?} is not a single token; using {:?}",
                            tok.tokenizer.id_to_token(first).unwrap_or_default()
                        ));
                        first
                    }
                };
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            Some(ids)
        }
    };
    let max = model.config.max_tokens();
    let encoded = encode_inputs(tok, texts, max, &|i| {
        warn(format!(
            "input {}: longer than {max} tokens, truncated",
            i + 1
        ))
    })?;
    for (i, (ids, t)) in encoded.iter().zip(texts).enumerate() {
        if !ids.contains(&mask_id) {
            return Err(Error::Usage(format!(
                "input {}: no {mask_token} token{}",
                i + 1,
                if t.contains(&mask_token) {
                    " left after truncation"
                } else {
                    ""
                }
            )));
        }
    }
    let mut results: Vec<Option<Vec<Vec<Candidate>>>> = vec![None; encoded.len()];
    reporter.begin(
        "fill-mask",
        pytorrent_io::Unit::Items("inputs"),
        Some(texts.len() as u64),
    );
    for chunk in &length_batches(&encoded, opts.batch_size) {
        reporter.advance(chunk.len() as u64);
        let rows: Vec<Vec<u32>> = chunk.iter().map(|&i| encoded[i].clone()).collect();
        let hidden = model.hidden_states(&rows)?;
        let at = mask_positions(&rows, mask_id);
        let logits = model.mlm_logits(&hidden, &at)?.to_dtype(DType::F32)?;
        let probs = candle_nn::ops::softmax_last_dim(&logits)?.to_vec2::<f32>()?;
        let mut k = 0;
        for (r, &input) in chunk.iter().enumerate() {
            let ids = &rows[r];
            let masks: Vec<usize> = at
                .iter()
                .filter(|(rr, _)| *rr == r)
                .map(|(_, p)| *p)
                .collect();
            let single = masks.len() == 1;
            let mut per_mask = Vec::new();
            for &pos in &masks {
                let p = &probs[k];
                k += 1;
                let mut cands: Vec<(u32, f32)> = match &target_ids {
                    Some(t) => t.iter().map(|id| (*id, p[*id as usize])).collect(),
                    None => p.iter().enumerate().map(|(i, s)| (i as u32, *s)).collect(),
                };
                cands.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                cands.truncate(opts.top_k);
                let mut row = Vec::new();
                for (id, score) in cands {
                    let mut filled = ids.clone();
                    filled[pos] = id;
                    filled.retain(|t| Some(*t) != tok.pad_id);
                    row.push(Candidate {
                        score,
                        token: id,
                        token_str: tok.decode(&[id], false)?,
                        sequence: tok.decode(&filled, single)?,
                    });
                }
                per_mask.push(row);
            }
            results[input] = Some(per_mask);
        }
    }
    reporter.end();
    Ok(results
        .into_iter()
        .map(|r| r.expect("every input scored"))
        .collect())
}

/// `fill-mask`: the masks of texts given inline or in files, filled by the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
// Inputs may be left out for inline --text.
#[cfg_attr(feature = "cli", command(mut_arg("inputs", |a| a.required(false))))]
pub struct FillMaskConfig {
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub model: crate::options::ModelOptions,
    /// Files of inputs, one a line (a JSON string, an object with "text", or plain text);
    /// `-` for standard input; and what to do with bad lines (and, with `skip`, inputs
    /// without a mask token).
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub input: InputConfig,
    /// An input given inline (repeatable), e.g. --text "return a <mask> b".
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub text: Vec<String>,
    /// Candidates shown per mask.
    #[serde(default = "default_top_k")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = default_top_k()))]
    pub top_k: usize,
    /// Only score these candidates (comma-separated), as the pipeline's `targets`.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long, value_delimiter = ','))]
    pub targets: Option<Vec<String>>,
}

fn default_top_k() -> usize {
    5
}

impl FillMaskConfig {
    pub fn new(model: crate::options::ModelOptions) -> FillMaskConfig {
        FillMaskConfig {
            model,
            input: InputConfig::default(),
            text: Vec::new(),
            top_k: default_top_k(),
            targets: None,
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.top_k == 0 {
            return Err(Error::Usage("--top-k must be at least 1".into()));
        }
        if self.text.is_empty() && self.input.inputs.is_empty() {
            return Err(Error::Usage("no inputs: give --text or input files".into()));
        }
        self.model.validate()
    }

    /// The inline texts, then every line of the input files: a line without `mask` is a bad
    /// line (named by file and line, skipped and quarantined under `--on-error skip`).
    fn texts(
        &self,
        mask: &str,
        reporter: &dyn Reporter,
    ) -> Result<(Vec<String>, Option<ReadSummary>)> {
        let mut texts = self.text.clone();
        if self.input.inputs.is_empty() {
            return Ok((texts, None));
        }
        let files = self.input.discover()?;
        let read = read_records(
            &files,
            &self.input.options(None),
            &WithMask { mask },
            reporter,
            |_, _, rec| rec.text.into_owned(),
            |item| {
                match item {
                    Item::Record { value, .. } => texts.push(value),
                    Item::Rejected { problem } => reporter.problem(&problem.to_string()),
                }
                Ok::<(), Error>(())
            },
        )?;
        Ok((texts, Some(read)))
    }
}

/// Text lines that hold the mask token.
struct WithMask<'m> {
    mask: &'m str,
}

impl Schema for WithMask<'_> {
    type Record<'a> = TextRecord<'a>;

    fn parse<'a>(&self, text: &'a str) -> std::result::Result<TextRecord<'a>, Refusal> {
        let r = TextLines.parse(text)?;
        if r.text.contains(self.mask) {
            Ok(r)
        } else {
            Err((
                ProblemKind::NoMask,
                format!("no {} token to fill", self.mask),
            ))
        }
    }

    fn columns(&self) -> Option<Vec<String>> {
        TextLines.columns()
    }
}

/// One input and, per mask, its candidates best first.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct FilledText {
    pub text: String,
    pub masks: Vec<Vec<Candidate>>,
}

/// What `--json` prints: one entry per input.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct FillMaskReport(pub Vec<FilledText>);

pub fn run(cfg: &FillMaskConfig, reporter: &dyn Reporter) -> Result<FillMaskReport> {
    cfg.validate()?;
    let (model, tok) = cfg.model.load(reporter)?;
    let mask = tok
        .mask_token
        .clone()
        .ok_or_else(|| Error::Usage("the tokenizer has no mask token (<mask> or [MASK])".into()))?;
    let (texts, read) = cfg.texts(&mask, reporter)?;
    // The report is the results alone (stdout); what was skipped goes with the logs.
    if let Some(r) = &read {
        let skipped = pytorrent_corpus::read::skipped_lines(r);
        if !skipped.is_empty() {
            reporter.warn(skipped.trim_end());
        }
    }
    let opts = FillMaskOptions {
        top_k: cfg.top_k,
        targets: cfg.targets.clone(),
        batch_size: cfg.model.batch_size,
    };
    let results = fill_mask(&model, &tok, &texts, &opts, reporter)?;
    Ok(FillMaskReport(
        texts
            .into_iter()
            .zip(results)
            .map(|(text, masks)| FilledText { text, masks })
            .collect(),
    ))
}

impl std::fmt::Display for FillMaskReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for r in &self.0 {
            writeln!(f, "{}", r.text)?;
            for (m, cands) in r.masks.iter().enumerate() {
                if r.masks.len() > 1 {
                    writeln!(f, "  mask {}:", m + 1)?;
                }
                for c in cands {
                    writeln!(
                        f,
                        "  {:.4}  {:<20} {}",
                        c.score,
                        format!("{:?}", c.token_str),
                        c.sequence.replace('\n', "⏎")
                    )?;
                }
            }
        }
        Ok(())
    }
}
