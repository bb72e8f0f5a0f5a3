//! `corpus dedup` in stages, each an array of tasks with bounded memory, for the whole
//! index: extract tasks write their records' keys ([`keys`]); `buckets` tasks find the
//! duplicate pairs in a share of the key space ([`buckets`]); one `clusters` task decides
//! which records go ([`clusters`]); `write` tasks write each extract task's records less
//! those ([`write`]). Without a stage, `corpus dedup` runs the three in one process.
//!
//! The rule, the same in one process (`extract`'s [`crate::dedup::Deduper`]) and staged: in
//! global input order and within a scenario, a record goes iff it is an exact duplicate of
//! an earlier record (the same code tokens), or a near duplicate of an earlier *kept* record
//! (it shares an LSH band key with it, and their MinHash signatures agree in at least the
//! threshold's share of slots). So the staged form with any number of `buckets` tasks writes
//! the same bytes as the one process, and the records a one-task `extract` writes.
//!
//! Work files live in `OUT/.dedup-work/` (`buckets/task-J-of-M/`, `clusters/`, `write/`),
//! each stage's marked done (with the extract run's fingerprint) when it finished: a stage
//! run again after it finished does nothing, one killed re-runs to the same bytes (every file
//! is written under a temporary name and renamed), and a stage refuses work files of another
//! extract run, naming them.

pub mod buckets;
pub mod clusters;
pub mod keys;
pub mod write;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pytorrent_io::owner::{Owner, Previous};
use pytorrent_io::{Reporter, Tasks};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::journal::Settings;
use crate::run::ExtractReport;

/// The work folder inside the output.
pub const WORK: &str = ".dedup-work";
const DONE: &str = "done.json";

/// One stage of `corpus dedup`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum DedupStage {
    /// Candidate pairs in a share of the key space (`--num-tasks M --task-index J`).
    Buckets,
    /// Which records go (one task).
    Clusters,
    /// One extract task's records less those (`--num-tasks N --task-index I`, N the extract
    /// task count).
    Write,
}

/// `corpus dedup`: the outputs of `extract --num-tasks N` → the same tasks' records with
/// exact and near duplicates dropped across all of them, the first in input order kept,
/// written as `OUT/task-IIIII-of-NNNNN/` corpora.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct MergeConfig {
    /// The --out the extract tasks shared (holding their task-IIIII-of-NNNNN folders), or
    /// the task folders themselves.
    #[cfg_attr(feature = "cli", arg(required = true))]
    pub inputs: Vec<PathBuf>,
    /// Output folder (every stage of one de-duplication is given the same).
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
    /// Run one stage as a task of an array job (buckets, clusters, write); without it, all
    /// three run in this process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "cli", arg(long, value_enum))]
    pub stage: Option<DedupStage>,
    /// Tasks of the stage: any M for buckets, the extract task count for write (or
    /// SLURM_ARRAY_TASK_COUNT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "cli", arg(long))]
    pub num_tasks: Option<usize>,
    /// This task's index, from 0 (or SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "cli", arg(long))]
    pub task_index: Option<usize>,
    /// Also compute corpus statistics of the output.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub stats: bool,
    /// Write into an output folder that another command (or someone) made; only files of the
    /// names this run writes are replaced.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub force: bool,
}

/// What a stage run did.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum StageReport {
    Buckets(buckets::BucketsReport),
    Clusters(clusters::ClustersReport),
    Write(Box<ExtractReport>),
}

impl std::fmt::Display for StageReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StageReport::Buckets(r) => f.write_str(&r.summary()),
            StageReport::Clusters(r) => f.write_str(&r.summary()),
            StageReport::Write(r) => f.write_str(&r.summary()),
        }
    }
}

/// What `corpus dedup` did: one stage, or all of them.
pub enum Outcome {
    Stage {
        report: StageReport,
        /// The stage had finished before: nothing was done.
        already_done: bool,
    },
    All(Box<ExtractReport>),
}

/// An extract task's folder and its journal's settings.
pub struct ExtractTask {
    pub dir: PathBuf,
    pub settings: Settings,
}

