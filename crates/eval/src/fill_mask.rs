//! `eval fill-mask`: a masked-language model against a suite of prompts with known answers —
//! top-1 and top-5 accuracy and the mean reciprocal rank of the first accepted answer, overall
//! and per category, the prompts it gets most wrong, and a gate (`min_top1`, `min_top5`) for
//! training pipelines.
//!
//! The rule for answers: each mask is scored on its own (as the fill-mask pipeline scores
//! several masks), and an answer counts by its first token in context — the token that starts
//! it when it is written in place of the mask (`Ġrange` after `in `, `range` in WordPiece).
//! An answer of several tokens is judged by that first token, and counted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::DType;
use pytorrent_io::{Reporter, Unit};
use pytorrent_model::fill_mask::mask_positions;
use pytorrent_model::options::ModelOptions;
use pytorrent_model::text::{encode_inputs, length_batches, ModelTokenizer};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The suite `eval fill-mask` runs when none is given.
pub const PYTHON_SUITE: &str = include_str!("../../../configs/fill-mask/python.toml");

/// What stands for the mask in a suite, whatever the model's mask token.
pub const MASK: &str = "<mask>";

/// The accepted answers of a prompt: one list for a prompt with one mask, one list per mask
/// otherwise.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Answers {
    One(Vec<String>),
    Each(Vec<Vec<String>>),
}

