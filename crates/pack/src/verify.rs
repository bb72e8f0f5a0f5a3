//! `shards verify`: every shard a manifest lists is present, has the recorded sha256, the
//! recorded dtype and shape, and only ids below the vocabulary size.

use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use pytorrent_io::npy::{decode, read_header, Dtype};
use pytorrent_io::Reporter;

use crate::manifest::Manifest;
use crate::megatron::Index;
use crate::shards::{Format, ShardInfo};

/// One thing wrong with a shard folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Finding {
    pub file: PathBuf,
    pub problem: String,
}

/// Checks one npy file: sha256, dtype, shape `[rows, cols]`, and every value with `ok`.
fn check_npy(
    path: &Path,
    sha256: &str,
    dtype: Dtype,
    rows: usize,
    cols: usize,
    ok: &dyn Fn(i64) -> bool,
    what: &str,
) -> Option<String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return Some(format!("missing or unreadable: {e}")),
    };
    let digest = pytorrent_io::fingerprint::hex(&Sha256::digest(&bytes));
    if digest != sha256 {
        return Some(format!(
            "sha256 {digest} differs from the manifest's {sha256}"
        ));
    }
    let (d, dims, start) = match read_header(&bytes) {
        Ok(h) => h,
        Err(e) => return Some(e),
    };
    if d != dtype.descr() {
        return Some(format!("dtype {d}, manifest says {}", dtype.descr()));
    }
    if dims != [rows, cols] {
        return Some(format!("shape {dims:?}, manifest says [{rows}, {cols}]"));
    }
    let data = &bytes[start..];
    let want = rows
        .checked_mul(cols)
        .and_then(|n| n.checked_mul(dtype.size()));
    if want != Some(data.len()) {
        return Some(format!(
            "{} data bytes, expected {}",
            data.len(),
            want.map_or("more than the address space".into(), |w| w.to_string())
        ));
    }
    decode(dtype, data).iter().position(|v| !ok(*v)).map(|i| {
        format!(
            "row {}, column {}: {what}",
            i / cols.max(1),
            i % cols.max(1)
        )
    })
}

/// Checks one Parquet shard: sha256, row count, and every row's lengths and values.
fn check_parquet(
    path: &Path,
    shard: &ShardInfo,
    seq_len: usize,
    vocab: u64,
    pad: Option<u32>,
) -> Option<String> {
    let digest = match pytorrent_io::sha256_file(path) {
        Ok(d) => d,
        Err(e) => return Some(format!("missing or unreadable: {e}")),
    };
    if digest != shard.sha256 {
        return Some(format!(
            "sha256 {digest} differs from the manifest's {}",
            shard.sha256
        ));
    }
    let in_vocab = |v: &i64| *v >= 0 && (*v as u64) < vocab;
    let mut rows = 0usize;
    let mut tokens = Some(0u64);
    let checked = crate::parquet_shards::for_each_row(path, |i, r| {
        rows += 1;
        let real = match (&r.attention_mask, pad) {
            (Some(m), _) => Some(m.iter().filter(|v| **v == 1).count() as u64),
            (None, Some(p)) => {
                let mut ids = r.ids.clone();
                if let Some(l) = &r.labels {
                    originals(&mut ids, l);
                }
                Some(real_tokens(&ids, p as i64))
            }
            (None, None) => None,
        };
        tokens = tokens.zip(real).map(|(a, b)| a + b);
        if r.ids.len() != seq_len {
            return Some(format!(
                "row {i}: {} ids, seq_len is {seq_len}",
                r.ids.len()
            ));
        }
        if let Some(j) = r.ids.iter().position(|v| !in_vocab(v)) {
            return Some(format!(
                "row {i}, column {j}: id outside the vocabulary (size {vocab})"
            ));
        }
        if let Some(m) = &r.attention_mask {
            if m.len() != seq_len || m.iter().any(|v| *v != 0 && *v != 1) {
                return Some(format!(
                    "row {i}: attention mask not {seq_len} values of 0 or 1"
                ));
            }
        }
        if let Some(l) = &r.labels {
            let ok = |v: &i64| *v == crate::mask::IGNORE as i64 || in_vocab(v);
            if l.len() != seq_len || !l.iter().all(ok) {
                return Some(format!(
                    "row {i}: labels not {seq_len} values of -100 or an id of the vocabulary"
                ));
            }
        }
        None
    });
    match checked {
        Err(e) => Some(e.to_string()),
        Ok(Some(problem)) => Some(problem),
        Ok(None) if rows != shard.rows => {
            Some(format!("{rows} rows, the manifest says {}", shard.rows))
        }
        Ok(None) => tokens
            .filter(|t| *t != shard.tokens)
            .map(|t| format!("{t} tokens, the manifest says {}", shard.tokens)),
    }
}

