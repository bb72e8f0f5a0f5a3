//! Fused CPU kernels with hand-written backward passes.
//!
//! Built from candle's differentiable ops, a LayerNorm is nine passes over its input forward
//! and about twenty backward (each op's gradient, each broadcast's reduction, and a zeroed
//! accumulator per node), all on one thread; with the attention softmax, the bias adds and
//! GELU they took most of a training step's backward pass on the CPU. Each op here is one
//! parallel pass forward and one or two backward, for contiguous f32 tensors on the CPU; the
//! callers in [`crate::nn`] fall back to the composed forms elsewhere (a GPU, bf16).
//!
//! Results do not depend on the thread count: a row is always reduced by one thread, and
//! column sums (the bias and LayerNorm weight gradients) add partial sums of fixed blocks of
//! rows in block order.

use candle_core::{
    bail, CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Device, Layout, Result, Shape,
    Storage, Tensor,
};
use pytorrent_model::ops::{bias_act_values, contiguous_f32, softmax_values};
use rayon::prelude::*;

mod rows;

/// Rows per block of a column sum: fixed, so the sum's rounding does not follow the threads.
const SUM_BLOCK: usize = 32;

/// Whether the fused kernels apply: contiguous f32 on the CPU.
pub fn applies(ts: &[&Tensor]) -> bool {
    ts.iter()
        .all(|t| t.device().is_cpu() && t.dtype() == DType::F32 && t.is_contiguous())
}

/// Runs `f` on the values of a CPU f32 tensor (made contiguous first when it is not).
fn read<R>(t: &Tensor, what: &str, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let t = t.contiguous()?;
    let (s, l) = t.storage_and_layout();
    match &*s {
        Storage::Cpu(c) => f(contiguous_f32(c, l, what)?),
        _ => bail!("{what}: CPU tensors only"),
    }
}

fn cpu(v: Vec<f32>, shape: &Shape) -> Result<Tensor> {
    Tensor::from_vec(v, shape, &Device::Cpu)
}

/// Column sums of `rows × width` values, in fixed blocks of rows, accumulated in f64: some
/// of these gradients are zero in exact arithmetic (the attention key bias: softmax ignores a
/// shift shared by a row) and are sums of terms that cancel.
fn column_sums(v: &[f32], width: usize) -> Vec<f32> {
    let partial: Vec<Vec<f64>> = v
        .par_chunks(width * SUM_BLOCK)
        .map(|block| {
            let mut acc = vec![0f64; width];
            for row in block.chunks(width) {
                rows::add_row_f64(&mut acc, row);
            }
            acc
        })
        .collect();
    let mut out = vec![0f64; width];
    for p in partial {
        for (o, x) in out.iter_mut().zip(p) {
            *o += x;
        }
    }
    out.into_iter().map(|v| v as f32).collect()
}

/// `y + b` over the last dimension, then erf GELU when `gelu` is set.
struct BiasAct {
    gelu: bool,
}

impl CustomOp2 for BiasAct {
    fn name(&self) -> &'static str {
        "fused-bias-act"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let y = contiguous_f32(s1, l1, self.name())?;
        let b = contiguous_f32(s2, l2, self.name())?;
        let out = bias_act_values(y, b, self.gelu, self.name())?;
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        y: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let m = b.elem_count();
        if !self.gelu {
            let db = read(grad, self.name(), |g| Ok(column_sums(g, m)))?;
            return Ok((Some(grad.clone()), Some(cpu(db, b.shape())?)));
        }
        let dz = read(y, self.name(), |y| {
            read(b, self.name(), |b| {
                read(grad, self.name(), |g| {
                    let mut dz = vec![0f32; y.len()];
                    dz.par_chunks_mut(m)
                        .zip(y.par_chunks(m).zip(g.par_chunks(m)))
                        .for_each(|(d, (y, g))| rows::bias_gelu_grad(d, y, g, b));
                    Ok(dz)
                })
            })
        })?;
        let db = column_sums(&dz, m);
        Ok((Some(cpu(dz, y.shape())?), Some(cpu(db, b.shape())?)))
    }
}

/// `y + b` (then erf GELU): one pass each way; the bias gradient is a blocked column sum.
pub fn bias_act(y: &Tensor, b: &Tensor, gelu: bool) -> Result<Tensor> {
    y.apply_op2(b, BiasAct { gelu })
}

