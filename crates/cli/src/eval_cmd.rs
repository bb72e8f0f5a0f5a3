//! `pytorrent eval …`: checks of a model (and of its data).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use pytorrent_corpus::Partitions;
use pytorrent_eval::cloze::{ClozeConfig, ClozeMakeConfig};
use pytorrent_eval::fill_mask::FillMaskEvalConfig;
use pytorrent_eval::overlap::OverlapConfig;
use pytorrent_eval::pairs::QueryText;
use pytorrent_eval::retrieval::{Direction, Protocol, RetrievalConfig};
use pytorrent_eval::search::Similarity;

use crate::args::{BadLineArgs, MaybeModelArgs, PoolingArgs, TextArgs};
use crate::console::{Console, OutputArgs};
use crate::error::CliError;

#[derive(Subcommand)]
pub enum EvalCommand {
    /// Code retrieval: does a model's embedding of a docstring find its code (csn batches of
    /// 1,000, or the whole pool)? MRR, NDCG@10 and the other IR metrics beside BM25 and
    /// random; --json gives MTEB's result shape.
    Retrieval(RetrievalArgs),
    /// A masked-language model against a suite of prompts with known answers (the built-in
    /// Python suite: 200+ prompts in 10 categories): top-1, top-5 and MRR per category, the
    /// worst prompts; exit 1 below --min-top1 / --min-top5.
    FillMask(FillMaskEvalArgs),
    /// How much of an evaluation set a training corpus already holds: exact copies (the same
    /// code tokens) and near copies (MinHash/LSH, as extract de-duplicates), with examples.
    Overlap(OverlapArgs),
    /// CodeXGLUE cloze tests (clozeTest.json, cloze_test_words.txt, answers.txt), scored as
    /// their run_cloze.py scores them; `eval cloze make` builds such sets with known answers
    /// from a corpus partition.
    Cloze(ClozeArgs),
}

#[derive(Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    mut_arg("model", |a| a.required(true))
)]
pub struct ClozeArgs {
    #[command(subcommand)]
    make: Option<ClozeCommand>,
    #[command(flatten)]
    model: MaybeModelArgs,
    /// Items per forward pass.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// clozeTest.json (a JSON array of {idx, nl_tokens, pl_tokens}, one <mask> each), or the
    /// folder that holds it (as `eval cloze make` writes it).
    #[arg(required = true)]
    data: Option<PathBuf>,
    /// cloze_test_words.txt (default: beside the data file, or in the folder above).
    #[arg(long)]
    words: Option<PathBuf>,
    /// answers.txt (idx<CODESPLIT>word lines; default: beside the data file, if there).
    #[arg(long)]
    answers: Option<PathBuf>,
    /// Write predictions here, in CodeXGLUE's format.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Subcommand)]
pub enum ClozeCommand {
    /// Cloze items with known answers from a corpus partition, written in CodeXGLUE's files.
    Make(ClozeMakeArgs),
}

#[derive(Args)]
pub struct ClozeMakeArgs {
    #[command(flatten)]
    config: ClozeMakeConfig,
    #[command(flatten)]
    output: OutputArgs,
}

/// Overlap's settings as a pipeline file leaves them: its flags take the same defaults.
fn overlap_defaults() -> OverlapConfig {
    OverlapConfig::new(Vec::new(), Vec::new())
}

#[derive(Args)]
pub struct OverlapArgs {
    /// The training corpus (file or folder; JSONL or Parquet).
    #[arg(value_name = "TRAIN")]
    inputs: PathBuf,
    /// The evaluation set (a corpus partition, BEIR corpus.jsonl, any JSONL or Parquet).
    #[arg(value_name = "EVAL")]
    eval: PathBuf,
    #[command(flatten)]
    policy: BadLineArgs,
    #[command(flatten)]
    text: TextArgs,
    /// Partitions of the training side (records that name none always count).
    #[arg(long, default_value = "train")]
    train_partition: Partitions,
    /// Partitions of the evaluation side (records that name none always count).
    #[arg(long, default_value = "test")]
    eval_partition: Partitions,
    /// Jaccard similarity of token shingles from which a copy is near.
    #[arg(long, default_value_t = overlap_defaults().threshold)]
    threshold: f64,
    /// Tokens per shingle.
    #[arg(long, default_value_t = overlap_defaults().shingle)]
    shingle: usize,
    /// Leaked evaluation records named in the report.
    #[arg(long, default_value_t = overlap_defaults().examples)]
    examples: usize,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args)]
pub struct FillMaskEvalArgs {
    #[command(flatten)]
    config: FillMaskEvalConfig,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args)]
