//! One trait for every stage, implemented beside its `run` in the stage's crate: what a
//! caller that runs stages generically (the pipeline runner, its report) needs to know,
//! typed, instead of knowing each stage by name.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Classify, Reporter};

pub trait Stage {
    /// The stage's settings; its keys are the command's flags and the pipeline file's keys.
    type Config: Serialize + DeserializeOwned + Clone;
    /// What `run` returns, `--json` prints and the pipeline keeps with the stage's stamp; read
    /// back typed, so a renamed field is an error rather than a silent default.
    type Report: Serialize + DeserializeOwned;
    type Error: Classify + std::fmt::Display;

    /// The command that runs the stage (`corpus stats`, `eval cloze make`).
    const COMMAND: &'static str;

    /// Settings that decide how the output is reached and never what it is (resuming, a
    /// planned stop, download threads, rates and retries): left out of the fingerprint, so
    /// that changing one continues a run instead of starting it over.
    const UNHASHED: &'static [&'static str] = &[];

    /// Config keys naming files or folders the stage reads: a pipeline file's relative paths
    /// there are taken from the file's folder, and their content enters the fingerprint.
    const READS: &'static [&'static str] = &[];

    /// Config keys naming a file or folder when one exists there, else a model or tokenizer
    /// id of the local Hugging Face cache.
    const READS_OR_ID: &'static [&'static str] = &[];

    /// Config keys naming where the stage writes besides its output (a report, a quarantine,
    /// a cache): taken from the file's folder too, never hashed.
    const WRITES: &'static [&'static str] = &[];

    /// Whether an interrupted run continues in place (`--resume`) rather than starting over.
    const RESUMES: bool = false;

    fn run(config: &Self::Config, reporter: &dyn Reporter) -> Result<Self::Report, Self::Error>;

    /// Asks a resumable stage to continue what is in its output folder.
    fn set_resume(_config: &mut Self::Config, _resume: bool) {}

    /// Whether the report is that of a planned stop (training's `stop_after`): the stage is
    /// paused, and the next run continues it.
    fn paused(_report: &Self::Report) -> bool {
        false
    }

    /// Why the stage failed though it ran to the end and its report is written: a check
    /// below its minimum, packages that could not be read or fetched, invalid records or
    /// shards. The command exits 1 (a data error) after printing the report; the pipeline
    /// stamps the stage, runs the rest and exits 1 after writing its report. This is the one
    /// place that decides it.
    fn gate_failure(_report: &Self::Report) -> Option<String> {
        None
    }
}
