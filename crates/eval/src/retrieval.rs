//! `eval retrieval`: how well a model's embeddings find the code a text describes (or the
//! text a code needs), under CodeSearchNet's protocol or against the whole pool, beside BM25
//! and a random ranking.
//!
//! - `csn`: pairs shuffled with the seed, cut into consecutive batches (1,000 by default, the
//!   last partial batch dropped); each query ranks its batch's candidates; rank = the number
//!   of candidates scoring at least as high as the positive (ties count against the model);
//!   MRR = the mean over batches of each batch's mean reciprocal rank.
//! - `pool`: each query ranks every candidate; MRR over all ranks, and MRR@1000.
//! - Both: the IR metrics of sentence-transformers' `InformationRetrievalEvaluator` (ranked
//!   lists ordered by score, then ascending candidate id), reported in MTEB's result shape.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use pytorrent_corpus::{InputConfig, Partition, Partitions, ReadSummary};
use pytorrent_io::Reporter;
use pytorrent_model::device::{DeviceSpec, Precision};
use pytorrent_model::embed::Choices;
use pytorrent_model::options::ModelOptions;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::metrics::{batched_mrr, ir_scores, mrr, mrr_at, random_mrr, Cutoffs, IrScores};
use crate::pairs::{QueryText, Set};
use crate::search::{search, Collector, Hits, Matrix, Similarity, Spec};
use crate::{bm25, embeddings, pairs, Error, Result};

pytorrent_io::word_enum! {
    "protocol";
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Protocol {
        /// CodeSearchNet's: batches of 1,000 pairs, each query against its batch.
        Csn = "csn",
        /// Each query against every candidate.
        Pool = "pool",
    }
}

pytorrent_io::word_enum! {
    "direction";
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Direction {
        /// Texts (docstrings) are the queries, codes the candidates.
        TextToCode = "text2code",
        /// Codes are the queries, texts the candidates.
        CodeToText = "code2text",
    }
}

