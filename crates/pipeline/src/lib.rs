//! `pytorrent run CONFIG.toml`: the whole pipeline — fetch, extract, corpus statistics,
//! tokenizer, pack, pretrain, and the model checks — as one reproducible command.
//!
//! Each section of the file is a stage's own typed config (the keys of its command's flags);
//! this crate only fills in where one stage's output feeds the next, decides which stages are
//! up to date, calls the stages' `run` functions, and writes one HTML report. Nothing of a
//! stage is re-implemented here.
//!
//! A stage is up to date when its fingerprint — the sha256 of the tool version, its settings,
//! the content of its own inputs and the fingerprints of the stages it reads from — matches
//! the one its last successful run recorded in `<out>/stages/<stage>.json`. A changed setting
//! thus re-runs that stage and everything downstream of it, and nothing else.

pub mod config;
pub mod fingerprint;
pub mod headlines;
pub mod html;
pub mod plan;
pub mod reports;
pub mod runner;
pub mod stage;
pub mod state;

pub use config::PipelineFile;
pub use runner::{run, RunOptions, RunReport, StageOutcome};
pub use stage::Stage;

use pytorrent_io::{Classify, ErrorKind};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad pipeline file or selection: exit code 2.
    #[error("{0}")]
    Usage(String),
    /// A stage failed; its own error kind decides the exit code.
    #[error("stage {stage}: {message}")]
    Stage {
        stage: Stage,
        kind: ErrorKind,
        message: String,
    },
    #[error(transparent)]
    Io(#[from] pytorrent_io::Error),
}

impl Error {
    /// Wraps a stage's own error, keeping its kind (usage or data).
    pub fn stage<E: Classify + std::fmt::Display + ?Sized>(stage: Stage, e: &E) -> Error {
        Error::Stage {
            stage,
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

impl Classify for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::Usage(_) => ErrorKind::Usage,
            Error::Stage { kind, .. } => *kind,
            Error::Io(e) => e.kind(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
