//! Reading rows back from a shard folder (npy or Megatron), by their index in the partition.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use std::path::PathBuf;

use pytorrent_io::npy::{decode, Dtype};
use pytorrent_io::Reporter;

use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::megatron::Index;
use crate::shards::Format;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StoredRow {
    /// Index of the row in the partition (over all shards).
    pub row: u64,
    pub shard: String,
    pub ids: Vec<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attention_mask: Option<Vec<u8>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<i32>>,
}

fn io<T>(path: &Path, r: std::io::Result<T>) -> Result<T> {
    r.map_err(|e| pytorrent_io::Error::io(path, e).into())
}

/// Row `row` of a 2-D npy file.
fn npy_row(path: &Path, row: usize) -> Result<Vec<i64>> {
    let mut f = io(path, File::open(path))?;
    // Checked against the file's size: `cols` below sizes a buffer.
    let header = pytorrent_io::npy::read_checked_header(&f, path)?;
    let descr = &header.descr;
    let dtype = Dtype::from_descr(descr)
        .ok_or_else(|| Error::data(path, format!("unexpected dtype {descr}")))?;
    let (rows, cols) = header.two_d().map_err(|m| Error::data(path, m))?;
    let start = header.start as usize;
    if row >= rows {
        return Err(Error::data(path, format!("row {row} of {rows}")));
    }
    let width = dtype.size();
    let mut buf = vec![0u8; cols * width];
    io(
        path,
        f.seek(SeekFrom::Start((start + row * cols * width) as u64)),
    )?;
    io(path, f.read_exact(&mut buf))?;
    Ok(decode(dtype, &buf))
}

/// Rows `start..start + count` (fewer at the end) of a partition folder.
pub fn read_rows(dir: &Path, start: u64, count: u64) -> Result<(Manifest, Vec<StoredRow>)> {
    let manifest = Manifest::read(&dir.join("manifest.json"))?;
    let mut out = Vec::new();
    let mut first = 0u64;
    for s in &manifest.shards {
        let end = first + s.rows as u64;
        let lo = start.max(first);
        let hi = (start + count).min(end);
        if lo < hi && manifest.settings.format == Format::Parquet {
            let path = dir.join(&s.file);
            let (rows, _) =
                crate::parquet_shards::read_rows(&path, (lo - first) as usize, (hi - lo) as usize)?;
            for (k, r) in rows.into_iter().enumerate() {
                out.push(StoredRow {
                    row: lo + k as u64,
                    shard: s.file.clone(),
                    ids: r.ids.iter().map(|v| *v as u32).collect(),
                    attention_mask: r
                        .attention_mask
                        .map(|m| m.iter().map(|v| *v as u8).collect()),
                    labels: r.labels.map(|l| l.iter().map(|v| *v as i32).collect()),
                });
            }
        } else if lo < hi {
            let path = dir.join(&s.file);
            let index = match manifest.settings.format {
                Format::Megatron => {
                    let f = s.index.as_ref().ok_or_else(|| {
                        Error::data(
                            dir.join("manifest.json"),
                            "a Megatron shard without its .idx",
                        )
                    })?;
                    let p = dir.join(&f.file);
                    Some(
                        Index::parse(&io(&p, std::fs::read(&p))?)
                            .map_err(|e| Error::data(&p, e))?,
                    )
                }
                Format::Npy | Format::Parquet => None,
            };
            for r in lo..hi {
                let i = (r - first) as usize;
                let ids: Vec<u32> = match &index {
                    Some(idx) => {
                        let width = manifest.dtype.size();
                        let mut f = io(&path, File::open(&path))?;
                        let mut buf = vec![0u8; idx.lengths[i] as usize * width];
                        io(&path, f.seek(SeekFrom::Start(idx.pointers[i] as u64)))?;
                        io(&path, f.read_exact(&mut buf))?;
                        decode(manifest.dtype, &buf)
                            .into_iter()
                            .map(|v| v as u32)
                            .collect()
                    }
                    None => npy_row(&path, i)?.into_iter().map(|v| v as u32).collect(),
                };
                let sibling = |f: &Option<crate::shards::FileRef>| -> Result<Option<Vec<i64>>> {
                    f.as_ref()
                        .map(|f| npy_row(&dir.join(&f.file), i))
                        .transpose()
                };
                out.push(StoredRow {
                    row: r,
                    shard: s.file.clone(),
                    ids,
                    attention_mask: sibling(&s.attention_mask)?
                        .map(|v| v.into_iter().map(|x| x as u8).collect()),
                    labels: sibling(&s.labels)?.map(|v| v.into_iter().map(|x| x as i32).collect()),
                });
            }
        }
        first = end;
    }
    Ok((manifest, out))
}

