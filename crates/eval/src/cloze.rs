//! Cloze tests in CodeXGLUE's format (`ClozeTesting-maxmin`, `ClozeTesting-all`): score a
//! masked-language model as their `run_cloze.py` does, and make cloze sets with known answers
//! from a corpus partition.
//!
//! Files: `clozeTest.json` (a JSON array of `{"idx", "nl_tokens", "pl_tokens"}`, one `<mask>`
//! in `pl_tokens`), `cloze_test_words.txt` (the candidate words, one a line), and answers or
//! predictions as lines `idx<CODESPLIT>word`.
//!
//! Scoring, as `run_cloze.py`: the input is `' '.join(nl_tokens + pl_tokens)`, tokenized
//! without special tokens, cut to 510 tokens (fewer where the model's position table is
//! shorter), then given the model's special tokens; at the first mask only the candidate
//! words compete, each by its own vocabulary entry (the word without a leading-space marker);
//! the highest logit wins (ties: the lower token id, as `torch.argmax`). Accuracy is exact
//! match over all answers; an answer without a prediction is an error.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::DType;
use pytorrent_corpus::read::{read_records, Item};
use pytorrent_corpus::schema::{Any, PyTorrentFields};
use pytorrent_corpus::{AnyRecord, InputConfig, Partition, Partitions, ReadSummary};
use pytorrent_io::{AtomicFile, Reporter, Unit};
use pytorrent_model::options::ModelOptions;
use pytorrent_model::text::length_batches;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// What joins an idx and a word in answer and prediction files.
pub const CODESPLIT: &str = "<CODESPLIT>";
/// CodeXGLUE's mask in `pl_tokens`.
pub const MASK: &str = "<mask>";
/// The longest input, special tokens aside, as `run_cloze.py` cuts it.
const MAX_TOKENS: usize = 510;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClozeItem {
    pub idx: String,
    pub nl_tokens: Vec<String>,
    pub pl_tokens: Vec<String>,
}

pub fn read_items(path: &Path) -> Result<Vec<ClozeItem>> {
    let bytes = std::fs::read(path).map_err(|e| pytorrent_io::Error::io(path, e))?;
    let items: Vec<ClozeItem> = serde_json::from_slice(&bytes).map_err(|e| {
        Error::data(
            path,
            format!(
                "not a CodeXGLUE cloze file (a JSON array of {{idx, nl_tokens, pl_tokens}}): {e}"
            ),
        )
    })?;
    for (i, it) in items.iter().enumerate() {
        // Exactly one: the prediction is for the first, so a second would be scored as
        // though it were not there.
        let masks = it.pl_tokens.iter().filter(|t| *t == MASK).count();
        if masks != 1 {
            return Err(Error::data(
                path,
                format!(
                    "item {} (idx {}): {} {MASK} in pl_tokens; a cloze item has exactly one",
                    i + 1,
                    it.idx,
                    if masks == 0 {
                        "no".to_string()
                    } else {
                        masks.to_string()
                    }
                ),
            ));
        }
    }
    Ok(items)
}

/// The candidate words, one a line (blank lines skipped).
pub fn read_words(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| pytorrent_io::Error::io(path, e))?;
    let words: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(String::from)
        .collect();
    if words.is_empty() {
        return Err(Error::data(path, "no candidate words"));
    }
    Ok(words)
}

/// `idx<CODESPLIT>word` lines, in file order.
pub fn read_answers(path: &Path) -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path).map_err(|e| pytorrent_io::Error::io(path, e))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (idx, word) = line.split_once(CODESPLIT).ok_or_else(|| {
            Error::data(path, format!("line {}: expected idx{CODESPLIT}word", n + 1))
        })?;
        out.push((idx.to_string(), word.to_string()));
    }
    if out.is_empty() {
        return Err(Error::data(path, "no answers"));
    }
    Ok(out)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClozeConfig {
    #[serde(flatten)]
    pub model: ModelOptions,
    /// `clozeTest.json`.
    pub data: PathBuf,
    /// `cloze_test_words.txt` (default: beside the data, else its parent folder, as CodeXGLUE
    /// lays them out).
    #[serde(default)]
    pub words: Option<PathBuf>,
    /// `answers.txt` (default: beside the data when there is one).
    #[serde(default)]
    pub answers: Option<PathBuf>,
    /// Where predictions go (`idx<CODESPLIT>word` lines).
    #[serde(default)]
    pub out: Option<PathBuf>,
}

