//! Layers with backward passes.
//!
//! candle-nn's fused `layer_norm`, `rms_norm` and `softmax_last_dim` have no backward pass:
//! gradients silently stop at them (candle issues 2168, 2977, 3011). On the CPU in f32 the
//! layers here run the kernels of [`crate::fused`], whose backward passes are written by
//! hand; elsewhere (a GPU, bf16) they are built from candle ops that have one. The
//! gradient-coverage test checks that every parameter gets a gradient, and the tests below
//! hold both forms to each other and to finite differences. Dropout draws its masks from our
//! own generators because candle's CPU random numbers cannot be seeded.

use crate::fused;
use candle_core::{DType, Device, Result, Tensor, D};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// LayerNorm over the last dimension, as `torch.nn.LayerNorm` (biased variance), in f32.
pub fn layer_norm(x: &Tensor, w: &Tensor, b: &Tensor, eps: f64) -> Result<Tensor> {
    if fused::applies(&[x, w, b]) {
        return fused::layer_norm(x, w, b, eps);
    }
    composed_layer_norm(x, w, b, eps)
}

fn composed_layer_norm(x: &Tensor, w: &Tensor, b: &Tensor, eps: f64) -> Result<Tensor> {
    let mean = x.mean_keepdim(D::Minus1)?;
    let xc = x.broadcast_sub(&mean)?;
    let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
    let xn = xc.broadcast_div(&(var + eps)?.sqrt()?)?;
    xn.broadcast_mul(w)?.broadcast_add(b)
}

/// Attention probabilities: softmax over the last dimension of `scores · scale + mask`, for
/// scores `[b, heads, s, s]` and an additive key mask `[b, s]`.
pub fn attention_probs(scores: &Tensor, scale: f64, mask: Option<&Tensor>) -> Result<Tensor> {
    if fused::applies(&[scores]) && mask.is_none_or(|m| fused::applies(&[m])) {
        return fused::scaled_softmax(scores, scale, mask);
    }
    let mut x = (scores * scale)?;
    if let Some(m) = mask {
        let (b, s) = m.dims2()?;
        x = x.broadcast_add(&m.reshape((b, 1, 1, s))?)?;
    }
    softmax(&x)
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
    if fused::applies(&[x]) {
        return fused::log_softmax(x);
    }
    composed_log_softmax(x)
}

fn composed_log_softmax(x: &Tensor) -> Result<Tensor> {
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
    linear_act(x, w, b, compute, false)
}

