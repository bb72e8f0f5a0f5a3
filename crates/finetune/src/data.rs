//! The training data: pairs read from the corpus, tokenized once; batches in a seeded order
//! with no text twice in a batch; BM25 hard negatives.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashSet, VecDeque};
use std::hash::{Hash, Hasher};

use pytorrent_model::text::{encode_inputs, ModelTokenizer};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use pytorrent_pretrain::nn::seed_of;

use crate::Result;

/// Pairs as token ids (special tokens added, cut to the length limit), with a hash of each
/// text to spot repeats, and the hard negatives of each pair (indices of other pairs' codes).
#[derive(Debug, Clone, Default)]
pub struct Pairs {
    pub queries: Vec<Vec<u32>>,
    pub codes: Vec<Vec<u32>>,
    pub query_keys: Vec<u64>,
    pub code_keys: Vec<u64>,
    pub negatives: Vec<Vec<u32>>,
    /// Texts cut to the length limit.
    pub cut: usize,
}

fn key(text: &str) -> u64 {
    // DefaultHasher::new() has fixed keys: the same text hashes the same in every run.
    let mut h = DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

impl Pairs {
    /// Tokenizes `(texts[i], codes[i])` as sentence-transformers does (`truncation=True` to
    /// `max_len` tokens, special tokens kept), in parallel.
    pub fn encode(
        tok: &ModelTokenizer,
        texts: &[String],
        codes: &[String],
        max_len: usize,
    ) -> Result<Pairs> {
        let cut = std::sync::atomic::AtomicUsize::new(0);
        let count = |_| {
            cut.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        };
        let enc = |side: &[String]| -> Result<Vec<Vec<u32>>> {
            let parts: Vec<Result<Vec<Vec<u32>>>> = side
                .par_chunks(256)
                .map(|c| Ok(encode_inputs(tok, c, max_len, &count)?))
                .collect();
            let mut out = Vec::with_capacity(side.len());
            for p in parts {
                out.extend(p?);
            }
            Ok(out)
        };
        let queries = enc(texts)?;
        let codes_ids = enc(codes)?;
        Ok(Pairs {
            queries,
            codes: codes_ids,
            query_keys: texts.par_iter().map(|t| key(t)).collect(),
            code_keys: codes.par_iter().map(|t| key(t)).collect(),
            negatives: vec![Vec::new(); texts.len()],
            cut: cut.into_inner(),
        })
    }

    pub fn len(&self) -> usize {
        self.queries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queries.is_empty()
    }

    /// For each pair, the `n` codes BM25 ranks highest for its query among the other pairs'
    /// codes, leaving out any code equal to its own (a copy is not a negative). Ties go to
    /// the lower index.
    pub fn mine_negatives(&mut self, texts: &[String], codes: &[String], n: usize) {
        if n == 0 {
            return;
        }
        let docs: Vec<&str> = codes.iter().map(String::as_str).collect();
        let index = pytorrent_eval::bm25::Index::new(&docs);
        let code_keys = &self.code_keys;
        self.negatives = texts
            .par_iter()
            .enumerate()
            .map(|(i, q)| {
                let scores = index.scores(q);
                let mut order: Vec<u32> = (0..scores.len() as u32)
                    .filter(|&j| code_keys[j as usize] != code_keys[i])
                    .collect();
                let by = |a: &u32, b: &u32| {
                    scores[*b as usize]
                        .total_cmp(&scores[*a as usize])
                        .then(a.cmp(b))
                };
                if order.len() > n {
                    order.select_nth_unstable_by(n - 1, by);
                    order.truncate(n);
                }
                order.sort_by(by);
                order
            })
            .collect();
    }

    /// Whether every pair has `n` negatives (a corpus of fewer distinct codes has not).
    pub fn negatives_short(&self, n: usize) -> usize {
        self.negatives.iter().filter(|v| v.len() < n).count()
    }
}

/// One epoch's micro-batches: pair indices in a seeded order, taken in turn into a batch
/// unless a text of theirs (query, code or negative) is already in it, in which case they
/// wait for the next batch that has room for them, as sentence-transformers'
/// `NoDuplicatesBatchSampler` does (its plain form rescans the remaining list for every
/// batch: quadratic; here waiting pairs are offered first to each next batch). A last batch
/// of one pair has no negative and is left out (counted).
#[derive(Debug, Clone, PartialEq)]
pub struct EpochPlan {
    pub batches: Vec<Vec<u32>>,
    /// Pairs left out of this epoch: alone in the last batch.
    pub left_out: usize,
    /// Times a pair was put off because a text of it was already in the batch.
    pub deferred: usize,
}

pub fn plan_epoch(pairs: &Pairs, batch_size: usize, seed: u64, epoch: u64) -> EpochPlan {
    let mut order: Vec<u32> = (0..pairs.len() as u32).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed_of(&[
        seed, 0xF17E, epoch,
    ])));
    let texts_of = |i: u32| -> Vec<u64> {
        let i = i as usize;
        let mut v = vec![pairs.query_keys[i], pairs.code_keys[i]];
        v.extend(
            pairs.negatives[i]
                .iter()
                .map(|&j| pairs.code_keys[j as usize]),
        );
        v
    };
    let mut waiting: VecDeque<u32> = VecDeque::new();
    let mut stream = order.into_iter();
    let mut plan = EpochPlan {
        batches: Vec::new(),
        left_out: 0,
        deferred: 0,
    };
    loop {
        let mut batch = Vec::with_capacity(batch_size);
        let mut seen: HashSet<u64> = HashSet::new();
        let take = |i: u32, seen: &mut HashSet<u64>, batch: &mut Vec<u32>| -> bool {
            let t = texts_of(i);
            // A pair whose own texts repeat (a code among its negatives) still goes in.
            if t.iter().any(|k| seen.contains(k)) {
                return false;
            }
            seen.extend(t);
            batch.push(i);
            true
        };
        for _ in 0..waiting.len() {
            if batch.len() == batch_size {
                break;
            }
            let i = waiting.pop_front().expect("counted");
            if !take(i, &mut seen, &mut batch) {
                waiting.push_back(i);
            }
        }
        let mut exhausted = false;
        while batch.len() < batch_size {
            match stream.next() {
                Some(i) => {
                    if !take(i, &mut seen, &mut batch) {
                        plan.deferred += 1;
                        waiting.push_back(i);
                    }
                }
                None => {
                    exhausted = true;
                    break;
                }
            }
        }
        if batch.len() >= 2 {
            plan.batches.push(batch);
        } else {
            plan.left_out += batch.len();
        }
        // Once the stream is done, every round takes at least the first waiting pair (an
        // empty batch has room for it), so this ends.
        if exhausted && waiting.is_empty() {
            break;
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(keys: &[(u64, u64)]) -> Pairs {
        Pairs {
            queries: vec![vec![0]; keys.len()],
            codes: vec![vec![0]; keys.len()],
            query_keys: keys.iter().map(|k| k.0).collect(),
            code_keys: keys.iter().map(|k| k.1 + 1_000_000).collect(),
            negatives: vec![Vec::new(); keys.len()],
            cut: 0,
        }
    }

    #[test]
    fn no_batch_holds_a_text_twice_and_every_pair_is_placed_once() {
        // 300 pairs, docstrings repeating in groups of 7, codes in groups of 11.
        let keys: Vec<(u64, u64)> = (0..300).map(|i| (i / 7, i / 11)).collect();
        let p = pairs(&keys);
        let plan = plan_epoch(&p, 16, 3, 0);
        let mut placed: Vec<u32> = plan.batches.iter().flatten().copied().collect();
        for b in &plan.batches {
            let q: HashSet<u64> = b.iter().map(|&i| p.query_keys[i as usize]).collect();
            let c: HashSet<u64> = b.iter().map(|&i| p.code_keys[i as usize]).collect();
            assert_eq!(q.len(), b.len(), "a docstring repeats in {b:?}");
            assert_eq!(c.len(), b.len(), "a code repeats in {b:?}");
            assert!(b.len() >= 2 && b.len() <= 16);
        }
        assert_eq!(placed.len() + plan.left_out, 300);
        placed.sort();
        placed.dedup();
        assert_eq!(placed.len() + plan.left_out, 300, "a pair placed twice");
        assert!(plan.deferred > 0);
        // Seeded: the same plan again, another for the next epoch.
        assert_eq!(plan_epoch(&p, 16, 3, 0), plan);
        assert_ne!(plan_epoch(&p, 16, 3, 1).batches, plan.batches);
    }

    #[test]
    fn pairs_that_only_repeat_each_other_are_left_out_not_looped_on() {
        let keys: Vec<(u64, u64)> = vec![(1, 1); 5];
        let plan = plan_epoch(&pairs(&keys), 4, 0, 0);
        assert!(plan.batches.is_empty());
        assert_eq!(plan.left_out, 5);
    }
}