impl ClozeConfig {
    fn words_path(&self) -> Result<PathBuf> {
        if let Some(w) = &self.words {
            return Ok(w.clone());
        }
        let dir = self.data.parent().unwrap_or(Path::new("."));
        [
            dir.join("cloze_test_words.txt"),
            dir.join("../cloze_test_words.txt"),
        ]
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::Usage(format!(
                "no cloze_test_words.txt beside {} or above it: give --words FILE",
                self.data.display()
            ))
        })
    }

    fn answers_path(&self) -> Option<PathBuf> {
        self.answers.clone().or_else(|| {
            let p = self
                .data
                .parent()
                .unwrap_or(Path::new("."))
                .join("answers.txt");
            p.is_file().then_some(p)
        })
    }
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ClozeReport {
    pub items: usize,
    pub words: usize,
    /// Candidate words that are not one vocabulary entry (they cannot be predicted).
    pub words_not_in_vocabulary: Vec<String>,
    /// Items whose mask lies past the cut (no prediction).
    pub masks_cut: Vec<String>,
    pub max_tokens: usize,
    pub answers: Option<PathBuf>,
    /// Exact-match accuracy over all answers.
    pub accuracy: Option<f64>,
    pub correct: Option<usize>,
    /// Accuracy per answer word.
    pub per_word: BTreeMap<String, (usize, usize)>,
    pub predictions: Option<PathBuf>,
}

/// Predictions of every item (`None` where the mask was cut away), in item order.
pub fn predict(
    cfg: &ClozeConfig,
    items: &[ClozeItem],
    words: &[String],
    reporter: &dyn Reporter,
) -> Result<(Vec<Option<String>>, ClozeReport)> {
    let (model, tok) = cfg.model.load(reporter)?;
    if !model.has_mlm_head() {
        return Err(pytorrent_model::Error::Unsupported(
            model.mlm_missing.clone().unwrap_or_default(),
        )
        .into());
    }
    let mask_id = tok
        .mask_id
        .ok_or_else(|| Error::Usage("the tokenizer has no mask token".into()))?;
    let mut candidates: Vec<(u32, String)> = Vec::new();
    let mut missing = Vec::new();
    for w in words {
        match tok.tokenizer.token_to_id(w) {
            Some(id) => candidates.push((id, w.clone())),
            None => missing.push(w.clone()),
        }
    }
    if candidates.is_empty() {
        return Err(Error::Input(
            "no candidate word is a vocabulary entry of the tokenizer".into(),
        ));
    }
    if !missing.is_empty() {
        reporter.warn(&format!(
            "{} not one vocabulary entry and cannot be predicted: {}",
            pytorrent_io::reporter::plural(
                missing.len() as u64,
                "candidate word is",
                "candidate words are"
            ),
            missing.join(", ")
        ));
    }
    let max = MAX_TOKENS.min(model.config.max_tokens().saturating_sub(2));
    let mut encoded = Vec::with_capacity(items.len());
    for it in items {
        let text = it
            .nl_tokens
            .iter()
            .chain(&it.pl_tokens)
            .cloned()
            .collect::<Vec<_>>()
            .join(" ");
        let bad = |e: tokenizers::Error| Error::Input(format!("idx {}: tokenizing: {e}", it.idx));
        let mut enc = tok.tokenizer.encode(text.as_str(), false).map_err(bad)?;
        enc.truncate(max, 0, tokenizers::TruncationDirection::Right);
        let enc = tok.tokenizer.post_process(enc, None, true).map_err(bad)?;
        encoded.push(enc.get_ids().to_vec());
    }
    let mut predictions: Vec<Option<String>> = vec![None; items.len()];
    reporter.begin("cloze", Unit::Items("items"), Some(items.len() as u64));
    for chunk in length_batches(&encoded, cfg.model.batch_size) {
        let with_mask: Vec<(usize, usize)> = chunk
            .iter()
            .filter_map(|&i| {
                encoded[i]
                    .iter()
                    .position(|&t| t == mask_id)
                    .map(|p| (i, p))
            })
            .collect();
        if !with_mask.is_empty() {
            let rows: Vec<Vec<u32>> = with_mask.iter().map(|&(i, _)| encoded[i].clone()).collect();
            let hidden = model.hidden_states(&rows)?;
            let at: Vec<(usize, usize)> = with_mask
                .iter()
                .enumerate()
                .map(|(r, &(_, p))| (r, p))
                .collect();
            let logits = model
                .mlm_logits(&hidden, &at)?
                .to_dtype(DType::F32)
                .and_then(|t| t.to_vec2::<f32>())
                .map_err(|e| Error::Model(e.into()))?;
            for (row, &(i, _)) in logits.iter().zip(&with_mask) {
                let best = candidates
                    .iter()
                    .max_by(|a, b| {
                        row[a.0 as usize]
                            .total_cmp(&row[b.0 as usize])
                            .then(b.0.cmp(&a.0))
                    })
                    .expect("candidates");
                predictions[i] = Some(best.1.clone());
            }
        }
        reporter.advance(chunk.len() as u64);
    }
    reporter.end();
    let masks_cut: Vec<String> = items
        .iter()
        .zip(&predictions)
        .filter(|(_, p)| p.is_none())
        .map(|(it, _)| it.idx.clone())
        .collect();
    if !masks_cut.is_empty() {
        reporter.warn(&format!(
            "{} past the first {max} tokens: no prediction (a miss when scored)",
            pytorrent_io::reporter::plural(
                masks_cut.len() as u64,
                "item's mask lies",
                "items' masks lie"
            )
        ));
    }
    let report = ClozeReport {
        items: items.len(),
        words: words.len(),
        words_not_in_vocabulary: missing,
        masks_cut,
        max_tokens: max,
        answers: None,
        accuracy: None,
        correct: None,
        per_word: BTreeMap::new(),
        predictions: cfg.out.clone(),
    };
    Ok((predictions, report))
}

