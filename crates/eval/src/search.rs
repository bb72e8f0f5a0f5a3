//! Exact top-k search, as FAISS' `IndexFlatIP` does it: scores of a block of queries against
//! a block of candidates by one matrix multiply, folded into each query's best k before the
//! next block. Memory is the embeddings plus one block of scores per thread, whatever the
//! number of candidates; query blocks run in parallel and results come back in query order.
//!
//! Hand-written rather than taken from a vector-search crate: the evaluation also needs, for
//! each query, the rank of its positive counted over every candidate with CodeSearchNet's tie
//! rule, and a tie order by candidate id; neither is something an ANN index gives.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::path::Path;

use ndarray::Array2;
use rayon::prelude::*;
use serde::Serialize;

use crate::{Error, Result};

pytorrent_io::word_enum! {
    "similarity";
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Similarity {
        /// Cosine: rows are L2-normalised (as `torch.nn.functional.normalize`), then dotted.
        Cosine = "cosine" | "cos",
        /// The plain dot product.
        Dot = "dot",
    }
}

/// Row-major `f32` vectors, one per query or candidate.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    pub rows: usize,
    pub dim: usize,
    pub data: Vec<f32>,
}

impl Matrix {
    pub fn new(rows: usize, dim: usize, data: Vec<f32>) -> Matrix {
        assert_eq!(data.len(), rows * dim, "a {rows} × {dim} matrix");
        Matrix { rows, dim, data }
    }

    pub fn from_rows(rows: &[Vec<f32>]) -> Matrix {
        let dim = rows.first().map_or(0, Vec::len);
        Matrix::new(rows.len(), dim, rows.concat())
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// A 2-D float32 or float64 npy file (float64 is narrowed, as `faiss` wants float32).
    pub fn read_npy(path: &Path) -> Result<Matrix> {
        let bad = |m: String| Error::data(path, m);
        let file = std::fs::File::open(path).map_err(|e| pytorrent_io::Error::io(path, e))?;
        // The header is checked against the file's size before the reader allocates by it.
        let header = pytorrent_io::npy::read_checked_header(&file, path)?;
        header.two_d().map_err(|m| {
            bad(format!(
                "{m}: embeddings are a 2-D float32 or float64 array [rows, dim]"
            ))
        })?;
        let arr: Array2<f32> = match ndarray_npy::ReadNpyExt::read_npy(&file) {
            Ok(a) => a,
            Err(first) => {
                let file =
                    std::fs::File::open(path).map_err(|e| pytorrent_io::Error::io(path, e))?;
                let a: Array2<f64> = ndarray_npy::ReadNpyExt::read_npy(file).map_err(|_| {
                    bad(format!(
                        "not a 2-D float32 or float64 npy array ({first}); embeddings are \
                         [rows, dim]"
                    ))
                })?;
                a.mapv(|v| v as f32)
            }
        };
        let (rows, dim) = arr.dim();
        if dim == 0 {
            return Err(bad("the vectors have no components".into()));
        }
        let data: Vec<f32> = arr.iter().copied().collect();
        let m = Matrix::new(rows, dim, data);
        if let Some(i) = (0..rows).find(|&i| m.row(i).iter().any(|v| !v.is_finite())) {
            return Err(bad(format!(
                "row {i}: not a finite number (NaN or infinity)"
            )));
        }
        Ok(m)
    }

    /// Each row divided by its L2 norm (at least 1e-12), as `torch.nn.functional.normalize`.
    pub fn normalized(&self) -> Matrix {
        let mut data = self.data.clone();
        if self.dim > 0 {
            data.par_chunks_mut(self.dim).for_each(|row| {
                let norm = row
                    .iter()
                    .map(|&v| f64::from(v) * f64::from(v))
                    .sum::<f64>();
                let norm = (norm.sqrt() as f32).max(1e-12);
                row.iter_mut().for_each(|v| *v /= norm);
            });
        }
        Matrix::new(self.rows, self.dim, data)
    }

    /// These rows, in this order.
    pub fn select(&self, rows: &[usize]) -> Matrix {
        let mut data = Vec::with_capacity(rows.len() * self.dim);
        for &r in rows {
            data.extend_from_slice(self.row(r));
        }
        Matrix::new(rows.len(), self.dim, data)
    }

    pub fn prepared(&self, similarity: Similarity) -> Matrix {
        match similarity {
            Similarity::Cosine => self.normalized(),
            Similarity::Dot => self.clone(),
        }
    }
}

/// What a search keeps of one query.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Hits {
    /// The best candidates, best first: by score, then by tie key.
    pub top: Vec<u32>,
    pub scores: Vec<f32>,
    /// 1 + the number of other candidates that score at least as high as the positive.
    pub rank: Option<u64>,
}

