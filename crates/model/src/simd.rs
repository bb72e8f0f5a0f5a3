//! Element-wise and row arithmetic compiled twice: for the baseline x86-64 the binary
//! targets (SSE2) and for AVX2 + FMA, chosen at run time ([`dispatched!`]). Without this the
//! loops, and `exp`/`erf` inside them, run four lanes wide or scalar while candle's matmul
//! uses the widest registers the CPU has. Both builds compute the same operations in the same
//! order (no fused multiply-add contraction, lane-wise partial sums added in a fixed order),
//! so results are identical on every CPU. `exp` and `erf` are written out (not libm's) so
//! that loops over them vectorise; erf is the approximation PyTorch's CPU kernels use, so a
//! GELU rounds as `torch.nn.GELU` does.

/// Defines `fn NAME(args) -> ret { body }` that runs `body` compiled for AVX2 + FMA when the
/// CPU has them, and for the baseline otherwise.
#[macro_export]
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

/// Partial sums per row reduction: lanes a vector unit adds independently.
pub const LANES: usize = 16;

/// Σ f(i) over `0..n`, in `LANES` partial sums added in lane order at the end.
#[inline(always)]
pub fn lane_sum(n: usize, f: impl Fn(usize) -> f32) -> f32 {
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
pub fn lane_max(x: &[f32]) -> f32 {
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
pub fn gelu(v: f32) -> f32 {
    (erf(v * SQRT_1_2) + 1.0) * 0.5 * v
}

/// d/dv of erf GELU: Φ(v) + v·φ(v).
#[inline(always)]
pub fn gelu_grad(v: f32) -> f32 {
    0.5 * (1.0 + erf(v * SQRT_1_2)) + v * INV_SQRT_2PI * exp(-0.5 * v * v)
}

dispatched! {
    /// o = y + b, then erf GELU when `act`.
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
    /// o = erf GELU(x).
    pub fn gelu_slice(o: &mut [f32], x: &[f32]) {
        let n = o.len().min(x.len());
        let (o, x) = (&mut o[..n], &x[..n]);
        for i in 0..n {
            o[i] = gelu(x[i]);
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
        bias_act(&mut wide, &x, &w, true);
        let base: Vec<f32> = x.iter().zip(&w).map(|(y, b)| gelu(y + b)).collect();
        assert_eq!(wide, base);
        dispatched! {
            fn dot(x: &[f32], w: &[f32]) -> f32 {
                lane_sum(x.len(), |i| x[i] * w[i])
            }
        }
        assert_eq!(dot(&x, &w), lane_sum(x.len(), |i| x[i] * w[i]));
    }
}