fn default_partition() -> Partitions {
    Partitions::only(Partition::Test)
}
fn default_query() -> QueryText {
    QueryText::Docstring
}
fn default_protocol() -> Protocol {
    Protocol::Csn
}
fn default_direction() -> Direction {
    Direction::TextToCode
}
fn default_csn_batch() -> usize {
    1000
}
fn default_split() -> String {
    "test".into()
}
fn default_similarity() -> Similarity {
    Similarity::Cosine
}
fn default_batch_size() -> usize {
    32
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrievalConfig {
    /// Corpus files and folders to take pairs from (JSONL or Parquet), and the bad-line policy.
    #[serde(flatten)]
    pub input: InputConfig,
    /// A BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv) instead of a corpus.
    #[serde(default)]
    pub beir: Option<PathBuf>,
    /// CodeXGLUE AdvTest `test.jsonl` (or any JSONL with `code_tokens` and `docstring_tokens`)
    /// instead of a corpus.
    #[serde(default)]
    pub advtest: Option<PathBuf>,
    /// CoSQA queries (`cosqa-retrieval-test-500.json`) instead of a corpus; the code base is
    /// `cosqa_codebase`, else `code_idx_map.txt` beside them.
    #[serde(default)]
    pub cosqa: Option<PathBuf>,
    #[serde(default)]
    pub cosqa_codebase: Option<PathBuf>,
    /// The qrels split of a BEIR folder.
    #[serde(default = "default_split")]
    pub split: String,
    /// Partitions of a corpus the pairs come from.
    #[serde(default = "default_partition")]
    pub partition: Partitions,
    /// The partition of records that name none (as `tokenizer train` and `pack` take it).
    #[serde(flatten)]
    pub rule: pytorrent_corpus::PartitionRule,
    /// The text side of a corpus pair: docstring, summary or first-line.
    #[serde(default = "default_query")]
    pub query: QueryText,
    /// Pairs from these two string fields of records of any shape instead of PyTorrent
    /// records: the query side, and the code side (`code_field`).
    #[serde(default)]
    pub query_field: Option<String>,
    #[serde(default)]
    pub code_field: Option<String>,
    #[serde(default = "default_protocol")]
    pub protocol: Protocol,
    #[serde(default = "default_direction")]
    pub direction: Direction,
    /// Pairs per `csn` batch (one positive and batch − 1 distractors).
    #[serde(default = "default_csn_batch")]
    pub csn_batch: usize,
    /// Shuffles the pairs before `csn` batching.
    #[serde(default)]
    pub seed: u64,
    /// `csn` batches in input order.
    #[serde(default)]
    pub no_shuffle: bool,
    #[serde(default = "default_similarity")]
    pub similarity: Similarity,
    /// A model folder or hub id whose embeddings are evaluated.
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub tokenizer: Option<String>,
    #[serde(default)]
    pub device: DeviceSpec,
    #[serde(default)]
    pub dtype: Precision,
    /// Texts per forward pass.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Pooling, normalisation and length of the model's embeddings.
    #[serde(flatten)]
    pub choices: Choices,
    /// Embeddings made elsewhere: row i of each belongs to pair i.
    #[serde(default)]
    pub query_embeddings: Option<PathBuf>,
    #[serde(default)]
    pub candidate_embeddings: Option<PathBuf>,
    /// Where model embeddings are cached (default: the user's cache folder); `no_cache` off.
    #[serde(default)]
    pub cache: Option<PathBuf>,
    #[serde(default)]
    pub no_cache: bool,
    /// Leaves out the BM25 baseline.
    #[serde(default)]
    pub no_bm25: bool,
    /// Other models (folders or ids) scored the same way and shown beside the system, e.g.
    /// the checkpoint a fine-tuned model started from.
    #[serde(default)]
    pub baseline_models: Vec<String>,
}

impl RetrievalConfig {
    pub fn new(inputs: Vec<PathBuf>) -> RetrievalConfig {
        RetrievalConfig {
            input: InputConfig::new(inputs),
            beir: None,
            advtest: None,
            cosqa: None,
            cosqa_codebase: None,
            split: default_split(),
            partition: default_partition(),
            rule: Default::default(),
            query: default_query(),
            query_field: None,
            code_field: None,
            protocol: default_protocol(),
            direction: default_direction(),
            csn_batch: default_csn_batch(),
            seed: 0,
            no_shuffle: false,
            similarity: default_similarity(),
            model: None,
            tokenizer: None,
            device: DeviceSpec::Cpu,
            dtype: Precision::F32,
            batch_size: default_batch_size(),
            choices: Choices::default(),
            query_embeddings: None,
            candidate_embeddings: None,
            cache: None,
            no_cache: false,
            no_bm25: false,
            baseline_models: Vec::new(),
        }
    }

    pub fn validate(&self) -> Result<()> {
        let usage = |m: &str| Err(Error::Usage(m.into()));
        let files = !self.input.inputs.is_empty();
        let npy = (
            self.query_embeddings.is_some(),
            self.candidate_embeddings.is_some(),
        );
        if npy.0 != npy.1 {
            return usage("give both --query-embeddings and --candidate-embeddings");
        }
        if npy.0 && self.model.is_some() {
            return usage("give --model or embedding files, not both");
        }
        let sources = usize::from(files)
            + usize::from(self.beir.is_some())
            + usize::from(self.advtest.is_some())
            + usize::from(self.cosqa.is_some());
        if sources > 1 {
            return usage(
                "give one of corpus files, --beir FOLDER, --advtest FILE and --cosqa FILE",
            );
        }
        if sources == 0 && !npy.0 {
            return usage("nothing to evaluate: give corpus files, --beir FOLDER, --advtest FILE, or --query-embeddings and --candidate-embeddings");
        }
        if self.query_field.is_some() != self.code_field.is_some() {
            return usage("give both --query-field and --code-field");
        }
        if self.query_field.is_some() && self.query_field == self.code_field {
            return usage("--query-field and --code-field name the same field");
        }
        self.rule.validate().map_err(Error::Usage)?;
        if self.csn_batch < 2 {
            return usage("--csn-batch must be at least 2 (one positive, one distractor)");
        }
        if self.batch_size == 0 || self.choices.max_length == Some(0) {
            return usage("--batch-size and --max-length must be at least 1");
        }
        Ok(())
    }

    /// A published benchmark's files (BEIR, AdvTest, CoSQA) instead of a corpus.
    fn benchmark_files(&self) -> bool {
        self.beir.is_some() || self.advtest.is_some() || self.cosqa.is_some()
    }

    fn model_options(&self) -> Option<ModelOptions> {
        self.model.as_ref().map(|m| ModelOptions {
            model: m.clone(),
            tokenizer: self.tokenizer.clone(),
            device: self.device,
            dtype: self.dtype,
            batch_size: self.batch_size,
        })
    }
}

/// What the pairs were read as, for messages.
fn partitions_name(cfg: &RetrievalConfig) -> pytorrent_corpus::TextSource {
    match &cfg.query_field {
        Some(f) => pytorrent_corpus::TextSource::new(pytorrent_corpus::TextView::Code, Some(f)),
        None => pytorrent_corpus::TextSource::new(pytorrent_corpus::TextView::Docstring, None),
    }
}

/// One system's scores: the protocol's MRR and the IR metrics.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Scores {
    /// `csn`: the mean of batch MRRs; `pool`: the mean reciprocal rank over all candidates.
    /// Defined where every query has one answer.
    pub mrr: Option<f64>,
    /// `pool` only: ranks past 1,000 count 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mrr_at_1000: Option<f64>,
    /// Empty for the random baseline (its MRR is the exact expectation).
    pub ir: IrScores,
}

