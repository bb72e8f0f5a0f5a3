//! Element-wise work that uses every core.
//!
//! candle's CPU unary and binary ops run on one thread; in a base-sized encoder the bias
//! adds, residual adds and GELU then take a fifth of the forward pass on two cores. These ops
//! split the work over rayon, and GELU is [`crate::simd`]'s (PyTorch's erf approximation,
//! vectorised) instead of libm's scalar `erff`.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

struct ParallelGeluErf;

impl CustomOp1 for ParallelGeluErf {
    fn name(&self) -> &'static str {
        "parallel-gelu-erf"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("parallel-gelu-erf: f32 only");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("parallel-gelu-erf: contiguous input only");
        };
        let src = &data[start..end];
        let mut out = vec![0f32; src.len()];
        out.par_chunks_mut(16 * 1024)
            .zip(src.par_chunks(16 * 1024))
            .for_each(|(o, s)| crate::simd::gelu_slice(o, s));
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

/// The values of a contiguous f32 CPU storage; `what` names the op in the error.
pub fn contiguous_f32<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = s else {
        candle_core::bail!("{what}: f32 only");
    };
    let Some((start, end)) = l.contiguous_offsets() else {
        candle_core::bail!("{what}: contiguous input only");
    };
    Ok(&data[start..end])
}

/// `x + bias` over the last dimension (`bias` of the last dimension's width), then erf GELU
/// when `gelu` is set, in one parallel pass; `what` names the op in the error.
pub fn bias_act_values(x: &[f32], bias: &[f32], gelu: bool, what: &str) -> Result<Vec<f32>> {
    let m = bias.len();
    if m == 0 || !x.len().is_multiple_of(m) {
        candle_core::bail!("{what}: bias of {m} for {} values", x.len());
    }
    let mut out = vec![0f32; x.len()];
    out.par_chunks_mut(m)
        .zip(x.par_chunks(m))
        .for_each(|(o, x)| crate::simd::bias_act(o, x, bias, gelu));
    Ok(out)
}

/// `x + bias` over the last dimension, then optionally GELU, in one parallel pass.
struct BiasGelu {
    gelu: bool,
}