impl ExtractTask {
    pub fn keys(&self) -> PathBuf {
        self.dir.join(crate::journal::DIR).join(keys::DIR)
    }

    /// The config the extract run was made with, from the journal.
    pub fn config(&self) -> Result<crate::run::ExtractConfig> {
        serde_json::from_value(self.settings.config.clone())
            .map_err(|e| Error::Usage(format!("{}: the journal's config: {e}", self.dir.display())))
    }
}

/// The extract tasks the inputs name, all of one run, every task once, by task index.
pub fn extract_tasks(inputs: &[PathBuf]) -> Result<Vec<ExtractTask>> {
    let mut tasks = Vec::new();
    for dir in crate::run::task_folders(inputs)? {
        let j = dir.join(crate::journal::DIR);
        let settings = crate::journal::settings(&j).ok_or_else(|| {
            Error::Usage(format!(
                "{}: no extract journal (run `extract --num-tasks N --task-index I` into it)",
                dir.display()
            ))
        })?;
        tasks.push(ExtractTask { dir, settings });
    }
    let Some(first) = tasks.first() else {
        return Err(Error::Usage("give the task output folders".into()));
    };
    let (fingerprint, count, first_dir) = (
        first.settings.fingerprint.clone(),
        first.settings.task.count,
        first.dir.clone(),
    );
    let mut seen = std::collections::BTreeSet::new();
    for t in &tasks {
        if t.settings.fingerprint != fingerprint || t.settings.task.count != count {
            return Err(Error::Usage(format!(
                "{}: made with other settings, inputs or task count than {}",
                t.dir.display(),
                first_dir.display()
            )));
        }
        if !seen.insert(t.settings.task.index) {
            return Err(Error::Usage(format!(
                "task {} is given twice ({})",
                t.settings.task.index,
                t.dir.display()
            )));
        }
    }
    if seen.len() != count {
        let missing: Vec<String> = (0..count)
            .filter(|i| !seen.contains(i))
            .map(|i| i.to_string())
            .collect();
        return Err(Error::Usage(format!(
            "tasks {} of {count} are missing",
            missing.join(", ")
        )));
    }
    tasks.sort_by_key(|t| t.settings.task.index);
    Ok(tasks)
}

/// The `done.json` of a finished stage: what it was made from, and its report.
#[derive(Debug, Serialize, Deserialize)]
struct Done<R> {
    /// The extract run's fingerprint.
    fingerprint: String,
    /// The stage's split (buckets: M; others: what they read).
    tasks: Tasks,
    report: R,
}

/// The report of a stage that finished in `dir` from the same extract run and split, if it
/// did; a `done.json` of another run is an error naming it.
fn finished<R: serde::de::DeserializeOwned>(
    dir: &Path,
    fingerprint: &str,
    tasks: Tasks,
) -> Result<Option<R>> {
    let path = dir.join(DONE);
    let Ok(bytes) = std::fs::read(&path) else {
        return Ok(None);
    };
    let done: Done<R> = serde_json::from_slice(&bytes)
        .map_err(|e| pytorrent_io::Error::format(&path, format!("not a stage record: {e}")))?;
    if done.fingerprint != fingerprint {
        return Err(Error::Usage(format!(
            "{}: made from another extract run (fingerprint {}…, the inputs' is {}…); give \
             another --out, or remove {}",
            path.display(),
            &done.fingerprint[..done.fingerprint.len().min(12)],
            &fingerprint[..fingerprint.len().min(12)],
            dir.display()
        )));
    }
    Ok((done.tasks == tasks).then_some(done.report))
}

/// Whether the stage in `dir` finished, for this extract run (another run's is an error).
fn same_run(dir: &Path, fingerprint: &str) -> Result<bool> {
    let path = dir.join(DONE);
    let Ok(bytes) = std::fs::read(&path) else {
        return Ok(false);
    };
    let done: Done<serde_json::Value> = serde_json::from_slice(&bytes)
        .map_err(|e| pytorrent_io::Error::format(&path, format!("not a stage record: {e}")))?;
    finished::<serde_json::Value>(dir, fingerprint, done.tasks).map(|r| r.is_some())
}