impl Scores {
    /// BEIR's names (`EvaluateRetrieval.evaluate`: `NDCG@10`, `MAP@100`, `Recall@10`, `P@10`;
    /// `evaluate_custom(…, "mrr")`: `MRR@10`), as CoIR reports them.
    pub fn beir(&self) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for (name, m) in [
            ("NDCG", &self.ir.ndcg),
            ("MAP", &self.ir.map),
            ("Recall", &self.ir.recall),
            ("P", &self.ir.precision),
            ("MRR", &self.ir.mrr),
        ] {
            for (k, v) in m {
                out.insert(format!("{name}@{k}"), *v);
            }
        }
        out
    }

    /// MTEB's key names (`ndcg_at_10`, …) with the protocol's MRR beside them.
    fn mteb(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        for (name, v) in self.ir.named() {
            m.insert(name.replace('@', "_at_"), v.into());
        }
        m.insert(
            "main_score".into(),
            self.ir.ndcg.get(&10).copied().or(self.mrr).into(),
        );
        if let Some(v) = self.mrr {
            m.insert("protocol_mrr".into(), v.into());
        }
        if let Some(v) = self.mrr_at_1000 {
            m.insert("protocol_mrr_at_1000".into(), v.into());
        }
        m.insert("hf_subset".into(), "default".into());
        m.insert(
            "languages".into(),
            serde_json::json!(["eng-Latn", "python-Code"]),
        );
        m
    }
}

/// What was evaluated and how.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Details {
    pub protocol: String,
    pub direction: String,
    pub similarity: String,
    /// The text side of corpus pairs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    pub queries: usize,
    /// Candidates each query ranks.
    pub candidates_per_query: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batches: Option<usize>,
    /// Pairs left out: `csn`'s last partial batch.
    pub dropped: usize,
    /// Records or queries left out for an empty query text, or BEIR queries without answers.
    pub without_query: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The evaluated system: `model:<id>`, `embeddings:<file>` or `bm25`.
    pub system: String,
    /// The other systems, scored the same way.
    pub baselines: BTreeMap<String, Scores>,
    pub scores: Scores,
    /// The system's IR metrics under BEIR's and CoIR's names.
    pub beir: BTreeMap<String, f64>,
    pub ties: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read: Option<ReadSummary>,
}

