//! `pytorrent`: one command line over the pipeline stages.
//!
//! Exit codes: 0 success, 1 data error (bad input records, unreadable files), 2 usage error
//! (bad flags, missing inputs).

mod corpus_cmd;
mod extract_cmd;
mod fetch_cmd;
mod model_cmd;
mod output;
mod pack_cmd;
mod tokenizer_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "pytorrent",
    version,
    about = "Turn Python packages into pretraining data for code language models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
}

/// A mistake in how the command was called (exit code 2).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for UsageError {}

fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if cause.downcast_ref::<UsageError>().is_some() {
            return 2;
        }
        if let Some(e) = cause.downcast_ref::<pytorrent_model::Error>() {
            return match e {
                pytorrent_model::Error::Tokenizer(pytorrent_tokenizer::Error::Load {
                    path,
                    ..
                }) if !path.exists() => 2,
                e if e.is_usage() => 2,
                _ => 1,
            };
        }
        if let Some(e) = cause.downcast_ref::<pytorrent_pack::Error>() {
            return match e {
                pytorrent_pack::Error::Tokenizer(pytorrent_tokenizer::Error::Load {
                    path, ..
                }) if !path.exists() => 2,
                e if e.is_usage() => 2,
                _ => 1,
            };
        }
        if let Some(e) = cause.downcast_ref::<pytorrent_corpus::Error>() {
            return if e.is_usage() { 2 } else { 1 };
        }
        if let Some(e) = cause.downcast_ref::<pytorrent_tokenizer::Error>() {
            // A tokenizer that cannot be found is a bad argument; one that cannot be read is bad data.
            return match e {
                pytorrent_tokenizer::Error::NotCached { .. } => 2,
                pytorrent_tokenizer::Error::Corpus(c) if c.is_usage() => 2,
                pytorrent_tokenizer::Error::Load { path, .. } if !path.exists() => 2,
                _ => 1,
            };
        }
    }
    1
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Corpus(c) => corpus_cmd::run(c),
        Command::Tokenizer(c) => tokenizer_cmd::run(c),
        Command::Extract(a) => extract_cmd::run(a),
        Command::Fetch(a) => fetch_cmd::run(a),
        Command::Pack(a) => pack_cmd::run(a),
        Command::Shards(c) => pack_cmd::shards(c),
        Command::FillMask(a) => model_cmd::fill_mask_cmd(a),
        Command::Embed(a) => model_cmd::embed_cmd(a),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(exit_code(&err))
        }
    }
}
