//! What a run leaves behind about each stage: `<out>/stages/<stage>.json`, written after the
//! stage succeeded (its fingerprint, settings, inputs, time and report), and
//! `<stage>.pending.json`, written before a resumable stage starts (so an interrupted run
//! with the same fingerprint continues it rather than starting over).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::stage::Stage;
use crate::Result;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stamp {
    pub stage: String,
    pub fingerprint: String,
    pub tool: String,
    /// The stage's config as it ran (paths absolute).
    pub settings: serde_json::Value,
    /// Digests of the inputs the user named, by path.
    pub inputs: BTreeMap<String, String>,
    /// Fingerprints of the stages it read from, by stage.
    pub upstream: BTreeMap<String, String>,
    /// The stage's output folder, if it writes one.
    pub output: Option<PathBuf>,
    /// When it finished (UTC) and how long it ran.
    pub finished: String,
    pub seconds: f64,
    /// The stage's own report, as its `--json` prints it.
    pub report: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub fingerprint: String,
}

pub fn stages_dir(out: &Path) -> PathBuf {
    out.join("stages")
}

/// The mark of a run folder `pytorrent run` made: only such a folder (or an empty one) is
/// written into, so that a mistyped `out` never has its contents replaced.
pub const RUN_MARK: &str = ".pytorrent-run";

/// Makes `out` this pipeline's run folder, or says why it cannot be: a folder that holds
/// anything and has no [`RUN_MARK`] is someone else's. (Run folders of versions before the
/// mark hold `stages/.lock`: they are marked now.)
pub fn claim_run_folder(out: &Path) -> Result<()> {
    let mark = out.join(RUN_MARK);
    if mark.is_file() {
        return Ok(());
    }
    let earlier_run = stages_dir(out).join(".lock").is_file();
    let held = pytorrent_io::owner::names(out);
    if !held.is_empty() && !earlier_run {
        return Err(crate::Error::Usage(format!(
            "{} is not empty and no `pytorrent run` made it (it holds {}): give a new or empty \
             folder as [pipeline] out or --out; a run replaces what it writes there",
            out.display(),
            pytorrent_io::owner::listing(&held)
        )));
    }
    std::fs::create_dir_all(out).map_err(|e| pytorrent_io::Error::io(out, e))?;
    pytorrent_io::atomic::write_atomic(
        &mark,
        b"a pytorrent run folder: `pytorrent run` replaces the stage folders it wrote here\n",
    )?;
    Ok(())
}

/// Whether the stage's output was written by this pipeline: its stamp, or the record of a
/// run of it that had started, is there.
pub fn written_by_pipeline(out: &Path, stage: Stage) -> bool {
    stamp_path(out, stage).is_file() || pending_path(out, stage).is_file()
}

fn stamp_path(out: &Path, stage: Stage) -> PathBuf {
    stages_dir(out).join(format!("{}.json", stage.name()))
}

fn pending_path(out: &Path, stage: Stage) -> PathBuf {
    stages_dir(out).join(format!("{}.pending.json", stage.name()))
}

/// The stamp of the stage's last successful run; none if there is none or it is unreadable
/// (an unreadable stamp only means the stage runs again).
pub fn read_stamp(out: &Path, stage: Stage) -> Option<Stamp> {
    let bytes = std::fs::read(stamp_path(out, stage)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

pub fn write_stamp(out: &Path, stage: Stage, stamp: &Stamp) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(stamp).expect("plain JSON");
    pytorrent_io::atomic::write_atomic(stamp_path(out, stage), &bytes)?;
    let _ = std::fs::remove_file(pending_path(out, stage));
    Ok(())
}

/// Forgets a stage's last run before it runs again: an interrupted re-run must not leave the
/// old stamp claiming the half-written output is up to date.
pub fn clear_stamp(out: &Path, stage: Stage) -> Result<()> {
    let p = stamp_path(out, stage);
    match std::fs::remove_file(&p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(pytorrent_io::Error::io(&p, e).into()),
    }
}

pub fn read_pending(out: &Path, stage: Stage) -> Option<Pending> {
    let bytes = std::fs::read(pending_path(out, stage)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

pub fn write_pending(out: &Path, stage: Stage, fingerprint: &str) -> Result<()> {
    let bytes = serde_json::to_vec(&Pending {
        fingerprint: fingerprint.to_string(),
    })
    .expect("plain JSON");
    pytorrent_io::atomic::write_atomic(pending_path(out, stage), &bytes)?;
    Ok(())
}
