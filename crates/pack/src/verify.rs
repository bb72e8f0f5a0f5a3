//! `shards verify`: every shard a manifest lists is present, has the recorded sha256, the
//! recorded dtype and shape, and only ids below the vocabulary size.

use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

/// One thing wrong with a shard folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub file: PathBuf,
    pub problem: String,
}

/// What an `.npy` header says: dtype descriptor, shape, and where the data starts.
pub fn read_header(bytes: &[u8]) -> Result<(String, Vec<usize>, usize), String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not an .npy file (bad magic)".into());
    }
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(format!("unsupported .npy version {v}")),
    };
    let header = bytes
        .get(start..start + len)
        .ok_or("truncated .npy header")?;
    let header = String::from_utf8_lossy(header);
    let descr = header
        .split("'descr':")
        .nth(1)
        .and_then(|r| r.split('\'').nth(1))
        .ok_or("no descr in header")?
        .to_string();
    let shape = header
        .split("'shape':")
        .nth(1)
        .and_then(|r| r.split('(').nth(1))
        .and_then(|r| r.split(')').next())
        .ok_or("no shape in header")?;
    let dims = shape
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| format!("bad shape '{shape}'"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((descr, dims, start + len))
}

fn descr_of(dtype: &str) -> Option<(&'static str, usize)> {
    match dtype {
        "uint8" => Some(("|u1", 1)),
        "uint16" => Some(("<u2", 2)),
        "int32" => Some(("<i4", 4)),
        _ => None,
    }
}

/// Verifies one folder holding a `manifest.json`.
pub fn verify_folder(dir: &Path) -> Vec<Finding> {
    let mut out = Vec::new();
    let mpath = dir.join("manifest.json");
    let finding = |file: &Path, problem: String| Finding {
        file: file.to_path_buf(),
        problem,
    };
    let manifest: serde_json::Value = match std::fs::read(&mpath)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(m) => m,
        Err(e) => return vec![finding(&mpath, format!("cannot read manifest: {e}"))],
    };
    let seq_len = manifest["seq_len"].as_u64().unwrap_or(0) as usize;
    let vocab = manifest["tokenizer"]["vocab_size"]
        .as_u64()
        .unwrap_or(u64::MAX);
    let Some((descr, width)) = manifest["dtype"].as_str().and_then(descr_of) else {
        return vec![finding(
            &mpath,
            format!("unknown dtype {}", manifest["dtype"]),
        )];
    };
    for shard in manifest["shards"].as_array().cloned().unwrap_or_default() {
        let name = shard["file"].as_str().unwrap_or_default();
        let path = dir.join(name);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                out.push(finding(&path, format!("missing or unreadable: {e}")));
                continue;
            }
        };
        let digest = pytorrent_io::fingerprint::hex(&Sha256::digest(&bytes));
        if Some(digest.as_str()) != shard["sha256"].as_str() {
            out.push(finding(
                &path,
                format!(
                    "sha256 {digest} differs from the manifest's {}",
                    shard["sha256"]
                ),
            ));
        }
        let (d, dims, start) = match read_header(&bytes) {
            Ok(h) => h,
            Err(e) => {
                out.push(finding(&path, e));
                continue;
            }
        };
        let rows = shard["rows"].as_u64().unwrap_or(0) as usize;
        if d != descr {
            out.push(finding(&path, format!("dtype {d}, manifest says {descr}")));
            continue;
        }
        if dims != [rows, seq_len] {
            out.push(finding(
                &path,
                format!("shape {dims:?}, manifest says [{rows}, {seq_len}]"),
            ));
            continue;
        }
        let data = &bytes[start..];
        if data.len() != rows * seq_len * width {
            out.push(finding(
                &path,
                format!(
                    "{} data bytes, expected {}",
                    data.len(),
                    rows * seq_len * width
                ),
            ));
            continue;
        }
        let bad = data.chunks_exact(width).position(|c| {
            let v = match width {
                1 => c[0] as u64,
                2 => u16::from_le_bytes([c[0], c[1]]) as u64,
                _ => i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64 as u64,
            };
            v >= vocab
        });
        if let Some(i) = bad {
            out.push(finding(
                &path,
                format!(
                    "row {}, column {}: id outside the vocabulary (size {vocab})",
                    i / seq_len,
                    i % seq_len
                ),
            ));
        }
    }
    out
}

/// Folders under `root` (itself included) that hold a manifest, in a stable order.
pub fn manifest_folders(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    if root.join("manifest.json").is_file() {
        found.push(root.to_path_buf());
    }
    if let Ok(rd) = std::fs::read_dir(root) {
        let mut subs: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        subs.sort();
        for s in subs {
            found.extend(manifest_folders(&s));
        }
    }
    found
}
