//! The buckets stage: task J of M reads, from every extract task's sorted key files, the
//! exact keys and band keys in the J-th of M equal ranges of the key space, and writes
//!
//! - `SCENARIO.exact-dropped`: `[id]` of every record with the exact key of an earlier one;
//! - `SCENARIO.pairs`: `[later id, earlier id]` of every two records that share a band key
//!   and whose signatures agree in at least the threshold's share of slots, sorted, unique.
//!
//! Records with the exact key of an earlier one take no part in pairs: they go whatever
//! else holds, and they are never the earlier *kept* record another is compared with. (All
//! copies of one text share every band key, so each band group holds them all and sees which
//! is first.) Memory: the merge's read buffers, one band group's rows, the sorters' budget.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use pytorrent_io::sorted::{merge, SortedReader, Sorter};
use pytorrent_io::{Reporter, Tasks, Unit};
use serde::{Deserialize, Serialize};

use super::keys::{KeyFolder, KeyRow, ROW_WORDS};
use super::{claim_work, finished, key_folders, mark_done, scenarios, ExtractTask};
use crate::dedup::{is_near, DedupOptions};
use crate::error::{Error, Result};

/// Memory each of the stage's sorters may hold before spilling runs to disk.
const SORT_BUDGET: usize = 128 << 20;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BucketsReport {
    pub task: Tasks,
    pub scenarios: BTreeMap<String, BucketCounts>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BucketCounts {
    /// Exact keys read, and records with the exact key of an earlier one.
    pub exact_keys: u64,
    pub exact_dropped: u64,
    /// Band keys read, groups of two or more records, signature comparisons made.
    pub band_keys: u64,
    pub band_groups: u64,
    pub compared: u64,
    /// Near pairs written (unique).
    pub pairs: u64,
}

impl BucketsReport {
    pub fn summary(&self) -> String {
        let mut s = format!("buckets task {} of {}:\n", self.task.index, self.task.count);
        for (name, c) in &self.scenarios {
            s += &format!(
                "  {name}: {} exact duplicates of {} keys; {} near pairs from {} band groups \
                 ({} comparisons, {} band keys)\n",
                c.exact_dropped, c.exact_keys, c.pairs, c.band_groups, c.compared, c.band_keys
            );
        }
        s
    }
}

pub fn dir(work: &Path, split: Tasks) -> PathBuf {
    work.join("buckets").join(split.dir_name())
}

/// The J-th of M equal ranges of `u64`: `[start, end)`, `end` None for the last.
pub fn key_range(split: Tasks) -> (u64, Option<u64>) {
    let at = |i: usize| ((i as u128) << 64) / split.count as u128;
    let end = (split.index + 1 < split.count).then(|| at(split.index + 1) as u64);
    (at(split.index) as u64, end)
}

pub fn run(
    tasks: &[ExtractTask],
    work: &Path,
    split: Tasks,
    reporter: &dyn Reporter,
) -> Result<(BucketsReport, bool)> {
    let fingerprint = &tasks[0].settings.fingerprint;
    let out = dir(work, split);
    if let Some(r) = finished(&out, fingerprint, split)? {
        reporter.log(&format!(
            "{}: this stage had finished: nothing to do",
            out.display()
        ));
        return Ok((r, true));
    }
    let folders = key_folders(tasks)?;
    let opts = tasks[0].config()?.dedup();
    let names = scenarios(&folders);
    let files: Vec<String> = names
        .iter()
        .flat_map(|s| [format!("{s}.exact-dropped"), format!("{s}.pairs")])
        .collect();
    claim_work(&out, "buckets", &files)?;
    let mut report = BucketsReport {
        task: split,
        scenarios: BTreeMap::new(),
    };
    reporter.begin(
        "buckets",
        Unit::Items("scenarios"),
        Some(names.len() as u64),
    );
    for name in &names {
        let counts = scenario(&folders, name, &opts, split, &out)?;
        report.scenarios.insert(name.clone(), counts);
        reporter.advance(1);
    }
    reporter.end();
    mark_done(&out, fingerprint, split, &report)?;
    Ok((report, false))
}

pub(super) fn scenario(
    folders: &[KeyFolder],
    name: &str,
    opts: &DedupOptions,
    split: Tasks,
    out: &Path,
) -> Result<BucketCounts> {
    let mine: Vec<&KeyFolder> = folders
        .iter()
        .filter(|k| k.meta.scenarios.contains_key(name))
        .collect();
    let (start, end) = key_range(split);
    let mut counts = BucketCounts::default();

    let mut dropped = Sorter::<1>::new(
        out.join(format!("{name}.exact-dropped")),
        SORT_BUDGET,
        false,
    );
    if opts.exact {
        let readers = mine
            .iter()
            .map(|k| {
                SortedReader::<3>::range(
                    &k.path(name, "exact"),
                    [start, 0, 0],
                    end.map(|e| [e, 0, 0]),
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut last: Option<(u64, u64)> = None;
        for row in merge(readers) {
            let [hi, lo, id] = row?;
            counts.exact_keys += 1;
            if last == Some((hi, lo)) {
                dropped.push([id])?;
                counts.exact_dropped += 1;
            }
            last = Some((hi, lo));
        }
    }
    dropped.finish()?;

    let mut pairs = Sorter::<2>::new(out.join(format!("{name}.pairs")), SORT_BUDGET, true);
    if let Some(threshold) = opts.near_threshold {
        let rows = RowIndex::open(&mine, name)?;
        let readers = mine
            .iter()
            .map(|k| {
                SortedReader::<2>::range(&k.path(name, "bands"), [start, 0], end.map(|e| [e, 0]))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut group: Vec<u64> = Vec::new();
        let mut key: Option<u64> = None;
        let mut flush = |group: &mut Vec<u64>, counts: &mut BucketCounts| -> Result<()> {
            if group.len() >= 2 {
                counts.band_groups += 1;
                compare(group, &rows, opts.exact, threshold, &mut pairs, counts)?;
            }
            group.clear();
            Ok(())
        };
        for row in merge(readers) {
            let [k, id] = row?;
            counts.band_keys += 1;
            if key != Some(k) {
                flush(&mut group, &mut counts)?;
                key = Some(k);
            }
            group.push(id);
        }
        flush(&mut group, &mut counts)?;
    }
    counts.pairs = pairs.finish()?;
    Ok(counts)
}

/// One band group (ids in order): the first of each exact key stays, then every two are
/// compared.
fn compare(
    group: &[u64],
    rows: &RowIndex,
    exact: bool,
    threshold: f64,
    pairs: &mut Sorter<2>,
    counts: &mut BucketCounts,
) -> Result<()> {
    let mut seen = HashSet::new();
    let mut members = Vec::with_capacity(group.len());
    for &id in group {
        let row = rows.get(id)?;
        if exact {
            if let Some(x) = row.exact {
                if !seen.insert(x) {
                    continue;
                }
            }
        }
        let sig = row.signature.ok_or_else(|| {
            Error::Io(pytorrent_io::Error::format(
                rows.describe(id),
                format!("record {id:#x} has band keys but no signature"),
            ))
        })?;
        members.push((id, sig));
    }
    for (b, (later, sig_b)) in members.iter().enumerate() {
        for (earlier, sig_a) in &members[..b] {
            counts.compared += 1;
            if is_near(sig_a, sig_b, threshold) {
                pairs.push([*later, *earlier])?;
            }
        }
    }
    Ok(())
}

/// Rows of the extract tasks' `.rows` files by record id.
pub(super) struct RowIndex {
    /// `[package index, task, first row]`, sorted.
    packages: Vec<[u64; 3]>,
    files: Vec<(PathBuf, File)>,
}

impl RowIndex {
    pub(super) fn open(folders: &[&KeyFolder], scenario: &str) -> Result<RowIndex> {
        let mut packages = Vec::new();
        let mut files = Vec::new();
        for (t, k) in folders.iter().enumerate() {
            for row in SortedReader::<2>::open(&k.path(scenario, "packages"))? {
                let [p, first] = row?;
                packages.push([p, t as u64, first]);
            }
            let p = k.path(scenario, "rows");
            let f = File::open(&p).map_err(|e| pytorrent_io::Error::io(&p, e))?;
            files.push((p, f));
        }
        packages.sort_unstable();
        Ok(RowIndex { packages, files })
    }

    fn describe(&self, id: u64) -> PathBuf {
        self.locate(id)
            .map(|(t, _)| self.files[t].0.clone())
            .unwrap_or_default()
    }

    fn locate(&self, id: u64) -> Option<(usize, u64)> {
        let package = super::keys::package_of(id);
        let ordinal = id & ((1 << super::keys::ORDINAL_BITS) - 1);
        let at = self
            .packages
            .binary_search_by_key(&package, |r| r[0])
            .ok()?;
        let [_, t, first] = self.packages[at];
        Some((t as usize, first + ordinal))
    }

    pub(super) fn get(&self, id: u64) -> Result<KeyRow> {
        let (t, row) = self.locate(id).ok_or_else(|| {
            Error::Io(pytorrent_io::Error::format(
                &self.files[0].0,
                format!("record {id:#x}: its package is in no task's keys"),
            ))
        })?;
        let (path, file) = &self.files[t];
        let mut buf = [0u8; 8 * ROW_WORDS];
        file.read_exact_at(&mut buf, row * (8 * ROW_WORDS) as u64)
            .map_err(|e| pytorrent_io::Error::io(path, e))?;
        let decoded = KeyRow::decode(&buf);
        if decoded.gid != id {
            return Err(Error::Io(pytorrent_io::Error::format(
                path,
                format!("row {row} holds record {:#x}, not {id:#x}", decoded.gid),
            )));
        }
        Ok(decoded)
    }
}
