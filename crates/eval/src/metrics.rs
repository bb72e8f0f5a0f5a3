//! Retrieval metrics as pure functions, so each can be checked against its reference
//! implementation on fixed inputs.
//!
//! Two rules for ties, each the one of the evaluation it reproduces:
//! - A rank (`csn` and `pool` MRR) counts every candidate that scores at least as high as the
//!   positive, the positive included — CodeSearchNet's `compute_ranks`
//!   (`np.sum(distances <= correct, axis=-1)`): ties count against the model.
//! - A ranked list (the IR metrics) orders by score, then by ascending candidate id —
//!   sentence-transformers' `InformationRetrievalEvaluator` (`key=(-score, corpus_id)`).

use std::collections::BTreeMap;

use serde::Serialize;

/// Mean reciprocal rank of 1-based ranks.
pub fn mrr(ranks: &[u64]) -> f64 {
    mrr_at(ranks, u64::MAX)
}

/// MRR with ranks past `cutoff` counting 0.
pub fn mrr_at(ranks: &[u64], cutoff: u64) -> f64 {
    if ranks.is_empty() {
        return 0.0;
    }
    let sum: f64 = ranks
        .iter()
        .map(|&r| if r <= cutoff { 1.0 / r as f64 } else { 0.0 })
        .sum();
    sum / ranks.len() as f64
}

/// CodeSearchNet's MRR: the mean over batches of each batch's mean reciprocal rank.
pub fn batched_mrr(batches: &[Vec<u64>]) -> f64 {
    if batches.is_empty() {
        return 0.0;
    }
    batches.iter().map(|b| mrr(b)).sum::<f64>() / batches.len() as f64
}

/// The expected reciprocal rank of the one positive among `n` candidates ranked at random:
/// (1 + 1/2 + … + 1/n) / n; with `cutoff`, ranks past it count 0.
pub fn random_mrr(n: u64, cutoff: u64) -> f64 {
    if n == 0 {
        return 0.0;
    }
    let h: f64 = (1..=n.min(cutoff)).map(|r| 1.0 / r as f64).sum();
    h / n as f64
}

/// The cut-offs of the IR metrics: sentence-transformers' defaults.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Cutoffs {
    pub accuracy: Vec<usize>,
    pub precision_recall: Vec<usize>,
    pub mrr: Vec<usize>,
    pub ndcg: Vec<usize>,
    pub map: Vec<usize>,
}

impl Default for Cutoffs {
    fn default() -> Cutoffs {
        Cutoffs {
            accuracy: vec![1, 3, 5, 10],
            precision_recall: vec![1, 3, 5, 10],
            mrr: vec![10],
            ndcg: vec![10],
            map: vec![100],
        }
    }
}

impl Cutoffs {
    /// How long a ranked list every metric needs.
    pub fn depth(&self) -> usize {
        [
            &self.accuracy,
            &self.precision_recall,
            &self.mrr,
            &self.ndcg,
            &self.map,
        ]
        .iter()
        .flat_map(|v| v.iter().copied())
        .max()
        .unwrap_or(1)
    }
}

/// The IR metrics, averaged over queries, keyed by cut-off.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct IrScores {
    pub accuracy: BTreeMap<usize, f64>,
    pub precision: BTreeMap<usize, f64>,
    pub recall: BTreeMap<usize, f64>,
    pub mrr: BTreeMap<usize, f64>,
    pub ndcg: BTreeMap<usize, f64>,
    pub map: BTreeMap<usize, f64>,
}

impl IrScores {
    /// `name@k` → value, as sentence-transformers names its metrics (`accuracy@1`, `ndcg@10`).
    pub fn named(&self) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for (name, m) in [
            ("accuracy", &self.accuracy),
            ("precision", &self.precision),
            ("recall", &self.recall),
            ("mrr", &self.mrr),
            ("ndcg", &self.ndcg),
            ("map", &self.map),
        ] {
            for (k, v) in m {
                out.insert(format!("{name}@{k}"), *v);
            }
        }
        out
    }
}

fn dcg(relevances: impl Iterator<Item = f64>) -> f64 {
    relevances
        .enumerate()
        .map(|(i, r)| r / ((i + 2) as f64).log2())
        .sum()
}

