//! `eval overlap TRAIN EVAL`: how much of an evaluation set a training corpus already holds —
//! exact copies (the same code tokens, whatever the spacing) and near copies (MinHash over
//! token shingles, the LSH extract de-duplicates with), as counts, shares and examples.
//!
//! The evaluation set is indexed (it is the small side) and the training corpus streams past
//! it, so memory is the evaluation set's, whatever the corpus size.

use std::path::PathBuf;

use pytorrent_corpus::dedup::{DedupOptions, Deduper, Duplicate};
use pytorrent_corpus::read::{read_records, Item};
use pytorrent_corpus::{
    AnyRecord, InputConfig, Partition, Partitions, ReadSummary, TextSource, TextView,
};
use pytorrent_io::{Reporter, Unit};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Code tokens for comparison: runs of letters, digits and `_`, and each other non-space
/// character alone; spacing and line breaks do not count.
pub fn tokens(text: &str) -> Vec<String> {
    pytorrent_corpus::dedup::word_tokens(text)
}

fn default_field() -> TextView {
    TextView::Code
}
fn default_train() -> Partitions {
    Partitions::only(Partition::Train)
}
fn default_eval() -> Partitions {
    Partitions::only(Partition::Test)
}
fn default_threshold() -> f64 {
    0.85
}
fn default_shingle() -> usize {
    3
}
fn default_examples() -> usize {
    10
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverlapConfig {
    /// Training corpus files or folders, and the bad-line policy of both sides.
    #[serde(flatten)]
    pub input: InputConfig,
    /// The evaluation set: corpus files or folders (JSONL or Parquet).
    pub eval: Vec<PathBuf>,
    /// Text view compared (PyTorrent records).
    #[serde(default = "default_field")]
    pub field: TextView,
    /// Compare this string field of records of any shape instead (`text`, `code`).
    #[serde(default)]
    pub text_field: Option<String>,
    /// Partitions of the training side (records with no partition always count).
    #[serde(default = "default_train")]
    pub train_partition: Partitions,
    /// Partitions of the evaluation side (records with no partition always count).
    #[serde(default = "default_eval")]
    pub eval_partition: Partitions,
    /// Jaccard similarity of token shingles from which a copy is near.
    #[serde(default = "default_threshold")]
    pub threshold: f64,
    /// Tokens per shingle.
    #[serde(default = "default_shingle")]
    pub shingle: usize,
    /// Leaked evaluation records named in the report.
    #[serde(default = "default_examples")]
    pub examples: usize,
}

impl OverlapConfig {
    pub fn new(train: Vec<PathBuf>, eval: Vec<PathBuf>) -> OverlapConfig {
        OverlapConfig {
            input: InputConfig::new(train),
            eval,
            field: default_field(),
            text_field: None,
            train_partition: default_train(),
            eval_partition: default_eval(),
            threshold: default_threshold(),
            shingle: default_shingle(),
            examples: default_examples(),
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.input.inputs.is_empty() || self.eval.is_empty() {
            return Err(Error::Usage(
                "give a training corpus and an evaluation set".into(),
            ));
        }
        if !(self.threshold > 0.0 && self.threshold <= 1.0) {
            return Err(Error::Usage(format!(
                "--threshold {}: give a similarity in (0, 1]",
                self.threshold
            )));
        }
        if self.shingle == 0 {
            return Err(Error::Usage("--shingle must be at least 1".into()));
        }
        Ok(())
    }

    fn source(&self) -> TextSource {
        TextSource::new(self.field, self.text_field.as_deref())
    }
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Leak {
    /// The evaluation record (`package/path:function`, or `file:line` for plain text).
    pub eval: String,
    /// The first training record that holds it.
    pub train: String,
    pub kind: String,
    /// The evaluation record's compared text, cut at [`EXAMPLE_CHARS`] characters.
    #[serde(default)]
    pub text: String,
}

/// Characters of an example's text kept in the report.
pub const EXAMPLE_CHARS: usize = 2000;

#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct Share {
    pub count: u64,
    pub share: f64,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct OverlapReport {
    pub field: String,
    pub eval_records: u64,
    pub train_records: u64,
    /// Evaluation records with an exact copy in the training corpus.
    pub exact: Share,
    /// With a near copy and no exact one.
    pub near: Share,
    /// Exact or near.
    pub leaked: Share,
    pub threshold: f64,
    pub shingle: usize,
    pub examples: Vec<Leak>,
    pub read_eval: ReadSummary,
    pub read_train: ReadSummary,
}

/// Names a record: its function for PyTorrent records, else its file and line.
fn name(rec: &AnyRecord, file: &pytorrent_corpus::InputFile, line: u64) -> String {
    match rec {
        AnyRecord::PyTorrent(r) => format!("{}/{}:{}", r.repo, r.path, r.func_name),
        AnyRecord::Text(_) => format!("{}:{line}", file.path.display()),
    }
}

fn selected(p: Option<Partition>, want: &Partitions) -> bool {
    p.is_none() || want.contains(p)
}

/// Train/test overlap (`eval overlap`).
pub struct Overlap;

impl pytorrent_io::stage::Stage for Overlap {
    type Config = OverlapConfig;
    type Report = OverlapReport;
    type Error = Error;
    const COMMAND: &'static str = "eval overlap";
    const READS: &'static [&'static str] = &["inputs", "eval"];
    const WRITES: &'static [&'static str] = &["quarantine"];

    fn run(
        config: &OverlapConfig,
        reporter: &dyn pytorrent_io::Reporter,
    ) -> Result<OverlapReport, Error> {
        run(config, reporter)
    }
}

pub fn run(cfg: &OverlapConfig, reporter: &dyn Reporter) -> Result<OverlapReport> {
    cfg.validate()?;
    let source = cfg.source();
    let schema = source.schema();
    let mut index = Deduper::new(DedupOptions {
        exact: true,
        near_threshold: Some(cfg.threshold),
        shingle: cfg.shingle,
    });
    // Evaluation records that are copies of earlier ones share their entry's fate.
    let mut eval_names: Vec<String> = Vec::new();
    let mut entry_of: Vec<u32> = Vec::new();
    let eval_input = InputConfig {
        inputs: cfg.eval.clone(),
        ..cfg.input.clone()
    };
    reporter.begin("index the evaluation set", Unit::Bytes, None);
    let read_eval = read_records(
        &eval_input.discover()?,
        &eval_input.options(None),
        &schema,
        reporter,
        |file, line, rec| {
            if !selected(rec.partition().or(file.partition), &cfg.eval_partition) {
                return None;
            }
            let text = rec.text(&source)?;
            Some((tokens(&text), name(&rec, file, line.line_no)))
        },
        |item| -> Result<()> {
            match item {
                Item::Record {
                    value: Some((toks, n)),
                    ..
                } => {
                    let entry = match index.find(&toks) {
                        Some((_, e)) => e,
                        None => {
                            index.check(&toks);
                            index.kept() - 1
                        }
                    };
                    entry_of.push(entry);
                    eval_names.push(n);
                }
                Item::Rejected { problem } => reporter.problem(&problem.to_string()),
                _ => {}
            }
            Ok(())
        },
    );
    reporter.end();
    let read_eval = read_eval?;
    // Per index entry: the first training record holding it, and how.
    let mut found: Vec<Option<(Duplicate, String)>> = vec![None; index.kept() as usize];
    let mut train_records = 0u64;
    reporter.begin("stream the training corpus", Unit::Bytes, None);
    let read_train = read_records(
        &cfg.input.discover()?,
        &cfg.input.options(None),
        &schema,
        reporter,
        |file, line, rec| {
            if !selected(rec.partition().or(file.partition), &cfg.train_partition) {
                return None;
            }
            let text = rec.text(&source)?;
            Some(
                index
                    .find(&tokens(&text))
                    .map(|hit| (hit, name(&rec, file, line.line_no))),
            )
        },
        |item| -> Result<()> {
            match item {
                Item::Record {
                    value: Some(hit), ..
                } => {
                    train_records += 1;
                    if let Some(((kind, entry), n)) = hit {
                        let slot = &mut found[entry as usize];
                        // Exact beats near; otherwise the first in input order stays.
                        let better = match slot {
                            None => true,
                            Some((k, _)) => *k == Duplicate::Near && kind == Duplicate::Exact,
                        };
                        if better {
                            *slot = Some((kind, n));
                        }
                    }
                }
                Item::Rejected { problem } => reporter.problem(&problem.to_string()),
                _ => {}
            }
            Ok(())
        },
    );
    reporter.end();
    let read_train = read_train?;
    let eval_records = eval_names.len() as u64;
    if eval_records == 0 {
        return Err(Error::Input(format!(
            "the evaluation set has no records of its {} partition",
            partitions_name(&cfg.eval_partition)
        )));
    }
    let (mut exact, mut near) = (0u64, 0u64);
    let mut examples = Vec::new();
    for (n, &e) in eval_names.iter().zip(&entry_of) {
        if let Some((kind, train)) = &found[e as usize] {
            match kind {
                Duplicate::Exact => exact += 1,
                Duplicate::Near => near += 1,
            }
            if examples.len() < cfg.examples {
                examples.push(Leak {
                    eval: n.clone(),
                    train: train.clone(),
                    kind: if *kind == Duplicate::Exact {
                        "exact"
                    } else {
                        "near"
                    }
                    .into(),
                    text: String::new(),
                });
            }
        }
    }
    // The examples' texts: one more pass over the evaluation set (small beside the training
    // corpus), rather than every evaluation text held for a few examples.
    if !examples.is_empty() {
        let wanted: std::collections::HashMap<String, usize> = examples
            .iter()
            .enumerate()
            .map(|(i, e)| (e.eval.clone(), i))
            .collect();
        let mut texts: Vec<Option<String>> = vec![None; examples.len()];
        read_records(
            &eval_input.discover()?,
            &eval_input.options(None),
            &schema,
            &pytorrent_io::Silent,
            |file, line, rec| {
                if !selected(rec.partition().or(file.partition), &cfg.eval_partition) {
                    return None;
                }
                let i = *wanted.get(&name(&rec, file, line.line_no))?;
                let text = rec.text(&source)?;
                Some((i, text.chars().take(EXAMPLE_CHARS).collect::<String>()))
            },
            |item| -> Result<()> {
                if let Item::Record {
                    value: Some((i, text)),
                    ..
                } = item
                {
                    texts[i].get_or_insert(text);
                }
                Ok(())
            },
        )?;
        for (e, t) in examples.iter_mut().zip(texts) {
            e.text = t.unwrap_or_default();
        }
    }
    let share = |count: u64| Share {
        count,
        share: count as f64 / eval_records as f64,
    };
    Ok(OverlapReport {
        field: source.name(),
        eval_records,
        train_records,
        exact: share(exact),
        near: share(near),
        leaked: share(exact + near),
        threshold: cfg.threshold,
        shingle: cfg.shingle,
        examples,
        read_eval,
        read_train,
    })
}

fn partitions_name(p: &Partitions) -> String {
    match p {
        Partitions::All => "all".into(),
        Partitions::Only(l) => l.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(","),
    }
}

impl std::fmt::Display for OverlapReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "overlap of {} evaluation records with {} training records ({}):",
            self.eval_records, self.train_records, self.field
        )?;
        for (what, s) in [
            ("exact copies", &self.exact),
            ("near copies", &self.near),
            ("leaked", &self.leaked),
        ] {
            writeln!(f, "  {what:<13} {:>8}  {:>7.3}%", s.count, 100.0 * s.share)?;
        }
        writeln!(
            f,
            "  (near: Jaccard ≥ {} of {}-token shingles, by MinHash)",
            self.threshold, self.shingle
        )?;
        for l in &self.examples {
            writeln!(f, "  {} {} ← {}", l.kind, l.eval, l.train)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_ignore_spacing() {
        assert_eq!(
            tokens("def f(x):\n    return x+1"),
            tokens("def f( x ):  return x + 1")
        );
        assert_eq!(tokens("a_b.c"), ["a_b", ".", "c"]);
    }
}
