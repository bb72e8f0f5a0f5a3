//! `shards merge`: the task folders of a scaled-out run become one output, laid out as if one
//! task had written it (shards hard-linked, or copied across file systems, and renumbered
//! task-major; the task folders stay as they are).

use std::path::{Path, PathBuf};

use pytorrent_io::Reporter;

use crate::error::{Error, Result};
use crate::manifest::{write_json, Manifest, COMPLETE_FILE};
use crate::shards::{FileRef, ShardInfo};

/// `shards merge`: the task folders of a scaled-out `pack` become one output.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MergeConfig {
    /// The output folder the tasks wrote into (holding `task-IIIII-of-NNNNN` folders).
    pub dir: PathBuf,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct MergeReport {
    pub tasks: usize,
    pub partitions: Vec<(String, usize)>,
}

pub fn run(cfg: &MergeConfig, _reporter: &dyn Reporter) -> Result<MergeReport> {
    merge(&cfg.dir)
}

impl std::fmt::Display for MergeReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use pytorrent_io::reporter::plural;
        for (p, n) in &self.partitions {
            writeln!(
                f,
                "{p}: {} from {}",
                plural(*n as u64, "shard", "shards"),
                plural(self.tasks as u64, "task", "tasks")
            )?;
        }
        Ok(())
    }
}

/// Task folders under `out`, by index; all of `0..count` must be present and complete.
fn task_folders(out: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(out).map_err(|e| pytorrent_io::Error::io(out, e))?;
    let mut found: Vec<(usize, usize, PathBuf)> = Vec::new();
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(t) = pytorrent_io::Tasks::from_dir_name(&name) {
            found.push((t.count, t.index, e.path()));
        }
    }
    if found.is_empty() {
        return Err(Error::Usage(format!(
            "{}: no task-IIIII-of-NNNNN folders to merge",
            out.display()
        )));
    }
    found.sort();
    let count = found[0].0;
    if found.iter().any(|f| f.0 != count) {
        return Err(Error::data(
            out,
            "task folders of runs with different task counts",
        ));
    }
    let missing: Vec<String> = (0..count)
        .filter(|i| {
            !found
                .iter()
                .any(|f| f.1 == *i && f.2.join(COMPLETE_FILE).is_file())
        })
        .map(|i| i.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(Error::data(
            out,
            format!(
                "{} of {count} tasks are not complete (no {COMPLETE_FILE}): task index {}",
                missing.len(),
                missing.join(", ")
            ),
        ));
    }
    // The marker must be the one its task wrote last: its own index and count, and one
    // fingerprint across tasks (an empty, truncated or foreign marker is not completion).
    let mut fingerprint: Option<String> = None;
    for (n, i, dir) in &found {
        let path = dir.join(COMPLETE_FILE);
        let doc: serde_json::Value = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| Error::data(&path, "not a completion marker (unreadable JSON)"))?;
        let (ti, tn) = (doc["task"]["index"].as_u64(), doc["task"]["count"].as_u64());
        if ti != Some(*i as u64) || tn != Some(*n as u64) {
            return Err(Error::data(
                &path,
                format!("marks task {ti:?} of {tn:?}, but the folder is task {i} of {n}"),
            ));
        }
        let fp = doc["fingerprint"]
            .as_str()
            .ok_or_else(|| Error::data(&path, "no fingerprint"))?;
        match &fingerprint {
            None => fingerprint = Some(fp.to_string()),
            Some(f) if f != fp => {
                return Err(Error::data(
                    &path,
                    "written with other settings, tokenizer or inputs than task 0",
                ))
            }
            Some(_) => {}
        }
    }
    Ok(found.into_iter().map(|f| f.2).collect())
}

/// A task's file, checked against the sha256 its manifest gives before it is linked in.
fn checked(path: &Path, sha256: &str) -> Result<()> {
    let got = pytorrent_io::sha256_file(path)?;
    if got != sha256 {
        return Err(Error::data(
            path,
            format!("sha256 {got}, its manifest says {sha256}: the shard is corrupt"),
        ));
    }
    Ok(())
}

