//! Training straight from a corpus: words are counted inside the corpus reader's parallel
//! parse (one word-count map per thread, merged at the end) and handed to the BPE trainer's
//! merge phase.
//!
//! `tokenizers`' own `train(iterator)` builds a hash map per sequence under `par_bridge` and
//! merges them pairwise, which costs more than the pre-tokenization itself; counting here
//! gives the trainer exactly the counts it would compute (same pre-tokenizer, same words),
//! so vocabulary and merges are identical — a test checks it against [`crate::train`].

use std::cell::RefCell;

use ahash::AHashMap;
use compact_str::CompactString;
use std::path::PathBuf;

use pytorrent_corpus::read::{read_records, Item, ReadOptions};
use pytorrent_corpus::texts::TextCounts;
use pytorrent_corpus::{
    InputConfig, InputFile, Partition, PartitionRule, Partitions, ReadSummary, TextSource, TextView,
};
use pytorrent_io::{Reporter, Unit};
use serde::{Deserialize, Serialize};
use thread_local::ThreadLocal;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{
    Model, OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer, Tokenizer,
};

use crate::{bpe_trainer, into_tokenizer, roberta_pipeline, Error, Result, TrainOptions};

/// What the counting saw.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct TrainCounts {
    pub texts: TextCounts,
    pub text_bytes: u64,
    pub distinct_words: u64,
    /// Tokens of the training texts under the trained model, special tokens left out: BPE
    /// never merges across pre-tokens, so this is the sum over distinct words of count ×
    /// length of the word's encoding — exact, without a second pass over the corpus.
    pub tokens: u64,
}

type Counts = AHashMap<CompactString, u64>;

/// Counts pre-tokenized words exactly as the BPE trainer's `feed` does (ASCII texts through
/// the fast splitter of [`crate::pretok`], others through `tokenizers` itself).
pub fn count_words(text: &str, pre: &ByteLevel, into: &mut Counts) -> Result<()> {
    if text.is_ascii() {
        thread_local! {
            static TABLE: [char; 256] = crate::pretok::byte_to_char();
        }
        TABLE.with(|table| {
            let mut word = String::new();
            crate::pretok::split_ascii(text.as_bytes(), |piece| {
                word.clear();
                word.extend(piece.iter().map(|b| table[*b as usize]));
                match into.get_mut(word.as_str()) {
                    Some(n) => *n += 1,
                    None => {
                        into.insert(CompactString::from(word.as_str()), 1);
                    }
                }
            });
        });
        return Ok(());
    }
    let mut pts = PreTokenizedString::from(text);
    pre.pre_tokenize(&mut pts)?;
    for (word, _, _) in pts.get_splits(OffsetReferential::Original, OffsetType::Byte) {
        *into.entry(CompactString::from(word)).or_default() += 1;
    }
    Ok(())
}

/// What the texts of a training run are: which text of which records.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub source: Option<TextSource>,
    pub partitions: Partitions,
    pub rule: PartitionRule,
}

/// Why a record gave no text.
enum Skipped {
    Partition(pytorrent_corpus::Excluded),
    Failed(String),
}