fn mark_done<R: Serialize>(dir: &Path, fingerprint: &str, tasks: Tasks, report: &R) -> Result<()> {
    let done = Done {
        fingerprint: fingerprint.to_string(),
        tasks,
        report,
    };
    let bytes = serde_json::to_vec_pretty(&done).expect("plain JSON");
    pytorrent_io::atomic::write_atomic(dir.join(DONE), &bytes)?;
    Ok(())
}

/// Claims a work folder for a stage, listing the files it will write.
fn claim_work(dir: &Path, stage: &str, files: &[String]) -> Result<Owner> {
    let mut owner = Owner::claim(
        dir,
        &format!("corpus dedup --stage {stage}"),
        false,
        Previous::Remove,
    )?;
    // What a killed run of the stage left under temporary names (sort runs, files not yet
    // renamed) goes too: the stage starts over.
    pytorrent_io::atomic::remove_leftovers(dir, &[], None)?;
    for f in files.iter().map(String::as_str).chain([DONE]) {
        owner.record(&dir.join(f))?;
    }
    Ok(owner)
}

/// Checks the keys of every extract task: present, complete, of this run.
fn key_folders(tasks: &[ExtractTask]) -> Result<Vec<keys::KeyFolder>> {
    tasks
        .iter()
        .map(|t| {
            let k = keys::KeyFolder::open(&t.keys())?;
            if k.meta.fingerprint != t.settings.fingerprint || k.meta.task != t.settings.task {
                return Err(Error::Usage(format!(
                    "{}: keys of another extract run than the journal beside them (run the \
                     task again)",
                    k.dir.display()
                )));
            }
            Ok(k)
        })
        .collect()
}

/// Every scenario any task wrote keys of.
fn scenarios(folders: &[keys::KeyFolder]) -> Vec<String> {
    let mut all: Vec<String> = folders
        .iter()
        .flat_map(|k| k.meta.scenarios.keys().cloned())
        .collect();
    all.sort();
    all.dedup();
    all
}

pub fn dedup(cfg: &MergeConfig, reporter: &dyn Reporter) -> Result<Outcome> {
    pytorrent_corpus::writer::check_folder_out(&cfg.out, "corpus dedup")?;
    pytorrent_corpus::writer::check_apart(&cfg.out, &cfg.inputs)?;
    let tasks = extract_tasks(&cfg.inputs)?;
    let work = cfg.out.join(WORK);
    let Some(stage) = cfg.stage else {
        if cfg.num_tasks.is_some() || cfg.task_index.is_some() {
            return Err(Error::Usage(
                "--num-tasks and --task-index split a stage: give --stage too".into(),
            ));
        }
        return all(cfg, &tasks, &work, reporter).map(|r| Outcome::All(Box::new(r)));
    };
    let split = Tasks::resolve(cfg.num_tasks, cfg.task_index)?;
    let (report, already_done) = match stage {
        DedupStage::Buckets => {
            let (r, done) = buckets::run(&tasks, &work, split, reporter)?;
            (StageReport::Buckets(r), done)
        }
        DedupStage::Clusters => {
            if split != Tasks::ONE {
                return Err(Error::Usage(
                    "the clusters stage is one task: leave out --num-tasks".into(),
                ));
            }
            let (r, done) = clusters::run(&tasks, &work, reporter)?;
            (StageReport::Clusters(r), done)
        }
        DedupStage::Write => {
            let count = tasks.len();
            if split.count != count {
                return Err(Error::Usage(format!(
                    "the write stage has one task per extract task: --num-tasks {count} (not {})",
                    split.count
                )));
            }
            let (r, done) = write::run(cfg, &tasks, &work, split.index, reporter)?;
            (StageReport::Write(Box::new(r)), done)
        }
    };
    Ok(Outcome::Stage {
        report,
        already_done,
    })
}

/// The folders the stages write in the work folder.
const STAGE_DIRS: [&str; 3] = ["buckets", "clusters", "write"];

