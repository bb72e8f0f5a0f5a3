//! The clusters stage (one task): every buckets task's exact-dropped ids and near pairs →
//! `SCENARIO.dropped`, `[id, kind]` (0 exact, 1 near) of every record that goes, sorted.
//!
//! Pairs are merged in order of their later record, so when a record's pairs come every
//! earlier record is decided: it goes as a near duplicate iff one of its earlier partners
//! stays. Memory: the dropped ids (8 bytes each), never the records that stay.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pytorrent_io::sorted::{merge, SortedReader, SortedWriter};
use pytorrent_io::{Reporter, Tasks, Unit};
use serde::{Deserialize, Serialize};

use super::{claim_work, finished, mark_done, ExtractTask};
use crate::error::{Error, Result};

pub const EXACT: u64 = 0;
pub const NEAR: u64 = 1;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClustersReport {
    /// Buckets tasks read.
    pub buckets: usize,
    pub scenarios: BTreeMap<String, ClusterCounts>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClusterCounts {
    pub pairs: u64,
    pub exact: u64,
    pub near: u64,
}

impl ClustersReport {
    pub fn summary(&self) -> String {
        let mut s = format!("clusters of {} buckets tasks:\n", self.buckets);
        for (name, c) in &self.scenarios {
            s += &format!(
                "  {name}: {} exact and {} near duplicates go ({} near pairs)\n",
                c.exact, c.near, c.pairs
            );
        }
        s
    }
}

pub fn dir(work: &Path) -> PathBuf {
    work.join("clusters")
}

/// The finished buckets tasks in `work`, all of one split and of this extract run.
fn buckets_tasks(
    work: &Path,
    fingerprint: &str,
) -> Result<Vec<(PathBuf, super::buckets::BucketsReport)>> {
    let root = work.join("buckets");
    let mut found: Vec<(Tasks, PathBuf)> = std::fs::read_dir(&root)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::Usage(format!(
                    "{}: no buckets tasks (run `corpus dedup --stage buckets` first)",
                    root.display()
                ))
            } else {
                pytorrent_io::Error::io(&root, e).into()
            }
        })?
        .flatten()
        .filter_map(|e| {
            Tasks::from_dir_name(&e.file_name().to_string_lossy()).map(|t| (t, e.path()))
        })
        .collect();
    found.sort_by_key(|(t, _)| t.index);
    let Some(count) = found.first().map(|(t, _)| t.count) else {
        return Err(Error::Usage(format!(
            "{}: no buckets tasks (run `corpus dedup --stage buckets` first)",
            root.display()
        )));
    };
    if let Some((_, p)) = found.iter().find(|(t, _)| t.count != count) {
        return Err(Error::Usage(format!(
            "{}: buckets tasks of two splits ({} and another); remove the older",
            p.display(),
            count
        )));
    }
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for index in 0..count {
        let t = Tasks { count, index };
        let p = super::buckets::dir(work, t);
        match finished(&p, fingerprint, t)? {
            Some(r) => out.push((p, r)),
            None => missing.push(index.to_string()),
        }
    }
    if !missing.is_empty() {
        return Err(Error::Usage(format!(
            "buckets tasks {} of {count} have not finished (in {})",
            missing.join(", "),
            root.display()
        )));
    }
    Ok(out)
}

pub fn run(
    tasks: &[ExtractTask],
    work: &Path,
    reporter: &dyn Reporter,
) -> Result<(ClustersReport, bool)> {
    let fingerprint = &tasks[0].settings.fingerprint;
    let out = dir(work);
    let buckets = buckets_tasks(work, fingerprint)?;
    // Done for this extract run and this buckets split: nothing to do.
    let split = Tasks {
        count: buckets.len(),
        index: 0,
    };
    if let Some(r) = finished(&out, fingerprint, split)? {
        reporter.log(&format!(
            "{}: this stage had finished: nothing to do",
            out.display()
        ));
        return Ok((r, true));
    }
    let mut names: Vec<String> = buckets
        .iter()
        .flat_map(|(_, r)| r.scenarios.keys().cloned())
        .collect();
    names.sort();
    names.dedup();
    let files: Vec<String> = names.iter().map(|s| format!("{s}.dropped")).collect();
    claim_work(&out, "clusters", &files)?;
    let mut report = ClustersReport {
        buckets: buckets.len(),
        scenarios: BTreeMap::new(),
    };
    reporter.begin(
        "clusters",
        Unit::Items("scenarios"),
        Some(names.len() as u64),
    );
    for name in &names {
        let dirs: Vec<&Path> = buckets.iter().map(|(p, _)| p.as_path()).collect();
        report
            .scenarios
            .insert(name.clone(), scenario(&dirs, name, &out)?);
        reporter.advance(1);
    }
    reporter.end();
    mark_done(&out, fingerprint, split, &report)?;
    Ok((report, false))
}

pub(super) fn scenario(buckets: &[&Path], name: &str, out: &Path) -> Result<ClusterCounts> {
    let open1 = |kind: &str| {
        buckets
            .iter()
            .map(|d| SortedReader::<1>::open(&d.join(format!("{name}.{kind}"))))
            .collect::<Result<Vec<_>, _>>()
    };
    let mut exact = Vec::new();
    for row in merge(open1("exact-dropped")?) {
        exact.push(row?[0]);
    }
    let pair_readers = buckets
        .iter()
        .map(|d| SortedReader::<2>::open(&d.join(format!("{name}.pairs"))))
        .collect::<Result<Vec<_>, _>>()?;
    let mut counts = ClusterCounts {
        exact: exact.len() as u64,
        ..Default::default()
    };
    // Near-dropped ids, in increasing order (pairs come by their later record).
    let mut near: Vec<u64> = Vec::new();
    let gone =
        |id: u64, near: &[u64]| exact.binary_search(&id).is_ok() || near.binary_search(&id).is_ok();
    let mut current: Option<(u64, bool)> = None;
    let mut last_pair = None;
    for row in merge(pair_readers) {
        let [later, earlier] = row?;
        // The same pair from two buckets tasks (two band keys in two ranges) counts once.
        if last_pair == Some([later, earlier]) {
            continue;
        }
        last_pair = Some([later, earlier]);
        counts.pairs += 1;
        match current {
            Some((id, _)) if id == later => {}
            _ => {
                if let Some((id, true)) = current {
                    near.push(id);
                }
                current = Some((later, false));
            }
        }
        let (_, drop) = current.as_mut().expect("set");
        if !*drop && !gone(later, &near) && !gone(earlier, &near) {
            *drop = true;
        }
    }
    if let Some((id, true)) = current {
        near.push(id);
    }
    counts.near = near.len() as u64;
    let mut w = SortedWriter::<2>::create(&out.join(format!("{name}.dropped")))?;
    let (mut e, mut n) = (exact.iter().peekable(), near.iter().peekable());
    loop {
        let row = match (e.peek(), n.peek()) {
            (Some(&&a), Some(&&b)) if a < b => {
                e.next();
                [a, EXACT]
            }
            (Some(_), Some(&&b)) => {
                n.next();
                [b, NEAR]
            }
            (Some(&&a), None) => {
                e.next();
                [a, EXACT]
            }
            (None, Some(&&b)) => {
                n.next();
                [b, NEAR]
            }
            (None, None) => break,
        };
        w.push(row)?;
    }
    w.finish()?;
    Ok(counts)
}
