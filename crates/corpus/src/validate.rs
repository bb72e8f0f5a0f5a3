//! `corpus validate`: every record checked, every problem reported as `file:line: what`.

use serde::{Deserialize, Serialize};

use pytorrent_io::{Reporter, Unit};

use crate::error::Result;
use crate::input::InputConfig;
use crate::read::{read_corpus, Item, OnError, ReadSummary};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct ValidateConfig {
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub input: InputConfig,
    /// List at most this many problems in --json output (all are counted).
    #[serde(default = "default_max_listed")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = default_max_listed()))]
    pub max_listed: usize,
}

fn default_max_listed() -> usize {
    1000
}

impl ValidateConfig {
    pub fn new(input: InputConfig) -> ValidateConfig {
        ValidateConfig {
            input,
            max_listed: default_max_listed(),
        }
    }

    pub fn validate(&self) -> Result<()> {
        Ok(())
    }
}

/// One problem of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ListedProblem {
    pub file: String,
    pub line: u64,
    pub kind: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ValidateReport {
    pub valid: bool,
    pub summary: ReadSummary,
    /// The first `max_listed` problems.
    pub problems: Vec<ListedProblem>,
}

/// `corpus validate`.
pub struct Validate;

impl pytorrent_io::stage::Stage for Validate {
    type Config = ValidateConfig;
    type Report = ValidateReport;
    type Error = crate::Error;
    const COMMAND: &'static str = "corpus validate";
    const READS: &'static [&'static str] = &["inputs"];
    const WRITES: &'static [&'static str] = &["quarantine"];

    fn run(config: &ValidateConfig, reporter: &dyn Reporter) -> Result<ValidateReport> {
        run(config, reporter)
    }

    fn gate_failure(report: &ValidateReport) -> Option<String> {
        (!report.valid).then(|| {
            format!(
                "{} in the corpus",
                pytorrent_io::reporter::plural(
                    report.summary.rejected.values().sum::<u64>(),
                    "problem",
                    "problems"
                )
            )
        })
    }
}

/// Reads everything, reporting each problem as it is found; a corpus with problems is a
/// finding (`valid: false`), not an error.
pub fn run(cfg: &ValidateConfig, reporter: &dyn Reporter) -> Result<ValidateReport> {
    cfg.validate()?;
    let files = cfg.input.discover()?;
    // Validation reports every problem, so it always reads on past them; the quarantine is
    // written only when asked for.
    let mut opts = cfg.input.options(None);
    opts.on_error = OnError::Skip;
    opts.quarantine = cfg.input.quarantine.clone();
    let mut problems = Vec::new();
    reporter.begin("validate", Unit::Bytes, None);
    let summary = read_corpus(
        &files,
        &opts,
        reporter,
        |_, _, _| (),
        |item| {
            if let Item::Rejected { problem } = item {
                reporter.problem(&problem.to_string());
                if problems.len() < cfg.max_listed {
                    problems.push(ListedProblem {
                        file: problem.path.clone(),
                        line: problem.line,
                        kind: problem.kind.name().to_string(),
                        message: problem.message.clone(),
                    });
                }
            }
            Ok::<(), crate::Error>(())
        },
    );
    reporter.end();
    let summary = summary?;
    Ok(ValidateReport {
        valid: summary.rejected_total() == 0,
        summary,
        problems,
    })
}

impl std::fmt::Display for ValidateReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.summary;
        writeln!(
            f,
            "{}: {}, {}, {}, {}",
            if self.valid { "valid" } else { "INVALID" },
            pytorrent_io::reporter::plural(s.files, "file", "files"),
            pytorrent_io::reporter::plural(s.records, "record", "records"),
            pytorrent_io::reporter::plural(s.blank_lines, "blank line", "blank lines"),
            pytorrent_io::reporter::plural(s.rejected_total(), "problem", "problems"),
        )?;
        for (k, n) in &s.rejected {
            writeln!(f, "  {:<16}{n}", k.name())?;
        }
        Ok(())
    }
}