/// `x · wᵀ + b`, then erf GELU when `gelu` is set.
pub fn linear_act(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    compute: DType,
    gelu: bool,
) -> Result<Tensor> {
    let y = if compute == DType::F32 {
        x.matmul(&w.t()?)?
    } else {
        x.to_dtype(compute)?
            .matmul(&w.to_dtype(compute)?.t()?)?
            .to_dtype(DType::F32)?
    };
    if fused::applies(&[&y, b]) {
        return fused::bias_act(&y, b, gelu);
    }
    let y = y.broadcast_add(b)?;
    if gelu {
        y.gelu_erf()
    } else {
        Ok(y)
    }
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

    fn var(shape: &[usize], mean: f32, std: f32) -> Var {
        Var::from_tensor(&Tensor::randn(mean, std, shape, &Device::Cpu).unwrap()).unwrap()
    }

    /// `Σ f(inputs) ⊙ t` and the gradients of every input.
    fn grads_of(
        f: &dyn Fn(&[Tensor]) -> Result<Tensor>,
        inputs: &[&Var],
        t: &Tensor,
    ) -> (f32, Vec<Tensor>) {
        let xs: Vec<Tensor> = inputs.iter().map(|v| v.as_tensor().clone()).collect();
        let loss = (f(&xs).unwrap() * t).unwrap().sum_all().unwrap();
        let g = loss.backward().unwrap();
        let grads = inputs
            .iter()
            .map(|v| g.get(v.as_tensor()).expect("a gradient").clone())
            .collect();
        (loss.to_scalar::<f32>().unwrap(), grads)
    }

    /// Each fused CPU kernel against the composed form, forward and backward: the two are
    /// independent implementations of the same function.
    fn fused_equals_composed(
        fused: &dyn Fn(&[Tensor]) -> Result<Tensor>,
        composed: &dyn Fn(&[Tensor]) -> Result<Tensor>,
        inputs: &[&Var],
        out_shape: &[usize],
        tol: f32,
    ) {
        let t = Tensor::randn(0f32, 1.0, out_shape, &Device::Cpu).unwrap();
        let (lf, gf) = grads_of(fused, inputs, &t);
        let (lc, gc) = grads_of(composed, inputs, &t);
        assert!((lf - lc).abs() <= tol * lc.abs().max(1.0), "{lf} vs {lc}");
        for (i, (a, b)) in gf.iter().zip(&gc).enumerate() {
            let scale = b
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            let d = max_diff(a, b);
            assert!(
                d <= tol * scale.max(1.0),
                "input {i}: gradients differ by {d}"
            );
        }
    }

    #[test]
    fn fused_kernels_equal_the_composed_forms_forward_and_backward() {
        let (w, b) = (var(&[48], 1.0, 0.2), var(&[48], 0.0, 0.2));
        let x = var(&[3, 5, 48], 0.5, 2.0);
        fused_equals_composed(
            &|v| fused::layer_norm(&v[0], &v[1], &v[2], 1e-5),
            &|v| composed_layer_norm(&v[0], &v[1], &v[2], 1e-5),
            &[&x, &w, &b],
            &[3, 5, 48],
            1e-5,
        );
        let y = var(&[15, 48], 0.0, 2.0);
        for gelu in [false, true] {
            fused_equals_composed(
                &|v| fused::bias_act(&v[0], &v[1], gelu),
                &|v| {
                    let z = v[0].broadcast_add(&v[1])?;
                    if gelu {
                        z.gelu_erf()
                    } else {
                        Ok(z)
                    }
                },
                &[&y, &b],
                &[15, 48],
                1e-5,
            );
        }
        // Attention scores [b, heads, s, s] with a key mask: the second row masks two keys.
        let scores = var(&[2, 3, 6, 6], 0.0, 3.0);
        let m: Vec<f32> = (0..12)
            .map(|i| if i >= 10 { f32::MIN } else { 0.0 })
            .collect();
        let mask = Tensor::from_vec(m, (2, 6), &Device::Cpu).unwrap();
        for mask in [None, Some(&mask)] {
            fused_equals_composed(
                &|v| fused::scaled_softmax(&v[0], 0.125, mask),
                &|v| {
                    let mut z = (&v[0] * 0.125)?;
                    if let Some(m) = mask {
                        z = z.broadcast_add(&m.reshape((2, 1, 1, 6))?)?;
                    }
                    softmax(&z)
                },
                &[&scores],
                &[2, 3, 6, 6],
                1e-6,
            );
        }
        let logits = var(&[7, 300], 0.0, 4.0);
        fused_equals_composed(
            &|v| fused::log_softmax(&v[0]),
            &|v| composed_log_softmax(&v[0]),
            &[&logits],
            &[7, 300],
            1e-5,
        );
    }

    /// The hand-written backward passes against central differences of the forward pass, in
    /// f64 arithmetic of f32 results: a directional derivative along a random direction.
    #[test]
    fn fused_backward_passes_agree_with_finite_differences() {
        type F = dyn Fn(&[Tensor]) -> Result<Tensor>;
        let mask = Tensor::from_vec(
            vec![0f32, 0.0, f32::MIN, 0.0, 0.0, 0.0],
            (2, 3),
            &Device::Cpu,
        )
        .unwrap();
        let cases: Vec<(&str, Box<F>, Vec<Var>)> = vec![
            (
                "layer_norm",
                Box::new(|v: &[Tensor]| fused::layer_norm(&v[0], &v[1], &v[2], 1e-5)),
                vec![
                    var(&[4, 16], 0.3, 1.0),
                    var(&[16], 1.0, 0.3),
                    var(&[16], 0.0, 0.3),
                ],
            ),
            (
                "bias_gelu",
                Box::new(|v: &[Tensor]| fused::bias_act(&v[0], &v[1], true)),
                vec![var(&[4, 16], 0.0, 1.5), var(&[16], 0.0, 0.5)],
            ),
            (
                "masked_softmax",
                Box::new(move |v: &[Tensor]| fused::scaled_softmax(&v[0], 0.5, Some(&mask))),
                vec![var(&[2, 2, 3, 3], 0.0, 1.0)],
            ),
            (
                "log_softmax",
                Box::new(|v: &[Tensor]| fused::log_softmax(&v[0])),
                vec![var(&[3, 20], 0.0, 2.0)],
            ),
        ];
        for (name, f, inputs) in cases {
            let refs: Vec<&Var> = inputs.iter().collect();
            let xs: Vec<Tensor> = inputs.iter().map(|v| v.as_tensor().clone()).collect();
            let out_shape = f(&xs).unwrap().dims().to_vec();
            let t = Tensor::randn(0f32, 1.0, out_shape.as_slice(), &Device::Cpu).unwrap();
            let (_, grads) = grads_of(&*f, &refs, &t);
            let dirs: Vec<Tensor> = xs.iter().map(|x| x.randn_like(0.0, 1.0).unwrap()).collect();
            let analytic: f64 = grads
                .iter()
                .zip(&dirs)
                .map(|(g, d)| {
                    (g * d)
                        .unwrap()
                        .sum_all()
                        .unwrap()
                        .to_scalar::<f32>()
                        .unwrap() as f64
                })
                .sum();
            let at = |h: f64| -> f64 {
                let moved: Vec<Tensor> = xs
                    .iter()
                    .zip(&dirs)
                    .map(|(x, d)| (x + (d * h).unwrap()).unwrap())
                    .collect();
                let y: Vec<f32> = f(&moved).unwrap().flatten_all().unwrap().to_vec1().unwrap();
                let t: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
                y.iter().zip(&t).map(|(y, t)| *y as f64 * *t as f64).sum()
            };
            let h = 1e-2;
            let numeric = (at(h) - at(-h)) / (2.0 * h);
            assert!(
                (numeric - analytic).abs() <= 2e-3 * analytic.abs().max(1.0),
                "{name}: finite differences {numeric} vs backward {analytic}"
            );
        }
    }

    /// Column sums (bias and LayerNorm weight gradients) add blocks of rows in a fixed order:
    /// the bytes do not follow the thread count.
    #[test]
    fn fused_gradients_do_not_depend_on_the_thread_count() {
        let x = var(&[700, 64], 0.0, 1.0);
        let (w, b) = (var(&[64], 1.0, 0.1), var(&[64], 0.0, 0.1));
        let t = Tensor::randn(0f32, 1.0, (700, 64), &Device::Cpu).unwrap();
        let run = |threads: usize| -> Vec<Vec<f32>> {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let f = |v: &[Tensor]| {
                    fused::bias_act(&fused::layer_norm(&v[0], &v[1], &v[2], 1e-5)?, &v[2], true)
                };
                let (_, g) = grads_of(&f, &[&x, &w, &b], &t);
                g.iter()
                    .map(|g| g.flatten_all().unwrap().to_vec1().unwrap())
                    .collect()
            })
        };
        assert_eq!(run(1), run(3));
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
