//! Runs the planned stages in order: each is skipped when its fingerprint matches its stamp,
//! else run (atomically, or resumed), then stamped; finally the HTML report is written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use pytorrent_corpus::{Partition, Partitions};
use pytorrent_io::stage::Stage as PStage;
use pytorrent_io::Reporter;
use serde::Serialize;

use crate::config::PipelineFile;
use crate::fingerprint::{stage_fingerprint, Hasher};
use crate::plan::{plan, Job, Task};
use crate::reports::{ClozeStageReport, Compression, CompressionByPartition, TokenizerReport};
use crate::stage::Stage;
use crate::state::{self, Stamp};
use crate::{Error, Result};

/// How to run a pipeline file.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The tool's version (with its commit): part of every fingerprint.
    pub tool: String,
    /// The command line, shown in the report.
    pub command: String,
    /// Run from this stage on (earlier stages' outputs are used as they are).
    pub from: Option<Stage>,
    /// Run up to and including this stage.
    pub until: Option<Stage>,
    /// Run only these stages.
    pub only: Vec<Stage>,
    /// Run the selected stages even when they are up to date.
    pub force: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Ran from the start.
    Ran,
    /// Continued an interrupted run of the same settings.
    Resumed,
    /// Its fingerprint matched: not run.
    UpToDate,
    /// Left out by --from / --until / --only.
    NotSelected,
    /// Stopped early on purpose (pretrain's `stop_after`): the next run continues it.
    Paused,
    /// Not run because a stage before it paused.
    Waiting,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Ran => "ran",
            Status::Resumed => "resumed",
            Status::UpToDate => "up to date",
            Status::NotSelected => "not selected",
            Status::Paused => "paused",
            Status::Waiting => "waiting",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StageOutcome {
    pub stage: Stage,
    pub status: Status,
    /// The fingerprint of its output as it now stands (none: it never ran).
    pub fingerprint: Option<String>,
    /// Seconds this run spent on it (0 when not run), and what its last run took.
    pub seconds: f64,
    pub last_run_seconds: Option<f64>,
    pub output: Option<PathBuf>,
    /// A not-selected stage whose settings or inputs changed since its output was made.
    pub stale: bool,
}

impl Serialize for Stage {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub config: PathBuf,
    pub out: PathBuf,
    pub report: PathBuf,
    pub stages: Vec<StageOutcome>,
    pub seconds: f64,
    /// Stages that ran to the end with a failure their command exits 1 for (packages that
    /// could not be read or fetched, a check below its minimum): the run exits 1.
    pub failed: Vec<String>,
    /// Each stage's headline figures (its output, up to date or made now).
    pub results: Vec<crate::headlines::Headline>,
}

impl std::fmt::Display for RunReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{:<10} {:<13} {:>9}  fingerprint",
            "stage", "status", "seconds"
        )?;
        for s in &self.stages {
            let fp = s.fingerprint.as_deref().map_or("-", |f| &f[..12]);
            writeln!(
                f,
                "{:<10} {:<13} {:>9.1}  {fp}{}",
                s.stage.name(),
                s.status.label(),
                s.seconds,
                if s.stale {
                    "  (stale: settings or inputs changed)"
                } else {
                    ""
                }
            )?;
        }
        if !self.results.is_empty() {
            writeln!(f, "results:")?;
            for h in &self.results {
                writeln!(f, "  {:<10} {}", h.stage, h.text)?;
            }
        }
        writeln!(
            f,
            "total {:.1} s; report: {}",
            self.seconds,
            self.report.display()
        )?;
        for fail in &self.failed {
            writeln!(f, "FAILED: {fail}")?;
        }
        Ok(())
    }
}