impl Answers {
    fn per_mask(&self) -> Vec<Vec<String>> {
        match self {
            Answers::One(a) => vec![a.clone()],
            Answers::Each(a) => a.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PromptEntry {
    text: String,
    answers: Answers,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Group {
    category: String,
    prompts: Vec<PromptEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SuiteFile {
    name: String,
    #[serde(default)]
    description: Option<String>,
    group: Vec<Group>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    pub text: String,
    pub category: String,
    /// Accepted answers of each mask, in order.
    pub answers: Vec<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Suite {
    pub name: String,
    pub description: Option<String>,
    pub prompts: Vec<Prompt>,
    /// The file it was read from (errors name it).
    pub origin: PathBuf,
}

/// A prompt as errors quote it: its start, when it is long.
fn quoted(text: &str) -> String {
    const SHOWN: usize = 60;
    match text.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{:?}… ({} characters)", &text[..cut], text.chars().count()),
        None => format!("{text:?}"),
    }
}

impl Suite {
    /// Reads a suite; `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Suite> {
        let file: SuiteFile =
            toml::from_str(text).map_err(|e| Error::data(origin, format!("not a suite: {e}")))?;
        let mut prompts = Vec::new();
        for g in file.group {
            for p in g.prompts {
                let n = prompts.len() + 1;
                let bad = |m: String| {
                    Error::data(origin, format!("prompt {n} ({}): {m}", quoted(&p.text)))
                };
                let masks = p.text.matches(MASK).count();
                let answers = p.answers.per_mask();
                if masks == 0 {
                    return Err(bad(format!("no {MASK}")));
                }
                if answers.len() != masks {
                    return Err(bad(format!(
                        "{masks} masks but answers for {}",
                        answers.len()
                    )));
                }
                if answers
                    .iter()
                    .any(|a| a.is_empty() || a.iter().any(String::is_empty))
                {
                    return Err(bad("a mask without answers, or an empty answer".into()));
                }
                prompts.push(Prompt {
                    text: p.text,
                    category: g.category.clone(),
                    answers,
                });
            }
        }
        if prompts.is_empty() {
            return Err(Error::data(origin, "the suite has no prompts"));
        }
        Ok(Suite {
            name: file.name,
            description: file.description,
            prompts,
            origin: origin.to_path_buf(),
        })
    }

    pub fn read(path: &Path) -> Result<Suite> {
        let text = std::fs::read_to_string(path).map_err(|e| pytorrent_io::Error::io(path, e))?;
        Suite::parse(&text, path)
    }

    pub fn builtin() -> Suite {
        Suite::parse(PYTHON_SUITE, Path::new("configs/fill-mask/python.toml"))
            .expect("the built-in suite is valid")
    }
}

fn default_top1() -> f64 {
    0.0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct FillMaskEvalConfig {
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub model: ModelOptions,
    /// Suite files (TOML, as configs/fill-mask/python.toml; repeatable). Default: the built-in
    /// Python suite.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub suite: Vec<PathBuf>,
    /// Exit 1 when top-1 accuracy is below this share (0 to 1).
    #[serde(default = "default_top1")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = default_top1()))]
    pub min_top1: f64,
    /// Exit 1 when top-5 accuracy is below this share (0 to 1).
    #[serde(default = "default_top1")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = default_top1()))]
    pub min_top5: f64,
    /// How many of the worst prompts the report names.
    #[serde(default = "default_worst")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = default_worst()))]
    pub worst: usize,
}

fn default_worst() -> usize {
    10
}

impl FillMaskEvalConfig {
    pub fn new(model: ModelOptions) -> FillMaskEvalConfig {
        FillMaskEvalConfig {
            model,
            suite: Vec::new(),
            min_top1: 0.0,
            min_top5: 0.0,
            worst: default_worst(),
        }
    }

    pub fn validate(&self) -> Result<()> {
        for (flag, v) in [("--min-top1", self.min_top1), ("--min-top5", self.min_top5)] {
            if !(0.0..=1.0).contains(&v) {
                return Err(Error::Usage(format!(
                    "{flag} {v}: give a share from 0 to 1"
                )));
            }
        }
        Ok(())
    }
}

/// One mask of one prompt, scored.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Scored {
    pub prompt: usize,
    pub mask: usize,
    pub category: String,
    pub text: String,
    /// 1-based rank of the best accepted answer in the model's order (score, then token id).
    pub rank: u64,
    /// The accepted answer ranked best.
    pub answer: String,
    /// What the model put first, and its probability.
    pub predicted: String,
    pub probability: f32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Accuracy {
    pub masks: usize,
    pub top1: f64,
    pub top5: f64,
    pub mrr: f64,
}

impl Accuracy {
    fn of<'a>(items: impl Iterator<Item = &'a Scored>) -> Accuracy {
        let mut a = Accuracy::default();
        for s in items {
            a.masks += 1;
            a.top1 += f64::from(u8::from(s.rank == 1));
            a.top5 += f64::from(u8::from(s.rank <= 5));
            a.mrr += 1.0 / s.rank as f64;
        }
        if a.masks > 0 {
            let n = a.masks as f64;
            (a.top1, a.top5, a.mrr) = (a.top1 / n, a.top5 / n, a.mrr / n);
        }
        a
    }
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct FillMaskEvalReport {
    pub model: String,
    pub suites: Vec<String>,
    pub prompts: usize,
    #[serde(flatten)]
    pub overall: Accuracy,
    pub categories: BTreeMap<String, Accuracy>,
    /// Accepted answers longer than one token, judged by their first token.
    pub multi_token_answers: usize,
    pub rule: String,
    /// Lowest reciprocal rank first.
    pub worst: Vec<Scored>,
    pub min_top1: f64,
    pub min_top5: f64,
    /// Why the gate failed (top-1 or top-5 below its minimum), if it did.
    pub failed: Option<String>,
}

const RULE: &str = "each mask is scored on its own; an answer counts by its first token in \
    context (the token that starts it written in place of the mask); ranks order the \
    vocabulary by probability, then token id";

/// The first token of `answer` written after `prefix`, and how many tokens it takes there.
fn first_token(tok: &ModelTokenizer, prefix: &str, answer: &str) -> Result<(u32, usize)> {
    let ids = |s: &str| -> Result<Vec<u32>> {
        Ok(tok
            .tokenizer
            .encode(s, false)
            .map_err(|e| Error::Usage(format!("tokenizing {s:?}: {e}")))?
            .get_ids()
            .to_vec())
    };
    let before = ids(prefix)?;
    let with = ids(&format!("{prefix}{answer}"))?;
    let at = before
        .iter()
        .zip(&with)
        .position(|(a, b)| a != b)
        .unwrap_or(before.len());
    match with.get(at) {
        Some(&id) => Ok((id, with.len() - at)),
        None => Err(Error::Usage(format!("answer {answer:?} has no tokens"))),
    }
}

/// One mask's accepted answers: each one's first token in context, and the answer.
type Accepted = Vec<(u32, String)>;

/// The accepted first tokens of each mask of a prompt (the prompt written with the model's
/// mask token), and how many of the answers take several tokens.
fn answer_tokens(tok: &ModelTokenizer, p: &Prompt, mask: &str) -> Result<(Vec<Accepted>, usize)> {
    let pieces: Vec<&str> = p.text.split(MASK).collect();
    let mut out = Vec::new();
    let mut multi = 0;
    for (m, answers) in p.answers.iter().enumerate() {
        let prefix = pieces[..=m].join(mask);
        let mut ids = Vec::new();
        for a in answers {
            let (id, n) = first_token(tok, &prefix, a)?;
            multi += usize::from(n > 1);
            ids.push((id, a.clone()));
        }
        out.push(ids);
    }
    Ok((out, multi))
}

/// The fill-mask check (`eval fill-mask`).
pub struct FillMaskEval;

impl pytorrent_io::stage::Stage for FillMaskEval {
    type Config = FillMaskEvalConfig;
    type Report = FillMaskEvalReport;
    type Error = Error;
    const COMMAND: &'static str = "eval fill-mask";
    const READS: &'static [&'static str] = &["suite"];
    const READS_OR_ID: &'static [&'static str] = &["model", "tokenizer"];

    fn run(
        config: &FillMaskEvalConfig,
        reporter: &dyn pytorrent_io::Reporter,
    ) -> Result<FillMaskEvalReport, Error> {
        run(config, reporter)
    }
    fn gate_failure(report: &FillMaskEvalReport) -> Option<String> {
        report.failed.clone()
    }
}

pub fn run(cfg: &FillMaskEvalConfig, reporter: &dyn Reporter) -> Result<FillMaskEvalReport> {
    cfg.validate()?;
    let suites: Vec<Suite> = if cfg.suite.is_empty() {
        vec![Suite::builtin()]
    } else {
        cfg.suite
            .iter()
            .map(|p| Suite::read(p))
            .collect::<Result<_>>()?
    };
    let (model, tok) = cfg.model.load(reporter)?;
    if !model.has_mlm_head() {
        return Err(pytorrent_model::Error::Unsupported(
            model.mlm_missing.clone().unwrap_or_default(),
        )
        .into());
    }
    let (Some(mask_id), Some(mask)) = (tok.mask_id, tok.mask_token.clone()) else {
        return Err(Error::Usage(
            "the tokenizer has no mask token (<mask> or [MASK])".into(),
        ));
    };
    let prompts: Vec<&Prompt> = suites.iter().flat_map(|s| &s.prompts).collect();
    let texts: Vec<String> = prompts
        .iter()
        .map(|p| p.text.replace(MASK, &mask))
        .collect();
    let mut accepted = Vec::new();
    let mut multi = 0;
    for p in &prompts {
        let (a, m) = answer_tokens(&tok, p, &mask)?;
        accepted.push(a);
        multi += m;
    }
    let max = model.config.max_tokens();
    let encoded = encode_inputs(&tok, &texts, max, &|_| {})?;
    // A prompt whose masks the model's length cuts off cannot be scored: said before any
    // forward pass, naming its suite file and its place there.
    let places: Vec<(&Path, usize)> = suites
        .iter()
        .flat_map(|s| (1..=s.prompts.len()).map(move |n| (s.origin.as_path(), n)))
        .collect();
    for (i, row) in encoded.iter().enumerate() {
        let masks = row.iter().filter(|&&t| t == mask_id).count();
        if masks != prompts[i].answers.len() {
            let (file, n) = places[i];
            return Err(Error::data(
                file,
                format!(
                    "prompt {n} ({}): {} of its {} masks lie within the model's {max}-token \
                     limit; shorten the prompt",
                    quoted(&prompts[i].text),
                    masks,
                    prompts[i].answers.len()
                ),
            ));
        }
    }
    let mut scored: Vec<Scored> = Vec::new();
    reporter.begin(
        "fill-mask suite",
        Unit::Items("prompts"),
        Some(prompts.len() as u64),
    );
    for chunk in length_batches(&encoded, cfg.model.batch_size) {
        let rows: Vec<Vec<u32>> = chunk.iter().map(|&i| encoded[i].clone()).collect();
        let hidden = model.hidden_states(&rows).map_err(Error::Model)?;
        let at = mask_positions(&rows, mask_id);
        let logits = model.mlm_logits(&hidden, &at).map_err(Error::Model)?;
        let probs =
            candle_nn::ops::softmax_last_dim(&logits.to_dtype(DType::F32).map_err(model_err)?)
                .map_err(model_err)?
                .to_vec2::<f32>()
                .map_err(model_err)?;
        let mut k = 0;
        for (r, &i) in chunk.iter().enumerate() {
            let masks = at.iter().filter(|(rr, _)| *rr == r).count();
            if masks != prompts[i].answers.len() {
                return Err(Error::Input(format!(
                    "prompt {} ({}): {} of its masks survive the model's {max}-token limit",
                    i + 1,
                    quoted(&prompts[i].text),
                    masks
                )));
            }
            for (m, answers) in accepted[i].iter().enumerate() {
                let p = &probs[k];
                k += 1;
                scored.push(score_mask(&tok, p, answers, prompts[i], i, m)?);
            }
        }
        reporter.advance(chunk.len() as u64);
    }
    reporter.end();
    scored.sort_by_key(|s| (s.prompt, s.mask));
    let overall = Accuracy::of(scored.iter());
    let mut categories = BTreeMap::new();
    for c in scored
        .iter()
        .map(|s| s.category.clone())
        .collect::<std::collections::BTreeSet<_>>()
    {
        categories.insert(
            c.clone(),
            Accuracy::of(scored.iter().filter(|s| s.category == c)),
        );
    }
    let mut worst = scored.clone();
    worst.sort_by(|a, b| b.rank.cmp(&a.rank).then(a.prompt.cmp(&b.prompt)));
    worst.truncate(cfg.worst);
    let failed = gate(&overall, cfg);
    Ok(FillMaskEvalReport {
        model: cfg.model.model.clone(),
        suites: suites.iter().map(|s| s.name.clone()).collect(),
        prompts: prompts.len(),
        overall,
        categories,
        multi_token_answers: multi,
        rule: RULE.into(),
        worst,
        min_top1: cfg.min_top1,
        min_top5: cfg.min_top5,
        failed,
    })
}

fn model_err(e: candle_core::Error) -> Error {
    Error::Model(e.into())
}

fn score_mask(
    tok: &ModelTokenizer,
    p: &[f32],
    answers: &[(u32, String)],
    prompt: &Prompt,
    index: usize,
    mask: usize,
) -> Result<Scored> {
    // The model's order: probability, then token id (as `fill-mask` lists candidates).
    let before =
        |a: u32, b: u32| p[a as usize] > p[b as usize] || (p[a as usize] == p[b as usize] && a < b);
    let mut best = answers.first().expect("a mask has answers").clone();
    for a in &answers[1..] {
        if before(a.0, best.0) {
            best = a.clone();
        }
    }
    let (best, answer) = best;
    let rank = 1 + (0..p.len() as u32).filter(|&v| before(v, best)).count() as u64;
    let top = (0..p.len() as u32).fold(0u32, |t, v| if before(v, t) { v } else { t });
    Ok(Scored {
        prompt: index + 1,
        mask: mask + 1,
        category: prompt.category.clone(),
        text: prompt.text.clone(),
        rank,
        answer,
        predicted: tok.decode(&[top], false).map_err(Error::Model)?,
        probability: p[top as usize],
    })
}

fn gate(a: &Accuracy, cfg: &FillMaskEvalConfig) -> Option<String> {
    let mut why = Vec::new();
    if a.top1 < cfg.min_top1 {
        why.push(format!(
            "top-1 accuracy {:.4} is below --min-top1 {}",
            a.top1, cfg.min_top1
        ));
    }
    if a.top5 < cfg.min_top5 {
        why.push(format!(
            "top-5 accuracy {:.4} is below --min-top5 {}",
            a.top5, cfg.min_top5
        ));
    }
    (!why.is_empty()).then(|| why.join("; "))
}

impl std::fmt::Display for FillMaskEvalReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "fill-mask suite {} on {}: {} prompts, {} masks",
            self.suites.join(", "),
            self.model,
            self.prompts,
            self.overall.masks
        )?;
        writeln!(
            f,
            "{:<20} {:>6} {:>7} {:>7} {:>7}",
            "category", "masks", "top-1", "top-5", "MRR"
        )?;
        let rows = self.categories.iter().map(|(c, a)| (c.as_str(), a));
        for (c, a) in rows.chain(std::iter::once(("all", &self.overall))) {
            writeln!(
                f,
                "{c:<20} {:>6} {:>7.4} {:>7.4} {:>7.4}",
                a.masks, a.top1, a.top5, a.mrr
            )?;
        }
        writeln!(
            f,
            "worst prompts (rank of the best accepted answer; the model's first choice):"
        )?;
        for s in &self.worst {
            let text: String = s.text.replace('\n', "⏎").chars().take(70).collect();
            writeln!(
                f,
                "  #{:<4} rank {:<6} {:?} → {:?} ({:.3})  {text}",
                s.prompt, s.rank, s.answer, s.predicted, s.probability
            )?;
        }
        writeln!(
            f,
            "{} accepted answers take several tokens; rule: {}",
            self.multi_token_answers, self.rule
        )?;
        if let Some(why) = &self.failed {
            writeln!(f, "FAILED: {why}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_suite_has_at_least_200_prompts_in_ten_categories() {
        let s = Suite::builtin();
        assert!(s.prompts.len() >= 200, "{}", s.prompts.len());
        let cats: std::collections::BTreeSet<_> = s.prompts.iter().map(|p| &p.category).collect();
        assert_eq!(cats.len(), 10);
        assert!(s.prompts.iter().any(|p| p.answers.len() == 2));
    }

    #[test]
    fn bad_suites_are_named_by_prompt() {
        let e = Suite::parse(
            "name = \"x\"\n[[group]]\ncategory = \"c\"\nprompts = [{ text = \"a <mask>\", answers = [\"b\"] }, { text = \"no mask\", answers = [\"b\"] }]",
            Path::new("s.toml"),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(e, "s.toml: prompt 2 (\"no mask\"): no <mask>");
        let e = Suite::parse(
            "name = \"x\"\n[[group]]\ncategory = \"c\"\nprompts = [{ text = \"<mask> <mask>\", answers = [\"b\"] }]",
            Path::new("s.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("2 masks but answers for 1"), "{e}");
    }
}
