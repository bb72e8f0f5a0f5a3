//! De-duplication across packages, in input order (the first occurrence is kept):
//! exact, on the code tokens; and near, by MinHash over token shingles with LSH banding.
//!
//! Hand-written: MinHash/LSH is a few dozen lines and must be deterministic (fixed seeds, a
//! stable keeper) and cheap per record; the crates on offer pull in random state or
//! parallel indexes we do not want.

use std::collections::HashMap;

use xxhash_rust::xxh3::{xxh3_128, xxh3_64_with_seed};

/// Why a record was dropped as a duplicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duplicate {
    Exact,
    Near,
}

#[derive(Debug, Clone)]
pub struct DedupOptions {
    pub exact: bool,
    /// Jaccard similarity of token shingles at or above which a record is a near duplicate;
    /// `None` turns near-dedup off.
    pub near_threshold: Option<f64>,
    /// Tokens per shingle.
    pub shingle: usize,
}

impl Default for DedupOptions {
    fn default() -> Self {
        DedupOptions {
            exact: true,
            near_threshold: Some(0.85),
            shingle: 3,
        }
    }
}

pub const PERMUTATIONS: usize = 128;

/// What de-duplication compares of one record, computed apart from the [`Deduper`] (and so
/// in parallel): its exact key and its MinHash signature, as the options ask.
#[derive(Debug, Clone, PartialEq)]
pub struct Keys {
    exact: Option<u128>,
    signature: Option<Box<[u32; PERMUTATIONS]>>,
}

/// [`Keys`] as the extract journal stores them.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StoredKeys {
    /// The exact key, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Vec<u32>>,
}

impl From<&Keys> for StoredKeys {
    fn from(k: &Keys) -> StoredKeys {
        StoredKeys {
            exact: k.exact.map(|x| format!("{x:032x}")),
            signature: k.signature.as_ref().map(|s| s.to_vec()),
        }
    }
}

impl TryFrom<StoredKeys> for Keys {
    type Error = String;

    fn try_from(k: StoredKeys) -> Result<Keys, String> {
        let exact = k
            .exact
            .map(|h| u128::from_str_radix(&h, 16).map_err(|e| format!("exact key {h:?}: {e}")))
            .transpose()?;
        let signature = k
            .signature
            .map(|v| {
                let n = v.len();
                <[u32; PERMUTATIONS]>::try_from(v)
                    .map(Box::new)
                    .map_err(|_| format!("a signature of {n} values, not {PERMUTATIONS}"))
            })
            .transpose()?;
        Ok(Keys { exact, signature })
    }
}

impl Keys {
    /// The exact key (when exact de-duplication is on).
    pub fn exact(&self) -> Option<u128> {
        self.exact
    }

    /// The MinHash signature (when near de-duplication is on and the record has a shingle).
    pub fn signature(&self) -> Option<&[u32; PERMUTATIONS]> {
        self.signature.as_deref()
    }

    pub fn new(exact: Option<u128>, signature: Option<[u32; PERMUTATIONS]>) -> Keys {
        Keys {
            exact,
            signature: signature.map(Box::new),
        }
    }
}

impl DedupOptions {
    /// `(bands, rows)` of the LSH banding for this threshold.
    pub fn banding(&self) -> (usize, usize) {
        banding(self.near_threshold.unwrap_or(1.0))
    }

    /// The keys of a record's code tokens.
    pub fn keys(&self, tokens: &[String]) -> Keys {
        Keys {
            exact: self.exact.then(|| exact_key(tokens)),
            signature: self
                .near_threshold
                .and_then(|_| signature(self.shingle, tokens))
                .map(Box::new),
        }
    }
}

pub struct Deduper {
    opts: DedupOptions,
    /// Exact key → the kept item it came from.
    exact: HashMap<u128, u32>,
    bands: usize,
    rows: usize,
    /// Band key → the first kept signature holding it.
    buckets: HashMap<u64, u32>,
    /// Band key → the later kept signatures holding it too. Kept records may share a band
    /// without being near duplicates of each other, and every one of them must stay findable:
    /// a record is dropped iff it is a near duplicate of *any* earlier kept record, whatever
    /// else shares its bands (the rule a staged, sharded de-duplication computes as well).
    /// Rare, so held apart from `buckets`.
    shared: HashMap<u64, Vec<u32>>,
    signatures: Vec<[u32; PERMUTATIONS]>,
    /// The kept item of each signature (items too short for a shingle have none).
    owners: Vec<u32>,
    kept: u32,
}

/// Whether two signatures estimate a Jaccard similarity at or above `threshold`: the one
/// test of a near duplicate, in one process and in the staged form alike.
pub fn is_near(a: &[u32; PERMUTATIONS], b: &[u32; PERMUTATIONS], threshold: f64) -> bool {
    let same = a.iter().zip(b.iter()).filter(|(x, y)| x == y).count();
    same as f64 / PERMUTATIONS as f64 >= threshold
}