/// Trains on the texts `sel` picks of `files`, reading in parallel.
pub fn train_from_corpus(
    files: &[InputFile],
    read: &ReadOptions,
    progress: &dyn Reporter,
    sel: &Selection,
    opts: &TrainOptions,
) -> Result<(Tokenizer, ReadSummary, TrainCounts)> {
    let pre = ByteLevel::new(false, true, true);
    let maps: ThreadLocal<RefCell<Counts>> = ThreadLocal::new();
    let mut counts = TrainCounts::default();
    let source = sel
        .source
        .clone()
        .unwrap_or(TextSource::View(TextView::Code));
    let summary = read_records(
        files,
        read,
        &source.schema(),
        progress,
        |file, _, rec| -> Result<Option<u64>, Skipped> {
            sel.partitions
                .admit(sel.rule.resolve(&rec, file))
                .map_err(Skipped::Partition)?;
            let Some(text) = rec.text(&source) else {
                return Ok(None);
            };
            let mut map = maps.get_or_default().borrow_mut();
            count_words(&text, &pre, &mut map).map_err(|e| Skipped::Failed(e.to_string()))?;
            Ok(Some(text.len() as u64))
        },
        |item| {
            if let Item::Record { file, line, value } = item {
                match value {
                    Ok(Some(n)) => {
                        counts.texts.texts += 1;
                        counts.text_bytes += n;
                    }
                    Ok(None) => counts.texts.missing_view += 1,
                    Err(Skipped::Partition(why)) => counts.texts.exclude(why),
                    Err(Skipped::Failed(e)) => {
                        return Err(Error::from(pytorrent_corpus::Error::Data(
                            pytorrent_corpus::Problem {
                                path: file.display(),
                                line: line.line_no,
                                kind: pytorrent_corpus::ProblemKind::WrongType,
                                message: format!("pre-tokenization failed: {e}"),
                            },
                        )))
                    }
                }
            }
            Ok::<(), Error>(())
        },
    )?;
    // Per-thread maps are merged in any order: counts are sums, and the trainer orders its
    // work by counts and token ids only, never by map iteration order.
    let mut total: Counts = AHashMap::new();
    for m in maps.into_iter() {
        let m = m.into_inner();
        if total.is_empty() {
            total = m;
            continue;
        }
        for (k, v) in m {
            *total.entry(k).or_default() += v;
        }
    }
    counts.distinct_words = total.len() as u64;
    // The trainer sizes its tables by the vocabulary asked for: ask no more than the words
    // can give (the result is the same), and refuse a size far beyond it.
    let bound = crate::vocab_bound(total.keys().map(|w| w.as_str()));
    if opts.vocab_size > bound && opts.vocab_size > crate::ALWAYS_ACCEPTED_VOCAB {
        return Err(Error::Usage(format!(
            "--vocab-size {}: the training texts can give at most {bound} entries (5 special \
             tokens, 256 bytes and one merge per pair of adjacent symbols of each of their {} \
             distinct words); ask for at most that",
            opts.vocab_size,
            total.len()
        )));
    }
    let opts = &TrainOptions {
        vocab_size: opts.vocab_size.min(bound),
        ..opts.clone()
    };
    let trainer = bpe_trainer(opts);
    let mut model = BPE::default();
    let special = trainer.do_train(&total, &mut model)?;
    let mut tokens = 0u64;
    for (word, n) in &total {
        tokens += n * model.tokenize(word)?.len() as u64;
    }
    counts.tokens = tokens;
    drop(total);
    let mut tok = roberta_pipeline(model)?;
    tok.add_special_tokens(special)?;
    Ok((into_tokenizer(tok)?, summary, counts))
}

/// `tokenizer train`: a RoBERTa-layout byte-level BPE learnt from one text view of a corpus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct TrainConfig {
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub input: InputConfig,
    /// Output folder: tokenizer.json, vocab.json, merges.txt, tokenizer_config.json,
    /// special_tokens_map.json.
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
    /// Text view of PyTorrent records to learn from: code, docstring, summary,
    /// code_with_docstrings, original_string, nl+code.
    #[serde(default = "default_field")]
    #[cfg_attr(feature = "cli", arg(long, default_value = "code"))]
    pub field: TextView,
    /// Learn from this string field of records of any shape instead (e.g. text, content), as
    /// HF hub datasets and datatrove write them.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long, value_name = "NAME"))]
    pub text_field: Option<String>,
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub rule: PartitionRule,
    /// Partitions to learn from (default train: valid and test never leak into the
    /// vocabulary).
    #[serde(default = "default_partition")]
    #[cfg_attr(feature = "cli", arg(long, default_value = "train"))]
    pub partition: Partitions,
    /// Vocabulary size, the 5 special tokens and 256 byte symbols included.
    #[serde(default = "default_vocab_size")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = default_vocab_size()))]
    pub vocab_size: usize,
    /// Fewest occurrences a pair needs to become a merge.
    #[serde(default = "default_min_frequency")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = default_min_frequency()))]
    pub min_frequency: u64,
    /// Longest input the target model takes, written to tokenizer_config.json.
    #[serde(default = "default_model_max_length")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = default_model_max_length()))]
    pub model_max_length: usize,
}

fn default_field() -> TextView {
    TextView::Code
}
fn default_partition() -> Partitions {
    Partitions::only(Partition::Train)
}
fn default_vocab_size() -> usize {
    TrainOptions::default().vocab_size
}
fn default_min_frequency() -> u64 {
    TrainOptions::default().min_frequency
}
fn default_model_max_length() -> usize {
    TrainOptions::default().model_max_length
}

impl TrainConfig {
    pub fn new(input: InputConfig, out: PathBuf) -> TrainConfig {
        TrainConfig {
            input,
            out,
            field: default_field(),
            text_field: None,
            rule: PartitionRule::default(),
            partition: default_partition(),
            vocab_size: default_vocab_size(),
            min_frequency: default_min_frequency(),
            model_max_length: default_model_max_length(),
        }
    }

