//! Static MLM masking: `input_ids` + `labels` written once, for trainers that do not mask on
//! the fly.
//!
//! The rules are those of `transformers`' `DataCollatorForLanguageModeling`: each token that
//! is not special is selected with probability `p`; a selected token becomes `<mask>` with
//! probability 0.8, a uniformly random id with probability 0.1, and stays itself otherwise;
//! `labels` holds the original id where selected and -100 elsewhere. Whole-word masking picks
//! words (pre-tokens) in random order until about `p` of the maskable tokens are covered, as
//! `DataCollatorForWholeWordMask` does, then applies the same 80/10/10 to every token of the
//! chosen words.
//!
//! Every row draws from its own generator, seeded from the run seed and the row's place in
//! its segment, so masks do not depend on thread count, task split or resumption.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The label of a position that is not predicted (PyTorch's `CrossEntropyLoss` ignore index).
pub const IGNORE: i32 = -100;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MaskSpec {
    pub probability: f64,
    pub whole_word: bool,
    pub dupe_factor: usize,
    pub mask_id: u32,
    pub vocab_size: u32,
}

/// A generator for one row, from a 64-bit seed derived by the caller.
pub fn row_rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Masks one row. `word_starts` is needed only for whole-word masking (same length as `ids`).
pub fn mask_row(
    ids: &[u32],
    word_starts: &[bool],
    is_special: impl Fn(u32) -> bool,
    spec: &MaskSpec,
    rng: &mut impl Rng,
) -> (Vec<u32>, Vec<i32>) {
    let selected: Vec<bool> = if spec.whole_word {
        whole_words(ids, word_starts, &is_special, spec.probability, rng)
    } else {
        ids.iter()
            .map(|id| {
                // Drawn for every position, special or not, so one token's status never
                // shifts the draws of the tokens after it.
                let draw = rng.random_bool(spec.probability);
                draw && !is_special(*id)
            })
            .collect()
    };
    let mut inputs = ids.to_vec();
    let mut labels = vec![IGNORE; ids.len()];
    for (i, sel) in selected.iter().enumerate() {
        if !sel {
            continue;
        }
        labels[i] = ids[i] as i32;
        let r: f64 = rng.random();
        if r < 0.8 {
            inputs[i] = spec.mask_id;
        } else if r < 0.9 {
            inputs[i] = rng.random_range(0..spec.vocab_size);
        }
    }
    (inputs, labels)
}

fn whole_words(
    ids: &[u32],
    word_starts: &[bool],
    is_special: &impl Fn(u32) -> bool,
    p: f64,
    rng: &mut impl Rng,
) -> Vec<bool> {
    let mut words: Vec<(usize, usize)> = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        if is_special(*id) {
            continue;
        }
        let start = word_starts.get(i).copied().unwrap_or(true);
        match words.last_mut() {
            Some((_, end)) if !start && *end == i => *end = i + 1,
            _ => words.push((i, i + 1)),
        }
    }
    let maskable: usize = words.iter().map(|(a, b)| b - a).sum();
    let mut selected = vec![false; ids.len()];
    if maskable == 0 {
        return selected;
    }
    let target = ((maskable as f64 * p).round() as usize).max(1);
    words.shuffle(rng);
    let mut covered = 0;
    for (a, b) in words {
        if covered >= target {
            break;
        }
        if covered + (b - a) > target {
            continue;
        }
        covered += b - a;
        selected[a..b].iter_mut().for_each(|s| *s = true);
    }
    selected
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(p: f64, whole_word: bool) -> MaskSpec {
        MaskSpec {
            probability: p,
            whole_word,
            dupe_factor: 1,
            mask_id: 4,
            vocab_size: 1000,
        }
    }

    #[test]
    fn rates_follow_80_10_10_and_specials_are_never_selected() {
        let ids: Vec<u32> = (0..200_000)
            .map(|i| if i % 10 == 0 { 0 } else { 100 + (i % 500) })
            .collect();
        let (inputs, labels) =
            mask_row(&ids, &[], |id| id < 5, &spec(0.15, false), &mut row_rng(7));
        let mut selected = 0;
        let (mut masked, mut kept) = (0, 0);
        for i in 0..ids.len() {
            if ids[i] == 0 {
                assert_eq!(labels[i], IGNORE);
                assert_eq!(inputs[i], 0);
                continue;
            }
            if labels[i] == IGNORE {
                assert_eq!(inputs[i], ids[i], "unselected tokens stay");
                continue;
            }
            assert_eq!(labels[i], ids[i] as i32);
            selected += 1;
            if inputs[i] == 4 {
                masked += 1;
            } else if inputs[i] == ids[i] {
                kept += 1;
            }
        }
        let maskable = ids.len() as f64 * 0.9;
        let rate = selected as f64 / maskable;
        assert!((rate - 0.15).abs() < 0.005, "selection rate {rate}");
        let m = masked as f64 / selected as f64;
        assert!((m - 0.8).abs() < 0.01, "mask share {m}");
        // kept: the 10% left alone plus random draws that hit the same id (rare).
        let k = kept as f64 / selected as f64;
        assert!((k - 0.1).abs() < 0.01, "kept share {k}");
    }

    #[test]
    fn same_seed_same_mask_other_seed_other_mask() {
        let ids: Vec<u32> = (100..400).collect();
        let a = mask_row(&ids, &[], |_| false, &spec(0.15, false), &mut row_rng(1));
        let b = mask_row(&ids, &[], |_| false, &spec(0.15, false), &mut row_rng(1));
        let c = mask_row(&ids, &[], |_| false, &spec(0.15, false), &mut row_rng(2));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn whole_word_masking_takes_words_whole() {
        // Words of three tokens each: [start, cont, cont].
        let ids: Vec<u32> = (0..3000).map(|i| 100 + i).collect();
        let starts: Vec<bool> = (0..3000).map(|i| i % 3 == 0).collect();
        let (_, labels) = mask_row(&ids, &starts, |_| false, &spec(0.15, true), &mut row_rng(3));
        for w in labels.chunks(3) {
            let n = w.iter().filter(|l| **l != IGNORE).count();
            assert!(
                n == 0 || n == 3,
                "a word is masked whole or not at all: {w:?}"
            );
        }
        let selected = labels.iter().filter(|l| **l != IGNORE).count();
        assert_eq!(selected, 450, "15% of 3000 tokens, in whole words");
    }
}
