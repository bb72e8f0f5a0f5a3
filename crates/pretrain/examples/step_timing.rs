//! Where one training step's time goes: forward, backward and optimiser, for the model of
//! configs/models/small.toml on a 32 × 128 batch (run from the repository root, release).
//!
//!     RAYON_NUM_THREADS=2 cargo run --release --example step_timing -p pytorrent-pretrain

use candle_core::{DType, Device};
use pytorrent_pretrain::model::{Batch, MlmModel};
use pytorrent_pretrain::nn::Dropout;
use pytorrent_pretrain::optim::{gradients, AdamW, AdamWConfig};
use pytorrent_pretrain::spec::{Arch, ModelSpec};
use std::time::Instant;

fn main() {
    pytorrent_pretrain::train::tune_allocator();
    let spec = ModelSpec::read(std::path::Path::new("configs/models/small.toml")).unwrap();
    let arch = Arch::new(&spec, 8000, 1, 0, 2);
    let m = MlmModel::init(arch, 0, &Device::Cpu, DType::F32).unwrap();
    let (b, s) = (32, 128);
    let ids: Vec<u32> = (0..b * s).map(|i| 3 + (i as u32 * 7919) % 7990).collect();
    let targets: Vec<(u32, u32)> = (0..b * s)
        .step_by(7)
        .map(|i| (i as u32, 5 + (i as u32 % 100)))
        .collect();
    let batch = Batch {
        b,
        s,
        ids,
        attention: vec![1; b * s],
        targets,
    };
    let mut opt = AdamW::new(m.params(), AdamWConfig::default()).unwrap();
    for _ in 0..3 {
        let t = Instant::now();
        let h = m.hidden(&batch, &mut Dropout::new(1, true)).unwrap();
        let t_h = t.elapsed();
        let loss = m.loss(&batch, &mut Dropout::new(1, true)).unwrap();
        let t_f = t.elapsed();
        let g = loss.nll_sum.backward().unwrap();
        let t_b = t.elapsed();
        let grads = gradients(m.params(), &g).unwrap();
        opt.step(&grads, 1e-4).unwrap();
        let t_o = t.elapsed();
        drop(h);
        println!(
            "hidden {:?} loss-fwd {:?} bwd {:?} opt {:?}",
            t_h,
            t_f - t_h,
            t_b - t_f,
            t_o - t_b
        );
    }
}