/// The result, shaped as MTEB writes a task result (`scores.<split>[0]`, `main_score` =
/// NDCG@10), with everything else under `pytorrent`.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct RetrievalReport {
    pub task_name: String,
    pub dataset_revision: Option<String>,
    pub mteb_version: Option<String>,
    pub evaluation_time: f64,
    pub scores: BTreeMap<String, Vec<serde_json::Map<String, serde_json::Value>>>,
    pub pytorrent: Details,
}

const TIES: &str = "MRR ranks count every candidate scoring at least as high as the positive \
    (ties count against the model, as CodeSearchNet); the IR metrics order by score, then by \
    ascending candidate id (as sentence-transformers)";

/// The queries of one search and the candidates they rank; `relevant[i]` indexes `candidates`.
struct Group {
    queries: Vec<usize>,
    candidates: Vec<usize>,
    relevant: Vec<Vec<u32>>,
    /// Each query's one answer (indexing `candidates`), when every query has exactly one:
    /// then ranks and MRR are defined.
    positives: Option<Vec<u32>>,
}

/// The answers of queries that have exactly one each.
fn single_answers(relevant: &[Vec<u32>]) -> Option<Vec<u32>> {
    relevant
        .iter()
        .map(|r| (r.len() == 1).then(|| r[0]))
        .collect()
}

/// The groups of a protocol over `n` pairs, or over the set's queries and candidates.
fn groups(cfg: &RetrievalConfig, set: &Side) -> Result<(Vec<Group>, usize)> {
    if !set.paired {
        if cfg.protocol == Protocol::Csn {
            return Err(Error::Usage(
                "--protocol csn needs pairs (one answer per query); run this set with --protocol pool".into(),
            ));
        }
        return Ok((
            vec![Group {
                queries: (0..set.queries).collect(),
                candidates: (0..set.candidates).collect(),
                relevant: set.relevant.clone(),
                positives: single_answers(&set.relevant),
            }],
            0,
        ));
    }
    let n = set.queries;
    let mut order: Vec<usize> = (0..n).collect();
    match cfg.protocol {
        Protocol::Pool => Ok((
            vec![Group {
                queries: order.clone(),
                candidates: order,
                relevant: (0..n as u32).map(|i| vec![i]).collect(),
                positives: Some((0..n as u32).collect()),
            }],
            0,
        )),
        Protocol::Csn => {
            if n < cfg.csn_batch {
                return Err(Error::Input(format!(
                    "{n} pairs: fewer than one csn batch of {}; give --csn-batch N (at most {n}) or --protocol pool",
                    cfg.csn_batch
                )));
            }
            if !cfg.no_shuffle {
                order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(cfg.seed));
            }
            let b = cfg.csn_batch;
            let groups = order
                .chunks_exact(b)
                .map(|c| Group {
                    queries: c.to_vec(),
                    candidates: c.to_vec(),
                    relevant: (0..b as u32).map(|i| vec![i]).collect(),
                    positives: Some((0..b as u32).collect()),
                })
                .collect();
            Ok((groups, n % b))
        }
    }
}

/// The evaluation set seen from the chosen direction.
struct Side {
    query_texts: Vec<String>,
    candidate_texts: Vec<String>,
    queries: usize,
    candidates: usize,
    /// Tie key of each candidate: its id's place in string order.
    keys: Vec<u32>,
    relevant: Vec<Vec<u32>>,
    paired: bool,
}

fn string_order(ids: &[String]) -> Vec<u32> {
    let mut idx: Vec<usize> = (0..ids.len()).collect();
    idx.sort_by(|&a, &b| ids[a].cmp(&ids[b]).then(a.cmp(&b)));
    let mut keys = vec![0u32; ids.len()];
    for (place, &i) in idx.iter().enumerate() {
        keys[i] = place as u32;
    }
    keys
}

