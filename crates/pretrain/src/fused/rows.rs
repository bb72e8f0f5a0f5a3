//! The per-row arithmetic of the fused kernels, compiled twice: for the baseline x86-64 the
//! binary targets (SSE2) and for AVX2 + FMA, chosen at run time. Without this the loops, and
//! `exp`/`erf` inside them, run four lanes wide or scalar while candle's matmul uses the
//! widest registers the CPU has. Both builds compute the same operations in the same order
//! (no fused multiply-add contraction, lane-wise partial sums added in a fixed order), so
//! results are identical on every CPU.

/// Partial sums per row reduction: lanes a vector unit adds independently.
const LANES: usize = 16;

macro_rules! dispatched {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$m])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn wide($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU has the features `wide` was compiled for.
                    return unsafe { wide($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}

/// Σ f(i) over `0..n`, in `LANES` partial sums added in lane order at the end.
#[inline(always)]
fn lane_sum(n: usize, f: impl Fn(usize) -> f32) -> f32 {
    let mut acc = [0f32; LANES];
    let full = n / LANES * LANES;
    let mut i = 0;
    while i < full {
        for (l, a) in acc.iter_mut().enumerate() {
            *a += f(i + l);
        }
        i += LANES;
    }
    let mut s = 0f32;
    for a in acc {
        s += a;
    }
    for j in full..n {
        s += f(j);
    }
    s
}

#[inline(always)]
fn lane_max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for c in &mut chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a = a.max(*v);
        }
    }
    let mut m = f32::NEG_INFINITY;
    for a in acc.iter().chain(chunks.remainder()) {
        m = m.max(*a);
    }
    m
}

/// eˣ in f32 without a library call, so that loops over it vectorise: Cody–Waite reduction
/// to r ∈ [−ln2/2, ln2/2] and a degree-7 Taylor polynomial (truncation below 1e-8 relative),
/// within 2 ulp of `f32::exp` over the range where neither under- nor overflows.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Adding and subtracting 1.5·2²³ rounds to the nearest integer without a call.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// erf as PyTorch's vectorised CPU kernels compute it (Abramowitz & Stegun 7.1.26, absolute
/// error below 1.5e-7, 5e-7 once evaluated in f32): the GELU of a training step then rounds
/// as `torch.nn.GELU` does on the CPU, and runs vectorised instead of through libm's scalar
/// `erff`, which alone took a tenth of a training step.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (0.327_591_1 * a + 1.0);
    let r =
        (((1.061_405_4 * t - 1.453_152) * t + 1.421_413_8) * t - 0.284_496_74) * t + 0.254_829_6;
    (1.0 - r * t * exp(-x * x)).copysign(x)
}

const SQRT_1_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// 1/√(2π)
const INV_SQRT_2PI: f32 = 0.398_942_3;

#[inline(always)]
fn gelu(v: f32) -> f32 {
    (erf(v * SQRT_1_2) + 1.0) * 0.5 * v
}

/// d/dv of erf GELU: Φ(v) + v·φ(v).
#[inline(always)]
fn gelu_grad(v: f32) -> f32 {
    0.5 * (1.0 + erf(v * SQRT_1_2)) + v * INV_SQRT_2PI * exp(-0.5 * v * v)
}

dispatched! {
    /// o = y + b, then GELU when `act`.
    pub fn bias_act(o: &mut [f32], y: &[f32], b: &[f32], act: bool) {
        let n = o.len().min(y.len()).min(b.len());
        let (o, y, b) = (&mut o[..n], &y[..n], &b[..n]);
        if act {
            for i in 0..n {
                o[i] = gelu(y[i] + b[i]);
            }
        } else {
            for i in 0..n {
                o[i] = y[i] + b[i];
            }
        }
    }
}