/// LayerNorm over the last dimension, as `torch.nn.LayerNorm` (biased variance).
struct LayerNorm {
    eps: f32,
}

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "fused-layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s1, l1, self.name())?;
        let w = contiguous_f32(s2, l2, self.name())?;
        let b = contiguous_f32(s3, l3, self.name())?;
        let h = w.len();
        if h == 0 || b.len() != h || x.len() % h != 0 {
            bail!(
                "{}: weight {h}, bias {} for {} values",
                self.name(),
                b.len(),
                x.len()
            );
        }
        let mut out = vec![0f32; x.len()];
        let eps = self.eps;
        out.par_chunks_mut(h)
            .zip(x.par_chunks(h))
            .for_each(|(o, x)| rows::layer_norm(o, x, w, b, eps));
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let h = w.elem_count();
        let eps = self.eps;
        let name = self.name();
        // dx per row; g·x̂ per row kept for the weight gradient's column sum.
        let (dx, gxhat) = read(x, name, |x| {
            read(w, name, |w| {
                read(grad, name, |g| {
                    let mut dx = vec![0f32; x.len()];
                    let mut gxhat = vec![0f32; x.len()];
                    dx.par_chunks_mut(h)
                        .zip(gxhat.par_chunks_mut(h))
                        .zip(x.par_chunks(h).zip(g.par_chunks(h)))
                        .for_each(|((dx, gx), (x, g))| rows::layer_norm_bwd(dx, gx, x, g, w, eps));
                    Ok((dx, gxhat))
                })
            })
        })?;
        let dw = column_sums(&gxhat, h);
        let db = read(grad, name, |g| Ok(column_sums(g, h)))?;
        Ok((
            Some(cpu(dx, x.shape())?),
            Some(cpu(dw, w.shape())?),
            Some(cpu(db, b.shape())?),
        ))
    }
}

pub fn layer_norm(x: &Tensor, w: &Tensor, b: &Tensor, eps: f64) -> Result<Tensor> {
    x.apply_op3(w, b, LayerNorm { eps: eps as f32 })
}

/// Softmax over the last dimension of `x · scale + mask`, where `mask` (additive, one value
/// per key) has one row per leading index of `x` (`[b, s]` for scores `[b, heads, s, s]`).
struct ScaledSoftmax {
    scale: f32,
}

/// dx = scale · y ⊙ (g − Σ g⊙y), per row.
fn softmax_bwd(y: &Tensor, grad: &Tensor, scale: f32, what: &str) -> Result<Tensor> {
    let n = y.dims().last().copied().unwrap_or(1).max(1);
    let dx = read(y, what, |y| {
        read(grad, what, |g| {
            let mut dx = vec![0f32; y.len()];
            dx.par_chunks_mut(n)
                .zip(y.par_chunks(n).zip(g.par_chunks(n)))
                .for_each(|(d, (y, g))| rows::softmax_bwd(d, y, g, scale));
            Ok(dx)
        })
    })?;
    cpu(dx, y.shape())
}

impl CustomOp1 for ScaledSoftmax {
    fn name(&self) -> &'static str {
        "fused-softmax"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s, l, "fused-softmax")?;
        let out = softmax_values(x, l.shape().dims(), None, self.scale, "fused-softmax")?;
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(softmax_bwd(res, grad, self.scale, "fused-softmax")?))
    }
}

impl CustomOp2 for ScaledSoftmax {
    fn name(&self) -> &'static str {
        "fused-masked-softmax"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s1, l1, "fused-masked-softmax")?;
        let m = contiguous_f32(s2, l2, "fused-masked-softmax")?;
        let out = softmax_values(
            x,
            l1.shape().dims(),
            Some(m),
            self.scale,
            "fused-masked-softmax",
        )?;
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    /// The mask is a constant: no gradient for it.
    fn bwd(
        &self,
        _x: &Tensor,
        _mask: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        Ok((
            Some(softmax_bwd(res, grad, self.scale, "fused-masked-softmax")?),
            None,
        ))
    }
}

/// `softmax(x · scale + mask)` over the last dimension; `mask` is `[x.dim(0), last]`.
pub fn scaled_softmax(x: &Tensor, scale: f64, mask: Option<&Tensor>) -> Result<Tensor> {
    let op = ScaledSoftmax {
        scale: scale as f32,
    };
    match mask {
        None => x.apply_op1(op),
        Some(m) => x.apply_op2(m, op),
    }
}

/// Log-softmax over the last dimension.
struct LogSoftmax;

impl CustomOp1 for LogSoftmax {
    fn name(&self) -> &'static str {
        "fused-log-softmax"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s, l, self.name())?;
        let n = l.shape().dims().last().copied().unwrap_or(1).max(1);
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(n)
            .zip(x.par_chunks(n))
            .for_each(|(o, x)| rows::log_softmax(o, x));
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }

    /// dx = g − softmax(x) · Σ g, per row.
    fn bwd(&self, _x: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let n = res.dims().last().copied().unwrap_or(1).max(1);
        let name = self.name();
        let dx = read(res, name, |y| {
            read(grad, name, |g| {
                let mut dx = vec![0f32; y.len()];
                dx.par_chunks_mut(n)
                    .zip(y.par_chunks(n).zip(g.par_chunks(n)))
                    .for_each(|(d, (y, g))| rows::log_softmax_bwd(d, y, g));
                Ok(dx)
            })
        })?;
        Ok(Some(cpu(dx, res.shape())?))
    }
}

pub fn log_softmax(x: &Tensor) -> Result<Tensor> {
    x.apply_op1(LogSoftmax)
}