/// Removes the work folder, which must hold only what the stages write: `OUT` may be any
/// folder, and a `.dedup-work` of someone else's is not this command's to delete.
fn remove_work(work: &Path) -> Result<()> {
    if let Ok(entries) = std::fs::read_dir(work) {
        for e in entries {
            let e = e.map_err(|e| pytorrent_io::Error::io(work, e))?;
            let name = e.file_name();
            if !STAGE_DIRS.iter().any(|s| name == *s) || !e.path().is_dir() {
                return Err(Error::Usage(format!(
                    "{}: holds {}, which corpus dedup does not write; move it away or choose \
                     another --out",
                    work.display(),
                    name.to_string_lossy()
                )));
            }
        }
    }
    crate::run::remove_dir(work)
}

/// The three stages in this process (one buckets task), then the work files go.
fn all(
    cfg: &MergeConfig,
    tasks: &[ExtractTask],
    work: &Path,
    reporter: &dyn Reporter,
) -> Result<ExtractReport> {
    // A fresh start: work files of an earlier staged run (another split) would be mixed in.
    remove_work(work)?;
    buckets::run(tasks, work, Tasks::ONE, reporter)?;
    clusters::run(tasks, work, reporter)?;
    let mut total = ExtractReport {
        out: cfg.out.clone(),
        ok: true,
        ..Default::default()
    };
    let per_task = MergeConfig {
        stats: false,
        ..cfg.clone()
    };
    for i in 0..tasks.len() {
        let (r, _) = write::run(&per_task, tasks, work, i, reporter)?;
        total.absorb(r);
    }
    remove_work(work)?;
    if cfg.stats {
        total.stats = Some(write::stats(cfg, &tasks[0], reporter)?);
    }
    Ok(total)
}

impl ExtractReport {
    /// Adds another part's report (a write task's) to this one.
    pub fn absorb(&mut self, o: ExtractReport) {
        fn add(a: &mut BTreeMap<String, u64>, b: BTreeMap<String, u64>) {
            for (k, v) in b {
                *a.entry(k).or_default() += v;
            }
        }
        fn add2(
            a: &mut BTreeMap<String, BTreeMap<String, u64>>,
            b: BTreeMap<String, BTreeMap<String, u64>>,
        ) {
            for (k, v) in b {
                add(a.entry(k).or_default(), v);
            }
        }
        self.packages += o.packages;
        self.python_files += o.python_files;
        self.files_with_syntax_errors += o.files_with_syntax_errors;
        self.files_decoded_with_replacement += o.files_decoded_with_replacement;
        self.functions += o.functions;
        add2(&mut self.records, o.records);
        add(&mut self.refused_members, o.refused_members);
        add(&mut self.filtered, o.filtered);
        self.opted_out_packages.extend(o.opted_out_packages);
        self.opted_out_files += o.opted_out_files;
        add(&mut self.vendored, o.vendored);
        add(&mut self.vendored_projects, o.vendored_projects);
        add(&mut self.scrubbed, o.scrubbed);
        self.pragma_comments += o.pragma_comments;
        self.nl_control_chars += o.nl_control_chars;
        add2(&mut self.duplicates, o.duplicates);
        self.packages_with_problems.extend(o.packages_with_problems);
        self.failed_packages.extend(o.failed_packages);
        add2(&mut self.functions_by_scenario, o.functions_by_scenario);
        self.ok &= o.ok;
        self.written.extend(o.written);
    }
}

#[cfg(test)]
mod tests {
    use super::keys::{KeyFolder, KeyWriter};
    use super::*;
    use crate::dedup::{DedupOptions, Deduper, Duplicate, Keys, PERMUTATIONS};