fn check_megatron(shard: &ShardInfo, dir: &Path, m: &Manifest, vocab: u64) -> Vec<Finding> {
    let bin = dir.join(&shard.file);
    let finding = |file: &Path, problem: String| Finding {
        file: file.to_path_buf(),
        problem,
    };
    let Some(idx_ref) = &shard.index else {
        return vec![finding(
            &bin,
            "the manifest lists no .idx for this .bin".into(),
        )];
    };
    let idx = dir.join(&idx_ref.file);
    let read = |p: &Path, sha: &str| -> Result<Vec<u8>, String> {
        let b = std::fs::read(p).map_err(|e| format!("missing or unreadable: {e}"))?;
        let digest = pytorrent_io::fingerprint::hex(&Sha256::digest(&b));
        if digest != sha {
            return Err(format!("sha256 {digest} differs from the manifest's {sha}"));
        }
        Ok(b)
    };
    let (data, index) = match (read(&bin, &shard.sha256), read(&idx, &idx_ref.sha256)) {
        (Ok(d), Ok(i)) => (d, i),
        (d, i) => {
            let mut out = Vec::new();
            if let Err(e) = d {
                out.push(finding(&bin, e));
            }
            if let Err(e) = i {
                out.push(finding(&idx, e));
            }
            return out;
        }
    };
    let index = match Index::parse(&index) {
        Ok(i) => i,
        Err(e) => return vec![finding(&idx, e)],
    };
    let dtype = m.dtype;
    if Some(index.dtype_code) != crate::megatron::dtype_code(dtype) {
        return vec![finding(
            &idx,
            format!("dtype code {}, manifest says {dtype:?}", index.dtype_code),
        )];
    }
    if index.lengths.len() != shard.rows {
        return vec![finding(
            &idx,
            format!(
                "{} sequences, manifest says {}",
                index.lengths.len(),
                shard.rows
            ),
        )];
    }
    let width = dtype.size() as i64;
    let mut at = 0i64;
    for (i, (l, p)) in index.lengths.iter().zip(&index.pointers).enumerate() {
        if *p != at || *l < 0 || *l as usize > m.settings.seq_len {
            return vec![finding(
                &idx,
                format!("sequence {i}: length {l} at byte {p} is inconsistent"),
            )];
        }
        at += *l as i64 * width;
    }
    if at != data.len() as i64 {
        return vec![finding(
            &bin,
            format!("{} bytes, the index accounts for {at}", data.len()),
        )];
    }
    let tokens: i64 = index.lengths.iter().map(|l| *l as i64).sum();
    if tokens as u64 != shard.tokens {
        return vec![finding(
            &idx,
            format!("{tokens} tokens, the manifest says {}", shard.tokens),
        )];
    }
    match decode(dtype, &data)
        .iter()
        .position(|v| *v < 0 || *v as u64 >= vocab)
    {
        Some(i) => vec![finding(
            &bin,
            format!("token {i}: id outside the vocabulary (size {vocab})"),
        )],
        None => Vec::new(),
    }
}

/// The id rows are padded with, when telling it from real tokens is possible: the
/// tokenizer (as the manifest names it) loads and has a padding token of its own. Rows are
/// padded with `</s>` otherwise, which real tokens also end with.
fn padding_id(m: &Manifest) -> Option<u32> {
    let tok = pytorrent_tokenizer::load(&m.tokenizer.spec()).ok()?;
    let sp = pytorrent_tokenizer::SpecialIds::of(&tok.tokenizer).ok()?;
    sp.pad.filter(|p| *p != sp.eos)
}

