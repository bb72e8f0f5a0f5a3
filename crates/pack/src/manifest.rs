//! What a packed folder says about itself: `manifest.json` of each partition (written last: a
//! folder with a manifest is complete), the resume state of an unfinished one, and the
//! `COMPLETE.json` of a finished task.
//!
//! The manifest carries a format version. A folder of another version is refused by
//! `--resume`, `shards merge`, `verify` and `inspect` with a message saying so, rather than
//! read wrongly.

use std::path::Path;

use pytorrent_io::npy::Dtype;
use pytorrent_io::Tasks;
use pytorrent_tokenizer::TokenizerInfo;
use serde::{Deserialize, Serialize};

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::shards::ShardInfo;

/// The manifest format this build writes and reads. Version 1 (no `format_version` key)
/// spelled the settings differently (`shuffle`, a `masking` object) and fingerprinted the
/// tokenizer's path.
pub const FORMAT_VERSION: u32 = 2;

/// Resume state of an unfinished partition folder.
pub const STATE_FILE: &str = ".pack-state.json";
/// Written into a task's folder when all its partitions are complete.
pub const COMPLETE_FILE: &str = "COMPLETE.json";

/// One input file as the manifest lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InputRef {
    pub path: String,
    pub bytes: Option<u64>,
    pub sha256: Option<String>,
}

/// `manifest.json` of one partition folder.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub tool: String,
    pub format_version: u32,
    pub partition: String,
    pub tokenizer: TokenizerInfo,
    #[serde(flatten)]
    pub settings: Settings,
    /// The id type of the shards (the smallest that holds the vocabulary).
    pub dtype: Dtype,
    pub num_tasks: usize,
    /// sha256 of the format version, the settings, the task count, the tokenizer's content
    /// and the input list: equal for every task of a run, checked by `--resume` and
    /// `shards merge`.
    pub fingerprint: String,
    /// This task (absent for a single-task run and after a merge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<Tasks>,
    pub inputs: Vec<InputRef>,
    pub records: u64,
    /// Records of this partition that lack the text view (not packed, counted).
    pub missing_field: u64,
    pub dropped_tokens: u64,
    pub rows: u64,
    pub tokens: u64,
    pub shards: Vec<ShardInfo>,
}

impl Manifest {
    /// Reads a manifest, refusing other format versions with a message that says what to do.
    pub fn read(path: &Path) -> Result<Manifest> {
        let v: serde_json::Value = read_json(path)?;
        let version = v.get("format_version").and_then(serde_json::Value::as_u64);
        if version != Some(FORMAT_VERSION as u64) {
            return Err(Error::data(
                path,
                format!(
                    "manifest format {} is not this build's format {FORMAT_VERSION}: it was \
                     written by {}; pack the corpus again with this build",
                    version.unwrap_or(1),
                    v.get("tool")
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or("another version of pytorrent")
                ),
            ));
        }
        let m: Manifest =
            serde_json::from_value(v).map_err(|e| Error::data(path, format!("not valid: {e}")))?;
        // Manifests come from other jobs and machines: a file name that is a path could make
        // verify, pretrain or inspect read outside the folder, and merge write outside it.
        for s in &m.shards {
            let companions = [&s.attention_mask, &s.labels, &s.index];
            let names =
                std::iter::once(&s.file).chain(companions.into_iter().flatten().map(|f| &f.file));
            for name in names {
                if !pytorrent_io::plain_file_name(name) {
                    return Err(Error::data(
                        path,
                        format!("shard file name {name:?} is not a plain file name in the folder"),
                    ));
                }
            }
        }
        Ok(m)
    }
}

/// JSON of our own small files.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| pytorrent_io::Error::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::data(path, format!("not valid: {e}")))
}

pub(crate) fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("serialisable");
    bytes.push(b'\n');
    pytorrent_io::atomic::write_atomic(path, &bytes)?;
    Ok(())
}
