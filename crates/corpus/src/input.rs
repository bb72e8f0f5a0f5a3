//! The keys every stage that reads a corpus shares: its inputs and what to do with bad lines.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::read::{OnError, ReadOptions};
use crate::source::{discover, InputFile};

/// Corpus inputs and the bad-line policy (`inputs`, `on_error`, `quarantine`,
/// `max_line_bytes`, `read_chunk_bytes`), flattened into each stage's config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct InputConfig {
    /// Corpus files (.jsonl, .jsonl.gz, .jsonl.zst, .parquet), folders (PyTorrent or
    /// CodeSearchNet layout, Parquet datasets), or - for standard input.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(required = true))]
    pub inputs: Vec<PathBuf>,
    /// What to do with a bad line: stop (fail: exit 1) or skip it into the quarantine file.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long, default_value = "fail"))]
    pub on_error: OnError,
    /// Where skipped lines go, verbatim, with file, line and reason (TSV). Default:
    /// `<out>.rejected.tsv`; commands without an output write none unless given this.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub quarantine: Option<PathBuf>,
    /// Lines longer than this many bytes are rejected without being held in memory.
    #[serde(default = "default_max_line_bytes")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = default_max_line_bytes()))]
    pub max_line_bytes: usize,
    /// Bytes of input per parallel work unit (memory is a few times this).
    #[serde(default = "default_read_chunk_bytes")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = default_read_chunk_bytes(), hide = true))]
    pub read_chunk_bytes: usize,
}

fn default_max_line_bytes() -> usize {
    ReadOptions::default().max_line_bytes
}

fn default_read_chunk_bytes() -> usize {
    ReadOptions::default().chunk_bytes
}

impl Default for InputConfig {
    /// No inputs yet; every other key at its default.
    fn default() -> Self {
        InputConfig::new(Vec::new())
    }
}

impl InputConfig {
    /// `inputs` with every other key at its default.
    pub fn new(inputs: Vec<PathBuf>) -> InputConfig {
        InputConfig {
            inputs,
            on_error: OnError::Fail,
            quarantine: None,
            max_line_bytes: default_max_line_bytes(),
            read_chunk_bytes: default_read_chunk_bytes(),
        }
    }

    /// The corpus files of the inputs, in a stable order.
    pub fn discover(&self) -> Result<Vec<InputFile>> {
        discover(&self.inputs)
    }

    /// Reader options; a `skip` policy quarantines beside `out` (unless `quarantine` says
    /// where), and a command without a file output writes no quarantine it was not asked for.
    pub fn options(&self, out: Option<&Path>) -> ReadOptions {
        let quarantine = match self.on_error {
            OnError::Fail => None,
            OnError::Skip => self.quarantine.clone().or_else(|| match out {
                Some(o) if o != Path::new("-") => {
                    let mut s = o.as_os_str().to_owned();
                    s.push(".rejected.tsv");
                    Some(PathBuf::from(s))
                }
                _ => None,
            }),
        };
        ReadOptions {
            on_error: self.on_error,
            max_line_bytes: self.max_line_bytes,
            chunk_bytes: self.read_chunk_bytes,
            quarantine,
        }
    }
}