/// Puts back the original id wherever a label records one (static masks).
fn originals(ids: &mut [i64], labels: &[i64]) {
    for (id, label) in ids.iter_mut().zip(labels) {
        if *label != crate::mask::IGNORE as i64 {
            *id = *label;
        }
    }
}

/// Real tokens of a row: all but its trailing padding.
fn real_tokens(ids: &[i64], pad: i64) -> u64 {
    (ids.len() - ids.iter().rev().take_while(|v| **v == pad).count()) as u64
}

/// An npy shard's real tokens against the manifest's count: from its attention mask, else
/// from the ids and the padding id; `None` when they agree or cannot be told.
fn npy_tokens(dir: &Path, shard: &ShardInfo, m: &Manifest, pad: Option<u32>) -> Option<String> {
    let read = |file: &str| -> Option<(Vec<i64>, Dtype)> {
        let bytes = std::fs::read(dir.join(file)).ok()?;
        let (descr, _, start) = read_header(&bytes).ok()?;
        let dtype = [
            Dtype::Uint8,
            Dtype::Uint16,
            Dtype::Uint32,
            Dtype::Int32,
            Dtype::Int64,
        ]
        .into_iter()
        .find(|d| d.descr() == descr)?;
        Some((decode(dtype, &bytes[start..]), dtype))
    };
    let tokens = match (&shard.attention_mask, pad) {
        (Some(f), _) => read(&f.file)?.0.iter().filter(|v| **v == 1).count() as u64,
        (None, Some(p)) => {
            let (mut ids, _) = read(&shard.file)?;
            // A static mask may have put any id, the padding id too, where a token was: the
            // labels hold the original there.
            if let Some(l) = &shard.labels {
                let (labels, _) = read(&l.file)?;
                originals(&mut ids, &labels);
            }
            ids.chunks(m.settings.seq_len.max(1))
                .map(|row| real_tokens(row, p as i64))
                .sum()
        }
        (None, None) => return None,
    };
    (tokens != shard.tokens).then(|| format!("{tokens} tokens, the manifest says {}", shard.tokens))
}

