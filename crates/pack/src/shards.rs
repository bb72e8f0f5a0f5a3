//! Rows into numbered shards of one folder, rolled over by rows or bytes, each recorded with
//! its checksums once complete.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::megatron::MegatronWriter;
use crate::parquet_shards::ParquetShardWriter;
use pytorrent_io::npy::{Dtype, NpyWriter};

pytorrent_io::word_enum! {
    "format";
    /// On-disk layout of the shards.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum Format {
        /// `shard-NNNNN.npy` `[rows, seq_len]`, with sibling `attention_mask-NNNNN.npy` and
        /// `labels-NNNNN.npy` when present.
        #[default]
        Npy = "npy",
        /// `shard-NNNNN.bin` + `shard-NNNNN.idx`, one sequence per row, padding left out.
        Megatron = "megatron",
        /// `shard-NNNNN.parquet`: columns `input_ids`, `attention_mask`, `labels` (lists).
        Parquet = "parquet",
    }
}

/// A companion file of a shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    pub file: String,
    pub sha256: String,
}

/// A complete shard as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    pub file: String,
    pub rows: usize,
    /// Tokens that are not padding.
    pub tokens: u64,
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention_mask: Option<FileRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<FileRef>,
    /// The Megatron `.idx` of a `.bin` shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<FileRef>,
}

/// One output row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub ids: Vec<u32>,
    pub attention: Vec<u8>,
    pub labels: Option<Vec<i32>>,
}

impl Row {
    fn real_len(&self) -> usize {
        self.attention.iter().filter(|a| **a == 1).count()
    }
}

/// What goes into each shard.
#[derive(Debug, Clone)]
pub struct ShardLayout {
    pub format: Format,
    pub dtype: Dtype,
    pub seq_len: usize,
    /// Write `attention_mask-*.npy` (rows may hold padding).
    pub attention_mask: bool,
    /// Write `labels-*.npy` (static masking).
    pub labels: bool,
    pub max_rows: usize,
    pub max_bytes: Option<u64>,
}

enum Open {
    Npy {
        ids: NpyWriter,
        mask: Option<NpyWriter>,
        labels: Option<NpyWriter>,
    },
    Megatron(MegatronWriter),
    Parquet(ParquetShardWriter),
}

pub struct ShardWriter {
    dir: PathBuf,
    layout: ShardLayout,
    open: Option<Open>,
    tokens: u64,
    pub shards: Vec<ShardInfo>,
}

fn name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn file_ref(p: &Path) -> Result<FileRef> {
    Ok(FileRef {
        file: name(p),
        sha256: pytorrent_io::sha256_file(p)?,
    })
}

impl ShardWriter {
    /// Whether any row has been written (or was, before a resume).
    pub fn wrote_any(&self) -> bool {
        self.tokens > 0 || !self.shards.is_empty()
    }

    /// A writer whose next shard is numbered after `done`.
    pub fn new(dir: &Path, layout: ShardLayout, done: Vec<ShardInfo>) -> ShardWriter {
        ShardWriter {
            dir: dir.to_path_buf(),
            layout,
            open: None,
            tokens: 0,
            shards: done,
        }
    }

    fn start(&mut self) -> Result<Open> {
        let n = self.shards.len();
        let l = &self.layout;
        let npy = |stem: &str, dtype| {
            NpyWriter::create(
                &self.dir.join(format!("{stem}-{n:05}.npy")),
                dtype,
                l.seq_len,
            )
        };
        Ok(match l.format {
            Format::Npy => Open::Npy {
                ids: npy("shard", l.dtype)?,
                mask: l
                    .attention_mask
                    .then(|| npy("attention_mask", Dtype::Uint8))
                    .transpose()?,
                labels: l.labels.then(|| npy("labels", Dtype::Int32)).transpose()?,
            },
            Format::Megatron => Open::Megatron(MegatronWriter::create(
                &self.dir.join(format!("shard-{n:05}")),
                l.dtype,
            )?),
            Format::Parquet => Open::Parquet(ParquetShardWriter::create(
                &self.dir.join(format!("shard-{n:05}.parquet")),
                crate::parquet_shards::schema(l.dtype, l.attention_mask, l.labels),
            )?),
        })
    }

    /// Appends a row; returns true when it completed a shard.
    pub fn push(&mut self, row: &Row) -> Result<bool> {
        if self.open.is_none() {
            self.open = Some(self.start()?);
        }
        let real = row.real_len();
        self.tokens += real as u64;
        let (rows, bytes) = match self.open.as_mut().expect("opened above") {
            Open::Npy { ids, mask, labels } => {
                ids.push_row(&row.ids)?;
                if let Some(m) = mask {
                    let a: Vec<u32> = row.attention.iter().map(|v| *v as u32).collect();
                    m.push_row(&a)?;
                }
                if let Some(l) = labels {
                    let values: Vec<u32> = row
                        .labels
                        .as_ref()
                        .expect("labels with static masking")
                        .iter()
                        .map(|v| *v as u32)
                        .collect();
                    l.push_row(&values)?;
                }
                (ids.rows(), ids.data_bytes())
            }
            Open::Megatron(w) => {
                w.push(&row.ids[..real])?;
                (w.rows(), w.bytes())
            }
            Open::Parquet(w) => {
                w.push(row, self.layout.dtype.size())?;
                (w.rows(), w.bytes())
            }
        };
        if rows >= self.layout.max_rows || self.layout.max_bytes.is_some_and(|m| bytes >= m) {
            self.close()?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Completes the open shard, if any; returns true when there was one.
    pub fn close(&mut self) -> Result<bool> {
        let Some(open) = self.open.take() else {
            return Ok(false);
        };
        let tokens = std::mem::take(&mut self.tokens);
        let info = match open {
            Open::Npy { ids, mask, labels } => {
                let rows = ids.rows();
                let path = ids.finish()?;
                let finish = |w: Option<NpyWriter>| -> Result<Option<FileRef>> {
                    w.map(|w| file_ref(&w.finish()?)).transpose()
                };
                ShardInfo {
                    file: name(&path),
                    rows,
                    tokens,
                    sha256: pytorrent_io::sha256_file(&path)?,
                    attention_mask: finish(mask)?,
                    labels: finish(labels)?,
                    index: None,
                }
            }
            Open::Megatron(w) => {
                let rows = w.rows();
                let (bin, idx) = w.finish()?;
                ShardInfo {
                    file: name(&bin),
                    rows,
                    tokens,
                    sha256: pytorrent_io::sha256_file(&bin)?,
                    attention_mask: None,
                    labels: None,
                    index: Some(file_ref(&idx)?),
                }
            }
            Open::Parquet(w) => {
                let rows = w.rows();
                let path = w.finish()?;
                ShardInfo {
                    file: name(&path),
                    rows,
                    tokens,
                    sha256: pytorrent_io::sha256_file(&path)?,
                    attention_mask: None,
                    labels: None,
                    index: None,
                }
            }
        };
        self.shards.push(info);
        Ok(true)
    }
}

/// Files this tool writes into a shard folder (and may remove before a fresh run).
pub fn is_ours(file_name: &str) -> bool {
    let stem_ok = ["shard-", "attention_mask-", "labels-"]
        .iter()
        .any(|p| file_name.starts_with(p));
    let ext_ok = [".npy", ".bin", ".idx", ".parquet"]
        .iter()
        .any(|e| file_name.ends_with(e));
    (stem_ok && ext_ok)
        || file_name == "manifest.json"
        || file_name == crate::manifest::STATE_FILE
        || (file_name.starts_with('.') && file_name.ends_with(".tmp"))
}