dispatched! {
    /// d = g · GELU′(y + b).
    pub fn bias_gelu_grad(d: &mut [f32], y: &[f32], g: &[f32], b: &[f32]) {
        let n = d.len().min(y.len()).min(g.len()).min(b.len());
        let (d, y, g, b) = (&mut d[..n], &y[..n], &g[..n], &b[..n]);
        for i in 0..n {
            d[i] = g[i] * gelu_grad(y[i] + b[i]);
        }
    }
}

dispatched! {
    /// Adds a row to f64 column accumulators.
    pub fn add_row_f64(acc: &mut [f64], row: &[f32]) {
        let n = acc.len().min(row.len());
        let (acc, row) = (&mut acc[..n], &row[..n]);
        for i in 0..n {
            acc[i] += row[i] as f64;
        }
    }
}

/// Mean and 1/σ of one row (biased variance, as `torch.nn.LayerNorm`).
#[inline(always)]
fn moments(x: &[f32], eps: f32) -> (f32, f32) {
    let n = x.len() as f32;
    let mean = lane_sum(x.len(), |i| x[i]) / n;
    let var = lane_sum(x.len(), |i| (x[i] - mean) * (x[i] - mean)) / n;
    (mean, 1.0 / (var + eps).sqrt())
}

dispatched! {
    /// One LayerNorm row: o = (x − mean)/σ · w + b.
    pub fn layer_norm(o: &mut [f32], x: &[f32], w: &[f32], b: &[f32], eps: f32) {
        let n = o.len().min(x.len()).min(w.len()).min(b.len());
        let (o, x, w, b) = (&mut o[..n], &x[..n], &w[..n], &b[..n]);
        let (mean, rstd) = moments(x, eps);
        for i in 0..n {
            o[i] = (x[i] - mean) * rstd * w[i] + b[i];
        }
    }
}

dispatched! {
    /// One LayerNorm row backward: dx, and g·x̂ for the weight gradient's column sum.
    pub fn layer_norm_bwd(dx: &mut [f32], gxhat: &mut [f32], x: &[f32], g: &[f32], w: &[f32], eps: f32) {
        let n = dx.len().min(gxhat.len()).min(x.len()).min(g.len()).min(w.len());
        let (dx, gxhat, x, g, w) = (&mut dx[..n], &mut gxhat[..n], &x[..n], &g[..n], &w[..n]);
        let (mean, rstd) = moments(x, eps);
        for i in 0..n {
            gxhat[i] = g[i] * (x[i] - mean) * rstd;
        }
        let m1 = lane_sum(n, |i| g[i] * w[i]) / n as f32;
        let m2 = lane_sum(n, |i| g[i] * w[i] * (x[i] - mean) * rstd) / n as f32;
        for i in 0..n {
            let xhat = (x[i] - mean) * rstd;
            dx[i] = rstd * (g[i] * w[i] - m1 - xhat * m2);
        }
    }
}

dispatched! {
    /// One row of softmax(x · scale + mask).
    pub fn softmax(o: &mut [f32], x: &[f32], mask: Option<&[f32]>, scale: f32) {
        let n = o.len().min(x.len());
        let (o, x) = (&mut o[..n], &x[..n]);
        match mask {
            Some(m) => {
                let m = &m[..n];
                for i in 0..n {
                    o[i] = x[i] * scale + m[i];
                }
            }
            None => {
                for i in 0..n {
                    o[i] = x[i] * scale;
                }
            }
        }
        let max = lane_max(o);
        for v in o.iter_mut() {
            *v = exp(*v - max);
        }
        let sum = lane_sum(n, |i| o[i]);
        let inv = 1.0 / sum;
        for v in o.iter_mut() {
            *v *= inv;
        }
    }
}

