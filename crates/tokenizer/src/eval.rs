//! `tokenizer eval`: bytes per token and tokens per record of one text view, for one
//! tokenizer or several side by side.

use pytorrent_corpus::texts::with_texts;
use pytorrent_corpus::{
    InputConfig, Partition, PartitionRule, Partitions, ReadSummary, TextSource, TextView,
};
use pytorrent_io::{Reporter, Unit};
use serde::{Deserialize, Serialize};

use crate::{Encoder, Error, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct EvalConfig {
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub input: InputConfig,
    /// Tokenizer: tokenizer.json, a folder, or a model id in the local Hugging Face cache.
    #[cfg_attr(feature = "cli", arg(long))]
    pub tokenizer: String,
    /// A second tokenizer to compare with.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub compare: Option<String>,
    /// Text view of PyTorrent records to measure: code, docstring, summary,
    /// code_with_docstrings, original_string, nl+code.
    #[serde(default = "default_field")]
    #[cfg_attr(feature = "cli", arg(long, default_value = "code"))]
    pub field: TextView,
    /// Measure this string field of records of any shape instead (e.g. text, content), as HF
    /// hub datasets and datatrove write them.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long, value_name = "NAME"))]
    pub text_field: Option<String>,
    /// Partitions to measure: train, valid, test (comma-separated) or all.
    #[serde(default = "default_partition")]
    #[cfg_attr(feature = "cli", arg(long, default_value = "test"))]
    pub partition: Partitions,
    /// The partition of records that name none (as `tokenizer train` and `pack` take it).
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub rule: PartitionRule,
}

fn default_field() -> TextView {
    TextView::Code
}
fn default_partition() -> Partitions {
    Partitions::only(Partition::Test)
}

impl EvalConfig {
    fn source(&self) -> TextSource {
        TextSource::new(self.field, self.text_field.as_deref())
    }

    pub fn new(input: InputConfig, tokenizer: String) -> EvalConfig {
        EvalConfig {
            input,
            tokenizer,
            compare: None,
            field: default_field(),
            text_field: None,
            partition: default_partition(),
            rule: PartitionRule::default(),
        }
    }
}

#[derive(Debug, Serialize, serde::Deserialize, Default, Clone)]
pub struct EvalResult {
    pub tokenizer: String,
    pub texts: u64,
    pub bytes: u64,
    pub tokens: u64,
    pub bytes_per_token: f64,
    pub tokens_per_record: f64,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct EvalReport {
    pub field: String,
    pub partition: Partitions,
    pub results: Vec<EvalResult>,
    pub read: ReadSummary,
}

fn count_batch(
    encoders: &[Box<dyn Encoder + '_>],
    batch: &mut Vec<String>,
    results: &mut [EvalResult],
) -> Result<()> {
    let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
    let bytes: u64 = refs.iter().map(|t| t.len() as u64).sum();
    for (enc, r) in encoders.iter().zip(results.iter_mut()) {
        let ids = enc.encode_batch(&refs, false)?;
        r.texts += refs.len() as u64;
        r.bytes += bytes;
        r.tokens += ids.iter().map(|v| v.len() as u64).sum::<u64>();
    }
    batch.clear();
    Ok(())
}

/// A tokenizer's compression (`tokenizer eval`).
pub struct Eval;

impl pytorrent_io::stage::Stage for Eval {
    type Config = EvalConfig;
    type Report = EvalReport;
    type Error = Error;
    const COMMAND: &'static str = "tokenizer eval";
    const READS: &'static [&'static str] = &["inputs"];
    const READS_OR_ID: &'static [&'static str] = &["tokenizer", "compare"];
    const WRITES: &'static [&'static str] = &["quarantine"];

    fn run(
        config: &EvalConfig,
        reporter: &dyn pytorrent_io::Reporter,
    ) -> Result<EvalReport, Error> {
        run(config, reporter)
    }
}

pub fn run(cfg: &EvalConfig, reporter: &dyn Reporter) -> Result<EvalReport> {
    cfg.rule.validate().map_err(Error::Usage)?;
    let mut names = vec![cfg.tokenizer.clone()];
    names.extend(cfg.compare.clone());
    let toks = names
        .iter()
        .map(|n| Ok(crate::load(n)?.tokenizer))
        .collect::<Result<Vec<_>>>()?;
    let encoders: Vec<Box<dyn Encoder + '_>> = toks.iter().map(crate::encoder).collect();
    let mut results: Vec<EvalResult> = names
        .iter()
        .map(|n| EvalResult {
            tokenizer: n.clone(),
            ..Default::default()
        })
        .collect();
    let files = cfg.input.discover()?;
    reporter.begin("eval", Unit::Bytes, None);
    let streamed = with_texts(
        &files,
        &cfg.input.options(None),
        &cfg.source(),
        &cfg.partition,
        &cfg.rule,
        reporter,
        |stream| -> Result<()> {
            let mut batch: Vec<String> = Vec::new();
            for (_, t) in stream {
                batch.push(t);
                if batch.len() == 1024 {
                    count_batch(&encoders, &mut batch, &mut results)?;
                }
            }
            count_batch(&encoders, &mut batch, &mut results)
        },
    );
    reporter.end();
    let (counted, read, counts) = streamed?;
    counted?;
    if counts.texts == 0 {
        return Err(Error::NoTexts(
            counts.why_none(&cfg.source(), &cfg.partition),
        ));
    }
    for r in &mut results {
        r.bytes_per_token = (r.bytes as f64 / r.tokens.max(1) as f64 * 1000.0).round() / 1000.0;
        r.tokens_per_record = (r.tokens as f64 / r.texts.max(1) as f64 * 100.0).round() / 100.0;
    }
    Ok(EvalReport {
        field: cfg.source().name(),
        partition: cfg.partition.clone(),
        results,
        read,
    })
}

impl std::fmt::Display for EvalReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{:<40} {:>8} {:>12} {:>10} {:>12} {:>14}",
            "tokenizer", "texts", "bytes", "tokens", "bytes/token", "tokens/record"
        )?;
        for r in &self.results {
            writeln!(
                f,
                "{:<40} {:>8} {:>12} {:>10} {:>12.3} {:>14.2}",
                r.tokenizer, r.texts, r.bytes, r.tokens, r.bytes_per_token, r.tokens_per_record
            )?;
        }
        Ok(())
    }
}
