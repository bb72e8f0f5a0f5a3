//! `pytorrent tokenizer train | encode | decode | inspect | eval`.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use pytorrent_corpus::texts::TextStream;
use pytorrent_corpus::{discover, TextView};
use pytorrent_tokenizer::{Encoder, TrainOptions};
use serde::Serialize;
use tokenizers::Tokenizer;

use crate::corpus_cmd::{parse_partitions, ReadArgs};
use crate::output::print_json;
use crate::UsageError;

#[derive(Subcommand)]
pub enum TokenizerCommand {
    /// Train a RoBERTa-layout byte-level BPE on one text view of a corpus.
    Train(TrainArgs),
    /// Text, standard input or a corpus view → token ids (JSONL or npy).
    Encode(EncodeArgs),
    /// Token ids → text.
    Decode(DecodeArgs),
    /// Vocabulary size, special tokens, merges and a sample encoding.
    Inspect(InspectArgs),
    /// Bytes per token and tokens per record on a partition, optionally against another tokenizer.
    Eval(EvalArgs),
}

#[derive(Args)]
pub struct TrainArgs {
    #[command(flatten)]
    read: ReadArgs,
    /// Output folder: tokenizer.json, vocab.json, merges.txt, tokenizer_config.json,
    /// special_tokens_map.json.
    #[arg(long)]
    out: PathBuf,
    /// Text view: code, docstring, summary, code_with_docstrings, original_string, nl+code.
    #[arg(long, default_value = "code")]
    field: TextView,
    /// Partitions to learn from (default train: valid and test never leak into the vocabulary).
    #[arg(long, default_value = "train")]
    partition: String,
    #[arg(long, default_value_t = 50265)]
    vocab_size: usize,
    #[arg(long, default_value_t = 2)]
    min_frequency: u64,
    /// Longest input the target model takes, written to tokenizer_config.json.
    #[arg(long, default_value_t = 512)]
    model_max_length: usize,
}

#[derive(Args)]
pub struct EncodeArgs {
    /// Tokenizer: tokenizer.json, a folder, or a model id in the local Hugging Face cache.
    #[arg(long)]
    tokenizer: String,
    /// Corpus inputs (files, folders, - for standard input) whose --field view is encoded.
    inputs: Vec<PathBuf>,
    /// Literal text to encode (repeatable; - reads plain text from standard input).
    #[arg(long)]
    text: Vec<String>,
    #[arg(long, default_value = "code")]
    field: TextView,
    #[arg(long, default_value = "all")]
    partition: String,
    /// Output: .jsonl (one JSON array of ids per text, streamed; default standard output) or
    /// .npy (all ids in one uint32 array, plus <name>.offsets.npy with n+1 int64 offsets;
    /// assembled in memory, 4 bytes per token — use JSONL beyond that).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Leave out <s> and </s>.
    #[arg(long)]
    no_special_tokens: bool,
    #[arg(long, default_value = "fail", value_parser = ["fail", "skip"])]
    on_error: String,
    #[command(flatten)]
    output: crate::output::OutputArgs,
}

#[derive(Args)]
pub struct DecodeArgs {
    #[arg(long)]
    tokenizer: String,
    /// Ids (space- or comma-separated); without them, JSON arrays of ids are read from
    /// standard input, one per line.
    ids: Vec<String>,
    /// Keep special tokens (<s>, </s>, <pad>, …) in the text.
    #[arg(long)]
    keep_special_tokens: bool,
}

#[derive(Args)]
pub struct InspectArgs {
    #[arg(long)]
    tokenizer: String,
    /// Text for the sample encoding.
    #[arg(
        long,
        default_value = "def add(a, b):\n    \"\"\"Return the sum.\"\"\"\n    return a + b\n"
    )]
    text: String,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct EvalArgs {
    #[command(flatten)]
    read: ReadArgs,
    #[arg(long)]
    tokenizer: String,
    /// A second tokenizer to compare with.
    #[arg(long)]
    compare: Option<String>,
    #[arg(long, default_value = "code")]
    field: TextView,
    #[arg(long, default_value = "test")]
    partition: String,
}

pub fn run(cmd: TokenizerCommand) -> Result<ExitCode> {
    match cmd {
        TokenizerCommand::Train(a) => train(a),
        TokenizerCommand::Encode(a) => encode(a),
        TokenizerCommand::Decode(a) => decode(a),
        TokenizerCommand::Inspect(a) => inspect(a),
        TokenizerCommand::Eval(a) => eval(a),
    }
}

