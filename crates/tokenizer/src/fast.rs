//! An exact, faster encoder for byte-level BPE tokenizers (RoBERTa's and ours).
//!
//! Hand-written because `tokenizers` spends most of its encoding time splitting text with
//! the GPT-2 pattern in a backtracking regex engine and tracking per-byte alignments it then
//! throws away. For ASCII text this encoder splits with [`crate::pretok::split_ascii`]
//! (checked against `tokenizers` on the sample corpus and on random strings), maps bytes to
//! GPT-2's printable characters, and asks the tokenizer's own BPE model for each piece,
//! memoising the ids of pieces already seen. Anything else — a text with a non-ASCII byte or
//! one that contains an added token such as `<mask>` — goes through `tokenizers` itself, so
//! the ids are the same as `tokenizers` gives for every text.

use std::cell::RefCell;

use ahash::AHashMap;
use rayon::prelude::*;
use thread_local::ThreadLocal;
use tokenizers::models::bpe::BPE;
use tokenizers::{Model, ModelWrapper, PostProcessorWrapper, PreTokenizerWrapper, Tokenizer};

use crate::pretok::{byte_to_char, split_ascii};
use crate::{Encoder, Result};

/// Ids of pieces already encoded, by the piece's bytes.
type Memo = AHashMap<Box<[u8]>, Box<[u32]>>;

/// Pieces remembered per thread before the memo starts over (bounds memory).
const MEMO_LIMIT: usize = 200_000;

pub struct FastEncoder<'a> {
    tok: &'a Tokenizer,
    bpe: BPE,
    table: [char; 256],
    /// Contents of the added tokens: a text holding one takes the `tokenizers` path.
    added: Vec<String>,
    /// `<s>` and `</s>` of a RoBERTa post-processor, for encoding with special tokens.
    wrap: Option<(u32, u32)>,
    memo: ThreadLocal<RefCell<Memo>>,
}

impl<'a> FastEncoder<'a> {
    /// The fast path for `tok`, when it is a plain byte-level BPE tokenizer: no normalizer,
    /// the ByteLevel pre-tokenizer with the GPT-2 pattern and no prefix space, and a BPE model
    /// without dropout. `None` otherwise (use `tok` itself).
    pub fn new(tok: &'a Tokenizer) -> Option<FastEncoder<'a>> {
        if tok.get_normalizer().is_some() {
            return None;
        }
        match tok.get_pre_tokenizer() {
            Some(PreTokenizerWrapper::ByteLevel(b)) if !b.add_prefix_space && b.use_regex => {}
            _ => return None,
        }
        let bpe = match tok.get_model() {
            ModelWrapper::BPE(b) if b.dropout.is_none_or(|d| d == 0.0) => b.clone(),
            _ => return None,
        };
        let added = tok
            .get_added_tokens_decoder()
            .values()
            .map(|t| t.content.clone())
            .filter(|c| !c.is_empty())
            .collect();
        let wrap = match tok.get_post_processor() {
            Some(PostProcessorWrapper::Roberta(r)) => Some((r.cls.1, r.sep.1)),
            _ => None,
        };
        Some(FastEncoder {
            tok,
            bpe,
            table: byte_to_char(),
            added,
            wrap,
            memo: ThreadLocal::new(),
        })
    }

    fn takes_fast_path(&self, text: &str) -> bool {
        text.is_ascii() && !self.added.iter().any(|a| text.contains(a.as_str()))
    }

    /// Ids of one ASCII text and, per id, whether it begins a pre-token.
    fn encode_ascii(&self, text: &str, words: bool) -> Result<(Vec<u32>, Vec<bool>)> {
        let memo = self.memo.get_or(|| RefCell::new(AHashMap::new()));
        let mut memo = memo.borrow_mut();
        if memo.len() > MEMO_LIMIT {
            memo.clear();
        }
        let mut ids = Vec::with_capacity(text.len() / 3);
        let mut starts = Vec::new();
        let mut failure = None;
        let mut mapped = String::new();
        split_ascii(text.as_bytes(), |piece| {
            if failure.is_some() {
                return;
            }
            let begin = ids.len();
            if let Some(hit) = memo.get(piece) {
                ids.extend_from_slice(hit);
            } else {
                mapped.clear();
                mapped.extend(piece.iter().map(|b| self.table[*b as usize]));
                match self.bpe.tokenize(&mapped) {
                    Ok(tokens) => {
                        let new: Box<[u32]> = tokens.iter().map(|t| t.id).collect();
                        ids.extend_from_slice(&new);
                        memo.insert(piece.into(), new);
                    }
                    Err(e) => failure = Some(e),
                }
            }
            if words {
                starts.extend((begin..ids.len()).map(|i| i == begin));
            }
        });
        if let Some(e) = failure {
            return Err(e.into());
        }
        Ok((ids, starts))
    }
}

impl Encoder for FastEncoder<'_> {
    fn encode_batch(&self, texts: &[&str], add_special_tokens: bool) -> Result<Vec<Vec<u32>>> {
        let wrap = match (add_special_tokens, self.wrap) {
            (false, _) => None,
            (true, Some(w)) => Some(w),
            // Another post-processor: `tokenizers` applies it.
            (true, None) => return self.tok.encode_batch(texts, true),
        };
        texts
            .par_iter()
            .map(|t| {
                if !self.takes_fast_path(t) {
                    return Ok(self.tok.encode_batch(&[t], add_special_tokens)?.remove(0));
                }
                let ids = self.encode_ascii(t, false)?.0;
                Ok(match wrap {
                    Some((cls, sep)) => {
                        let mut v = Vec::with_capacity(ids.len() + 2);
                        v.push(cls);
                        v.extend(ids);
                        v.push(sep);
                        v
                    }
                    None => ids,
                })
            })
            .collect()
    }

