//! The de-duplication keys an extract task writes beside its journal, for the staged
//! `corpus dedup`: compact, binary, sorted, one set of files per scenario.
//!
//! A record is named by its global id, `package index << 24 | ordinal`, where the ordinal
//! counts the package's records of that scenario (all of them, duplicates within the task
//! included): ids order records as one process meets them. Files, little-endian `u64` words:
//!
//! - `SCENARIO.rows`: one row of [`ROW_WORDS`] per record, in id order: id, exact key (high,
//!   low), flags (1: has an exact key, 2: has a signature), the 128 MinHash values two to a
//!   word. Read at random by row number.
//! - `SCENARIO.packages`: `[package index, first row]` of every package with a record.
//! - `SCENARIO.exact`: `[exact high, exact low, id]`, sorted.
//! - `SCENARIO.bands`: `[band key, id]`, sorted (see [`crate::dedup::band_keys`]).
//! - `keys.json` ([`KeysMeta`]), written last: the files are complete when it is there.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use pytorrent_io::sorted::{SortedWriter, Sorter};
use pytorrent_io::AtomicFile;
use serde::{Deserialize, Serialize};

use crate::dedup::{band_keys, DedupOptions, Keys, PERMUTATIONS};
use crate::error::{Error, Result};

/// The keys folder inside an extract task's journal.
pub const DIR: &str = "keys";
pub const META: &str = "keys.json";
/// Words of a `.rows` row.
pub const ROW_WORDS: usize = 4 + PERMUTATIONS / 2;
/// Bits of a global id left for the ordinal within a package.
pub const ORDINAL_BITS: u32 = 24;

pub const HAS_EXACT: u64 = 1;
pub const HAS_SIGNATURE: u64 = 2;

/// Memory each sorter may hold before it spills a run to disk.
const SORT_BUDGET: usize = 32 << 20;

/// A record's global id.
pub fn gid(package: u64, ordinal: u64) -> u64 {
    (package << ORDINAL_BITS) | ordinal
}

pub fn package_of(gid: u64) -> u64 {
    gid >> ORDINAL_BITS
}

/// What `keys.json` says of the files beside it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeysMeta {
    /// The extract run's fingerprint (the journal's).
    pub fingerprint: String,
    pub task: pytorrent_io::Tasks,
    /// Rows of each scenario's files.
    pub scenarios: BTreeMap<String, ScenarioCounts>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScenarioCounts {
    pub records: u64,
    pub packages: u64,
    pub exact: u64,
    pub bands: u64,
}

struct ScenarioKeys {
    rows: BufWriter<AtomicFile>,
    rows_path: PathBuf,
    packages: SortedWriter<2>,
    exact: Sorter<3>,
    bands: Sorter<2>,
    counts: ScenarioCounts,
    /// The package whose records come now, and how many of them came.
    package: Option<u64>,
    ordinal: u64,
}

/// Writes one task's key files as its records come, in input order.
pub struct KeyWriter {
    dir: PathBuf,
    opts: DedupOptions,
    banding: (usize, usize),
    meta: KeysMeta,
    scenarios: BTreeMap<&'static str, ScenarioKeys>,
}

pub fn path(dir: &Path, scenario: &str, kind: &str) -> PathBuf {
    dir.join(format!("{scenario}.{kind}"))
}

impl KeyWriter {
    /// Starts over in `dir` (what an earlier run left there goes).
    pub fn create(
        dir: &Path,
        fingerprint: &str,
        task: pytorrent_io::Tasks,
        opts: &DedupOptions,
    ) -> Result<KeyWriter> {
        crate::run::remove_dir(dir)?;
        std::fs::create_dir_all(dir).map_err(|e| pytorrent_io::Error::io(dir, e))?;
        Ok(KeyWriter {
            dir: dir.to_path_buf(),
            opts: opts.clone(),
            banding: opts.banding(),
            meta: KeysMeta {
                fingerprint: fingerprint.to_string(),
                task,
                scenarios: BTreeMap::new(),
            },
            scenarios: BTreeMap::new(),
        })
    }