/// Scoring a cloze test (`eval cloze`).
pub struct Cloze;

impl pytorrent_io::stage::Stage for Cloze {
    type Config = ClozeConfig;
    type Report = ClozeReport;
    type Error = Error;
    const COMMAND: &'static str = "eval cloze";
    const READS: &'static [&'static str] = &["data", "words", "answers"];
    const READS_OR_ID: &'static [&'static str] = &["model", "tokenizer"];
    const WRITES: &'static [&'static str] = &["out"];

    fn run(
        config: &ClozeConfig,
        reporter: &dyn pytorrent_io::Reporter,
    ) -> Result<ClozeReport, Error> {
        run(config, reporter)
    }
}

pub fn run(cfg: &ClozeConfig, reporter: &dyn Reporter) -> Result<ClozeReport> {
    // A folder (what `eval cloze make` writes, or CodeXGLUE's) stands for its clozeTest.json.
    let in_folder;
    let cfg = if cfg.data.is_dir() {
        in_folder = ClozeConfig {
            data: cfg.data.join("clozeTest.json"),
            ..cfg.clone()
        };
        &in_folder
    } else {
        cfg
    };
    let items = read_items(&cfg.data)?;
    let words = read_words(&cfg.words_path()?)?;
    let answers_path = cfg.answers_path();
    let answers = answers_path.as_deref().map(read_answers).transpose()?;
    // An answer no candidate can be is a miss whatever the model does: a broken answer file,
    // not a model's error.
    if let (Some(answers), Some(path)) = (&answers, &answers_path) {
        let candidates: std::collections::HashSet<&str> =
            words.iter().map(String::as_str).collect();
        if let Some((idx, word)) = answers
            .iter()
            .find(|(_, w)| !candidates.contains(w.as_str()))
        {
            return Err(Error::data(
                path,
                format!(
                    "idx {idx}: the answer {word:?} is not one of the {} candidate words of {}",
                    words.len(),
                    cfg.words_path()?.display()
                ),
            ));
        }
    }
    let (predictions, mut report) = predict(cfg, &items, &words, reporter)?;
    if let Some(out) = &cfg.out {
        let mut f = AtomicFile::create(out)?;
        for (it, p) in items.iter().zip(&predictions) {
            if let Some(p) = p {
                writeln!(f, "{}{CODESPLIT}{p}", it.idx)
                    .map_err(|e| pytorrent_io::Error::io(out, e))?;
            }
        }
        f.commit()?;
    }
    if let (Some(answers), Some(path)) = (answers, answers_path) {
        let predicted: BTreeMap<&str, &str> = items
            .iter()
            .zip(&predictions)
            .filter_map(|(it, p)| p.as_deref().map(|p| (it.idx.as_str(), p)))
            .collect();
        let mut correct = 0;
        for (idx, word) in &answers {
            // A mask past the model's length cannot be predicted: it counts as a miss (the
            // report lists it), so accuracy stays over every answer.
            let hit = match predicted.get(idx.as_str()) {
                Some(p) => p == word,
                None if report.masks_cut.contains(idx) => false,
                None => {
                    return Err(Error::Input(format!(
                        "{}: idx {idx} is not an item of {}",
                        path.display(),
                        cfg.data.display()
                    )))
                }
            };
            correct += usize::from(hit);
            let e = report.per_word.entry(word.clone()).or_default();
            e.0 += usize::from(hit);
            e.1 += 1;
        }
        report.accuracy = Some(correct as f64 / answers.len() as f64);
        report.correct = Some(correct);
        report.answers = Some(path);
    }
    Ok(report)
}

