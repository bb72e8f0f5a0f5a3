//! Reading rows back from a shard folder (npy or Megatron), by their index in the partition.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::error::{read_json, Error, Result};
use crate::megatron::Index;
use crate::npy::{decode, Dtype};
use crate::pipeline::Manifest;
use crate::shards::Format;
use crate::verify::read_header;

#[derive(Debug, Clone, serde::Serialize)]
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
    let mut head = vec![0u8; 4096];
    let n = io(path, f.read(&mut head))?;
    let (descr, dims, start) = read_header(&head[..n]).map_err(|e| Error::data(path, e))?;
    let dtype = Dtype::from_descr(&descr)
        .ok_or_else(|| Error::data(path, format!("unexpected dtype {descr}")))?;
    let [rows, cols] = dims[..] else {
        return Err(Error::data(path, format!("not 2-D: shape {dims:?}")));
    };
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
    let manifest: Manifest = read_json(&dir.join("manifest.json"))?;
    let mut out = Vec::new();
    let mut first = 0u64;
    for s in &manifest.shards {
        let end = first + s.rows as u64;
        let lo = start.max(first);
        let hi = (start + count).min(end);
        if lo < hi {
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
                Format::Npy => None,
            };
            for r in lo..hi {
                let i = (r - first) as usize;
                let ids: Vec<u32> = match &index {
                    Some(idx) => {
                        let width = manifest.settings.dtype.size();
                        let mut f = io(&path, File::open(&path))?;
                        let mut buf = vec![0u8; idx.lengths[i] as usize * width];
                        io(&path, f.seek(SeekFrom::Start(idx.pointers[i] as u64)))?;
                        io(&path, f.read_exact(&mut buf))?;
                        decode(manifest.settings.dtype, &buf)
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