fn side(set: Set, direction: Direction) -> Side {
    match direction {
        Direction::TextToCode => Side {
            queries: set.texts.len(),
            candidates: set.codes.len(),
            keys: string_order(&set.code_ids),
            relevant: set.relevant,
            paired: set.paired,
            query_texts: set.texts,
            candidate_texts: set.codes,
        },
        Direction::CodeToText => {
            // Each code asks for the texts it answers.
            let mut relevant = vec![Vec::new(); set.codes.len()];
            for (t, codes) in set.relevant.iter().enumerate() {
                for &c in codes {
                    relevant[c as usize].push(t as u32);
                }
            }
            Side {
                queries: set.codes.len(),
                candidates: set.texts.len(),
                keys: string_order(&set.text_ids),
                relevant,
                paired: set.paired,
                query_texts: set.codes,
                candidate_texts: set.texts,
            }
        }
    }
}

/// Scores one system over the groups: `run` searches one group and gives its hits.
fn score_groups(
    groups: &[Group],
    side: &Side,
    cutoffs: &Cutoffs,
    run: &dyn Fn(&Group, &[u32]) -> Vec<Hits>,
) -> Scores {
    let mut batch_ranks = Vec::new();
    let (mut ranked, mut relevant) = (Vec::new(), Vec::new());
    for g in groups {
        let keys: Vec<u32> = g.candidates.iter().map(|&c| side.keys[c]).collect();
        let hits = run(g, &keys);
        let mut ranks = Vec::new();
        for (h, rel) in hits.into_iter().zip(&g.relevant) {
            if rel.is_empty() {
                continue;
            }
            ranks.extend(h.rank);
            ranked.push(h.top);
            relevant.push(rel.clone());
        }
        batch_ranks.push(ranks);
    }
    let ir = ir_scores(&ranked, &relevant, cutoffs);
    let all: Vec<u64> = batch_ranks.concat();
    let pooled = groups.len() == 1;
    let ranked_all = groups.iter().all(|g| g.positives.is_some());
    Scores {
        mrr: ranked_all.then(|| {
            if pooled {
                mrr(&all)
            } else {
                batched_mrr(&batch_ranks)
            }
        }),
        mrr_at_1000: (pooled && ranked_all).then(|| mrr_at(&all, 1000)),
        ir,
    }
}

fn embedding_hits(q: &Matrix, c: &Matrix, g: &Group, keys: &[u32], depth: usize) -> Vec<Hits> {
    let whole = |rows: &[usize], m: &Matrix| {
        rows.len() == m.rows && rows.iter().enumerate().all(|(i, &r)| i == r)
    };
    let qs: Cow<Matrix> = if whole(&g.queries, q) {
        Cow::Borrowed(q)
    } else {
        Cow::Owned(q.select(&g.queries))
    };
    let cs: Cow<Matrix> = if whole(&g.candidates, c) {
        Cow::Borrowed(c)
    } else {
        Cow::Owned(c.select(&g.candidates))
    };
    search(
        &qs,
        &cs,
        &Spec {
            k: depth,
            keys: Some(keys),
            positives: g.positives.as_deref(),
        },
    )
}

fn bm25_hits(
    index: &bm25::Index,
    queries: &[String],
    g: &Group,
    keys: &[u32],
    depth: usize,
) -> Vec<Hits> {
    g.queries
        .par_iter()
        .enumerate()
        .map(|(i, &q)| {
            let all = index.scores(&queries[q]);
            let row: Vec<f32> = g.candidates.iter().map(|&c| all[c]).collect();
            let mut col = Collector::new(depth);
            if let Some(p) = &g.positives {
                let at = p[i] as usize;
                col.set_positive(row[at], at);
            }
            col.see(&row, 0, Some(keys));
            col.finish()
        })
        .collect()
}

