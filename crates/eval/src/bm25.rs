//! Okapi BM25, the lexical baseline every retrieval table needs beside a model.
//!
//! k1 = 1.2, b = 0.75, idf = ln(1 + (N − df + 0.5) / (df + 0.5)) (Lucene's, never negative),
//! every occurrence of a query token adds its term (as `rank_bm25` does). Tokens: maximal
//! runs of letters and digits (so `_`, `.` and punctuation separate), each split at camelCase
//! edges (`parseHTTPResponse` → parse, http, response), lower-cased. The same rule reads
//! docstrings and code, so `read_json` in code meets "read JSON" in a docstring.

use std::collections::HashMap;

use rayon::prelude::*;

pub const K1: f32 = 1.2;
pub const B: f32 = 0.75;

/// The BM25 tokens of a text.
pub fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for run in text.split(|c: char| !c.is_alphanumeric()) {
        if run.is_empty() {
            continue;
        }
        let chars: Vec<char> = run.chars().collect();
        let mut start = 0;
        for i in 1..chars.len() {
            let (p, c) = (chars[i - 1], chars[i]);
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            // aB, 9B, or the B of ABc: a new word starts at i.
            let edge = c.is_uppercase()
                && (p.is_lowercase() || p.is_numeric() || (p.is_uppercase() && next_lower));
            if edge {
                out.push(chars[start..i].iter().collect::<String>().to_lowercase());
                start = i;
            }
        }
        out.push(chars[start..].iter().collect::<String>().to_lowercase());
    }
    out
}

/// An inverted index of candidate texts.
pub struct Index {
    terms: HashMap<String, u32>,
    /// Per term: (document, term frequency), documents ascending.
    postings: Vec<Vec<(u32, u32)>>,
    /// Per document: k1 · (1 − b + b · length / mean length).
    norm: Vec<f32>,
}

impl Index {
    pub fn new(docs: &[&str]) -> Index {
        let counted: Vec<(Vec<(String, u32)>, usize)> = docs
            .par_iter()
            .map(|d| {
                let toks = tokens(d);
                let mut tf: HashMap<String, u32> = HashMap::new();
                for t in &toks {
                    *tf.entry(t.clone()).or_default() += 1;
                }
                let mut tf: Vec<(String, u32)> = tf.into_iter().collect();
                tf.sort();
                (tf, toks.len())
            })
            .collect();
        let mut terms = HashMap::new();
        let mut postings: Vec<Vec<(u32, u32)>> = Vec::new();
        for (doc, (tf, _)) in counted.iter().enumerate() {
            for (t, n) in tf {
                let next = postings.len() as u32;
                let id = *terms.entry(t.clone()).or_insert(next);
                if id == next {
                    postings.push(Vec::new());
                }
                postings[id as usize].push((doc as u32, *n));
            }
        }
        let total: usize = counted.iter().map(|(_, l)| l).sum();
        let mean = (total as f64 / docs.len().max(1) as f64).max(f64::MIN_POSITIVE) as f32;
        let norm = counted
            .iter()
            .map(|(_, l)| K1 * (1.0 - B + B * *l as f32 / mean))
            .collect();
        Index {
            terms,
            postings,
            norm,
        }
    }

    pub fn docs(&self) -> usize {
        self.norm.len()
    }

    fn idf(&self, term: usize) -> f32 {
        let n = self.docs() as f32;
        let df = self.postings[term].len() as f32;
        (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
    }

    /// The score of every document for a query, in document order.
    pub fn scores(&self, query: &str) -> Vec<f32> {
        let mut row = vec![0.0f32; self.docs()];
        for t in tokens(query) {
            let Some(&id) = self.terms.get(&t) else {
                continue;
            };
            let idf = self.idf(id as usize);
            for &(doc, tf) in &self.postings[id as usize] {
                let tf = tf as f32;
                row[doc as usize] += idf * tf * (K1 + 1.0) / (tf + self.norm[doc as usize]);
            }
        }
        row
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_split_into_lower_case_words() {
        assert_eq!(
            tokens("def parseHTTPResponse(raw_bytes, utf8=True): return x2Y"),
            [
                "def", "parse", "http", "response", "raw", "bytes", "utf8", "true", "return", "x2",
                "y"
            ]
        );
    }

    #[test]
    fn scores_follow_the_okapi_formula() {
        let idx = Index::new(&["read json file", "write file", "read read"]);
        let s = idx.scores("read json");
        // Mean length 7/3; "json" is in 1 of 3 documents, "read" in 2.
        let mean = 7.0f32 / 3.0;
        let idf = |df: f32| (1.0 + (3.0 - df + 0.5) / (df + 0.5)).ln();
        let term = |tf: f32, len: f32| tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * len / mean));
        assert!((s[0] - (idf(2.0) * term(1.0, 3.0) + idf(1.0) * term(1.0, 3.0))).abs() < 1e-6);
        assert_eq!(s[1], 0.0);
        assert!((s[2] - idf(2.0) * term(2.0, 2.0)).abs() < 1e-6);
    }
}