/// What to keep.
#[derive(Debug, Clone, Copy)]
pub struct Spec<'a> {
    pub k: usize,
    /// Candidate `j` sorts before `j'` among equal scores when `keys[j] < keys[j']`
    /// (default: the candidate index).
    pub keys: Option<&'a [u32]>,
    /// Query `i`'s positive candidate, to count the rank of: 1 + the other candidates that
    /// score at least as high.
    pub positives: Option<&'a [u32]>,
}

#[derive(Clone, Copy, PartialEq)]
struct Entry {
    score: f32,
    key: u32,
    idx: u32,
}

impl Eq for Entry {}

impl Ord for Entry {
    /// Worse entries are greater, so the heap's top is the one to drop.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then(self.key.cmp(&other.key))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// One query's best k so far, and its count of candidates at or above the positive's score.
pub struct Collector {
    k: usize,
    heap: BinaryHeap<Entry>,
    /// The positive's score and index.
    positive: Option<(f32, usize)>,
    at_or_above: u64,
}

impl Collector {
    pub fn new(k: usize) -> Collector {
        Collector {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
            positive: None,
            at_or_above: 0,
        }
    }

    /// Sets the positive (its score and candidate index); must come before any row is seen.
    pub fn set_positive(&mut self, score: f32, index: usize) {
        self.positive = Some((score, index));
    }

    /// Scores of candidates `offset..offset + row.len()`.
    pub fn see(&mut self, row: &[f32], offset: usize, keys: Option<&[u32]>) {
        if let Some((p, at)) = self.positive {
            self.at_or_above += row.iter().filter(|&&s| s >= p).count() as u64;
            // The positive itself is not one of the others.
            if (offset..offset + row.len()).contains(&at) && row[at - offset] >= p {
                self.at_or_above -= 1;
            }
        }
        if self.k == 0 {
            return;
        }
        for (j, &s) in row.iter().enumerate() {
            // -0.0 and 0.0 are one score.
            let score = s + 0.0;
            if self.heap.len() == self.k {
                let worst = self.heap.peek().expect("k > 0 entries");
                if score < worst.score {
                    continue;
                }
            }
            let idx = (offset + j) as u32;
            let key = keys.map_or(idx, |k| k[offset + j]);
            let e = Entry { score, key, idx };
            if self.heap.len() < self.k {
                self.heap.push(e);
            } else if e < *self.heap.peek().expect("k > 0 entries") {
                self.heap.pop();
                self.heap.push(e);
            }
        }
    }

