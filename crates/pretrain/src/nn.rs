//! Layers written from differentiable candle ops.
//!
//! candle-nn's fused `layer_norm`, `rms_norm` and `softmax_last_dim` have no backward pass:
//! gradients silently stop at them (candle issues 2168, 2977, 3011). The forms here are built
//! from ops that do have one; the gradient-coverage test checks that every parameter gets a
//! gradient. Dropout draws its masks from our own generators because candle's CPU random
//! numbers cannot be seeded.

use candle_core::{DType, Device, Result, Tensor, D};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// LayerNorm over the last dimension, as `torch.nn.LayerNorm` (biased variance), in f32.
pub fn layer_norm(x: &Tensor, w: &Tensor, b: &Tensor, eps: f64) -> Result<Tensor> {
    let mean = x.mean_keepdim(D::Minus1)?;
    let xc = x.broadcast_sub(&mean)?;
    let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
    let xn = xc.broadcast_div(&(var + eps)?.sqrt()?)?;
    xn.broadcast_mul(w)?.broadcast_add(b)
}

/// Softmax over the last dimension. The row maximum is subtracted for range only and is
/// detached: the result does not depend on it, so neither does the gradient.
pub fn softmax(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

/// Log-softmax over the last dimension.
pub fn log_softmax(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let shifted = x.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    shifted.broadcast_sub(&lse)
}

/// Draws dropout masks from a generator seeded by the run seed, the step and the micro-batch,
/// numbered per call: the same step always drops the same units, whatever the thread count.
pub struct Dropout {
    seed: u64,
    calls: u64,
    pub training: bool,
}

/// Values per independently seeded chunk: masks are drawn in parallel without depending on
/// how rayon splits the work.
const CHUNK: usize = 1 << 16;

fn mix(mut z: u64) -> u64 {
    // splitmix64's finaliser: turns consecutive counters into unrelated seeds.
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One seed from several numbers.
pub fn seed_of(parts: &[u64]) -> u64 {
    parts.iter().fold(0x5EED, |acc, p| mix(acc ^ mix(*p)))
}

impl Dropout {
    pub fn new(seed: u64, training: bool) -> Dropout {
        Dropout {
            seed,
            calls: 0,
            training,
        }
    }

    /// The keep-mask of `n` values, each `1/(1-p)` with probability `1-p`, else 0.
    pub fn mask(&mut self, n: usize, p: f64) -> Vec<f32> {
        let call = self.calls;
        self.calls += 1;
        let seed = seed_of(&[self.seed, call]);
        // Keep when a uniform u32 is at or above p·2³².
        let threshold = (p * 4_294_967_296.0).min(u32::MAX as f64) as u32;
        let scale = (1.0 / (1.0 - p)) as f32;
        let mut out = vec![0f32; n];
        out.par_chunks_mut(CHUNK).enumerate().for_each(|(i, c)| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed_of(&[seed, i as u64]));
            for v in c {
                *v = if rng.next_u32() >= threshold {
                    scale
                } else {
                    0.0
                };
            }
        });
        out
    }

    /// `x` with units dropped (identity when not training or `p` is 0).
    pub fn apply(&mut self, x: &Tensor, p: f64) -> Result<Tensor> {
        if !self.training || p <= 0.0 {
            return Ok(x.clone());
        }
        let mask = self.mask(x.elem_count(), p);
        let mask = Tensor::from_vec(mask, x.shape(), &Device::Cpu)?
            .to_device(x.device())?
            .to_dtype(x.dtype())?;
        x * mask
    }
}

/// `x · wᵀ + b` with the matmul in `compute` (bf16 on a GPU), the result in f32.
pub fn linear(x: &Tensor, w: &Tensor, b: &Tensor, compute: DType) -> Result<Tensor> {
    let y = if compute == DType::F32 {
        x.matmul(&w.t()?)?
    } else {
        x.to_dtype(compute)?
            .matmul(&w.to_dtype(compute)?.t()?)?
            .to_dtype(DType::F32)?
    };
    y.broadcast_add(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    #[test]
    fn forms_equal_candles_fused_ops() {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 3.0, (5, 7, 16), &dev).unwrap();
        let w = Tensor::randn(1f32, 0.1, 16, &dev).unwrap();
        let b = Tensor::randn(0f32, 0.1, 16, &dev).unwrap();
        let fused = candle_nn::ops::layer_norm(&x, &w, &b, 1e-5).unwrap();
        assert!(max_diff(&layer_norm(&x, &w, &b, 1e-5).unwrap(), &fused) < 1e-5);
        let sm = candle_nn::ops::softmax_last_dim(&x).unwrap();
        assert!(max_diff(&softmax(&x).unwrap(), &sm) < 1e-6);
        let lsm = candle_nn::ops::log_softmax(&x, D::Minus1).unwrap();
        assert!(max_diff(&log_softmax(&x).unwrap(), &lsm) < 1e-5);
    }

    #[test]
    fn gradients_flow_through_layer_norm_and_softmax() {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (4, 8), &dev).unwrap()).unwrap();
        let w = Var::from_tensor(&Tensor::ones(8, DType::F32, &dev).unwrap()).unwrap();
        let b = Var::from_tensor(&Tensor::zeros(8, DType::F32, &dev).unwrap()).unwrap();
        let t = Tensor::randn(0f32, 1.0, (4, 8), &dev).unwrap();
        let y = softmax(&layer_norm(&x, &w, &b, 1e-5).unwrap()).unwrap();
        let loss = (y * t).unwrap().sum_all().unwrap();
        let grads = loss.backward().unwrap();
        for v in [&x, &w, &b] {
            let g = grads.get(v.as_tensor()).expect("a gradient");
            let n = g
                .abs()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(n > 0.0);
        }
    }

    #[test]
    fn dropout_keeps_one_minus_p_scaled_and_repeats_per_seed() {
        let mut a = Dropout::new(7, true);
        let m = a.mask(200_000, 0.1);
        let kept = m.iter().filter(|v| **v > 0.0).count() as f64 / m.len() as f64;
        assert!((kept - 0.9).abs() < 0.005, "kept {kept}");
        assert!(m.iter().all(|v| *v == 0.0 || (*v - 1.0 / 0.9).abs() < 1e-6));
        let again = Dropout::new(7, true).mask(200_000, 0.1);
        assert_eq!(m, again);
        // The next call draws another mask.
        assert_ne!(a.mask(200_000, 0.1), m);
        // Thread count does not matter: chunks are seeded by their index.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let one = pool.install(|| Dropout::new(7, true).mask(200_000, 0.1));
        assert_eq!(one, m);
    }
}
