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
    Finetune,
    FillMask,
    Cloze,
    Retrieval,
    Overlap,
}

impl Stage {
    pub const ALL: [Stage; 11] = [
        Stage::Fetch,
        Stage::Extract,
        Stage::Stats,
        Stage::Tokenizer,
        Stage::Pack,
        Stage::Pretrain,
        Stage::Finetune,
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
            Stage::Finetune => "finetune",
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
            Stage::Finetune => Some("retrieval-model"),
            Stage::Cloze => Some("cloze"),
            _ => None,
        }
    }

    /// What the stage's `Stage` impl says of it: whether it resumes in place, the settings
    /// left out of its fingerprint, and the config keys that name paths. The cloze stage's
    /// table holds the keys of both its commands; the tokenizer stage's those of training.
    pub fn traits(self) -> StageTraits {
        use pytorrent_eval::{cloze, fill_mask, overlap, retrieval};
        fn of<S: pytorrent_io::stage::Stage>() -> StageTraits {
            StageTraits {
                resumes: S::RESUMES,
                unhashed: S::UNHASHED,
                paths: PathKeys {
                    reads: S::READS.to_vec(),
                    reads_or_id: S::READS_OR_ID.to_vec(),
                    writes: S::WRITES.to_vec(),
                },
            }
        }
        match self {
            Stage::Fetch => of::<pytorrent_fetch::Fetch>(),
            Stage::Extract => of::<pytorrent_extract::Extract>(),
            Stage::Stats => of::<pytorrent_corpus::stats::Stats>(),
            Stage::Tokenizer => of::<pytorrent_tokenizer::train_corpus::Train>(),
            Stage::Pack => of::<pytorrent_pack::Pack>(),
            Stage::Pretrain => of::<pytorrent_pretrain::Pretrain>(),
            Stage::Finetune => of::<pytorrent_finetune::Finetune>(),
            Stage::FillMask => of::<fill_mask::FillMaskEval>(),
            Stage::Cloze => {
                let mut t = of::<cloze::ClozeMake>();
                let score = of::<cloze::Cloze>().paths;
                t.paths.reads.extend(score.reads);
                t.paths.reads_or_id.extend(score.reads_or_id);
                t.paths.writes.extend(score.writes);
                t
            }
            Stage::Retrieval => of::<retrieval::Retrieval>(),
            Stage::Overlap => of::<overlap::Overlap>(),
        }
    }

    /// Stages that continue an interrupted run in place rather than starting over.
    pub fn resumable(self) -> bool {
        self.traits().resumes
    }
}

/// What the pipeline reads of a stage's `Stage` impl.
#[derive(Debug, Clone)]
pub struct StageTraits {
    pub resumes: bool,
    /// Settings left out of the fingerprint ([`pytorrent_io::stage::Stage::UNHASHED`]).
    pub unhashed: &'static [&'static str],
    pub paths: PathKeys,
}

/// Which of a stage's config keys name paths (see [`pytorrent_io::stage::Stage::READS`]).
#[derive(Debug, Clone, Default)]
pub struct PathKeys {
    pub reads: Vec<&'static str>,
    pub reads_or_id: Vec<&'static str>,
    pub writes: Vec<&'static str>,
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