impl std::fmt::Display for ClozeReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "cloze: {} items, {} candidate words (inputs cut to {} tokens)",
            self.items, self.words, self.max_tokens
        )?;
        if !self.words_not_in_vocabulary.is_empty() {
            writeln!(
                f,
                "  not in the vocabulary: {}",
                self.words_not_in_vocabulary.join(", ")
            )?;
        }
        if let (Some(a), Some(c)) = (self.accuracy, self.correct) {
            writeln!(
                f,
                "  accuracy {:.2}% ({c} of {})",
                100.0 * a,
                self.per_word.values().map(|v| v.1).sum::<usize>()
            )?;
            for (w, (hit, n)) in &self.per_word {
                writeln!(f, "    {w:<16} {hit}/{n}")?;
            }
        }
        if let Some(p) = &self.predictions {
            writeln!(f, "  predictions: {}", p.display())?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Making cloze sets with known answers.

pytorrent_io::word_enum! {
    "cloze kind";
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Kind {
        /// One `max` or `min` token masked (CodeXGLUE's ClozeTesting-maxmin).
        MaxMin = "maxmin",
        /// One occurrence of any candidate word masked (ClozeTesting-all).
        All = "all",
    }
}

/// The candidate words of `--kind all` when none are given: Python keywords, builtins and
/// everyday names.
pub const PYTHON_WORDS: &str = include_str!("../../../configs/cloze/python_words.txt");

fn default_partition() -> Partitions {
    Partitions::only(Partition::Test)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct ClozeMakeConfig {
    /// Corpus files or folders (PyTorrent records: code_tokens and docstring_tokens), and the
    /// bad-line policy.
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub input: InputConfig,
    /// maxmin (one max/min token masked) or all (one candidate word masked).
    #[cfg_attr(feature = "cli", arg(long))]
    pub kind: Kind,
    /// Partitions the items come from (test by default: never in train shards).
    #[serde(default = "default_partition")]
    #[cfg_attr(feature = "cli", arg(long, default_value = "test"))]
    pub partition: Partitions,
    /// The partition of records that name none (as `tokenizer train` and `pack` take it).
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub rule: pytorrent_corpus::PartitionRule,
    /// Seed of the choice of the masked occurrence.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0))]
    pub seed: u64,
    /// Candidate words of --kind all (one a line; default: Python keywords, builtins, names).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub words: Option<PathBuf>,
    /// At most this many items (the first in input order).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub limit: Option<usize>,
    /// Output folder: clozeTest.json, answers.txt, cloze_test_words.txt.
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ClozeMakeReport {
    pub items: usize,
    pub words: usize,
    /// Records read from the partition, and those without any candidate word.
    pub records: u64,
    pub without_candidate: u64,
    pub per_word: BTreeMap<String, usize>,
    pub out: PathBuf,
    pub read: ReadSummary,
}

#[derive(Deserialize)]
struct Tokens {
    code_tokens: Vec<String>,
    docstring_tokens: Vec<String>,
}

/// A deterministic choice among `n` places for a record (FNV-1a of its key and the seed).
fn pick(seed: u64, key: &str, n: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for b in key.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    (h % n as u64) as usize
}

const MAKE_FIELDS: &[&str] = &[
    "repo",
    "path",
    "func_name",
    "code_tokens",
    "docstring_tokens",
];

/// Making a cloze test (`eval cloze make`).
pub struct ClozeMake;

impl pytorrent_io::stage::Stage for ClozeMake {
    type Config = ClozeMakeConfig;
    type Report = ClozeMakeReport;
    type Error = Error;
    const COMMAND: &'static str = "eval cloze make";
    const READS: &'static [&'static str] = &["inputs", "words"];
    const WRITES: &'static [&'static str] = &["quarantine"];

    fn run(
        config: &ClozeMakeConfig,
        reporter: &dyn pytorrent_io::Reporter,
    ) -> Result<ClozeMakeReport, Error> {
        make(config, reporter)
    }
}

pub fn make(cfg: &ClozeMakeConfig, reporter: &dyn Reporter) -> Result<ClozeMakeReport> {
    let words: Vec<String> = match (cfg.kind, &cfg.words) {
        (Kind::MaxMin, _) => vec!["max".into(), "min".into()],
        (Kind::All, Some(p)) => read_words(p)?,
        (Kind::All, None) => PYTHON_WORDS
            .lines()
            .map(str::trim)
            .filter(|w| !w.is_empty() && !w.starts_with('#'))
            .map(String::from)
            .collect(),
    };
    if cfg.partition.contains(Some(Partition::Train)) {
        reporter.warn("cloze items made from the train partition are in the training data");
    }
    let files = cfg.input.discover()?;
    let mut items = Vec::new();
    cfg.rule.validate().map_err(Error::Usage)?;
    let (mut records, mut without) = (0u64, 0u64);
    let mut skipped = pytorrent_corpus::texts::TextCounts::default();
    let mut per_word: BTreeMap<String, usize> = BTreeMap::new();
    reporter.begin("cloze items", Unit::Bytes, None);
    let read = read_records(
        &files,
        &cfg.input.options(None),
        &Any::PyTorrent(Some(PyTorrentFields(MAKE_FIELDS))),
        reporter,
        |file, line, rec| {
            let p = cfg.rule.resolve(&rec, file);
            let AnyRecord::PyTorrent(r) = rec else {
                return None;
            };
            if let Err(why) = cfg.partition.admit(p) {
                return Some(Err(why));
            }
            let t: Tokens = serde_json::from_slice(line.bytes).ok()?;
            let key = format!("{}/{}:{}", r.repo, r.path, r.func_name);
            let places: Vec<usize> = (0..t.code_tokens.len())
                .filter(|&i| words.contains(&t.code_tokens[i]))
                .collect();
            if places.is_empty() {
                return Some(Ok(None));
            }
            let at = places[pick(cfg.seed, &key, places.len())];
            let mut pl = t.code_tokens;
            let answer = std::mem::replace(&mut pl[at], MASK.to_string());
            Some(Ok(Some((t.docstring_tokens, pl, answer))))
        },
        |item| -> Result<()> {
            match item {
                Item::Record {
                    value: Some(Err(why)),
                    ..
                } => skipped.exclude(why),
                Item::Record {
                    value: Some(Ok(v)), ..
                } => {
                    records += 1;
                    match v {
                        None => without += 1,
                        Some((nl, pl, answer)) if cfg.limit.is_none_or(|l| items.len() < l) => {
                            *per_word.entry(answer.clone()).or_default() += 1;
                            items.push((nl, pl, answer));
                        }
                        Some(_) => {}
                    }
                }
                Item::Rejected { problem } => reporter.problem(&problem.to_string()),
                _ => {}
            }
            Ok(())
        },
    );
    reporter.end();
    let read = read?;
    if items.is_empty() && records == 0 {
        return Err(Error::Input(skipped.why_none(
            &pytorrent_corpus::TextSource::new(pytorrent_corpus::TextView::Code, None),
            &cfg.partition,
        )));
    }
    if items.is_empty() {
        return Err(Error::Input(format!(
            "no record of the partition holds a candidate word ({} records read)",
            records
        )));
    }
    std::fs::create_dir_all(&cfg.out).map_err(|e| pytorrent_io::Error::io(&cfg.out, e))?;
    let kind = cfg.kind.name();
    let json: Vec<ClozeItem> = items
        .iter()
        .enumerate()
        .map(|(n, (nl, pl, _))| ClozeItem {
            idx: format!("{kind}-{n}"),
            nl_tokens: nl.clone(),
            pl_tokens: pl.clone(),
        })
        .collect();
    let write = |name: &str, bytes: Vec<u8>| -> Result<()> {
        let path = cfg.out.join(name);
        let mut f = AtomicFile::create(&path)?;
        f.write_all(&bytes)
            .map_err(|e| pytorrent_io::Error::io(&path, e))?;
        f.commit()?;
        Ok(())
    };
    write(
        "clozeTest.json",
        serde_json::to_vec(&json).expect("serialisable"),
    )?;
    let answers: String = items
        .iter()
        .enumerate()
        .map(|(n, (_, _, a))| format!("{kind}-{n}{CODESPLIT}{a}\n"))
        .collect();
    write("answers.txt", answers.into_bytes())?;
    // As CodeXGLUE writes it: no newline after the last word.
    write("cloze_test_words.txt", words.join("\n").into_bytes())?;
    Ok(ClozeMakeReport {
        items: items.len(),
        words: words.len(),
        records,
        without_candidate: without,
        per_word,
        out: cfg.out.clone(),
        read,
    })
}

impl std::fmt::Display for ClozeMakeReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} cloze items from {} records ({} without a candidate word) in {}",
            self.items,
            self.records,
            self.without_candidate,
            self.out.display()
        )
    }
}