    /// One record of package `package` (records come in input order).
    pub fn record(&mut self, package: u64, scenario: &'static str, keys: &Keys) -> Result<()> {
        if !self.scenarios.contains_key(scenario) {
            let rows_path = path(&self.dir, scenario, "rows");
            let s = ScenarioKeys {
                rows: BufWriter::with_capacity(1 << 20, AtomicFile::create(&rows_path)?),
                rows_path,
                packages: SortedWriter::create(&path(&self.dir, scenario, "packages"))?,
                exact: Sorter::new(path(&self.dir, scenario, "exact"), SORT_BUDGET, false),
                bands: Sorter::new(path(&self.dir, scenario, "bands"), SORT_BUDGET, false),
                counts: ScenarioCounts::default(),
                package: None,
                ordinal: 0,
            };
            self.scenarios.insert(scenario, s);
        }
        let s = self.scenarios.get_mut(scenario).expect("inserted");
        if s.package != Some(package) {
            s.package = Some(package);
            s.ordinal = 0;
            s.packages.push([package, s.counts.records])?;
            s.counts.packages += 1;
        }
        if s.ordinal >> ORDINAL_BITS != 0 {
            return Err(Error::Usage(format!(
                "package {package} has more than {} records of scenario {scenario}: more \
                 than the staged de-duplication can number",
                1u64 << ORDINAL_BITS
            )));
        }
        let id = gid(package, s.ordinal);
        s.ordinal += 1;
        let mut row = [0u64; ROW_WORDS];
        row[0] = id;
        if let Some(x) = keys.exact() {
            row[1] = (x >> 64) as u64;
            row[2] = x as u64;
            row[3] |= HAS_EXACT;
            s.exact.push([row[1], row[2], id])?;
            s.counts.exact += 1;
        }
        if let Some(sig) = keys.signature() {
            row[3] |= HAS_SIGNATURE;
            for (i, pair) in sig.chunks(2).enumerate() {
                row[4 + i] = u64::from(pair[0]) | (u64::from(pair[1]) << 32);
            }
            if self.opts.near_threshold.is_some() {
                let (bands, rows) = self.banding;
                for key in band_keys(sig, bands, rows) {
                    s.bands.push([key, id])?;
                    s.counts.bands += 1;
                }
            }
        }
        for w in row {
            s.rows
                .write_all(&w.to_le_bytes())
                .map_err(|e| pytorrent_io::Error::io(&s.rows_path, e))?;
        }
        s.counts.records += 1;
        Ok(())
    }

    /// Sorts and closes the files, then writes `keys.json`.
    pub fn finish(mut self) -> Result<KeysMeta> {
        for (name, s) in std::mem::take(&mut self.scenarios) {
            let file = s
                .rows
                .into_inner()
                .map_err(|e| pytorrent_io::Error::io(&s.rows_path, e.into_error()))?;
            file.commit()?;
            s.packages.finish()?;
            s.exact.finish()?;
            s.bands.finish()?;
            self.meta.scenarios.insert(name.to_string(), s.counts);
        }
        let bytes = serde_json::to_vec_pretty(&self.meta).expect("plain JSON");
        pytorrent_io::atomic::write_atomic(self.dir.join(META), &bytes)?;
        Ok(self.meta)
    }
}

/// One row of a `.rows` file, decoded.
#[derive(Debug, Clone)]
pub struct KeyRow {
    pub gid: u64,
    pub exact: Option<u128>,
    pub signature: Option<[u32; PERMUTATIONS]>,
}

impl KeyRow {
    pub fn decode(bytes: &[u8]) -> KeyRow {
        let w = |i: usize| u64::from_le_bytes(bytes[8 * i..8 * i + 8].try_into().unwrap());
        let flags = w(3);
        KeyRow {
            gid: w(0),
            exact: (flags & HAS_EXACT != 0).then(|| (u128::from(w(1)) << 64) | u128::from(w(2))),
            signature: (flags & HAS_SIGNATURE != 0).then(|| {
                std::array::from_fn(|i| {
                    let word = w(4 + i / 2);
                    if i % 2 == 0 {
                        word as u32
                    } else {
                        (word >> 32) as u32
                    }
                })
            }),
        }
    }
}

/// A task's key folder, checked: `keys.json` read, and every file the size it says.
#[derive(Debug, Clone)]
pub struct KeyFolder {
    pub dir: PathBuf,
    pub meta: KeysMeta,
}

impl KeyFolder {
    pub fn open(dir: &Path) -> Result<KeyFolder> {
        let meta_path = dir.join(META);
        let text = std::fs::read(&meta_path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::Usage(format!(
                    "{}: no de-duplication keys (the extract task did not finish, or was run \
                     by a version that wrote none: run it again)",
                    dir.display()
                ))
            } else {
                pytorrent_io::Error::io(&meta_path, e).into()
            }
        })?;
        let meta: KeysMeta = serde_json::from_slice(&text).map_err(|e| {
            pytorrent_io::Error::format(&meta_path, format!("not a keys description: {e}"))
        })?;
        for (scenario, c) in &meta.scenarios {
            for (kind, rows, words) in [
                ("rows", c.records, ROW_WORDS as u64),
                ("packages", c.packages, 2),
                ("exact", c.exact, 3),
                ("bands", c.bands, 2),
            ] {
                let p = path(dir, scenario, kind);
                let len = std::fs::metadata(&p)
                    .map_err(|e| pytorrent_io::Error::io(&p, e))?
                    .len();
                if Some(len) != rows.checked_mul(8 * words) {
                    return Err(pytorrent_io::Error::format(
                        &p,
                        format!(
                            "{len} bytes where {} says {rows} rows of {} bytes",
                            META,
                            8 * words
                        ),
                    )
                    .into());
                }
            }
        }
        Ok(KeyFolder {
            dir: dir.to_path_buf(),
            meta,
        })
    }

    pub fn path(&self, scenario: &str, kind: &str) -> PathBuf {
        path(&self.dir, scenario, kind)
    }
}
