//! Forward-pass throughput of a model folder: `batch × seq` random ids (fixed seed), warm-up,
//! then timed passes; prints sequences/s and achieved GFLOP/s as one JSON line.
//!
//!     cargo run --release -p pytorrent-model --example forward_bench -- MODEL_DIR [batch] [seq] [runs] [device] [dtype]

use std::time::Instant;

use pytorrent_model::device::{parse_device, parse_dtype};
use pytorrent_model::Model;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let dir = args
        .get(1)
        .ok_or("usage: forward_bench MODEL_DIR [batch] [seq] [runs] [device] [dtype]")?;
    let num = |i: usize, d: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let (batch, seq, runs) = (num(2, 8), num(3, 256), num(4, 5));
    let device = parse_device(args.get(5).map_or("cpu", String::as_str))?;
    let dtype = parse_dtype(args.get(6).map_or("f32", String::as_str), &device)?;
    let model = Model::load(dir, &device, dtype)?;
    let c = &model.config;
    // A fixed linear-congruential stream of ids that avoids the special ids 0..=4.
    let mut x: u64 = 42;
    let rows: Vec<Vec<u32>> = (0..batch)
        .map(|_| {
            (0..seq)
                .map(|_| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    5 + ((x >> 33) % (c.vocab_size as u64 - 5)) as u32
                })
                .collect()
        })
        .collect();
    model
        .hidden_states(&rows)?
        .to_dtype(candle_core::DType::F32)?
        .sum_all()?
        .to_scalar::<f32>()?;
    let mut times = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let h = model.hidden_states(&rows)?;
        // Synchronises a GPU and makes sure the work is not skipped.
        h.to_dtype(candle_core::DType::F32)?
            .sum_all()?
            .to_scalar::<f32>()?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let (h, i, l, t) = (
        c.hidden_size as f64,
        c.intermediate_size as f64,
        c.num_layers as f64,
        (batch * seq) as f64,
    );
    let flops =
        l * (2.0 * t * (4.0 * h * h + 2.0 * h * i) + 4.0 * batch as f64 * (seq as f64).powi(2) * h);
    println!(
        "{}",
        serde_json::json!({"impl": "pytorrent-model (candle)", "batch": batch, "seq": seq, "runs": runs,
            "median_s": median, "sequences_per_s": batch as f64 / median, "tokens_per_s": t / median,
            "gflops": flops / median / 1e9, "threads": rayon::current_num_threads()})
    );
    Ok(())
}