/// `shards inspect`: rows of partition folders decoded back to text.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InspectConfig {
    /// Packed output folders, or partition folders of them (each partition folder is read).
    pub dirs: Vec<PathBuf>,
    /// First row (over all shards of the folder).
    #[serde(default)]
    pub row: u64,
    /// Number of rows.
    #[serde(default = "default_count")]
    pub count: u64,
    /// Tokenizer to decode with (default: the one the manifest names).
    #[serde(default)]
    pub tokenizer: Option<String>,
}

fn default_count() -> u64 {
    3
}

/// One row, its text and, with static masks, the original tokens at the masked positions.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DecodedRow {
    /// The partition folder it is in.
    pub folder: PathBuf,
    pub row: u64,
    pub shard: String,
    pub ids: Vec<u32>,
    pub attention_mask: Option<Vec<u8>>,
    pub labels: Option<Vec<i32>>,
    pub text: String,
    pub targets: Option<Vec<(usize, String)>>,
}

/// What `--json` prints: the rows.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct InspectReport(pub Vec<DecodedRow>);

pub fn run(cfg: &InspectConfig, reporter: &dyn Reporter) -> Result<InspectReport> {
    let mut out = Vec::new();
    for d in &cfg.dirs {
        for f in crate::verify::manifest_folders_of(d)? {
            out.extend(decode_rows(cfg, &f, reporter)?);
        }
    }
    Ok(InspectReport(out))
}

/// The asked-for rows of one partition folder, decoded.
fn decode_rows(
    cfg: &InspectConfig,
    dir: &Path,
    reporter: &dyn Reporter,
) -> Result<Vec<DecodedRow>> {
    let (manifest, rows) = read_rows(dir, cfg.row, cfg.count)?;
    let spec = cfg
        .tokenizer
        .clone()
        .unwrap_or_else(|| manifest.tokenizer.spec());
    let tok = pytorrent_tokenizer::load(&spec)?.tokenizer;
    let decode = |ids: &[u32]| -> Result<String> {
        tok.decode(ids, false).map_err(|e| {
            Error::Tokenizer(pytorrent_tokenizer::Error::Tokenizers(format!(
                "decoding with {spec}: {e}"
            )))
        })
    };
    if rows.is_empty() {
        reporter.log(&format!(
            "{}: no rows from {} (the folder holds {})",
            dir.display(),
            cfg.row,
            manifest.rows
        ));
    }
    rows.into_iter()
        .map(|r| {
            let targets = match &r.labels {
                Some(l) => Some(
                    l.iter()
                        .enumerate()
                        .filter(|(_, v)| **v >= 0)
                        .map(|(i, v)| Ok((i, decode(&[*v as u32])?)))
                        .collect::<Result<Vec<_>>>()?,
                ),
                None => None,
            };
            Ok(DecodedRow {
                folder: dir.to_path_buf(),
                text: decode(&r.ids)?,
                row: r.row,
                shard: r.shard,
                ids: r.ids,
                attention_mask: r.attention_mask,
                labels: r.labels,
                targets,
            })
        })
        .collect()
}

impl std::fmt::Display for InspectReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for r in &self.0 {
            writeln!(
                f,
                "── {} row {} ({}) ──",
                r.folder.display(),
                r.row,
                r.shard
            )?;
            writeln!(f, "{}", r.text)?;
            if let Some(t) = &r.targets {
                let shown: Vec<String> = t.iter().map(|(i, s)| format!("{i}:{s:?}")).collect();
                writeln!(f, "── labels: {}", shown.join(" "))?;
            }
        }
        Ok(())
    }
}