    /// A small random generator (xorshift), so the test needs no crate and is the same on
    /// every run.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Records in families: a base signature and variants with some slots changed (near
    /// duplicates when few are), exact copies, and records too short for a signature.
    fn records(rng: &mut Rng, opts: &DedupOptions, n: usize) -> Vec<(u64, Keys)> {
        let mut families: Vec<[u32; PERMUTATIONS]> = Vec::new();
        let mut made: Vec<(u128, Option<[u32; PERMUTATIONS]>)> = Vec::new();
        let mut out = Vec::new();
        let mut package = 0u64;
        for _ in 0..n {
            if rng.below(4) == 0 {
                package += 1;
            }
            let (exact, sig) = match rng.below(10) {
                // An exact copy of an earlier record.
                0 | 1 if !made.is_empty() => made[rng.below(made.len() as u64) as usize],
                // Too short for a shingle.
                2 => (u128::from(rng.next()), None),
                // A variant of an earlier record or of a family's first: 0 to 30 of 128
                // slots changed (variants of variants make chains, where a record is near
                // one that went but not near the one kept).
                3..=7 if !families.is_empty() => {
                    let pick = rng.below(made.len() as u64) as usize;
                    let mut sig = match made[pick].1 {
                        Some(s) => s,
                        None => families[rng.below(families.len() as u64) as usize],
                    };
                    for _ in 0..rng.below(31) {
                        sig[rng.below(PERMUTATIONS as u64) as usize] = rng.next() as u32;
                    }
                    (u128::from(rng.next()) << 1, Some(sig))
                }
                _ => {
                    let sig: [u32; PERMUTATIONS] = std::array::from_fn(|_| rng.next() as u32);
                    families.push(sig);
                    (u128::from(rng.next()) << 1 | 1, Some(sig))
                }
            };
            made.push((exact, sig));
            let keys = Keys::new(
                opts.exact.then_some(exact),
                sig.filter(|_| opts.near_threshold.is_some()),
            );
            out.push((package, keys));
        }
        out
    }

    #[test]
    fn the_staged_rule_drops_what_one_process_drops_for_any_split() {
        let cases = [
            DedupOptions::default(),
            DedupOptions {
                exact: false,
                ..Default::default()
            },
            DedupOptions {
                near_threshold: None,
                ..Default::default()
            },
            DedupOptions {
                near_threshold: Some(0.7),
                ..Default::default()
            },
        ];
        for (c, opts) in cases.iter().enumerate() {
            let mut rng = Rng(0x9E37_79B9 + c as u64);
            let recs = records(&mut rng, opts, 3000);
            // One process, in input order.
            let mut d = Deduper::new(opts.clone());
            let mut ordinal = BTreeMap::new();
            let mut want = Vec::new();
            for (package, keys) in &recs {
                let o = ordinal.entry(*package).or_insert(0u64);
                let id = keys::gid(*package, *o);
                *o += 1;
                if let Some(kind) = d.check_keys(keys.clone()) {
                    want.push([id, (kind == Duplicate::Near) as u64]);
                }
            }
            assert!(
                want.iter().any(|r| r[1] == 1) || opts.near_threshold.is_none(),
                "case {c}: near duplicates are among them"
            );
            // Three extract tasks, packages dealt round the tasks.
            let dir = tempfile::tempdir().unwrap();
            let mut folders = Vec::new();
            for t in 0..3usize {
                let kd = dir.path().join(format!("keys{t}"));
                let task = Tasks { count: 3, index: t };
                let mut w = KeyWriter::create(&kd, "fp", task, opts).unwrap();
                for (package, keys) in recs.iter().filter(|(p, _)| *p as usize % 3 == t) {
                    w.record(*package, "docstrings", keys).unwrap();
                }
                w.finish().unwrap();
                folders.push(KeyFolder::open(&kd).unwrap());
            }
            for m in [1usize, 2, 5] {
                let work = dir.path().join(format!("work{m}"));
                let mut dirs = Vec::new();
                for j in 0..m {
                    let d = work.join(format!("b{j}"));
                    std::fs::create_dir_all(&d).unwrap();
                    let split = Tasks { count: m, index: j };
                    buckets::scenario(&folders, "docstrings", opts, split, &d).unwrap();
                    dirs.push(d);
                }
                let out = work.join("clusters");
                std::fs::create_dir_all(&out).unwrap();
                let refs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
                clusters::scenario(&refs, "docstrings", &out).unwrap();
                let got: Vec<[u64; 2]> =
                    pytorrent_io::sorted::SortedReader::<2>::open(&out.join("docstrings.dropped"))
                        .unwrap()
                        .collect::<pytorrent_io::Result<_>>()
                        .unwrap();
                assert_eq!(got, want, "case {c}, {m} buckets tasks");
            }
        }
    }
}