/// Runs a pipeline file.
pub fn run(file: &PipelineFile, opts: &RunOptions, reporter: &dyn Reporter) -> Result<RunReport> {
    let started = Instant::now();
    let jobs = plan(file)?;
    let selected = selection(file, opts)?;
    state::claim_run_folder(&file.out)?;
    std::fs::create_dir_all(state::stages_dir(&file.out))
        .map_err(|e| pytorrent_io::Error::io(&file.out, e))?;
    let _lock = lock_run_folder(&file.out)?;
    let hasher = Hasher::open(state::stages_dir(&file.out).join("input-digests.json"));
    let placeholders = Placeholders::new(file);
    // The fingerprint of each stage's output as it stands on disk after its turn.
    let mut effective: BTreeMap<Stage, String> = BTreeMap::new();
    let mut outcomes = Vec::new();
    let mut failed = Vec::new();
    let total = jobs.len();
    let mut paused = false;
    for (i, job) in jobs.iter().enumerate() {
        if paused {
            outcomes.push(StageOutcome {
                stage: job.stage,
                status: Status::Waiting,
                fingerprint: None,
                seconds: 0.0,
                last_run_seconds: None,
                output: job.output.clone(),
                stale: false,
            });
            continue;
        }
        let mut upstream = BTreeMap::new();
        for u in &job.upstream {
            let Some(fp) = effective.get(u) else {
                return Err(Error::Usage(format!(
                    "stage {} reads the output of {u}, which has not run yet: run without \
                     --from/--only, or with --from {u}",
                    job.stage
                )));
            };
            upstream.insert(u.name().to_string(), fp.clone());
        }
        let mut inputs = BTreeMap::new();
        for p in &job.inputs {
            inputs.insert(
                placeholders.apply(&p.display().to_string()),
                hasher.digest(p)?,
            );
        }
        let settings = placeholders.apply_json(&fingerprinted(job.stage, &job.settings));
        let fp = stage_fingerprint(&opts.tool, job.stage.name(), &settings, &inputs, &upstream);
        let stamp = state::read_stamp(&file.out, job.stage);
        let output_present = job.output.as_ref().is_none_or(|o| o.exists());
        let up_to_date = output_present && stamp.as_ref().is_some_and(|s| s.fingerprint == fp);
        let head = format!("[{}/{total}] {}", i + 1, job.stage);
        let mut outcome = StageOutcome {
            stage: job.stage,
            status: Status::UpToDate,
            fingerprint: Some(fp.clone()),
            seconds: 0.0,
            last_run_seconds: stamp.as_ref().map(|s| s.seconds),
            output: job.output.clone(),
            stale: false,
        };
        if !selected.contains(&job.stage) {
            outcome.status = Status::NotSelected;
            match stamp.as_ref().filter(|_| output_present) {
                Some(s) => {
                    outcome.fingerprint = Some(s.fingerprint.clone());
                    outcome.stale = s.fingerprint != fp;
                    effective.insert(job.stage, s.fingerprint.clone());
                    if outcome.stale {
                        reporter.warn(&format!(
                            "{head}: not selected, and its output is stale (settings or inputs \
                             changed); later stages read it as it is"
                        ));
                    }
                }
                None => outcome.fingerprint = None,
            }
            reporter.log(&format!("{head}: not selected"));
            outcomes.push(outcome);
            continue;
        }
        if up_to_date && !opts.force {
            reporter.log(&format!("{head}: up to date ({})", &fp[..12]));
            effective.insert(job.stage, fp);
            outcomes.push(outcome);
            continue;
        }
        reporter.log(&format!("{head}: running"));
        let t0 = Instant::now();
        let (ran, resumed) = execute(job, &fp, &file.out, reporter)?;
        let report = ran.report;
        let seconds = t0.elapsed().as_secs_f64();
        if ran.paused {
            // A planned stop (`stop_after`): no stamp, the pending mark stays, and the next
            // run continues from the last checkpoint.
            reporter.log(&format!(
                "{head}: paused at step {} of {}: run again to continue",
                report["steps"], report["max_steps"]
            ));
            outcome.status = Status::Paused;
            outcome.seconds = seconds;
            outcomes.push(outcome);
            paused = true;
            continue;
        }
        if let Some(why) = ran.gate {
            failed.push(format!("{}: {why}", job.stage));
        }
        state::write_stamp(
            &file.out,
            job.stage,
            &Stamp {
                stage: job.stage.name().into(),
                fingerprint: fp.clone(),
                tool: opts.tool.clone(),
                settings: job.settings.clone(),
                inputs: inputs.clone(),
                upstream: upstream.clone(),
                output: job.output.clone(),
                finished: pytorrent_corpus::report::now_utc(),
                seconds,
                report,
            },
        )?;
        reporter.log(&format!("{head}: done in {seconds:.1} s"));
        outcome.status = if resumed {
            Status::Resumed
        } else {
            Status::Ran
        };
        outcome.seconds = seconds;
        outcome.last_run_seconds = Some(seconds);
        effective.insert(job.stage, fp);
        outcomes.push(outcome);
    }
    hasher.save()?;
    let mut report = RunReport {
        config: file.path.clone(),
        out: file.out.clone(),
        report: file.report.clone(),
        stages: outcomes,
        seconds: 0.0,
        failed,
        results: Vec::new(),
    };
    let stamps: Vec<_> = jobs
        .iter()
        .filter_map(|j| state::read_stamp(&file.out, j.stage).map(|s| (j.stage, s)))
        .collect();
    report.results = crate::headlines::of(&stamps);
    let html = crate::html::render(file, opts, &jobs, &stamps, &report)?;
    pytorrent_io::atomic::write_atomic(&file.report, html.as_bytes())?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// One run at a time per run folder: two would write the same outputs and stamps. The lock
/// is the operating system's (flock), so a killed run leaves none behind.
fn lock_run_folder(out: &Path) -> Result<std::fs::File> {
    let path = state::stages_dir(out).join(".lock");
    let f = std::fs::File::create(&path).map_err(|e| pytorrent_io::Error::io(&path, e))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Usage(format!(
            "another `pytorrent run` is using {} (lock {}): wait for it, or give --out",
            out.display(),
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(pytorrent_io::Error::io(&path, e).into()),
    }
}

/// The settings that decide a stage's output: all but those its `Stage` impl names as
/// deciding only how the output is reached (a resumed run is bitwise the uninterrupted one;
/// a download's threads and rate decide only how fast), so changing one continues a run
/// rather than starting it over.
fn fingerprinted(stage: Stage, settings: &serde_json::Value) -> serde_json::Value {
    let mut s = settings.clone();
    if let Some(m) = s.as_object_mut() {
        for key in stage.traits().unhashed {
            m.remove(*key);
        }
    }
    s
}

/// The stages --from / --until / --only select.
fn selection(file: &PipelineFile, opts: &RunOptions) -> Result<Vec<Stage>> {
    let present = file.stages();
    for s in opts.only.iter().chain(&opts.from).chain(&opts.until) {
        if !present.contains(s) {
            return Err(Error::Usage(format!(
                "{}: no [{}] stage in {}",
                s,
                s.section(),
                file.path.display()
            )));
        }
    }
    if !opts.only.is_empty() && (opts.from.is_some() || opts.until.is_some()) {
        return Err(Error::Usage(
            "--only cannot be combined with --from or --until".into(),
        ));
    }
    Ok(present
        .into_iter()
        .filter(|s| opts.only.is_empty() || opts.only.contains(s))
        .filter(|s| opts.from.is_none_or(|f| *s >= f))
        .filter(|s| opts.until.is_none_or(|u| *s <= u))
        .collect())
}

/// The run and config folders written as `$OUT` and `$CONFIG` in fingerprinted settings.
struct Placeholders {
    out: String,
    dir: String,
}

impl Placeholders {
    fn new(file: &PipelineFile) -> Placeholders {
        Placeholders {
            out: file.out.display().to_string(),
            dir: file.dir.display().to_string(),
        }
    }

    fn apply(&self, s: &str) -> String {
        // The run folder first: it often lies inside the config folder.
        s.replace(&self.out, "$OUT").replace(&self.dir, "$CONFIG")
    }

    fn apply_json(&self, v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::String(s) => serde_json::Value::String(self.apply(s)),
            serde_json::Value::Array(a) => {
                serde_json::Value::Array(a.iter().map(|x| self.apply_json(x)).collect())
            }
            serde_json::Value::Object(m) => serde_json::Value::Object(
                m.iter()
                    .map(|(k, x)| (k.clone(), self.apply_json(x)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

fn json<T: Serialize>(x: &T) -> serde_json::Value {
    serde_json::to_value(x).expect("reports serialise")
}

/// Runs one stage; returns its report and whether it continued an interrupted run.
fn execute(job: &Job, fp: &str, out: &Path, reporter: &dyn Reporter) -> Result<(Ran, bool)> {
    let stage = job.stage;
    // Extract continues a killed run from its journal in the temporary folder.
    let same_pending = state::read_pending(out, stage).is_some_and(|p| p.fingerprint == fp);
    if let Some(output) = &job.output {
        // Only what this pipeline wrote is replaced; the pending record, written before the
        // old stamp goes, keeps saying so if this run is killed.
        refuse_foreign(out, stage, output)?;
        state::write_pending(out, stage, fp)?;
    }
    // An interrupted run must not leave the old stamp vouching for a half-written output.
    state::clear_stamp(out, stage)?;
    let mut resumed = false;
    if stage.resumable() {
        let output = job
            .output
            .as_ref()
            .expect("resumable stages write a folder");
        if same_pending && output.exists() {
            resumed = true;
            reporter.log(&format!("{stage}: continuing the interrupted run"));
        } else if stage == Stage::Fetch {
            // Never thrown away: fetch keeps every archive whose digest still matches and
            // downloads only what is missing, whatever changed.
            resumed = output.exists();
        } else {
            remove_dir(output)?;
        }
    }
    let ran = match &job.task {
        Task::Fetch(c) => run_stage::<pytorrent_fetch::Fetch>(c, stage, reporter)?,
        Task::Extract(c) => {
            let mut c = c.clone();
            let partial = partial_of(&c.out);
            c.resume = same_pending && partial.join(pytorrent_extract::journal::DIR).is_dir();
            if c.resume {
                resumed = true;
                reporter.log(&format!("{stage}: continuing the interrupted run"));
            }
            let keep = c.resume;
            atomically(&c.out.clone(), keep, |partial| {
                c.out = partial.to_path_buf();
                run_stage::<pytorrent_extract::Extract>(&c, stage, reporter)
            })?
        }
        Task::Stats(c) => run_stage::<pytorrent_corpus::stats::Stats>(c, stage, reporter)?,
        Task::Tokenizer { train, eval } => {
            let mut train = train.clone();
            let trained = atomically(&train.out.clone(), false, |partial| {
                train.out = partial.to_path_buf();
                run_stage::<pytorrent_tokenizer::train_corpus::Train>(&train, stage, reporter)
            })?;
            let measure = |p: Partition| -> Result<Compression> {
                let mut e = eval.clone();
                e.partition = Partitions::only(p);
                // A small corpus can leave a partition empty: nothing to measure there.
                match <pytorrent_tokenizer::eval::Eval as PStage>::run(&e, reporter) {
                    Ok(r) => Ok(Compression::Measured(r)),
                    Err(pytorrent_tokenizer::Error::NoTexts(why)) => Ok(Compression::Skipped {
                        texts: 0,
                        skipped: why,
                    }),
                    Err(e) => Err(Error::stage(stage, &e)),
                }
            };
            let compression = CompressionByPartition {
                train: measure(Partition::Train)?,
                valid: measure(Partition::Valid)?,
                test: measure(Partition::Test)?,
            };
            Ran::plain(json(&TokenizerReport {
                train: serde_json::from_value(trained.report).expect("a train report"),
                compression,
            }))
        }
        Task::Pack(c) => {
            let mut c = c.clone();
            <pytorrent_pack::Pack as PStage>::set_resume(&mut c, resumed);
            run_stage::<pytorrent_pack::Pack>(&c, stage, reporter)?
        }
        Task::Pretrain(c) => {
            let mut c = c.clone();
            <pytorrent_pretrain::Pretrain as PStage>::set_resume(&mut c, resumed);
            run_stage::<pytorrent_pretrain::Pretrain>(&c, stage, reporter)?
        }
        Task::Finetune(c) => {
            let mut c = c.clone();
            <pytorrent_finetune::Finetune as PStage>::set_resume(&mut c, resumed);
            run_stage::<pytorrent_finetune::Finetune>(&c, stage, reporter)?
        }
        Task::FillMask(c) => {
            run_stage::<pytorrent_eval::fill_mask::FillMaskEval>(c, stage, reporter)?
        }
        Task::Cloze { make, score } => {
            let made = match make {
                Some(m) => {
                    let mut m = m.clone();
                    let dir = m.out.clone();
                    let ran = atomically(&dir, false, |partial| {
                        m.out = partial.to_path_buf();
                        run_stage::<pytorrent_eval::cloze::ClozeMake>(&m, stage, reporter)
                    })?;
                    Some(serde_json::from_value(ran.report).expect("a cloze make report"))
                }
                None => {
                    let dir = job.output.as_ref().expect("cloze writes a folder");
                    std::fs::create_dir_all(dir).map_err(|e| pytorrent_io::Error::io(dir, e))?;
                    None
                }
            };
            let score = <pytorrent_eval::cloze::Cloze as PStage>::run(score, reporter)
                .map_err(|e| Error::stage(stage, &e))?;
            Ran::plain(json(&ClozeStageReport { make: made, score }))
        }
        Task::Retrieval(c) => {
            run_stage::<pytorrent_eval::retrieval::Retrieval>(c, stage, reporter)?
        }
        Task::Overlap(c) => run_stage::<pytorrent_eval::overlap::Overlap>(c, stage, reporter)?,
    };
    Ok((ran, resumed))
}

/// What running a stage gave: its report as the pipeline keeps it, and what the stage's
/// `Stage` impl read from it.
pub(crate) struct Ran {
    pub report: serde_json::Value,
    /// A planned stop: the next run continues the stage.
    pub paused: bool,
    /// Why the stage's gate failed, if it did.
    pub gate: Option<String>,
}

impl Ran {
    fn plain(report: serde_json::Value) -> Ran {
        Ran {
            report,
            paused: false,
            gate: None,
        }
    }
}

/// Runs a stage through its `Stage` impl.
fn run_stage<S: PStage>(config: &S::Config, stage: Stage, reporter: &dyn Reporter) -> Result<Ran> {
    let report = S::run(config, reporter).map_err(|e| Error::stage(stage, &e))?;
    Ok(Ran {
        paused: S::paused(&report),
        gate: S::gate_failure(&report),
        report: json(&report),
    })
}

/// Refuses to write a stage folder (or its temporary one) that holds files when this
/// pipeline has no record of writing it: they are someone else's.
fn refuse_foreign(out: &Path, stage: Stage, output: &Path) -> Result<()> {
    if state::written_by_pipeline(out, stage) {
        return Ok(());
    }
    for dir in [output.to_path_buf(), partial_of(output)] {
        let held = pytorrent_io::owner::names(&dir);
        if !held.is_empty() {
            return Err(Error::Usage(format!(
                "{stage}: {} holds files this pipeline did not write ({}): move them away; the \
                 stage would replace the folder",
                dir.display(),
                pytorrent_io::owner::listing(&held)
            )));
        }
    }
    Ok(())
}

/// The temporary name a folder is built under.
fn partial_of(dir: &Path) -> PathBuf {
    let name = dir
        .file_name()
        .map_or("out".into(), |n| n.to_string_lossy().into_owned());
    dir.with_file_name(format!(".{name}.partial"))
}

/// Builds a folder under a temporary name beside it (kept from an interrupted run when
/// `keep`) and renames it into place only when the stage succeeded; the report's mentions of
/// the temporary name are rewritten.
fn atomically(dir: &Path, keep: bool, build: impl FnOnce(&Path) -> Result<Ran>) -> Result<Ran> {
    let partial = partial_of(dir);
    if !keep {
        remove_dir(&partial)?;
    }
    let mut ran = build(&partial)?;
    remove_dir(dir)?;
    std::fs::rename(&partial, dir).map_err(|e| pytorrent_io::Error::io(dir, e))?;
    let text = serde_json::to_string(&ran.report).expect("plain JSON");
    let fixed = text.replace(
        &json_escaped(&partial.display().to_string()),
        &json_escaped(&dir.display().to_string()),
    );
    ran.report = serde_json::from_str(&fixed).expect("a path swap keeps JSON valid");
    Ok(ran)
}

fn json_escaped(s: &str) -> String {
    let quoted = serde_json::to_string(s).expect("a string");
    quoted[1..quoted.len() - 1].to_string()
}

fn remove_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(pytorrent_io::Error::io(dir, e).into()),
    }
}