pub struct RetrievalArgs {
    /// Corpus files or folders (JSONL or Parquet) the pairs come from.
    inputs: Vec<PathBuf>,
    #[command(flatten)]
    policy: BadLineArgs,
    /// A BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv), as CoIR ships them.
    #[arg(long, value_name = "FOLDER")]
    beir: Option<PathBuf>,
    /// CodeXGLUE AdvTest test.jsonl (or any JSONL with code_tokens and docstring_tokens):
    /// tokens joined by spaces, pairs by line.
    #[arg(long, value_name = "FILE")]
    advtest: Option<PathBuf>,
    /// CoSQA queries (cosqa-retrieval-test-500.json: doc, retrieval_idx), each against the
    /// whole code base (use --protocol pool).
    #[arg(long, value_name = "FILE")]
    cosqa: Option<PathBuf>,
    /// CoSQA's code base (default: code_idx_map.txt beside the queries).
    #[arg(long, value_name = "FILE")]
    cosqa_codebase: Option<PathBuf>,
    /// The qrels split of a BEIR folder.
    #[arg(long, default_value = "test")]
    split: String,
    /// Partitions the pairs come from: train, valid, test (comma-separated) or all.
    #[arg(long, default_value = "test")]
    partition: Partitions,
    /// The text of a pair: docstring, summary or first-line (of the docstring).
    #[arg(long, default_value = "docstring")]
    query: QueryText,
    /// Read pairs from these two string fields of records of any shape (e.g. --query-field
    /// docstring --code-field code for {docstring, code} records), not PyTorrent records.
    #[arg(long, value_name = "NAME", requires = "code_field")]
    query_field: Option<String>,
    /// The code side of --query-field's pairs.
    #[arg(long, value_name = "NAME", requires = "query_field")]
    code_field: Option<String>,
    #[command(flatten)]
    rule: pytorrent_corpus::PartitionRule,
    /// csn (batches of --csn-batch pairs, CodeSearchNet's) or pool (every candidate).
    #[arg(long, default_value = "csn")]
    protocol: Protocol,
    /// text2code (docstring finds code) or code2text.
    #[arg(long, default_value = "text2code")]
    direction: Direction,
    /// Pairs per csn batch: one positive, the rest distractors.
    #[arg(long, default_value_t = 1000)]
    csn_batch: usize,
    /// Seed of the csn shuffle.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// csn batches in input order.
    #[arg(long)]
    no_shuffle: bool,
    /// cosine or dot.
    #[arg(long, default_value = "cosine")]
    similarity: Similarity,
    #[command(flatten)]
    model: MaybeModelArgs,
    /// Texts per forward pass.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    #[command(flatten)]
    pooling: PoolingArgs,
    /// Query embeddings made elsewhere (npy, [pairs, dim]; row i is pair i's query).
    #[arg(long, value_name = "NPY")]
    query_embeddings: Option<PathBuf>,
    /// Candidate embeddings made elsewhere (npy; row i is pair i's candidate).
    #[arg(long, value_name = "NPY")]
    candidate_embeddings: Option<PathBuf>,
    /// Where model embeddings are cached (default: ~/.cache/pytorrent/embeddings).
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Embed again, and keep nothing.
    #[arg(long)]
    no_cache: bool,
    /// Leave out the BM25 baseline.
    #[arg(long)]
    no_bm25: bool,
    /// Another model scored the same way, beside the system (repeatable): e.g. the
    /// checkpoint a fine-tuned model started from.
    #[arg(long = "baseline-model", value_name = "MODEL")]
    baseline_models: Vec<String>,
    #[command(flatten)]
    output: OutputArgs,
}

impl From<&RetrievalArgs> for RetrievalConfig {
    fn from(a: &RetrievalArgs) -> Self {
        RetrievalConfig {
            input: a.policy.config(a.inputs.clone()),
            beir: a.beir.clone(),
            advtest: a.advtest.clone(),
            cosqa: a.cosqa.clone(),
            cosqa_codebase: a.cosqa_codebase.clone(),
            split: a.split.clone(),
            partition: a.partition.clone(),
            rule: a.rule.clone(),
            query: a.query,
            query_field: a.query_field.clone(),
            code_field: a.code_field.clone(),
            protocol: a.protocol,
            direction: a.direction,
            csn_batch: a.csn_batch,
            seed: a.seed,
            no_shuffle: a.no_shuffle,
            similarity: a.similarity,
            model: a.model.model.clone(),
            tokenizer: a.model.tokenizer.clone(),
            device: a.model.device,
            dtype: a.model.dtype,
            batch_size: a.batch_size,
            choices: a.pooling.choices(),
            query_embeddings: a.query_embeddings.clone(),
            candidate_embeddings: a.candidate_embeddings.clone(),
            cache: a.cache.clone(),
            no_cache: a.no_cache,
            no_bm25: a.no_bm25,
            baseline_models: a.baseline_models.clone(),
        }
    }
}

pub fn run(c: EvalCommand) -> Result<ExitCode, CliError> {
    match c {
        EvalCommand::Cloze(ClozeArgs {
            make: Some(ClozeCommand::Make(a)),
            ..
        }) => {
            let console = Console::new(&a.output);
            console.summary(&pytorrent_eval::cloze::make(&a.config, &console)?)
        }
        EvalCommand::Cloze(a) => {
            let console = Console::new(&a.output);
            let cfg = ClozeConfig {
                model: a
                    .model
                    .options(a.batch_size)
                    .expect("clap requires --model without a subcommand"),
                data: a
                    .data
                    .clone()
                    .expect("clap requires it without a subcommand"),
                words: a.words.clone(),
                answers: a.answers.clone(),
                out: a.out.clone(),
            };
            console.result(&pytorrent_eval::cloze::run(&cfg, &console)?)
        }
        EvalCommand::Overlap(a) => {
            let console = Console::new(&a.output);
            let cfg = OverlapConfig {
                input: a.policy.config(vec![a.inputs.clone()]),
                eval: vec![a.eval.clone()],
                field: a.text.field,
                text_field: a.text.text_field.clone(),
                train_partition: a.train_partition.clone(),
                eval_partition: a.eval_partition.clone(),
                threshold: a.threshold,
                shingle: a.shingle,
                examples: a.examples,
            };
            console.result(&pytorrent_eval::overlap::run(&cfg, &console)?)
        }
        EvalCommand::FillMask(a) => {
            let console = Console::new(&a.output);
            let report = pytorrent_eval::fill_mask::run(&a.config, &console)?;
            // The report (with `failed`) is the one document on stdout; the exit code is the
            // gate's.
            console.result_of::<pytorrent_eval::fill_mask::FillMaskEval>(&report)
        }
        EvalCommand::Retrieval(a) => {
            let console = Console::new(&a.output);
            console.result(&pytorrent_eval::retrieval::run(&(&a).into(), &console)?)
        }
    }
}