/// The IR metrics of ranked lists (`ranked[q]`: candidate indices, best first, at least
/// `cutoffs.depth()` long where there are that many candidates) against each query's relevant
/// candidates; queries without relevant candidates must be left out by the caller, as
/// sentence-transformers leaves them out.
pub fn ir_scores(ranked: &[Vec<u32>], relevant: &[Vec<u32>], cutoffs: &Cutoffs) -> IrScores {
    let n = ranked.len().max(1) as f64;
    let mut s = IrScores::default();
    for (list, rel) in ranked.iter().zip(relevant) {
        let hit: Vec<bool> = list.iter().map(|c| rel.contains(c)).collect();
        let within = |k: usize| &hit[..k.min(hit.len())];
        for &k in &cutoffs.accuracy {
            *s.accuracy.entry(k).or_default() += f64::from(u8::from(within(k).contains(&true)));
        }
        for &k in &cutoffs.precision_recall {
            let correct = within(k).iter().filter(|&&h| h).count() as f64;
            *s.precision.entry(k).or_default() += correct / k as f64;
            *s.recall.entry(k).or_default() += correct / rel.len() as f64;
        }
        for &k in &cutoffs.mrr {
            let rr = within(k)
                .iter()
                .position(|&h| h)
                .map_or(0.0, |i| 1.0 / (i + 1) as f64);
            *s.mrr.entry(k).or_default() += rr;
        }
        for &k in &cutoffs.ndcg {
            let got = dcg(within(k).iter().map(|&h| f64::from(u8::from(h))));
            let ideal = dcg(std::iter::repeat_n(1.0, rel.len().min(k)));
            *s.ndcg.entry(k).or_default() += got / ideal;
        }
        for &k in &cutoffs.map {
            let (mut correct, mut sum) = (0usize, 0.0);
            for (i, _) in within(k).iter().enumerate().filter(|(_, &h)| h) {
                correct += 1;
                sum += correct as f64 / (i + 1) as f64;
            }
            *s.map.entry(k).or_default() += sum / k.min(rel.len()) as f64;
        }
    }
    for m in [
        &mut s.accuracy,
        &mut s.precision,
        &mut s.recall,
        &mut s.mrr,
        &mut s.ndcg,
        &mut s.map,
    ] {
        m.values_mut().for_each(|v| *v /= n);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_mrr_is_the_mean_of_reciprocal_ranks_over_all_positions() {
        // One positive among 4: each rank equally likely.
        let expect = (1.0 + 0.5 + 1.0 / 3.0 + 0.25) / 4.0;
        assert!((random_mrr(4, u64::MAX) - expect).abs() < 1e-15);
        assert!((random_mrr(4, 2) - 1.5 / 4.0).abs() < 1e-15);
        assert!((mrr(&[1, 2, 3, 4]) - expect).abs() < 1e-15);
    }

    #[test]
    fn ranked_lists_score_as_sentence_transformers_scores_them() {
        // Query 0: relevant {5} found second; query 1: relevant {1, 2}, found first and fourth.
        let ranked = vec![vec![3, 5, 7, 9], vec![1, 0, 4, 2]];
        let relevant = vec![vec![5], vec![1, 2]];
        let c = Cutoffs {
            accuracy: vec![1, 3],
            precision_recall: vec![1, 3],
            mrr: vec![10],
            ndcg: vec![3],
            map: vec![100],
        };
        let s = ir_scores(&ranked, &relevant, &c);
        assert_eq!(s.accuracy[&1], 0.5);
        assert_eq!(s.accuracy[&3], 1.0);
        assert_eq!(s.precision[&3], (1.0 / 3.0 + 1.0 / 3.0) / 2.0);
        assert_eq!(s.recall[&3], (1.0 + 0.5) / 2.0);
        assert_eq!(s.mrr[&10], (0.5 + 1.0) / 2.0);
        let ndcg0 = (1.0 / 3f64.log2()) / 1.0;
        let ndcg1 = 1.0 / (1.0 + 1.0 / 3f64.log2());
        assert!((s.ndcg[&3] - (ndcg0 + ndcg1) / 2.0).abs() < 1e-12);
        assert_eq!(s.map[&100], (0.5 + (1.0 + 2.0 / 4.0) / 2.0) / 2.0);
    }
}