fn load(spec: &str) -> Result<Tokenizer> {
    Ok(pytorrent_tokenizer::load(spec)?.tokenizer)
}

#[derive(Serialize)]
struct TrainSummary {
    out: PathBuf,
    files: Vec<PathBuf>,
    vocab_size: usize,
    merges: usize,
    texts: u64,
    text_bytes: u64,
    /// Distinct pre-tokens (words) the vocabulary was learnt from.
    distinct_words: u64,
    /// Tokens of the training texts (special tokens left out).
    tokens: u64,
    /// Bytes per token (special tokens left out) over the whole training set.
    bytes_per_token: f64,
    read: pytorrent_corpus::ReadSummary,
    counts: pytorrent_corpus::texts::TextCounts,
}

fn train(a: TrainArgs) -> Result<ExitCode> {
    let files = discover(&a.read.inputs)?;
    let out = &a.read.output;
    let partitions = parse_partitions(&a.partition)?;
    let opts = TrainOptions {
        vocab_size: a.vocab_size,
        min_frequency: a.min_frequency,
        model_max_length: a.model_max_length,
    };
    let bar = out.progress("train");
    let read_opts = a.read.options(Some(&a.out));
    let (tok, read, counts) = pytorrent_tokenizer::train_from_corpus(
        &files,
        &read_opts,
        &bar,
        a.field,
        partitions.as_deref(),
        &opts,
    )?;
    if counts.texts.texts == 0 {
        return Err(UsageError(format!(
            "no {} texts in partition(s) {} of the inputs: nothing to train on",
            a.field.name(),
            a.partition
        ))
        .into());
    }
    let written = pytorrent_tokenizer::save(&tok, &a.out, a.model_max_length)?;
    let summary = TrainSummary {
        out: a.out.clone(),
        files: written,
        vocab_size: tok.get_vocab_size(true),
        merges: pytorrent_tokenizer::merges_count(&tok),
        texts: counts.texts.texts,
        text_bytes: counts.text_bytes,
        distinct_words: counts.distinct_words,
        tokens: counts.tokens,
        bytes_per_token: (counts.text_bytes as f64 / counts.tokens.max(1) as f64 * 1000.0).round()
            / 1000.0,
        read,
        counts: counts.texts,
    };
    out.log(format!(
        "trained on {} texts ({:.1} MB, {} distinct pre-tokens): vocabulary {}, {} merges, {:.2} bytes/token; wrote {}",
        summary.texts,
        summary.text_bytes as f64 / 1e6,
        summary.distinct_words,
        summary.vocab_size,
        summary.merges,
        summary.bytes_per_token,
        a.out.display()
    ));
    if out.json {
        print_json(&summary)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes encoded texts as JSONL (streaming) or npy (collected, then written atomically).
enum IdSink {
    Jsonl(Box<dyn Write>),
    Npy {
        path: PathBuf,
        ids: Vec<u32>,
        offsets: Vec<i64>,
    },
}

impl IdSink {
    fn push(&mut self, ids: &[u32]) -> Result<()> {
        match self {
            IdSink::Jsonl(w) => {
                serde_json::to_writer(&mut *w, ids)?;
                w.write_all(b"\n")?;
            }
            IdSink::Npy {
                ids: all, offsets, ..
            } => {
                all.extend_from_slice(ids);
                offsets.push(all.len() as i64);
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<()> {
        match self {
            IdSink::Jsonl(mut w) => w.flush()?,
            IdSink::Npy { path, ids, offsets } => {
                use ndarray_npy::WriteNpyExt;
                let mut f = pytorrent_io::AtomicFile::create(&path)?;
                ndarray::Array1::from(ids).write_npy(&mut f)?;
                f.commit()?;
                let off_path = path.with_extension("offsets.npy");
                let mut f = pytorrent_io::AtomicFile::create(&off_path)?;
                ndarray::Array1::from(offsets).write_npy(&mut f)?;
                f.commit()?;
            }
        }
        Ok(())
    }
}

fn encode(a: EncodeArgs) -> Result<ExitCode> {
    let tok = load(&a.tokenizer)?;
    let fast = pytorrent_tokenizer::fast::FastEncoder::new(&tok);
    let enc: &dyn Encoder = match &fast {
        Some(f) => f,
        None => &tok,
    };
    let special = !a.no_special_tokens;
    let mut sink = match &a.out {
        Some(p) if p.extension().is_some_and(|e| e == "npy") => IdSink::Npy {
            path: p.clone(),
            ids: Vec::new(),
            offsets: vec![0],
        },
        Some(p) => {
            let f = pytorrent_io::CompressedWriter::create(
                p,
                pytorrent_io::Compression::from_extension(p),
            )?;
            IdSink::Jsonl(Box::new(AtomicJsonl(Some(f))))
        }
        None => IdSink::Jsonl(Box::new(std::io::BufWriter::new(std::io::stdout().lock()))),
    };
    let mut n = 0u64;
    if !a.text.is_empty() {
        if !a.inputs.is_empty() {
            return Err(UsageError("give either --text or corpus inputs, not both".into()).into());
        }
        let mut texts = Vec::new();
        for t in &a.text {
            if t == "-" {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                    .context("reading standard input")?;
                texts.push(s);
            } else {
                texts.push(t.clone());
            }
        }
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        for ids in enc.encode_batch(&refs, special)? {
            sink.push(&ids)?;
            n += 1;
        }
    } else {
        let files = discover(&a.inputs)?;
        let read = ReadArgs {
            inputs: a.inputs.clone(),
            on_error: a.on_error.clone(),
            quarantine: None,
            max_line_bytes: 256 << 20,
            read_chunk_bytes: 4 << 20,
            output: a.output.clone(),
        };
        let mut stream = TextStream::start(
            files,
            read.options(a.out.as_deref()),
            a.field,
            parse_partitions(&a.partition)?,
            Some(Box::new(a.output.progress("encode"))),
        );
        let mut batch: Vec<String> = Vec::with_capacity(1024);
        let flush = |batch: &mut Vec<String>, sink: &mut IdSink| -> Result<u64> {
            let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
            let all = enc.encode_batch(&refs, special)?;
            for ids in &all {
                sink.push(ids)?;
            }
            batch.clear();
            Ok(all.len() as u64)
        };
        for text in stream.texts() {
            batch.push(text);
            if batch.len() == 1024 {
                n += flush(&mut batch, &mut sink)?;
            }
        }
        n += flush(&mut batch, &mut sink)?;
        stream.finish()?;
    }
    sink.finish()?;
    if !a.output.json {
        a.output.log(format!("encoded {n} texts"));
    }
    Ok(ExitCode::SUCCESS)
}

/// A JSONL file that appears only when complete.
struct AtomicJsonl(Option<pytorrent_io::CompressedWriter>);
impl Write for AtomicJsonl {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.as_mut().expect("open until flushed").write(b)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        // The final flush of the sink finishes the file.
        match self.0.take() {
            Some(w) => w.finish().map(|_| ()).map_err(std::io::Error::other),
            None => Ok(()),
        }
    }
}

fn parse_ids(s: &str) -> Result<Vec<u32>> {
    s.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|x| !x.is_empty())
        .map(|x| {
            x.parse::<u32>()
                .map_err(|_| UsageError(format!("not a token id: '{x}'")).into())
        })
        .collect()
}

fn decode(a: DecodeArgs) -> Result<ExitCode> {
    let tok = load(&a.tokenizer)?;
    let vocab = tok.get_vocab_size(true) as u32;
    let check = |ids: &[u32], what: &str| -> Result<()> {
        if let Some(bad) = ids.iter().find(|i| **i >= vocab) {
            anyhow::bail!("{what}: id {bad} is outside the vocabulary (size {vocab})");
        }
        Ok(())
    };
    let mut out = std::io::stdout().lock();
    if !a.ids.is_empty() {
        let ids = parse_ids(&a.ids.join(" "))?;
        check(&ids, "arguments")?;
        writeln!(
            out,
            "{}",
            tok.decode(&ids, !a.keep_special_tokens)
                .map_err(anyhow::Error::msg)?
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    for (i, line) in std::io::stdin().lock().lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let ids: Vec<u32> = serde_json::from_str(&line)
            .with_context(|| format!("<stdin>:{}: expected a JSON array of token ids", i + 1))?;
        check(&ids, &format!("<stdin>:{}", i + 1))?;
        let text = tok
            .decode(&ids, !a.keep_special_tokens)
            .map_err(anyhow::Error::msg)?;
        writeln!(out, "{}", serde_json::to_string(&text)?)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn inspect(a: InspectArgs) -> Result<ExitCode> {
    let loaded = pytorrent_tokenizer::load(&a.tokenizer)?;
    let tok = &loaded.tokenizer;
    let specials: Vec<(String, Option<u32>)> = pytorrent_tokenizer::SPECIAL_TOKENS
        .iter()
        .map(|t| ((*t).to_string(), tok.token_to_id(t)))
        .collect();
    let enc = tok
        .encode(a.text.as_str(), true)
        .map_err(anyhow::Error::msg)?;
    let source = match &loaded.source {
        pytorrent_tokenizer::Source::TokenizerJson(p) => p.display().to_string(),
        pytorrent_tokenizer::Source::VocabMerges { vocab, merges } => {
            format!("{} + {}", vocab.display(), merges.display())
        }
    };
    let v = serde_json::json!({
        "source": source,
        "vocab_size": tok.get_vocab_size(true),
        "vocab_size_without_added": tok.get_vocab_size(false),
        "merges": pytorrent_tokenizer::merges_count(tok),
        "special_tokens": specials.iter().map(|(t, id)| (t.clone(), serde_json::json!(id))).collect::<serde_json::Map<_, _>>(),
        "sample": { "text": a.text, "ids": enc.get_ids(), "tokens": enc.get_tokens() },
    });
    if a.json {
        print_json(&v)?;
    } else {
        println!("source            {source}");
        println!(
            "vocabulary        {} ({} without added tokens)",
            v["vocab_size"], v["vocab_size_without_added"]
        );
        println!("merges            {}", v["merges"]);
        for (t, id) in &specials {
            println!(
                "  {t:<8} {}",
                id.map_or("absent".to_string(), |i| i.to_string())
            );
        }
        println!("sample            {:?}", a.text);
        println!("  ids             {:?}", enc.get_ids());
        println!("  tokens          {:?}", enc.get_tokens());
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize, Default, Clone)]
struct EvalResult {
    tokenizer: String,
    texts: u64,
    bytes: u64,
    tokens: u64,
    bytes_per_token: f64,
    tokens_per_record: f64,
}

fn eval(a: EvalArgs) -> Result<ExitCode> {
    let mut toks = vec![(a.tokenizer.clone(), load(&a.tokenizer)?)];
    if let Some(c) = &a.compare {
        toks.push((c.clone(), load(c)?));
    }
    let files = discover(&a.read.inputs)?;
    let out = &a.read.output;
    let mut stream = TextStream::start(
        files,
        a.read.options(None),
        a.field,
        parse_partitions(&a.partition)?,
        Some(Box::new(out.progress("eval"))),
    );
    let mut results: Vec<EvalResult> = toks
        .iter()
        .map(|(n, _)| EvalResult {
            tokenizer: n.clone(),
            ..Default::default()
        })
        .collect();
    let mut batch: Vec<String> = Vec::new();
    let run_batch = |batch: &mut Vec<String>, results: &mut Vec<EvalResult>| -> Result<()> {
        let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
        let bytes: u64 = refs.iter().map(|t| t.len() as u64).sum();
        for ((_, tok), r) in toks.iter().zip(results.iter_mut()) {
            let ids = tok.encode_batch(&refs, false)?;
            r.texts += refs.len() as u64;
            r.bytes += bytes;
            r.tokens += ids.iter().map(|v| v.len() as u64).sum::<u64>();
        }
        batch.clear();
        Ok(())
    };
    for t in stream.texts() {
        batch.push(t);
        if batch.len() == 1024 {
            run_batch(&mut batch, &mut results)?;
        }
    }
    run_batch(&mut batch, &mut results)?;
    let (read, counts) = stream.finish()?;
    if counts.texts == 0 {
        return Err(UsageError(format!(
            "no {} texts in partition(s) {}",
            a.field.name(),
            a.partition
        ))
        .into());
    }
    for r in &mut results {
        r.bytes_per_token = (r.bytes as f64 / r.tokens.max(1) as f64 * 1000.0).round() / 1000.0;
        r.tokens_per_record = (r.tokens as f64 / r.texts.max(1) as f64 * 100.0).round() / 100.0;
    }
    if out.json {
        print_json(
            &serde_json::json!({ "field": a.field.name(), "partition": a.partition, "results": results, "read": read }),
        )?;
    } else {
        println!(
            "{:<40} {:>8} {:>12} {:>10} {:>12} {:>14}",
            "tokenizer", "texts", "bytes", "tokens", "bytes/token", "tokens/record"
        );
        for r in &results {
            println!(
                "{:<40} {:>8} {:>12} {:>10} {:>12.3} {:>14.2}",
                r.tokenizer, r.texts, r.bytes, r.tokens, r.bytes_per_token, r.tokens_per_record
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