    pub fn validate(&self) -> Result<()> {
        // 5 special tokens and the 256 byte symbols come first.
        if self.vocab_size < 261 {
            return Err(Error::Usage(format!(
                "--vocab-size {} is below 261 (5 special tokens and 256 byte symbols)",
                self.vocab_size
            )));
        }
        if self.vocab_size > crate::MAX_VOCAB_SIZE {
            return Err(Error::Usage(format!(
                "--vocab-size {} is above {} (2^31): token ids are stored as 32-bit signed \
                 integers",
                self.vocab_size,
                crate::MAX_VOCAB_SIZE
            )));
        }
        if self.model_max_length == 0 {
            return Err(Error::Usage("--model-max-length must be at least 1".into()));
        }
        self.rule.validate().map_err(Error::Usage)
    }

    fn selection(&self) -> Selection {
        Selection {
            source: Some(TextSource::new(self.field, self.text_field.as_deref())),
            partitions: self.partition.clone(),
            rule: self.rule.clone(),
        }
    }

    fn options(&self) -> TrainOptions {
        TrainOptions {
            vocab_size: self.vocab_size,
            min_frequency: self.min_frequency,
            model_max_length: self.model_max_length,
        }
    }
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct TrainReport {
    pub out: PathBuf,
    pub files: Vec<PathBuf>,
    pub vocab_size: usize,
    pub merges: usize,
    pub texts: u64,
    pub text_bytes: u64,
    /// Distinct pre-tokens (words) the vocabulary was learnt from.
    pub distinct_words: u64,
    /// Tokens of the training texts (special tokens left out).
    pub tokens: u64,
    /// Bytes per token (special tokens left out) over the whole training set.
    pub bytes_per_token: f64,
    pub read: ReadSummary,
    pub counts: TextCounts,
}

/// Training a tokenizer (`tokenizer train`).
pub struct Train;

impl pytorrent_io::stage::Stage for Train {
    type Config = TrainConfig;
    type Report = TrainReport;
    type Error = Error;
    const COMMAND: &'static str = "tokenizer train";
    const READS: &'static [&'static str] = &["inputs"];
    const WRITES: &'static [&'static str] = &["quarantine"];

    fn run(
        config: &TrainConfig,
        reporter: &dyn pytorrent_io::Reporter,
    ) -> Result<TrainReport, Error> {
        run(config, reporter)
    }
}

/// Learns the vocabulary and writes the tokenizer folder.
pub fn run(cfg: &TrainConfig, reporter: &dyn Reporter) -> Result<TrainReport> {
    cfg.validate()?;
    let files = cfg.input.discover()?;
    reporter.begin("train", Unit::Bytes, None);
    let trained = train_from_corpus(
        &files,
        &cfg.input.options(Some(&cfg.out)),
        reporter,
        &cfg.selection(),
        &cfg.options(),
    );
    reporter.end();
    let (tok, read, counts) = trained?;
    if counts.texts.texts == 0 {
        let sel = cfg.selection();
        let source = sel.source.expect("set above");
        return Err(Error::Corpus(Box::new(pytorrent_corpus::Error::Data(
            pytorrent_corpus::Problem {
                path: cfg
                    .input
                    .inputs
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                line: 0,
                kind: pytorrent_corpus::ProblemKind::MissingField,
                message: format!(
                    "nothing to train on: {}",
                    counts.texts.why_none(&source, &sel.partitions)
                ),
            },
        ))));
    }
    let written = crate::save(&tok, &cfg.out, cfg.model_max_length)?;
    let vocab_size = tok.get_vocab_size(true);
    if vocab_size < cfg.vocab_size {
        reporter.warn(&format!(
            "the vocabulary has {vocab_size} entries, fewer than the {} asked for: the texts \
             hold no more merges that occur at least {} times",
            cfg.vocab_size, cfg.min_frequency
        ));
    }
    Ok(TrainReport {
        out: cfg.out.clone(),
        files: written,
        vocab_size,
        merges: crate::merges_count(&tok),
        texts: counts.texts.texts,
        text_bytes: counts.text_bytes,
        distinct_words: counts.distinct_words,
        tokens: counts.tokens,
        bytes_per_token: (counts.text_bytes as f64 / counts.tokens.max(1) as f64 * 1000.0).round()
            / 1000.0,
        read,
        counts: counts.texts,
    })
}

impl std::fmt::Display for TrainReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "trained on {} ({:.1} MB, {} distinct pre-tokens): vocabulary {}, {} merges, {:.2} bytes/token; wrote {}",
            pytorrent_io::reporter::plural(self.texts, "text", "texts"),
            self.text_bytes as f64 / 1e6,
            self.distinct_words,
            self.vocab_size,
            self.merges,
            self.bytes_per_token,
            self.out.display()
        )
    }
}