/// The evaluation set: from files, or only as many pairs as the embedding files have rows.
fn load_set(cfg: &RetrievalConfig, reporter: &dyn Reporter) -> Result<Set> {
    if let Some(folder) = &cfg.beir {
        return pairs::from_beir(folder, &cfg.split);
    }
    if let Some(file) = &cfg.advtest {
        return pairs::from_advtest(file);
    }
    if let Some(file) = &cfg.cosqa {
        let codebase = cfg.cosqa_codebase.clone().unwrap_or_else(|| {
            file.parent()
                .unwrap_or(std::path::Path::new("."))
                .join("code_idx_map.txt")
        });
        return pairs::from_cosqa(file, &codebase);
    }
    if !cfg.input.inputs.is_empty() {
        let fields = cfg.query_field.as_deref().zip(cfg.code_field.as_deref());
        return pairs::from_corpus(
            &cfg.input,
            &pairs::Selection {
                partitions: &cfg.partition,
                rule: &cfg.rule,
                query: cfg.query,
                fields,
            },
            reporter,
        );
    }
    Ok(Set {
        paired: true,
        ..Set::default()
    })
}

/// Embeddings made elsewhere (queries, candidates) and the system's name.
fn npy_embeddings(cfg: &RetrievalConfig) -> Result<Option<(Matrix, Matrix, String)>> {
    let (Some(qf), Some(cf)) = (&cfg.query_embeddings, &cfg.candidate_embeddings) else {
        return Ok(None);
    };
    let q = Matrix::read_npy(qf)?;
    let c = Matrix::read_npy(cf)?;
    if q.dim != c.dim {
        return Err(Error::Input(format!(
            "{} has {}-d vectors, {} {}-d",
            qf.display(),
            q.dim,
            cf.display(),
            c.dim
        )));
    }
    Ok(Some((q, c, format!("embeddings:{}", qf.display()))))
}

/// The model's embeddings of both sides (queries, candidates) and the system's name.
fn model_embeddings(
    cfg: &RetrievalConfig,
    side: &Side,
    reporter: &dyn Reporter,
) -> Result<Option<(Matrix, Matrix, String)>> {
    let Some(options) = cfg.model_options() else {
        return Ok(None);
    };
    let enc = embeddings::Encoder::load(&options, &cfg.choices, reporter)?;
    let cache = if cfg.no_cache {
        None
    } else {
        cfg.cache.clone().or_else(embeddings::default_cache)
    };
    let q = enc.embed(&side.query_texts, "queries", cache.as_deref(), reporter)?;
    let c = enc.embed(
        &side.candidate_texts,
        "candidates",
        cache.as_deref(),
        reporter,
    )?;
    Ok(Some((q, c, format!("model:{}", options.model))))
}

/// Fits the side to embedding files: alone they define the pairs (row i of each is pair i);
/// beside a set they must have its shape.
fn fit_embeddings(side: &mut Side, q: &Matrix, c: &Matrix, alone: bool) -> Result<()> {
    if alone {
        if q.rows != c.rows {
            return Err(Error::Input(format!(
                "{} query rows but {} candidate rows: row i of each must be pair i",
                q.rows, c.rows
            )));
        }
        side.queries = q.rows;
        side.candidates = c.rows;
        side.keys = (0..c.rows as u32).collect();
        side.relevant = (0..q.rows as u32).map(|i| vec![i]).collect();
    } else if q.rows != side.queries || c.rows != side.candidates {
        return Err(Error::Input(format!(
            "the embeddings have {} query and {} candidate rows; the set has {} queries and {} candidates",
            q.rows, c.rows, side.queries, side.candidates
        )));
    }
    Ok(())
}

/// Code retrieval (`eval retrieval`).
pub struct Retrieval;

impl pytorrent_io::stage::Stage for Retrieval {
    type Config = RetrievalConfig;
    type Report = RetrievalReport;
    type Error = Error;
    const COMMAND: &'static str = "eval retrieval";
    const READS: &'static [&'static str] = &[
        "inputs",
        "beir",
        "advtest",
        "cosqa",
        "cosqa_codebase",
        "query_embeddings",
        "candidate_embeddings",
    ];
    const READS_OR_ID: &'static [&'static str] = &["model", "tokenizer", "baseline_models"];
    const WRITES: &'static [&'static str] = &["quarantine", "cache"];

    fn run(
        config: &RetrievalConfig,
        reporter: &dyn pytorrent_io::Reporter,
    ) -> Result<RetrievalReport, Error> {
        run(config, reporter)
    }
}

