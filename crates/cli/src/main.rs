//! `pytorrent`: one command line over the pipeline stages. Each subcommand turns its flags
//! into the stage's typed config, calls the stage's `run` and prints the report; the stage
//! logic lives in the `pytorrent-*` crates.
//!
//! Exit codes: 0 success, 1 data error (bad input records, unreadable files), 2 usage error
//! (bad flags, missing inputs).

mod args;
#[cfg(test)]
mod config_schema;
mod console;
mod corpus_cmd;
mod error;
mod eval_cmd;
mod extract_cmd;
mod fetch_cmd;
mod finetune_cmd;
mod model_cmd;
mod pack_cmd;
mod pretrain_cmd;
mod run_cmd;
mod tokenizer_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

// Extraction and tokenising make and drop millions of small strings; glibc's allocator spent
// a fifth of extract's time in malloc/free and kept freed pages. mimalloc halves that.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The version line: the package version, the git commit it was built from, and the
/// optional features compiled in.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("PYTORRENT_GIT_COMMIT"),
    "; features: ",
    features!(),
    ")"
);

#[cfg(feature = "cuda")]
macro_rules! features {
    () => {
        "cuda"
    };
}
#[cfg(not(feature = "cuda"))]
macro_rules! features {
    () => {
        "none (built without cuda)"
    };
}
use features;

/// What the pipeline records as the tool in every fingerprint.
pub const TOOL: &str = concat!(
    "pytorrent ",
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("PYTORRENT_GIT_COMMIT"),
    ")"
);

#[derive(Parser)]
#[command(
    name = "pytorrent",
    version = VERSION,
    about = "Turn Python packages into pretraining data for code language models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The whole pipeline from a TOML file (configs/sample.toml): fetch, extract, stats,
    /// tokenizer, pack, pretrain and the checks; stages whose inputs and settings are
    /// unchanged are skipped; writes one self-contained report.html.
    Run(run_cmd::RunArgs),
    /// Read, check, describe and reshape corpora (JSONL / JSONL.gz / JSONL.zst, PyTorrent and
    /// CodeSearchNet layouts).
    #[command(subcommand)]
    Corpus(corpus_cmd::CorpusCommand),
    /// Download package metadata and release archives from the package index pip uses.
    Fetch(fetch_cmd::FetchArgs),
    /// Python packages (sdists, wheels, folders) → <NL, code> records in PyTorrent's layout.
    Extract(extract_cmd::ExtractArgs),
    /// Corpus + tokenizer → fixed-length MLM shards (npy or Megatron) with a manifest per
    /// partition; shuffled, optionally statically masked, resumable, splittable into tasks.
    Pack(pack_cmd::PackArgs),
    /// Packed shards → a RoBERTa masked-language model (CPU or one GPU), saved in the
    /// Hugging Face layout, with validation, a loss log and resumable checkpoints.
    Pretrain(pretrain_cmd::PretrainArgs),
    /// Corpus <docstring, code> pairs → a code-search bi-encoder: contrastive fine-tuning
    /// (MultipleNegativesRankingLoss, in-batch and BM25 hard negatives) of a RoBERTa/BERT
    /// checkpoint, saved as a sentence-transformers folder, with validation MRR.
    Finetune(finetune_cmd::FinetuneArgs),
    /// Check, read back and merge packed shards.
    #[command(subcommand)]
    Shards(pack_cmd::ShardsCommand),
    /// Fill <mask> tokens with a RoBERTa/BERT masked-language model, as the transformers
    /// fill-mask pipeline does.
    FillMask(model_cmd::FillMaskArgs),
    /// Pooled embeddings (mean, cls, pooler) of text lines or a corpus view, as npy.
    Embed(model_cmd::EmbedArgs),
    /// Train, load and apply byte-level BPE tokenizers (files load in Python tokenizers and
    /// transformers unchanged).
    #[command(subcommand)]
    Tokenizer(tokenizer_cmd::TokenizerCommand),
    /// Check a model: code retrieval with its embeddings (CodeSearchNet and pool protocols,
    /// beside BM25 and random).
    #[command(subcommand)]
    Eval(eval_cmd::EvalCommand),
}

/// `mi_option_purge_delay` in mimalloc.h's `mi_option_e` (libmimalloc-sys names no constant
/// for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// mimalloc returns freed pages to the OS once they sit unused for its purge delay (1 s, 10 s
/// in arenas). A training step frees and reallocates the same few hundred megabytes each step,
/// a second or more apart, so every step faulted its memory back in zeroed: 219,000 page faults
/// and a fifth of the CPU time in the kernel for 6 fine-tuning steps. Commands are processes
/// that end; keeping freed pages changes no peak, and the next step reuses them.
fn keep_freed_memory() {
    // SAFETY: sets an allocator option; mimalloc reads it when it next purges.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}

fn main() -> ExitCode {
    keep_freed_memory();
    pytorrent_io::quiet_guarded_panics();
    // With --json a failure is a JSON document on stdout too, so scripts never parse nothing.
    let json = std::env::args().skip(1).any(|a| a == "--json");
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if json && e.use_stderr() => {
            let message = e
                .kind()
                .as_str()
                .map_or_else(|| e.to_string(), str::to_string);
            return fail(&error::CliError::usage(message), true);
        }
        Err(e) => e.exit(),
    };
    let result = match cli.command {
        Command::Run(a) => run_cmd::run(a),
        Command::Corpus(c) => corpus_cmd::run(c),
        Command::Tokenizer(c) => tokenizer_cmd::run(c),
        Command::Extract(a) => extract_cmd::run(a),
        Command::Fetch(a) => fetch_cmd::run(a),
        Command::Pack(a) => pack_cmd::run(a),
        Command::Shards(c) => pack_cmd::shards(c),
        Command::Pretrain(a) => pretrain_cmd::run(a),
        Command::Finetune(a) => finetune_cmd::run(a),
        Command::FillMask(a) => model_cmd::fill_mask(a),
        Command::Embed(a) => model_cmd::embed(a),
        Command::Eval(c) => eval_cmd::run(c),
    };
    match result {
        Ok(code) => code,
        // `… | head` closed our output: the reader has what it wanted.
        Err(err) if err.kind == pytorrent_io::ErrorKind::Closed => ExitCode::SUCCESS,
        Err(err) => fail(&err, json),
    }
}

/// Prints a failure (on stderr; with --json also as `{"error": {"kind", "message"}}` on
/// stdout) and gives its exit code.
fn fail(err: &error::CliError, json: bool) -> ExitCode {
    eprintln!("error: {err}");
    if json {
        let doc = serde_json::json!({"error": {"kind": err.kind, "message": err.message}});
        let _ = console::print_json(&doc);
    }
    ExitCode::from(err.kind.exit_code())
}
