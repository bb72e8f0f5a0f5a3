//! The reports of the pipeline's two-command stages, typed like every stage's own report:
//! the tokenizer stage (train, then compression per partition) and the cloze stage (make a
//! test set unless one is given, then score the model).

use pytorrent_eval::cloze::{ClozeMakeReport, ClozeReport};
use pytorrent_tokenizer::eval::EvalReport;
use pytorrent_tokenizer::train_corpus::TrainReport;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
pub struct TokenizerReport {
    pub train: TrainReport,
    /// Compression on each partition, in the order train, valid, test.
    pub compression: CompressionByPartition,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct CompressionByPartition {
    pub train: Compression,
    pub valid: Compression,
    pub test: Compression,
}

impl CompressionByPartition {
    pub fn iter(&self) -> [(&'static str, &Compression); 3] {
        [
            ("train", &self.train),
            ("valid", &self.valid),
            ("test", &self.test),
        ]
    }
}

/// A partition's compression, or why there was none to measure.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Compression {
    /// A small corpus can leave a partition empty.
    Skipped {
        texts: u64,
        skipped: String,
    },
    Measured(EvalReport),
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ClozeStageReport {
    /// `None` when the pipeline file names a test set (`data`).
    pub make: Option<ClozeMakeReport>,
    pub score: ClozeReport,
}