dispatched! {
    /// One row of the softmax backward: d = scale · y ⊙ (g − Σ g⊙y / Σ y). Σy is 1 up to
    /// rounding; dividing by it makes the row's gradients sum to zero as in exact arithmetic
    /// (the attention key bias's gradient is such a sum).
    pub fn softmax_bwd(d: &mut [f32], y: &[f32], g: &[f32], scale: f32) {
        let n = d.len().min(y.len()).min(g.len());
        let (d, y, g) = (&mut d[..n], &y[..n], &g[..n]);
        let dot = lane_sum(n, |i| y[i] * g[i]);
        let total = lane_sum(n, |i| y[i]);
        let c = dot / total;
        for i in 0..n {
            d[i] = scale * y[i] * (g[i] - c);
        }
    }
}

dispatched! {
    /// One row of log-softmax.
    pub fn log_softmax(o: &mut [f32], x: &[f32]) {
        let n = o.len().min(x.len());
        let (o, x) = (&mut o[..n], &x[..n]);
        let max = lane_max(x);
        let lse = lane_sum(n, |i| exp(x[i] - max)).ln();
        for i in 0..n {
            o[i] = x[i] - max - lse;
        }
    }
}

dispatched! {
    /// One row of the log-softmax backward: d = g − softmax(x) · Σ g.
    pub fn log_softmax_bwd(d: &mut [f32], y: &[f32], g: &[f32]) {
        let n = d.len().min(y.len()).min(g.len());
        let (d, y, g) = (&mut d[..n], &y[..n], &g[..n]);
        let sum = lane_sum(n, |i| g[i]);
        for i in 0..n {
            d[i] = g[i] - exp(y[i]) * sum;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_two_ulp_of_libm() {
        let mut worst = 0f32;
        for i in 0..=200_000 {
            let x = -87.0 + 175.0 * i as f32 / 200_000.0;
            let (ours, want) = (exp(x), x.exp());
            worst = worst.max((ours - want).abs() / (want * f32::EPSILON));
        }
        assert!(worst <= 2.0, "{worst} ulp");
        assert_eq!(exp(-200.0), (-87f32).exp());
        assert!(exp(f32::MIN).is_finite() && exp(f32::MIN) >= 0.0);
    }

    #[test]
    fn erf_is_within_a_few_e7_of_libm() {
        let mut worst = 0f32;
        for i in 0..=100_000 {
            let x = -6.0 + 12.0 * i as f32 / 100_000.0;
            worst = worst.max((erf(x) - candle_core::cpu::erf::erf_f32(x)).abs());
        }
        // The approximation's 1.5e-7 plus the rounding of its f32 evaluation.
        assert!(worst < 5e-7, "off by {worst}");
        assert_eq!(erf(30.0), 1.0);
        assert_eq!(erf(-30.0), -1.0);
    }

    /// The AVX2 build and the baseline build give the same bits.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_wide_build_equals_the_baseline_build() {
        if !(std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")) {
            return;
        }
        let x: Vec<f32> = (0..333)
            .map(|i| ((i * 7919) % 1000) as f32 / 97.0 - 5.0)
            .collect();
        let w: Vec<f32> = (0..333).map(|i| 1.0 + (i % 7) as f32 / 50.0).collect();
        let mut wide = vec![0f32; 333];
        layer_norm(&mut wide, &x, &w, &w, 1e-5);
        let mut base = vec![0f32; 333];
        layer_norm_body_for_test(&mut base, &x, &w, &w, 1e-5);
        assert_eq!(wide, base);
        let mut wide = vec![0f32; 333];
        bias_act(&mut wide, &x, &w, true);
        let base: Vec<f32> = x.iter().zip(&w).map(|(y, b)| gelu(y + b)).collect();
        assert_eq!(wide, base);
    }

    /// The LayerNorm row in the baseline build (the body the dispatcher wraps).
    fn layer_norm_body_for_test(o: &mut [f32], x: &[f32], w: &[f32], b: &[f32], eps: f32) {
        let (mean, rstd) = moments(x, eps);
        for i in 0..o.len() {
            o[i] = (x[i] - mean) * rstd * w[i] + b[i];
        }
    }
}
