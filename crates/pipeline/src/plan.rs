//! From the pipeline file to one typed config per stage: paths made absolute (relative to the
//! file), the keys a stage leaves out filled with the outputs of the stages before it, and
//! every key checked to be one the stage knows.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use pytorrent_corpus::stats::StatsConfig;
use pytorrent_eval::cloze::{ClozeConfig, ClozeMakeConfig};
use pytorrent_eval::fill_mask::FillMaskEvalConfig;
use pytorrent_eval::overlap::OverlapConfig;
use pytorrent_eval::retrieval::RetrievalConfig;
use pytorrent_extract::ExtractConfig;
use pytorrent_fetch::FetchConfig;
use pytorrent_finetune::FinetuneConfig;
use pytorrent_pack::PackConfig;
use pytorrent_pretrain::PretrainConfig;
use pytorrent_tokenizer::eval::EvalConfig as TokenizerEvalConfig;
use pytorrent_tokenizer::TrainConfig;
use serde::de::DeserializeOwned;
use serde::Serialize;
use toml::{Table, Value};

use crate::config::{normalize, PipelineFile};
use crate::stage::Stage;
use crate::{Error, Result};

/// The keys of `ModelOptions`: in `[eval.cloze]` they go to the scoring, the rest to making
/// the test set.
const MODEL_KEYS: &[&str] = &["model", "tokenizer", "device", "dtype", "batch_size"];

/// What one stage will run.
#[derive(Debug, Clone)]
pub struct Job {
    pub stage: Stage,
    pub task: Task,
    /// The stage's settings as JSON (for the stamp and the fingerprint).
    pub settings: serde_json::Value,
    /// Files and folders the user named, hashed by content.
    pub inputs: Vec<PathBuf>,
    /// Stages whose outputs it reads.
    pub upstream: Vec<Stage>,
    /// Its output folder, if it writes one.
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub enum Task {
    Fetch(FetchConfig),
    Extract(ExtractConfig),
    Stats(StatsConfig),
    /// Train a tokenizer, then measure its compression on each partition with `eval`.
    Tokenizer {
        train: TrainConfig,
        eval: TokenizerEvalConfig,
    },
    Pack(PackConfig),
    Pretrain(PretrainConfig),
    Finetune(FinetuneConfig),
    FillMask(FillMaskEvalConfig),
    /// Make a cloze set from the corpus (unless `data` names one), then score the model.
    Cloze {
        make: Option<ClozeMakeConfig>,
        score: ClozeConfig,
    },
    Retrieval(RetrievalConfig),
    Overlap(OverlapConfig),
}

/// Every stage of the file, in running order.
pub fn plan(file: &PipelineFile) -> Result<Vec<Job>> {
    let planner = Planner::new(file)?;
    file.stages()
        .into_iter()
        .map(|stage| planner.job(stage))
        .collect()
}

struct Planner<'a> {
    file: &'a PipelineFile,
    scenario: Option<String>,
}

