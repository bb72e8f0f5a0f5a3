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
use pytorrent_corpus::read::{effective_partition, read_corpus, Item, Progress, ReadOptions};
use pytorrent_corpus::texts::TextCounts;
use pytorrent_corpus::{InputFile, Partition, ReadSummary, TextView};
use thread_local::ThreadLocal;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{
    Model, OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer, Tokenizer,
};

use crate::{bpe_trainer, into_tokenizer, roberta_pipeline, Error, Result, TrainOptions};

/// What the counting saw.
#[derive(Debug, Clone, Default, serde::Serialize)]
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

/// Trains on one view of `files`, partitions filtered, reading in parallel.
pub fn train_from_corpus(
    files: &[InputFile],
    read: &ReadOptions,
    progress: &dyn Progress,
    view: TextView,
    partitions: Option<&[Partition]>,
    opts: &TrainOptions,
) -> Result<(Tokenizer, ReadSummary, TrainCounts)> {
    let pre = ByteLevel::new(false, true, true);
    let maps: ThreadLocal<RefCell<Counts>> = ThreadLocal::new();
    let mut counts = TrainCounts::default();
    let summary = read_corpus(
        files,
        read,
        progress,
        |file, _, rec| -> Result<Option<u64>, Option<String>> {
            if partitions
                .is_some_and(|ps| !effective_partition(&rec, file).is_some_and(|p| ps.contains(&p)))
            {
                return Err(None);
            }
            let Some(text) = view.text(&rec) else {
                return Ok(None);
            };
            let mut map = maps.get_or_default().borrow_mut();
            count_words(&text, &pre, &mut map).map_err(|e| Some(e.to_string()))?;
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
                    Err(None) => counts.texts.other_partition += 1,
                    Err(Some(e)) => {
                        return Err(pytorrent_corpus::Error::Data(pytorrent_corpus::Problem {
                            path: file.display(),
                            line: line.line_no,
                            kind: pytorrent_corpus::ProblemKind::WrongType,
                            message: format!("pre-tokenization failed: {e}"),
                        }))
                    }
                }
            }
            Ok(())
        },
    )
    .map_err(|e| Error::Corpus(Box::new(e)))?;
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