/// Verifies one folder holding a `manifest.json`.
pub fn verify_folder(dir: &Path) -> Vec<Finding> {
    let mpath = dir.join("manifest.json");
    let finding = |file: &Path, problem: String| Finding {
        file: file.to_path_buf(),
        problem,
    };
    let m = match Manifest::read(&mpath) {
        Ok(m) => m,
        Err(crate::Error::Data { message, .. }) => {
            return vec![finding(&mpath, format!("cannot read manifest: {message}"))]
        }
        Err(e) => return vec![finding(&mpath, format!("cannot read manifest: {e}"))],
    };
    let seq_len = m.settings.seq_len;
    let vocab = m.tokenizer.vocab_size() as u64;
    let pad = padding_id(&m);
    let mut out = Vec::new();
    for shard in &m.shards {
        if m.settings.format == Format::Megatron {
            out.extend(check_megatron(shard, dir, &m, vocab));
            continue;
        }
        if m.settings.format == Format::Parquet {
            let path = dir.join(&shard.file);
            if let Some(p) = check_parquet(&path, shard, seq_len, vocab, pad) {
                out.push(finding(&path, p));
            }
            continue;
        }
        let path = dir.join(&shard.file);
        let in_vocab = move |v: i64| v >= 0 && (v as u64) < vocab;
        if let Some(p) = npy_tokens(dir, shard, &m, pad) {
            out.push(finding(&path, p));
        }
        if let Some(p) = check_npy(
            &path,
            &shard.sha256,
            m.dtype,
            shard.rows,
            seq_len,
            &in_vocab,
            &format!("id outside the vocabulary (size {vocab})"),
        ) {
            out.push(finding(&path, p));
        }
        if let Some(f) = &shard.attention_mask {
            let p = dir.join(&f.file);
            if let Some(e) = check_npy(
                &p,
                &f.sha256,
                Dtype::Uint8,
                shard.rows,
                seq_len,
                &|v| v == 0 || v == 1,
                "attention mask value other than 0 or 1",
            ) {
                out.push(finding(&p, e));
            }
        }
        if let Some(f) = &shard.labels {
            let p = dir.join(&f.file);
            let ok = move |v: i64| v == crate::mask::IGNORE as i64 || in_vocab(v);
            if let Some(e) = check_npy(
                &p,
                &f.sha256,
                Dtype::Int32,
                shard.rows,
                seq_len,
                &ok,
                "label neither -100 nor an id of the vocabulary",
            ) {
                out.push(finding(&p, e));
            }
        }
    }
    let tokens: u64 = m.shards.iter().map(|s| s.tokens).sum();
    if tokens != m.tokens {
        out.push(finding(
            &mpath,
            format!(
                "shards hold {tokens} tokens, the manifest says {}",
                m.tokens
            ),
        ));
    }
    let rows: u64 = m.shards.iter().map(|s| s.rows as u64).sum();
    if rows != m.rows {
        out.push(finding(
            &mpath,
            format!("shards hold {rows} rows, the manifest says {}", m.rows),
        ));
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

/// The manifest folders under `dir`, or a usage error that says why there are none.
pub fn manifest_folders_of(dir: &Path) -> crate::Result<Vec<PathBuf>> {
    let found = manifest_folders(dir);
    if !found.is_empty() {
        return Ok(found);
    }
    Err(crate::Error::Usage(if !dir.exists() {
        format!("{}: no such file or folder", dir.display())
    } else {
        format!(
            "{}: no manifest.json here or below (give a pack output or a partition folder)",
            dir.display()
        )
    }))
}

/// `shards verify`: every shard every manifest under the given folders lists.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VerifyConfig {
    /// Packed output folders, or partition folders of them.
    pub dirs: Vec<PathBuf>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct VerifyReport {
    /// No problem, and at least one folder holds rows.
    pub ok: bool,
    pub folders: Vec<PathBuf>,
    /// Folders whose manifest lists no rows (an empty partition, or a run that found nothing).
    pub empty: Vec<PathBuf>,
    pub problems: Vec<Finding>,
}

/// `shards verify`.
pub struct Verify;

impl pytorrent_io::stage::Stage for Verify {
    type Config = VerifyConfig;
    type Report = VerifyReport;
    type Error = crate::Error;
    const COMMAND: &'static str = "shards verify";
    const READS: &'static [&'static str] = &["dirs"];

    fn run(config: &VerifyConfig, reporter: &dyn Reporter) -> crate::Result<VerifyReport> {
        run(config, reporter)
    }

    fn gate_failure(report: &VerifyReport) -> Option<String> {
        (!report.ok).then(|| {
            if report.problems.is_empty() {
                "no shard holds a row".to_string()
            } else {
                format!(
                    "{} in the shards",
                    pytorrent_io::reporter::plural(
                        report.problems.len() as u64,
                        "problem",
                        "problems"
                    )
                )
            }
        })
    }
}

/// Checks every manifest folder under `dirs`; a broken shard is a finding (`ok: false`), each
/// reported as it is found.
pub fn run(cfg: &VerifyConfig, reporter: &dyn Reporter) -> crate::Result<VerifyReport> {
    let mut folders = Vec::new();
    for d in &cfg.dirs {
        folders.extend(manifest_folders_of(d)?);
    }
    let mut problems = Vec::new();
    let mut empty = Vec::new();
    for f in &folders {
        for finding in verify_folder(f) {
            reporter.problem(&format!("{}: {}", finding.file.display(), finding.problem));
            problems.push(finding);
        }
        if Manifest::read(&f.join("manifest.json")).is_ok_and(|m| m.rows == 0) {
            reporter.warn(&format!("{}: the manifest lists no rows", f.display()));
            empty.push(f.clone());
        }
    }
    Ok(VerifyReport {
        ok: problems.is_empty() && empty.len() < folders.len(),
        folders,
        empty,
        problems,
    })
}

impl std::fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use pytorrent_io::reporter::plural;
        let verdict = match (self.ok, self.problems.is_empty()) {
            (true, _) => "ok",
            (false, true) => "EMPTY",
            (false, false) => "BROKEN",
        };
        writeln!(
            f,
            "{verdict}: {} checked, {}{}",
            plural(self.folders.len() as u64, "folder", "folders"),
            plural(self.problems.len() as u64, "problem", "problems"),
            if self.empty.is_empty() {
                String::new()
            } else {
                format!(
                    ", {} without rows",
                    plural(self.empty.len() as u64, "folder", "folders")
                )
            }
        )
    }
}