impl<'a> Planner<'a> {
    fn new(file: &'a PipelineFile) -> Result<Planner<'a>> {
        let scenario = match &file.scenario {
            Some(s) => Some(s.clone()),
            None => file
                .sections
                .get(&Stage::Extract)
                .map(|t| first_of(t.get("scenario")).unwrap_or_else(|| "docstrings".to_string())),
        };
        Ok(Planner { file, scenario })
    }

    fn has(&self, stage: Stage) -> bool {
        self.file.sections.contains_key(&stage)
    }

    fn out_of(&self, stage: Stage) -> PathBuf {
        self.file
            .out
            .join(stage.output_dir().expect("a stage with an output folder"))
    }

    /// The corpus folder of the scenario that training and checks read.
    fn scenario_corpus(&self) -> Option<PathBuf> {
        if !self.has(Stage::Extract) {
            return None;
        }
        let corpus = self.out_of(Stage::Extract);
        Some(match &self.scenario {
            Some(s) => corpus.join(s),
            None => corpus,
        })
    }

    fn bad(&self, stage: Stage, message: impl std::fmt::Display) -> Error {
        Error::Usage(format!(
            "{}: [{}] {message}",
            self.file.path.display(),
            stage.section()
        ))
    }

    fn job(&self, stage: Stage) -> Result<Job> {
        let mut t = self.file.sections[&stage].clone();
        if t.contains_key("out") && stage != Stage::Cloze {
            return Err(self.bad(
                stage,
                "has `out`: the pipeline places every output under [pipeline] out",
            ));
        }
        let inputs = self.resolve_paths(stage, &mut t);
        let mut upstream = Vec::new();
        let output = stage.output_dir().map(|_| self.out_of(stage));
        let task = match stage {
            Stage::Fetch => {
                t.insert("out".into(), path_value(output.as_ref().unwrap()));
                Task::Fetch(self.typed(stage, t)?)
            }
            Stage::Extract => {
                if !t.contains_key("inputs") && self.has(Stage::Fetch) {
                    let fetched = self.out_of(Stage::Fetch);
                    t.insert("inputs".into(), paths_value(&[fetched.join("packages")]));
                    t.entry("metadata")
                        .or_insert_with(|| paths_value(&[fetched.join("Package_Metadata")]));
                    upstream.push(Stage::Fetch);
                }
                t.insert("out".into(), path_value(output.as_ref().unwrap()));
                Task::Extract(self.typed(stage, t)?)
            }
            Stage::Stats => {
                self.corpus_inputs(stage, &mut t, &mut upstream, false)?;
                if !t.contains_key("metadata") {
                    if let Some(m) = self.extract_metadata() {
                        t.insert("metadata".into(), paths_value(&m));
                    }
                }
                Task::Stats(self.typed(stage, t)?)
            }
            Stage::Tokenizer => {
                self.corpus_inputs(stage, &mut t, &mut upstream, true)?;
                t.insert("out".into(), path_value(output.as_ref().unwrap()));
                let train: TrainConfig = self.typed(stage, t)?;
                let mut eval = TokenizerEvalConfig::new(
                    train.input.clone(),
                    output.as_ref().unwrap().display().to_string(),
                );
                eval.field = train.field;
                eval.text_field = train.text_field.clone();
                eval.rule = train.rule.clone();
                Task::Tokenizer { train, eval }
            }
            Stage::Pack => {
                // Without an extract stage, pack reads what the tokenizer was trained on.
                if !t.contains_key("inputs") && !self.has(Stage::Extract) {
                    let tokenizer = self.file.sections.get(&Stage::Tokenizer);
                    if let Some(v) = tokenizer.and_then(|tt| tt.get("inputs")) {
                        t.insert("inputs".into(), v.clone());
                    }
                }
                self.corpus_inputs(stage, &mut t, &mut upstream, true)?;
                if !t.contains_key("tokenizer") {
                    self.need(stage, Stage::Tokenizer, "tokenizer")?;
                    t.insert(
                        "tokenizer".into(),
                        path_value(&self.out_of(Stage::Tokenizer)),
                    );
                    upstream.push(Stage::Tokenizer);
                }
                t.insert("out".into(), path_value(output.as_ref().unwrap()));
                Task::Pack(self.typed(stage, t)?)
            }
            Stage::Pretrain => {
                if !t.contains_key("shards") {
                    self.need(stage, Stage::Pack, "shards")?;
                    t.insert("shards".into(), path_value(&self.out_of(Stage::Pack)));
                    upstream.push(Stage::Pack);
                }
                t.insert("out".into(), path_value(output.as_ref().unwrap()));
                Task::Pretrain(self.typed(stage, t)?)
            }
            Stage::Finetune => {
                self.corpus_inputs(stage, &mut t, &mut upstream, true)?;
                if !t.contains_key("init") {
                    self.need(stage, Stage::Pretrain, "init")?;
                    t.insert("init".into(), path_value(&self.out_of(Stage::Pretrain)));
                    upstream.push(Stage::Pretrain);
                }
                t.insert("out".into(), path_value(output.as_ref().unwrap()));
                Task::Finetune(self.typed(stage, t)?)
            }
            Stage::FillMask => {
                self.model(stage, &mut t, &mut upstream)?;
                Task::FillMask(self.typed(stage, t)?)
            }
            Stage::Cloze => {
                if t.contains_key("out") {
                    return Err(self.bad(
                        stage,
                        "has `out`: the pipeline places every output under [pipeline] out",
                    ));
                }
                self.model(stage, &mut t, &mut upstream)?;
                let mut score = Table::new();
                for k in MODEL_KEYS {
                    if let Some(v) = t.remove(*k) {
                        score.insert((*k).into(), v);
                    }
                }
                let dir = output.clone().unwrap();
                let make = if let Some(data) = t.remove("data") {
                    score.insert("data".into(), data);
                    for k in ["words", "answers"] {
                        if let Some(v) = t.remove(k) {
                            score.insert(k.into(), v);
                        }
                    }
                    if let Some(k) = t.keys().next() {
                        return Err(self.bad(
                            stage,
                            format!("`{k}` makes a cloze set, but `data` names one already"),
                        ));
                    }
                    None
                } else {
                    if !t.contains_key("inputs") {
                        let corpus = self.scenario_corpus().ok_or_else(|| {
                            self.bad(stage, "needs `data` (a clozeTest.json), or [extract] or `inputs` to make one from")
                        })?;
                        t.insert("inputs".into(), paths_value(&[corpus]));
                        upstream.push(Stage::Extract);
                    }
                    t.entry("kind")
                        .or_insert_with(|| Value::String("all".into()));
                    t.insert("out".into(), path_value(&dir));
                    let make: ClozeMakeConfig = self.typed(stage, t)?;
                    score.insert("data".into(), path_value(&dir.join("clozeTest.json")));
                    Some(make)
                };
                score.insert("out".into(), path_value(&dir.join("predictions.txt")));
                let score: ClozeConfig = self.typed(stage, score)?;
                let task = Task::Cloze { make, score };
                return self.finish(stage, task, inputs, upstream, output);
            }
            Stage::Retrieval => {
                let external = ["beir", "advtest", "cosqa"]
                    .iter()
                    .any(|k| t.contains_key(*k));
                if !external {
                    self.corpus_inputs(stage, &mut t, &mut upstream, true)?;
                }
                self.model_optional(&mut t, &mut upstream)?;
                Task::Retrieval(self.typed(stage, t)?)
            }
            Stage::Overlap => {
                self.corpus_inputs(stage, &mut t, &mut upstream, true)?;
                if !t.contains_key("eval") {
                    let corpus = self.scenario_corpus().ok_or_else(|| {
                        self.bad(stage, "needs `eval` (the evaluation set), or [extract]")
                    })?;
                    t.insert("eval".into(), paths_value(&[corpus]));
                }
                Task::Overlap(self.typed(stage, t)?)
            }
        };
        self.finish(stage, task, inputs, upstream, output)
    }

    fn finish(
        &self,
        stage: Stage,
        task: Task,
        inputs: Vec<PathBuf>,
        mut upstream: Vec<Stage>,
        output: Option<PathBuf>,
    ) -> Result<Job> {
        upstream.sort();
        upstream.dedup();
        let settings = task.settings();
        Ok(Job {
            stage,
            task,
            settings,
            inputs,
            upstream,
            output,
        })
    }

    fn need(&self, stage: Stage, from: Stage, key: &str) -> Result<()> {
        if self.has(from) {
            Ok(())
        } else {
            Err(self.bad(
                stage,
                format!("needs `{key}`, or a [{}] stage to make it", from.section()),
            ))
        }
    }

    /// `inputs` defaults to the corpus the extract stage writes (the chosen scenario's folder
    /// when `scenario_only`).
    fn corpus_inputs(
        &self,
        stage: Stage,
        t: &mut Table,
        upstream: &mut Vec<Stage>,
        scenario_only: bool,
    ) -> Result<()> {
        if t.contains_key("inputs") {
            return Ok(());
        }
        self.need(stage, Stage::Extract, "inputs")?;
        let corpus = if scenario_only {
            self.scenario_corpus().expect("extract is present")
        } else {
            self.out_of(Stage::Extract)
        };
        t.insert("inputs".into(), paths_value(&[corpus]));
        upstream.push(Stage::Extract);
        Ok(())
    }

    /// `model` defaults to the model the pretrain stage trains.
    fn model(&self, stage: Stage, t: &mut Table, upstream: &mut Vec<Stage>) -> Result<()> {
        if t.contains_key("model") {
            return Ok(());
        }
        self.need(stage, Stage::Pretrain, "model")?;
        t.insert("model".into(), path_value(&self.out_of(Stage::Pretrain)));
        upstream.push(Stage::Pretrain);
        Ok(())
    }

    /// Retrieval without a model still runs (BM25 and random); with a finetune stage it
    /// checks the fine-tuned model beside the checkpoint it started from, else with a
    /// pretrain stage that model.
    fn model_optional(&self, t: &mut Table, upstream: &mut Vec<Stage>) -> Result<()> {
        let has_model = ["model", "query_embeddings"]
            .iter()
            .any(|k| t.contains_key(*k));
        if !has_model && self.has(Stage::Finetune) {
            t.insert("model".into(), path_value(&self.out_of(Stage::Finetune)));
            upstream.push(Stage::Finetune);
            if !t.contains_key("baseline_models") {
                let init = match self.file.sections[&Stage::Finetune].get("init") {
                    Some(Value::String(s)) => {
                        let p = normalize(&self.file.dir.join(s));
                        if p.exists() {
                            p.display().to_string()
                        } else {
                            s.clone()
                        }
                    }
                    Some(_) => return Err(self.bad(Stage::Finetune, "`init` must be a string")),
                    None => {
                        upstream.push(Stage::Pretrain);
                        self.out_of(Stage::Pretrain).display().to_string()
                    }
                };
                t.insert(
                    "baseline_models".into(),
                    Value::Array(vec![Value::String(init)]),
                );
            }
        } else if !has_model && self.has(Stage::Pretrain) {
            t.insert("model".into(), path_value(&self.out_of(Stage::Pretrain)));
            upstream.push(Stage::Pretrain);
        }
        Ok(())
    }

    /// Package metadata of the extract stage: its `metadata`, else a `Package_Metadata`
    /// folder in or beside its inputs (as extract itself finds it), else fetch's.
    fn extract_metadata(&self) -> Option<Vec<PathBuf>> {
        let t = self.file.sections.get(&Stage::Extract)?;
        let list = |key: &str| -> Vec<PathBuf> {
            strings_of(t.get(key))
                .into_iter()
                .map(|s| normalize(&self.file.dir.join(s)))
                .collect()
        };
        let given = list("metadata");
        if !given.is_empty() {
            return Some(given);
        }
        let inputs = list("inputs");
        if inputs.is_empty() && self.has(Stage::Fetch) {
            return Some(vec![self.out_of(Stage::Fetch).join("Package_Metadata")]);
        }
        let found = pytorrent_extract::run::metadata_beside(&inputs);
        (!found.is_empty()).then_some(found)
    }

    /// Makes the table's paths absolute and returns those that exist (the inputs to hash).
    fn resolve_paths(&self, stage: Stage, t: &mut Table) -> Vec<PathBuf> {
        let keys = stage.traits().paths;
        let mut existing = Vec::new();
        for (key, value) in t.iter_mut() {
            let output = keys.writes.contains(&key.as_str());
            let always = output || keys.reads.contains(&key.as_str());
            let maybe = keys.reads_or_id.contains(&key.as_str());
            if !always && !maybe {
                continue;
            }
            let mut fix = |s: &mut String| {
                if s == "-" {
                    return;
                }
                let p = normalize(&self.file.dir.join(&*s));
                if always || p.exists() {
                    if p.exists() && !output {
                        existing.push(p.clone());
                    }
                    *s = p.display().to_string();
                }
            };
            match value {
                Value::String(s) => fix(s),
                Value::Array(items) => {
                    for item in items {
                        if let Value::String(s) = item {
                            fix(s);
                        }
                    }
                }
                _ => {}
            }
        }
        existing.sort();
        existing.dedup();
        existing
    }

    /// The table as the stage's typed config; a key the config does not know is an error
    /// (serde would drop it silently, and a typo would quietly run with the default).
    fn typed<T: DeserializeOwned + Serialize>(&self, stage: Stage, t: Table) -> Result<T> {
        let keys: BTreeSet<String> = t.keys().cloned().collect();
        let typed: T = Value::Table(t)
            .try_into()
            .map_err(|e: toml::de::Error| self.bad(stage, e.message()))?;
        let known: BTreeSet<String> = match serde_json::to_value(&typed) {
            Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
            _ => BTreeSet::new(),
        };
        if let Some(unknown) = keys.iter().find(|k| !known.contains(*k)) {
            return Err(self.bad(
                stage,
                format!(
                    "has no key `{unknown}` (keys: {})",
                    known.into_iter().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        Ok(typed)
    }
}

impl Task {
    /// The settings as JSON: what the fingerprint covers and the stamp records.
    pub fn settings(&self) -> serde_json::Value {
        let v = |x: &dyn erased::Json| x.json();
        match self {
            Task::Fetch(c) => v(c),
            Task::Extract(c) => v(c),
            Task::Stats(c) => v(c),
            Task::Tokenizer { train, eval } => {
                serde_json::json!({"train": v(train), "eval": v(eval)})
            }
            Task::Pack(c) => v(c),
            Task::Pretrain(c) => v(c),
            Task::Finetune(c) => v(c),
            Task::FillMask(c) => v(c),
            Task::Cloze { make, score } => serde_json::json!({
                "make": make.as_ref().map(|m| v(m)),
                "score": v(score),
            }),
            Task::Retrieval(c) => v(c),
            Task::Overlap(c) => v(c),
        }
    }
}

mod erased {
    /// Serialisation to JSON through a trait object (serde's `Serialize` is not object safe).
    pub trait Json {
        fn json(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> serde_json::Value {
            serde_json::to_value(self).expect("configs serialise")
        }
    }
}

fn path_value(p: &Path) -> Value {
    Value::String(p.display().to_string())
}

fn paths_value(ps: &[PathBuf]) -> Value {
    Value::Array(ps.iter().map(|p| path_value(p)).collect())
}

fn strings_of(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// The first item of a list written either as `"a,b"` or `["a", "b"]`.
fn first_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => s.split(',').next().map(|x| x.trim().to_string()),
        Value::Array(items) => items.first()?.as_str().map(str::to_string),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_a_stage_reads_is_taken_from_the_file_and_hashed() {
        // `[pretrain] shards` names a folder the stage reads: relative to the pipeline file,
        // and its content is part of the fingerprint (new shards re-run the stage).
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("my-shards/train")).unwrap();
        std::fs::write(d.join("size.toml"), "").unwrap();
        let text = "[pipeline]\nout = \"run\"\n\n[pretrain]\nshards = \"my-shards\"\n\
                    model_config = \"size.toml\"\n";
        let file = PipelineFile::parse(text, &d.join("p.toml"), d, None).unwrap();
        let jobs = plan(&file).unwrap();
        let job = &jobs[0];
        assert!(
            job.inputs.contains(&d.join("my-shards")),
            "{:?}",
            job.inputs
        );
        assert!(
            job.inputs.contains(&d.join("size.toml")),
            "{:?}",
            job.inputs
        );
        match &job.task {
            Task::Pretrain(c) => assert_eq!(c.shards, d.join("my-shards")),
            other => panic!("{other:?}"),
        }
    }
}