pub fn run(cfg: &RetrievalConfig, reporter: &dyn Reporter) -> Result<RetrievalReport> {
    cfg.validate()?;
    let started = Instant::now();
    let set = load_set(cfg, reporter)?;
    let (read, without_query) = (set.read.clone(), set.without_query);
    let skipped = set.skipped.clone();
    let has_texts = !set.texts.is_empty();
    if without_query > 0 {
        reporter.warn(&format!(
            "{} left out: no {} to query with",
            pytorrent_io::reporter::plural(without_query, "record", "records"),
            cfg.query.name()
        ));
    }
    let mut side = side(set, cfg.direction);
    let npy = npy_embeddings(cfg)?;
    if let Some((q, c, _)) = &npy {
        fit_embeddings(&mut side, q, c, !has_texts && !cfg.benchmark_files())?;
    }
    if side.queries == 0 {
        return Err(Error::Input(if let Some(c) = &skipped {
            c.why_none(&partitions_name(cfg), &cfg.partition)
        } else {
            "no queries to evaluate".into()
        }));
    }
    // Before any model runs, so a set the protocol cannot use fails at once.
    let (groups, dropped) = groups(cfg, &side)?;
    let system = match npy {
        Some(e) => Some(e),
        None => model_embeddings(cfg, &side, reporter)?,
    };
    let cutoffs = Cutoffs {
        accuracy: vec![1, 3, 5, 10],
        precision_recall: vec![1, 3, 5, 10, 100],
        mrr: vec![1, 3, 5, 10, 100],
        ndcg: vec![1, 3, 5, 10, 100],
        map: vec![1, 3, 5, 10, 100],
    };
    let depth = cutoffs.depth();
    let per_query = groups.first().map_or(0, |g| g.candidates.len());
    let mut baselines = BTreeMap::new();
    let random_cut = if cfg.protocol == Protocol::Pool {
        Some(1000)
    } else {
        None
    };
    // The expectation holds for one answer a query (pairs, AdvTest, CoSQA).
    if side.relevant.iter().all(|r| r.len() == 1) {
        baselines.insert(
            "random".to_string(),
            Scores {
                mrr: Some(random_mrr(per_query as u64, u64::MAX)),
                mrr_at_1000: random_cut.map(|c| random_mrr(per_query as u64, c)),
                ir: IrScores::default(),
            },
        );
    }
    let bm25_scores = if !cfg.no_bm25 && has_texts {
        reporter.log("BM25 baseline");
        let refs: Vec<&str> = side.candidate_texts.iter().map(String::as_str).collect();
        let index = bm25::Index::new(&refs);
        Some(score_groups(&groups, &side, &cutoffs, &|g, keys| {
            bm25_hits(&index, &side.query_texts, g, keys, depth)
        }))
    } else {
        None
    };
    for other in &cfg.baseline_models {
        let mut c = cfg.clone();
        c.model = Some(other.clone());
        c.tokenizer = None;
        if let Some((q, cand, name)) = model_embeddings(&c, &side, reporter)? {
            let (q, cand) = (q.prepared(cfg.similarity), cand.prepared(cfg.similarity));
            let s = score_groups(&groups, &side, &cutoffs, &|g, keys| {
                embedding_hits(&q, &cand, g, keys, depth)
            });
            baselines.insert(name, s);
        }
    }
    let (system_name, scores) = match system {
        Some((q, c, name)) => {
            let (q, c) = (q.prepared(cfg.similarity), c.prepared(cfg.similarity));
            reporter.log(&format!(
                "searching: {} queries × {per_query} candidates",
                groups.iter().map(|g| g.queries.len()).sum::<usize>()
            ));
            let s = score_groups(&groups, &side, &cutoffs, &|g, keys| {
                embedding_hits(&q, &c, g, keys, depth)
            });
            if let Some(b) = bm25_scores {
                baselines.insert("bm25".into(), b);
            }
            (name, s)
        }
        None => match bm25_scores {
            Some(b) => ("bm25".to_string(), b),
            None => {
                return Err(Error::Usage(
                    "nothing to score: give --model or embedding files (or leave BM25 on)".into(),
                ))
            }
        },
    };
    let split = match &cfg.beir {
        Some(_) => cfg.split.clone(),
        None => partition_name(&cfg.partition),
    };
    let task_name = match (&cfg.beir, &cfg.advtest, &cfg.cosqa) {
        (Some(f), _, _) => f
            .file_name()
            .map_or("beir".into(), |n| n.to_string_lossy().into_owned()),
        (None, Some(_), _) => "AdvTest".into(),
        (None, None, Some(_)) => "CoSQA".into(),
        (None, None, None) => "pytorrent-code-retrieval".into(),
    };
    Ok(RetrievalReport {
        task_name,
        dataset_revision: None,
        mteb_version: None,
        evaluation_time: started.elapsed().as_secs_f64(),
        scores: BTreeMap::from([(split, vec![scores.mteb()])]),
        pytorrent: Details {
            protocol: if side.paired {
                cfg.protocol.name()
            } else {
                "pool"
            }
            .into(),
            direction: cfg.direction.name().into(),
            similarity: cfg.similarity.name().into(),
            query: (!cfg.benchmark_files() && has_texts).then(|| cfg.query.name().into()),
            queries: groups.iter().map(|g| g.queries.len()).sum(),
            candidates_per_query: per_query,
            batches: (cfg.protocol == Protocol::Csn && side.paired).then_some(groups.len()),
            dropped,
            without_query,
            seed: (cfg.protocol == Protocol::Csn && !cfg.no_shuffle && side.paired)
                .then_some(cfg.seed),
            system: system_name,
            baselines,
            beir: scores.beir(),
            scores,
            ties: TIES.into(),
            read,
        },
    })
}