    fn encode_batch_words(&self, texts: &[&str]) -> Result<Vec<(Vec<u32>, Vec<bool>)>> {
        texts
            .par_iter()
            .map(|t| {
                if self.takes_fast_path(t) {
                    self.encode_ascii(t, true)
                } else {
                    Ok(self.tok.encode_batch_words(&[t])?.remove(0))
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{train, TrainOptions};

    fn texts() -> Vec<String> {
        let mut v: Vec<String> = (0..300)
            .map(|i| {
                format!(
                    "def f_{i}(self, x):\n\t\"\"\"Don't return {i}'s value.\"\"\"  \n    return x+{i}  # ok\r\n\n"
                )
            })
            .collect();
        v.push("  leading and trailing spaces   ".into());
        v.push("x = '<mask>'  # an added token inside".into());
        v.push("naïve café — non-ASCII".into());
        v.push(String::new());
        v.push("it's we're they've I'm we'll he'd 's 't".into());
        v.push("\u{b}\u{c}mixed\u{b} whitespace\t\t\n".into());
        v
    }

    #[test]
    fn ids_and_word_starts_equal_tokenizers() {
        let tok = train(
            texts().into_iter(),
            &TrainOptions {
                vocab_size: 350,
                min_frequency: 2,
                model_max_length: 512,
            },
        )
        .unwrap();
        let fast = FastEncoder::new(&tok).expect("a byte-level BPE tokenizer");
        let t = texts();
        let refs: Vec<&str> = t.iter().map(String::as_str).collect();
        for special in [false, true] {
            assert_eq!(
                fast.encode_batch(&refs, special).unwrap(),
                tok.encode_batch(&refs, special).unwrap()
            );
        }
        // Twice: the second time every piece comes from the memo.
        assert_eq!(
            fast.encode_batch_words(&refs).unwrap(),
            tok.encode_batch_words(&refs).unwrap()
        );
        assert_eq!(
            fast.encode_batch_words(&refs).unwrap(),
            tok.encode_batch_words(&refs).unwrap()
        );
    }

    #[test]
    fn equal_to_tokenizers_on_the_sample_corpus() {
        use std::io::BufRead;
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../data-samples/corpus/docstrings");
        let mut texts = Vec::new();
        for part in ["train", "valid", "test"] {
            for f in std::fs::read_dir(root.join(part)).unwrap() {
                let f = f.unwrap().path();
                let r = pytorrent_io::open_input(&f, None).unwrap().reader;
                for line in r.lines() {
                    let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
                    for k in ["code", "docstring", "original_string"] {
                        texts.push(v[k].as_str().unwrap().to_string());
                    }
                }
            }
        }
        assert!(texts.len() > 1500);
        let tok = train(
            texts.iter().cloned(),
            &TrainOptions {
                vocab_size: 2000,
                min_frequency: 2,
                model_max_length: 512,
            },
        )
        .unwrap();
        let fast = FastEncoder::new(&tok).unwrap();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        assert_eq!(
            fast.encode_batch(&refs, false).unwrap(),
            tok.encode_batch(&refs, false).unwrap()
        );
        assert_eq!(
            fast.encode_batch_words(&refs).unwrap(),
            tok.encode_batch_words(&refs).unwrap()
        );
    }
}
