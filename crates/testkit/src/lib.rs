//! What every crate's tests reach for: the repository's folders (`data-samples/`,
//! `tests/fixtures/`) and the comparison of floating-point outputs with a reference.

use std::path::{Path, PathBuf};

/// The repository root (`crates/testkit/../..`, without the `..`).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/testkit is two folders below the root")
        .to_path_buf()
}

/// The sample corpus, `data-samples/corpus` (PyTorrent's layout, three partitions).
pub fn samples() -> PathBuf {
    root().join("data-samples/corpus")
}

/// A folder of reference fixtures, `tests/fixtures/<name>`.
pub fn fixtures(name: &str) -> PathBuf {
    root().join("tests/fixtures").join(name)
}

/// The largest absolute difference between two equally long vectors.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "vectors of different lengths");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