fn partition_name(p: &Partitions) -> String {
    match p {
        Partitions::All => "all".into(),
        Partitions::Only(list) => list
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join("+"),
    }
}

impl std::fmt::Display for RetrievalReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = &self.pytorrent;
        let batches = d.batches.map_or(String::new(), |b| {
            format!(
                ", {}, {} dropped",
                pytorrent_io::reporter::plural(b as u64, "batch", "batches"),
                d.dropped
            )
        });
        writeln!(
            f,
            "retrieval ({}, {}, {}): {} queries, {} candidates each{batches}",
            d.protocol, d.direction, d.similarity, d.queries, d.candidates_per_query
        )?;
        let pooled = d.protocol == "pool";
        writeln!(
            f,
            "{:<40} {:>8} {:>9} {:>8} {:>8} {:>8}",
            "system",
            "MRR",
            if pooled { "MRR@1000" } else { "" },
            "NDCG@10",
            "acc@1",
            "acc@10"
        )?;
        let mut rows = vec![(d.system.as_str(), &d.scores)];
        rows.extend(d.baselines.iter().map(|(n, s)| (n.as_str(), s)));
        for (name, s) in rows {
            let cell = |v: Option<&f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
            writeln!(
                f,
                "{:<40} {:>8} {:>9} {:>8} {:>8} {:>8}",
                name,
                cell(s.mrr.as_ref()),
                if pooled {
                    cell(s.mrr_at_1000.as_ref())
                } else {
                    String::new()
                },
                cell(s.ir.ndcg.get(&10)),
                cell(s.ir.accuracy.get(&1)),
                cell(s.ir.accuracy.get(&10)),
            )?;
        }
        writeln!(f, "ties: {}", d.ties)
    }
}