/// The LSH band keys of a signature: one per band, 57 bits of the hash of its rows above the
/// band's number in the low 7 bits, so that one `u64` names a band key and its values spread
/// evenly (the staged de-duplication sorts files of them and splits them by value ranges).
pub fn band_keys(
    sig: &[u32; PERMUTATIONS],
    bands: usize,
    rows: usize,
) -> impl Iterator<Item = u64> + '_ {
    (0..bands).map(move |b| {
        let mut bytes = [0u8; 4 * PERMUTATIONS];
        let band = &sig[b * rows..(b + 1) * rows];
        for (i, v) in band.iter().enumerate() {
            bytes[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
        }
        (xxh3_64_with_seed(&bytes[..4 * rows], b as u64) << 7) | b as u64
    })
}

/// Bands × rows = 128, chosen so the LSH curve's steepest point, (1/b)^(1/r), is just below
/// the threshold: candidates are then verified on the full signature.
pub fn banding(threshold: f64) -> (usize, usize) {
    let mut best = (16, 8);
    for rows in [2usize, 4, 8, 16, 32] {
        let bands = PERMUTATIONS / rows;
        let knee = (1.0 / bands as f64).powf(1.0 / rows as f64);
        if knee <= threshold {
            best = (bands, rows);
        }
    }
    best
}

impl Deduper {
    pub fn new(opts: DedupOptions) -> Self {
        let (bands, rows) = banding(opts.near_threshold.unwrap_or(1.0));
        Deduper {
            opts,
            exact: HashMap::new(),
            bands,
            rows,
            buckets: HashMap::new(),
            shared: HashMap::new(),
            signatures: Vec::new(),
            owners: Vec::new(),
            kept: 0,
        }
    }

    /// Checks `tokens` against everything kept so far; keeps it when it is new.
    pub fn check(&mut self, tokens: &[String]) -> Option<Duplicate> {
        let keys = self.opts.keys(tokens);
        self.check_keys(keys)
    }

    /// [`Deduper::check`] with the keys computed beforehand (by the same options).
    pub fn check_keys(&mut self, keys: Keys) -> Option<Duplicate> {
        let exact = keys.exact;
        let sig = keys.signature.map(|b| *b);
        if let Some((kind, owner)) = self.find_with(exact, sig.as_ref()) {
            // A near duplicate's exact text still counts as seen (an exact copy of it later
            // is an exact duplicate), as it always has.
            if let (Duplicate::Near, Some(key)) = (kind, exact) {
                self.exact.insert(key, owner);
            }
            return Some(kind);
        }
        let id = self.kept;
        self.kept += 1;
        if let Some(key) = exact {
            self.exact.insert(key, id);
        }
        if let Some(sig) = sig {
            let at = self.signatures.len() as u32;
            for key in self.band_keys(&sig) {
                match self.buckets.entry(key) {
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(at);
                    }
                    std::collections::hash_map::Entry::Occupied(_) => {
                        self.shared.entry(key).or_default().push(at)
                    }
                }
            }
            self.signatures.push(sig);
            self.owners.push(id);
        }
        None
    }

    /// The kept item (numbered from 0 in keeping order) that `tokens` duplicates, without
    /// keeping `tokens`: for checking one set against another.
    pub fn find(&self, tokens: &[String]) -> Option<(Duplicate, u32)> {
        let keys = self.opts.keys(tokens);
        self.find_with(keys.exact, keys.signature.as_deref())
    }

    /// How many items were kept.
    pub fn kept(&self) -> u32 {
        self.kept
    }

    fn band_keys(&self, sig: &[u32; PERMUTATIONS]) -> Vec<u64> {
        band_keys(sig, self.bands, self.rows).collect()
    }

    fn find_with(
        &self,
        exact: Option<u128>,
        sig: Option<&[u32; PERMUTATIONS]>,
    ) -> Option<(Duplicate, u32)> {
        if let Some(id) = exact.and_then(|k| self.exact.get(&k)) {
            return Some((Duplicate::Exact, *id));
        }
        let threshold = self.opts.near_threshold?;
        let sig = sig?;
        let mut candidates = Vec::new();
        for key in self.band_keys(sig) {
            if let Some(&first) = self.buckets.get(&key) {
                candidates.push(first);
                if let Some(more) = self.shared.get(&key) {
                    candidates.extend_from_slice(more);
                }
            }
        }
        // In keeping order: the owner is the earliest kept near duplicate, whichever band
        // found it.
        candidates.sort_unstable();
        candidates.dedup();
        candidates.into_iter().find_map(|other| {
            is_near(&self.signatures[other as usize], sig, threshold)
                .then(|| (Duplicate::Near, self.owners[other as usize]))
        })
    }
}

