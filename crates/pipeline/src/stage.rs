//! The stages of a pipeline, in the order they run.

use std::fmt;
use std::str::FromStr;

use pytorrent_io::stage::Stage as _;

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
        match self {
            Stage::Fetch => pytorrent_fetch::Fetch::RESUMES,
            Stage::Extract => pytorrent_extract::Extract::RESUMES,
            Stage::Stats => pytorrent_corpus::stats::Stats::RESUMES,
            Stage::Tokenizer => pytorrent_tokenizer::train_corpus::Train::RESUMES,
            Stage::Pack => pytorrent_pack::Pack::RESUMES,
            Stage::Pretrain => pytorrent_pretrain::Pretrain::RESUMES,
            Stage::FillMask => pytorrent_eval::fill_mask::FillMaskEval::RESUMES,
            Stage::Cloze => pytorrent_eval::cloze::ClozeMake::RESUMES,
            Stage::Retrieval => pytorrent_eval::retrieval::Retrieval::RESUMES,
            Stage::Overlap => pytorrent_eval::overlap::Overlap::RESUMES,
        }
    }

    /// The config keys that name paths, as the stage's `Stage` impl lists them (the cloze
    /// stage's table holds the keys of both its commands).
    pub fn path_keys(self) -> PathKeys {
        fn of<S: pytorrent_io::stage::Stage>() -> PathKeys {
            PathKeys {
                reads: S::READS.to_vec(),
                reads_or_id: S::READS_OR_ID.to_vec(),
                writes: S::WRITES.to_vec(),
            }
        }
        match self {
            Stage::Fetch => of::<pytorrent_fetch::Fetch>(),
            Stage::Extract => of::<pytorrent_extract::Extract>(),
            Stage::Stats => of::<pytorrent_corpus::stats::Stats>(),
            Stage::Tokenizer => of::<pytorrent_tokenizer::train_corpus::Train>(),
            Stage::Pack => of::<pytorrent_pack::Pack>(),
            Stage::Pretrain => of::<pytorrent_pretrain::Pretrain>(),
            Stage::FillMask => of::<pytorrent_eval::fill_mask::FillMaskEval>(),
            Stage::Cloze => {
                let mut k = of::<pytorrent_eval::cloze::ClozeMake>();
                let score = of::<pytorrent_eval::cloze::Cloze>();
                k.reads.extend(score.reads);
                k.reads_or_id.extend(score.reads_or_id);
                k.writes.extend(score.writes);
                k
            }
            Stage::Retrieval => of::<pytorrent_eval::retrieval::Retrieval>(),
            Stage::Overlap => of::<pytorrent_eval::overlap::Overlap>(),
        }
    }

    /// The settings left out of the stage's fingerprint (see
    /// [`pytorrent_io::stage::Stage::UNHASHED`]). The tokenizer and cloze stages run two
    /// commands each, both with every setting hashed.
    pub fn unhashed(self) -> &'static [&'static str] {
        match self {
            Stage::Fetch => pytorrent_fetch::Fetch::UNHASHED,
            Stage::Extract => pytorrent_extract::Extract::UNHASHED,
            Stage::Stats => pytorrent_corpus::stats::Stats::UNHASHED,
            Stage::Tokenizer => pytorrent_tokenizer::train_corpus::Train::UNHASHED,
            Stage::Pack => pytorrent_pack::Pack::UNHASHED,
            Stage::Pretrain => pytorrent_pretrain::Pretrain::UNHASHED,
            Stage::FillMask => pytorrent_eval::fill_mask::FillMaskEval::UNHASHED,
            Stage::Cloze => pytorrent_eval::cloze::ClozeMake::UNHASHED,
            Stage::Retrieval => pytorrent_eval::retrieval::Retrieval::UNHASHED,
            Stage::Overlap => pytorrent_eval::overlap::Overlap::UNHASHED,
        }
    }
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