impl CustomOp2 for BiasGelu {
    fn name(&self) -> &'static str {
        "parallel-bias-gelu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s1, l1, self.name())?;
        let b = contiguous_f32(s2, l2, self.name())?;
        let out = bias_act_values(x, b, self.gelu, self.name())?;
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// `a + b` of equal shapes, in parallel.
struct Add;

impl CustomOp2 for Add {
    fn name(&self) -> &'static str {
        "parallel-add"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let a = contiguous_f32(s1, l1, self.name())?;
        let b = contiguous_f32(s2, l2, self.name())?;
        if a.len() != b.len() {
            candle_core::bail!("parallel-add: {} and {} values", a.len(), b.len());
        }
        let mut out = vec![0f32; a.len()];
        out.par_chunks_mut(16 * 1024)
            .zip(a.par_chunks(16 * 1024).zip(b.par_chunks(16 * 1024)))
            .for_each(|(o, (a, b))| {
                for ((o, a), b) in o.iter_mut().zip(a).zip(b) {
                    *o = a + b;
                }
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// Softmax over the last dimension of `scores + mask`, the additive key mask `[b, s]` shared
/// by every row under the same batch index of `scores` `[b, heads, s, s]`: one parallel pass
/// with a vectorised exp, where the mask add and candle's softmax made two.
struct MaskedSoftmax;

/// Softmax over the last dimension of `x · scale + mask`, for `x` of shape `dims`; the
/// additive mask has one row of the last dimension's width per index of the first dimension,
/// shared by every row under it. One parallel pass; `what` names the op in the error.
pub fn softmax_values(
    x: &[f32],
    dims: &[usize],
    mask: Option<&[f32]>,
    scale: f32,
    what: &str,
) -> Result<Vec<f32>> {
    let (Some(&n), Some(&lead)) = (dims.last(), dims.first()) else {
        candle_core::bail!("{what}: a scalar");
    };
    let mut out = vec![0f32; x.len()];
    if n == 0 || lead == 0 {
        return Ok(out);
    }
    if mask.is_some_and(|m| m.len() != lead * n) {
        candle_core::bail!("{what}: mask does not fit {dims:?}");
    }
    let per_lead = x.len() / n / lead;
    out.par_chunks_mut(n)
        .zip(x.par_chunks(n))
        .enumerate()
        .for_each(|(r, (o, x))| {
            let m = mask.map(|m| &m[(r / per_lead) * n..][..n]);
            crate::simd::softmax(o, x, m, scale);
        });
    Ok(out)
}

impl CustomOp1 for MaskedSoftmax {
    fn name(&self) -> &'static str {
        "softmax"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s, l, "softmax")?;
        let out = softmax_values(x, l.shape().dims(), None, 1.0, "softmax")?;
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }
}

impl CustomOp2 for MaskedSoftmax {
    fn name(&self) -> &'static str {
        "masked-softmax"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s1, l1, "masked-softmax")?;
        let m = contiguous_f32(s2, l2, "masked-softmax")?;
        let out = softmax_values(x, l1.shape().dims(), Some(m), 1.0, "masked-softmax")?;
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// Attention probabilities: softmax over the last dimension of `scores` `[b, heads, s, s]`
/// plus the additive key mask `[b, 1, 1, s]`.
pub fn masked_softmax(scores: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
    if parallel_ok(&[scores]) && mask.is_none_or(|m| parallel_ok(&[m])) {
        return match mask {
            None => scores.apply_op1_no_bwd(&MaskedSoftmax),
            Some(m) => {
                let (b, s) = (m.dim(0)?, m.dim(candle_core::D::Minus1)?);
                scores.apply_op2_no_bwd(&m.reshape((b, s))?, &MaskedSoftmax)
            }
        };
    }
    let scores = match mask {
        Some(m) => scores.broadcast_add(m)?,
        None => scores.clone(),
    };
    candle_nn::ops::softmax_last_dim(&scores)
}

fn parallel_ok(ts: &[&Tensor]) -> bool {
    ts.iter()
        .all(|t| t.device().is_cpu() && t.dtype() == DType::F32 && t.is_contiguous())
}

/// `x · wᵀ + b` (then GELU when asked), for `x` of shape `[n, in]` and `w` of `[out, in]`.
pub fn linear(x: &Tensor, w: &Tensor, b: &Tensor, gelu_after: bool) -> Result<Tensor> {
    let y = x.matmul(&w.t()?)?;
    if parallel_ok(&[&y, b]) {
        y.apply_op2_no_bwd(b, &BiasGelu { gelu: gelu_after })
    } else {
        let y = y.broadcast_add(b)?;
        if gelu_after {
            y.gelu_erf()
        } else {
            Ok(y)
        }
    }
}

/// `a + b` for equal shapes.
pub fn add(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if parallel_ok(&[a, b]) && a.shape() == b.shape() {
        a.apply_op2_no_bwd(b, &Add)
    } else {
        a + b
    }
}

/// erf GELU: in parallel for contiguous f32 on the CPU, candle's own op elsewhere.
pub fn gelu_erf(x: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == candle_core::DType::F32 && x.is_contiguous() {
        x.apply_op1_no_bwd(&ParallelGeluErf)
    } else {
        x.gelu_erf()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// candle's GELU uses libm's erf, ours PyTorch's approximation (5e-7 from erf in f32):
    /// the two differ by at most half that times |x|, plus a rounding.
    #[test]
    fn matches_candles_gelu_erf() {
        let x = Tensor::arange(-50_000f32, 50_000f32, &candle_core::Device::Cpu)
            .unwrap()
            .affine(1e-4, 0.0)
            .unwrap();
        let a: Vec<f32> = gelu_erf(&x).unwrap().to_vec1().unwrap();
        let b: Vec<f32> = x.gelu_erf().unwrap().to_vec1().unwrap();
        let xs: Vec<f32> = x.to_vec1().unwrap();
        for ((a, b), x) in a.iter().zip(&b).zip(&xs) {
            assert!(
                (a - b).abs() <= 2.5e-7 * x.abs() + 2.0 * f32::EPSILON * b.abs(),
                "gelu({x}): {a} vs {b}"
            );
        }
    }

    #[test]
    fn masked_softmax_equals_candles_softmax_of_the_sum() {
        let dev = candle_core::Device::Cpu;
        let scores = Tensor::randn(0f32, 3.0, (2, 3, 5, 5), &dev).unwrap();
        let m: Vec<f32> = (0..10)
            .map(|i| if i == 4 || i >= 8 { f32::MIN } else { 0.0 })
            .collect();
        let mask = Tensor::from_vec(m, (2, 1, 1, 5), &dev).unwrap();
        for mask in [None, Some(&mask)] {
            let got = masked_softmax(&scores, mask).unwrap();
            let sum = match mask {
                Some(m) => scores.broadcast_add(m).unwrap(),
                None => scores.clone(),
            };
            let want = candle_nn::ops::softmax_last_dim(&sum).unwrap();
            let d = (got - want)
                .unwrap()
                .abs()
                .unwrap()
                .flatten_all()
                .unwrap()
                .max(0)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(d < 1e-6, "{d}");
        }
    }

    #[test]
    fn fused_linear_and_add_equal_candles_ops() {
        let dev = candle_core::Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (37, 24), &dev).unwrap();
        let w = Tensor::randn(0f32, 1.0, (40, 24), &dev).unwrap();
        let b = Tensor::randn(0f32, 1.0, 40, &dev).unwrap();
        let want = x
            .matmul(&w.t().unwrap())
            .unwrap()
            .broadcast_add(&b)
            .unwrap();
        let max = |t: Tensor| {
            t.abs()
                .unwrap()
                .flatten_all()
                .unwrap()
                .max(0)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
        };
        for gelu_after in [false, true] {
            let got = linear(&x, &w, &b, gelu_after).unwrap();
            let expected = if gelu_after {
                want.gelu_erf().unwrap()
            } else {
                want.clone()
            };
            // GELU: the erf approximation's 2.5e-7 · |x| at most, plus a rounding.
            let tol = if gelu_after {
                3e-7 * max(want.clone())
            } else {
                0.0
            };
            assert!(max((got - expected).unwrap()) <= tol);
        }
        let sum = add(&want, &want).unwrap();
        assert_eq!(max((sum - (&want + &want).unwrap()).unwrap()), 0.0);
    }
}
