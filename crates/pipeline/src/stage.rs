//! The stages of a pipeline, in the order they run.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    Fetch,
    Extract,
    Stats,
    Tokenizer,
    Pack,
    Pretrain,
    FillMask,
    Cloze,
    Retrieval,
    Overlap,
}

impl Stage {
    pub const ALL: [Stage; 10] = [
        Stage::Fetch,
        Stage::Extract,
        Stage::Stats,
        Stage::Tokenizer,
        Stage::Pack,
        Stage::Pretrain,
        Stage::FillMask,
        Stage::Cloze,
        Stage::Retrieval,
        Stage::Overlap,
    ];

    /// The name used on the command line, in stamps and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Fetch => "fetch",
            Stage::Extract => "extract",
            Stage::Stats => "stats",
            Stage::Tokenizer => "tokenizer",
            Stage::Pack => "pack",
            Stage::Pretrain => "pretrain",
            Stage::FillMask => "fill_mask",
            Stage::Cloze => "cloze",
            Stage::Retrieval => "retrieval",
            Stage::Overlap => "overlap",
        }
    }

    /// Where the stage's settings sit in the pipeline file.
    pub fn section(self) -> &'static str {
        match self {
            Stage::FillMask => "eval.fill_mask",
            Stage::Cloze => "eval.cloze",
            Stage::Retrieval => "eval.retrieval",
            Stage::Overlap => "eval.overlap",
            s => s.name(),
        }
    }

    /// The folder of the stage's output under the run folder, for stages that write one.
    pub fn output_dir(self) -> Option<&'static str> {
        match self {
            Stage::Fetch => Some("fetch"),
            Stage::Extract => Some("corpus"),
            Stage::Tokenizer => Some("tokenizer"),
            Stage::Pack => Some("shards"),
            Stage::Pretrain => Some("model"),
            Stage::Cloze => Some("cloze"),
            _ => None,
        }
    }

    /// Stages that continue an interrupted run in place rather than starting over.
    pub fn resumable(self) -> bool {
        matches!(self, Stage::Fetch | Stage::Pack | Stage::Pretrain)
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Stage {
    type Err = String;

    fn from_str(s: &str) -> Result<Stage, String> {
        let norm = s.trim().replace('-', "_");
        let norm = norm.strip_prefix("eval.").unwrap_or(&norm);
        let norm = match norm {
            "corpus_stats" => "stats",
            "tokenizer_train" => "tokenizer",
            other => other,
        };
        Stage::ALL
            .into_iter()
            .find(|st| st.name() == norm)
            .ok_or_else(|| {
                let names: Vec<&str> = Stage::ALL.iter().map(|s| s.name()).collect();
                format!("unknown stage {s:?}: one of {}", names.join(", "))
            })
    }
}