    pub fn finish(self) -> Hits {
        let rank = self.positive.map(|_| 1 + self.at_or_above);
        let sorted = self.heap.into_sorted_vec();
        Hits {
            top: sorted.iter().map(|e| e.idx).collect(),
            scores: sorted.iter().map(|e| e.score).collect(),
            rank,
        }
    }
}

const QUERY_BLOCK: usize = 256;
const CANDIDATE_BLOCK: usize = 4096;

/// `out[i * n + j] = q_i · c_j` for `m` query rows and `n` candidate rows of `dim` floats.
fn block_scores(q: &[f32], c: &[f32], dim: usize, out: &mut [f32]) {
    let m = q.len() / dim;
    let n = c.len() / dim;
    assert!(q.len() == m * dim && c.len() == n * dim && out.len() == m * n);
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: `q` holds m × dim, `c` n × dim and `out` m × n floats (asserted above); the
    // strides address q as row-major [m, dim], c as the transposed [dim, n] view of its
    // row-major [n, dim], and out as row-major [m, n], all inside their slices, and `out` is
    // borrowed mutably, so nothing else reads or writes it meanwhile.
    unsafe {
        gemm::gemm(
            m,
            n,
            dim,
            out.as_mut_ptr(),
            1,
            n as isize,
            false,
            q.as_ptr(),
            1,
            dim as isize,
            c.as_ptr(),
            dim as isize,
            1,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// The scores of queries `qa..qb` against their positives, by one multiply over the distinct
/// positives of the block (the kernel that scores every other block, so an exact copy of a
/// positive elsewhere ties with it).
fn positive_scores(q: &[f32], candidates: &Matrix, positives: &[u32], dim: usize) -> Vec<f32> {
    let mut distinct: Vec<u32> = positives.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    let gathered: Vec<f32> = distinct
        .iter()
        .flat_map(|&j| candidates.row(j as usize).iter().copied())
        .collect();
    let mut out = vec![0.0; positives.len() * distinct.len()];
    block_scores(q, &gathered, dim, &mut out);
    positives
        .iter()
        .enumerate()
        .map(|(r, p)| {
            let c = distinct.binary_search(p).expect("a positive of the block");
            out[r * distinct.len() + c]
        })
        .collect()
}

/// The best `spec.k` candidates of every query (and, with `spec.positives`, the rank of its
/// positive), in query order. Both matrices must already be prepared for the similarity
/// (normalised for cosine) and share a dimension.
pub fn search(queries: &Matrix, candidates: &Matrix, spec: &Spec) -> Vec<Hits> {
    assert_eq!(
        queries.dim, candidates.dim,
        "queries and candidates share a dimension"
    );
    if let Some(p) = spec.positives {
        assert_eq!(p.len(), queries.rows, "one positive a query");
        assert!(
            p.iter().all(|&j| (j as usize) < candidates.rows),
            "positives are candidates"
        );
    }
    let dim = queries.dim;
    let n = candidates.rows;
    let blocks: Vec<usize> = (0..queries.rows).step_by(QUERY_BLOCK).collect();
    blocks
        .par_iter()
        .flat_map_iter(|&qa| {
            let qb = (qa + QUERY_BLOCK).min(queries.rows);
            let q = &queries.data[qa * dim..qb * dim];
            let mut found: Vec<Collector> = (qa..qb).map(|_| Collector::new(spec.k)).collect();
            if let Some(p) = spec.positives {
                let p = &p[qa..qb];
                for ((col, s), &at) in found
                    .iter_mut()
                    .zip(positive_scores(q, candidates, p, dim))
                    .zip(p)
                {
                    col.set_positive(s, at as usize);
                }
            }
            let mut buf = Vec::new();
            for ca in (0..n).step_by(CANDIDATE_BLOCK) {
                let cb = (ca + CANDIDATE_BLOCK).min(n);
                let width = cb - ca;
                buf.resize((qb - qa) * width, 0.0);
                block_scores(q, &candidates.data[ca * dim..cb * dim], dim, &mut buf);
                for (r, col) in found.iter_mut().enumerate() {
                    col.see(&buf[r * width..(r + 1) * width], ca, spec.keys);
                }
            }
            found.into_iter().map(Collector::finish)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(q: &Matrix, c: &Matrix, k: usize) -> Vec<Hits> {
        (0..q.rows)
            .map(|i| {
                let scores: Vec<f32> = (0..c.rows)
                    .map(|j| q.row(i).iter().zip(c.row(j)).map(|(a, b)| a * b).sum())
                    .collect();
                let mut order: Vec<usize> = (0..c.rows).collect();
                order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
                order.truncate(k);
                let rank = scores.iter().filter(|&&s| s >= scores[i]).count() as u64;
                Hits {
                    top: order.iter().map(|&j| j as u32).collect(),
                    scores: order.iter().map(|&j| scores[j]).collect(),
                    rank: Some(rank),
                }
            })
            .collect()
    }

    /// Small integers: every dot product is exact, so block search and brute force must agree
    /// to the bit, ties included.
    fn integer_matrix(rows: usize, dim: usize, seed: u64) -> Matrix {
        let mut x = seed;
        let data = (0..rows * dim)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((x >> 60) as i32 - 8) as f32
            })
            .collect();
        Matrix::new(rows, dim, data)
    }

    #[test]
    fn block_search_equals_brute_force_across_block_edges_with_ties() {
        // More queries than one block and more candidates than one block, with duplicated
        // candidates (exact ties) on both sides of a block edge.
        let q = integer_matrix(300, 7, 1);
        let mut c = integer_matrix(4200, 7, 2);
        for (dup, of) in [(4100, 5), (4101, 299), (17, 4099)] {
            let row = c.row(of).to_vec();
            c.data[dup * 7..(dup + 1) * 7].copy_from_slice(&row);
        }
        let identity: Vec<u32> = (0..300).collect();
        let spec = Spec {
            k: 12,
            keys: None,
            positives: Some(&identity),
        };
        let got = search(&q, &c, &spec);
        assert_eq!(got, brute(&q, &c, 12));
        assert!(got.iter().any(|h| h.rank.unwrap() > 1));
    }

    #[test]
    fn keys_order_ties() {
        let c = Matrix::new(3, 1, vec![1.0, 1.0, 1.0]);
        let q = Matrix::new(1, 1, vec![1.0]);
        let keys = [2, 0, 1];
        let spec = Spec {
            k: 3,
            keys: Some(&keys),
            positives: Some(&[0]),
        };
        let h = &search(&q, &c, &spec)[0];
        assert_eq!(h.top, vec![1, 2, 0]);
        // All three tie with the positive: ties count against the model.
        assert_eq!(h.rank, Some(3));
    }
}