/// The MinHash signature of a token list's `k`-shingles (none when it has fewer than `k`
/// tokens).
fn signature(k: usize, tokens: &[String]) -> Option<[u32; PERMUTATIONS]> {
    let k = k.max(1);
    if tokens.len() < k {
        return None;
    }
    let mut sig = [u32::MAX; PERMUTATIONS];
    let mut buf = Vec::new();
    for w in tokens.windows(k) {
        buf.clear();
        for t in w {
            buf.extend_from_slice(t.as_bytes());
            buf.push(0);
        }
        let base = xxh3_64_with_seed(&buf, 0);
        for (i, slot) in sig.iter_mut().enumerate() {
            // A cheap family of hash functions: mix the shingle hash with a per-slot seed.
            let h = (base ^ SEEDS[i]).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            *slot = (*slot).min((h >> 32) as u32);
        }
    }
    Some(sig)
}

fn exact_key(tokens: &[String]) -> u128 {
    let mut joined = Vec::new();
    for t in tokens {
        joined.extend_from_slice(t.as_bytes());
        joined.push(0);
    }
    xxh3_128(&joined)
}

/// Fixed per-slot seeds (splitmix64 of the slot index), so signatures never depend on the
/// run or the machine.
const SEEDS: [u64; PERMUTATIONS] = {
    let mut s = [0u64; PERMUTATIONS];
    let mut i = 0;
    while i < PERMUTATIONS {
        let mut z = (i as u64)
            .wrapping_add(1)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        s[i] = z ^ (z >> 31);
        i += 1;
    }
    s
};

/// Words (letters, digits, `_`) and single punctuation marks, whitespace dropped: as the
/// reference extractor tokenises summaries, and as `eval overlap` compares code.
pub fn word_tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            if !c.is_whitespace() {
                out.push(c.to_string());
            }
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn exact_duplicates_keep_the_first() {
        let mut d = Deduper::new(DedupOptions {
            near_threshold: None,
            ..Default::default()
        });
        assert_eq!(d.check(&toks("def f ( x ) : return x")), None);
        assert_eq!(
            d.check(&toks("def f ( x ) : return x")),
            Some(Duplicate::Exact)
        );
        assert_eq!(d.check(&toks("def g ( x ) : return x")), None);
    }

    #[test]
    fn near_duplicates_above_the_threshold_only() {
        let body: String = (0..60)
            .map(|i| format!("a{i} = b{i} + {i} ;"))
            .collect::<Vec<_>>()
            .join(" ");
        let base = format!("def f ( x ) : {body} return x");
        let mut d = Deduper::new(DedupOptions::default());
        assert_eq!(d.check(&toks(&base)), None);
        // One renamed token among ~300: Jaccard of 3-shingles well above 0.85.
        assert_eq!(
            d.check(&toks(&base.replace("a30 ", "z30 "))),
            Some(Duplicate::Near)
        );
        // A different function shares little.
        let other: String = (0..60)
            .map(|i| format!("c{i} = d{i} * {i} ;"))
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(
            d.check(&toks(&format!("def g ( y ) : {other} return y"))),
            None
        );
        // Half the body changed: below the threshold.
        let half: String = (0..60)
            .map(|i| {
                if i < 30 {
                    format!("a{i} = b{i} + {i} ;")
                } else {
                    format!("q{i} = r{i} - {i} ;")
                }
            })
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(
            d.check(&toks(&format!("def f ( x ) : {half} return x"))),
            None
        );
    }

    #[test]
    fn a_near_duplicate_is_found_though_every_band_it_shares_was_claimed_first() {
        // B shares each of its bands with a different earlier record A_i (each only one band
        // alike, so no near duplicate of B) and is kept; C equals B. Every band key of B was
        // taken by an A_i first: C must still be found as B's near duplicate.
        let opts = DedupOptions::default();
        let mut d = Deduper::new(opts);
        let (bands, rows) = (d.bands, d.rows);
        let keys = |sig: [u32; PERMUTATIONS]| Keys {
            exact: None,
            signature: Some(Box::new(sig)),
        };
        let b: [u32; PERMUTATIONS] = std::array::from_fn(|i| 1_000_000 + i as u32);
        for band in 0..bands {
            let a: [u32; PERMUTATIONS] = std::array::from_fn(|i| {
                if i / rows == band {
                    b[i]
                } else {
                    (band * PERMUTATIONS + i) as u32
                }
            });
            assert_eq!(d.check_keys(keys(a)), None, "A_{band} is kept");
        }
        assert_eq!(d.check_keys(keys(b)), None, "B is kept");
        assert_eq!(
            d.check_keys(keys(b)),
            Some(Duplicate::Near),
            "C is B's near duplicate"
        );
        assert_eq!(d.kept(), bands as u32 + 1);
    }

    #[test]
    fn banding_knee_is_below_the_threshold() {
        for t in [0.5, 0.7, 0.85, 0.95] {
            let (b, r) = banding(t);
            assert_eq!(b * r, PERMUTATIONS);
            assert!((1.0 / b as f64).powf(1.0 / r as f64) <= t, "{t}: {b}x{r}");
        }
    }
}
