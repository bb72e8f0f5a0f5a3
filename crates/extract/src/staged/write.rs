//! The write stage: task I replays extract task I's journal through the writer, leaving out
//! the records the clusters stage dropped, into `OUT/task-IIIII-of-NNNNN/`: that task's
//! share of the de-duplicated corpus, in its input order. Memory: the writer's, and a cursor
//! into each scenario's sorted `dropped` file.

use std::collections::BTreeMap;
use std::iter::Peekable;
use std::path::{Path, PathBuf};

use pytorrent_io::owner::{Owner, Previous};
use pytorrent_io::sorted::SortedReader;
use pytorrent_io::{Reporter, Unit};

use super::{finished, mark_done, ExtractTask, MergeConfig};
use crate::dedup::Duplicate;
use crate::error::{Error, Result};
use crate::run::{Decide, ExtractConfig, ExtractReport, Prepared, Sink};

/// The clusters stage's decisions, read in id order as the records come.
pub struct Dropped {
    scenarios: BTreeMap<String, (PathBuf, Peekable<SortedReader<2>>)>,
}

impl Dropped {
    pub fn open(clusters: &Path) -> Result<Dropped> {
        let mut scenarios = BTreeMap::new();
        let rd = std::fs::read_dir(clusters).map_err(|e| pytorrent_io::Error::io(clusters, e))?;
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(scenario) = name.strip_suffix(".dropped") {
                let p = e.path();
                let r = SortedReader::<2>::open(&p)?.peekable();
                scenarios.insert(scenario.to_string(), (p, r));
            }
        }
        Ok(Dropped { scenarios })
    }

    /// Whether record `id` of `scenario` goes, and as what. Ids come in increasing order.
    pub fn kind(&mut self, scenario: &str, id: u64) -> Result<Option<Duplicate>> {
        let Some((path, r)) = self.scenarios.get_mut(scenario) else {
            return Ok(None);
        };
        loop {
            match r.peek() {
                Some(Ok([d, _])) if *d < id => {
                    r.next();
                }
                Some(Ok([d, kind])) if *d == id => {
                    let kind = match *kind {
                        super::clusters::EXACT => Duplicate::Exact,
                        super::clusters::NEAR => Duplicate::Near,
                        other => {
                            return Err(Error::Io(pytorrent_io::Error::format(
                                path.as_path(),
                                format!("record {id:#x}: unknown kind {other}"),
                            )))
                        }
                    };
                    r.next();
                    return Ok(Some(kind));
                }
                Some(Ok(_)) | None => return Ok(None),
                Some(Err(_)) => {
                    return Err(r.next().expect("peeked").expect_err("an error").into());
                }
            }
        }
    }
}

fn done_dir(work: &Path) -> PathBuf {
    work.join("write")
}

/// The config the extract tasks ran with, writing to `out` as one task of them.
fn task_config(task: &ExtractTask, out: &Path, stats: bool) -> Result<ExtractConfig> {
    let mut cfg = task.config()?;
    cfg.out = out.to_path_buf();
    cfg.stats = stats;
    cfg.num_tasks = None;
    cfg.task_index = None;
    Ok(cfg)
}

pub fn run(
    cfg: &MergeConfig,
    tasks: &[ExtractTask],
    work: &Path,
    index: usize,
    reporter: &dyn Reporter,
) -> Result<(ExtractReport, bool)> {
    let task = &tasks[index];
    let fingerprint = &task.settings.fingerprint;
    let clusters = super::clusters::dir(work);
    if !super::same_run(&clusters, fingerprint)? {
        return Err(Error::Usage(format!(
            "{}: the clusters stage has not finished (run `corpus dedup --stage clusters` first)",
            clusters.display()
        )));
    }
    let marker = done_dir(work).join(task.settings.task.dir_name());
    let split = task.settings.task;
    let out = split.root(&cfg.out);
    if let Some(mut r) = finished::<ExtractReport>(&marker, fingerprint, split)? {
        reporter.log(&format!(
            "{}: this stage had finished: nothing to do",
            out.display()
        ));
        r.out = out;
        return Ok((r, true));
    }
    let task_cfg = task_config(task, &out, cfg.stats)?;
    let owner = Owner::claim(&out, "extract", cfg.force, Previous::Remove)?;
    let mut sink = Sink::deciding(&task_cfg, owner, Decide::Dropped(Dropped::open(&clusters)?))?;
    let mut report = ExtractReport {
        out: out.clone(),
        ..Default::default()
    };
    let journal = task.dir.join(crate::journal::DIR);
    reporter.begin(
        &format!("write {}", split.dir_name()),
        Unit::Items("packages"),
        None,
    );
    // A record at a time: a package of any size is never held whole.
    crate::journal::replay(&journal, &mut |event| {
        use crate::journal::Event;
        match event {
            Event::Begin(index) => sink.begin_package(index),
            Event::Record(r) => {
                sink.write(vec![Prepared::from_stored(r, &journal)?], &mut report)?
            }
            Event::End(package) => {
                sink.end_package(package, &mut report);
                reporter.advance(1);
            }
        }
        Ok(())
    })?;
    reporter.end();
    sink.finish(&task_cfg, &mut report, reporter)?;
    report.task = split;
    report.ok =
        report.failed_packages.is_empty() || task_cfg.on_error == pytorrent_corpus::OnError::Skip;
    if cfg.stats {
        report.stats = Some(crate::run::output_stats(&task_cfg, reporter)?);
    }
    std::fs::create_dir_all(&marker).map_err(|e| pytorrent_io::Error::io(&marker, e))?;
    mark_done(&marker, fingerprint, split, &report)?;
    Ok((report, false))
}

/// Statistics of the whole output (every task's folder).
pub fn stats(
    cfg: &MergeConfig,
    task: &ExtractTask,
    reporter: &dyn Reporter,
) -> Result<pytorrent_corpus::stats::CorpusStats> {
    crate::run::output_stats(&task_config(task, &cfg.out, true)?, reporter)
}
