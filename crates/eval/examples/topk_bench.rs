//! Times exact top-k search over npy embeddings, for scripts/bench/run_eval_bench.sh:
//!
//!     topk_bench QUERIES.npy CANDIDATES.npy K [OUT.npy]
//!
//! Prints the seconds of the search alone (loading excluded, as the Python side's) and, with
//! OUT, writes the top-k candidate ids (int64, [queries, k]) for the script to compare.

use std::path::Path;
use std::time::Instant;

use pytorrent_eval::search::{search, Matrix, Spec};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: topk_bench QUERIES.npy CANDIDATES.npy K [OUT.npy]");
        std::process::exit(2);
    }
    let q = Matrix::read_npy(Path::new(&args[1])).unwrap_or_else(|e| panic!("{e}"));
    let c = Matrix::read_npy(Path::new(&args[2])).unwrap_or_else(|e| panic!("{e}"));
    let k: usize = args[3].parse().expect("K is a number");
    let started = Instant::now();
    let hits = search(
        &q,
        &c,
        &Spec {
            k,
            keys: None,
            positives: None,
        },
    );
    let secs = started.elapsed().as_secs_f64();
    println!("{secs:.3}");
    if let Some(out) = args.get(4) {
        let ids: Vec<i64> = hits
            .iter()
            .flat_map(|h| h.top.iter().map(|&i| i64::from(i)))
            .collect();
        let arr = ndarray::Array2::from_shape_vec((hits.len(), k), ids).expect("k per query");
        ndarray_npy::write_npy(out, &arr).expect("writes the ids");
    }
}