/// `shard-00003.npy` → `shard-00012.npy`.
fn renumber(name: &str, n: usize) -> String {
    let stem = name.rsplit_once('-').map_or(name, |(s, _)| s);
    let ext = name.rsplit_once('.').map_or("", |(_, e)| e);
    format!("{stem}-{n:05}.{ext}")
}

fn link(from: &Path, to: &Path) -> Result<()> {
    let _ = std::fs::remove_file(to);
    if std::fs::hard_link(from, to).is_err() {
        pytorrent_io::atomic::write_atomic(
            to,
            &std::fs::read(from).map_err(|e| pytorrent_io::Error::io(from, e))?,
        )?;
    }
    Ok(())
}

pub fn merge(out: &Path) -> Result<MergeReport> {
    let tasks = task_folders(out)?;
    let mut partitions: Vec<String> = Vec::new();
    for t in &tasks {
        for e in std::fs::read_dir(t)
            .map_err(|e| pytorrent_io::Error::io(t, e))?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if e.path().join("manifest.json").is_file() && !partitions.contains(&name) {
                partitions.push(name);
            }
        }
    }
    partitions.sort();
    let mut report = MergeReport {
        tasks: tasks.len(),
        partitions: Vec::new(),
    };
    for p in &partitions {
        let manifests: Vec<(PathBuf, Manifest)> = tasks
            .iter()
            .map(|t| {
                let path = t.join(p).join("manifest.json");
                if !path.is_file() {
                    return Err(Error::data(
                        &path,
                        "missing: every task writes every partition",
                    ));
                }
                Ok((path.clone(), Manifest::read(&path)?))
            })
            .collect::<Result<_>>()?;
        let first = &manifests[0].1;
        for (path, m) in &manifests[1..] {
            if m.fingerprint != first.fingerprint {
                return Err(Error::data(
                    path,
                    "written with other settings, tokenizer or inputs than task 0",
                ));
            }
        }
        let dest = out.join(p);
        std::fs::create_dir_all(&dest).map_err(|e| pytorrent_io::Error::io(&dest, e))?;
        let _ = std::fs::remove_file(dest.join("manifest.json"));
        let mut shards = Vec::new();
        for (path, m) in &manifests {
            let src = path.parent().expect("manifest in a folder");
            for s in &m.shards {
                let n = shards.len();
                let moved = |f: &FileRef| -> Result<FileRef> {
                    let name = renumber(&f.file, n);
                    checked(&src.join(&f.file), &f.sha256)?;
                    link(&src.join(&f.file), &dest.join(&name))?;
                    Ok(FileRef {
                        file: name,
                        sha256: f.sha256.clone(),
                    })
                };
                let main = moved(&FileRef {
                    file: s.file.clone(),
                    sha256: s.sha256.clone(),
                })?;
                shards.push(ShardInfo {
                    file: main.file,
                    rows: s.rows,
                    tokens: s.tokens,
                    sha256: main.sha256,
                    attention_mask: s.attention_mask.as_ref().map(moved).transpose()?,
                    labels: s.labels.as_ref().map(moved).transpose()?,
                    index: s.index.as_ref().map(moved).transpose()?,
                });
            }
        }
        let sum = |f: fn(&Manifest) -> u64| manifests.iter().map(|(_, m)| f(m)).sum::<u64>();
        let merged = Manifest {
            partition: p.clone(),
            task: None,
            records: sum(|m| m.records),
            missing_field: sum(|m| m.missing_field),
            dropped_tokens: sum(|m| m.dropped_tokens),
            rows: sum(|m| m.rows),
            tokens: sum(|m| m.tokens),
            shards,
            ..first.clone()
        };
        report.partitions.push((p.clone(), merged.shards.len()));
        write_json(&dest.join("manifest.json"), &merged)?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    #[test]
    fn renumbering_keeps_stem_and_extension() {
        assert_eq!(super::renumber("shard-00003.npy", 12), "shard-00012.npy");
        assert_eq!(
            super::renumber("attention_mask-00000.npy", 7),
            "attention_mask-00007.npy"
        );
        assert_eq!(super::renumber("shard-00001.idx", 2), "shard-00002.idx");
    }
}
