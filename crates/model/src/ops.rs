//! Element-wise activations that use every core.
//!
//! candle's CPU unary ops run on one thread; on a 2-core machine the GELU of a base-sized
//! encoder's intermediate layer is then a large share of the forward pass. This op splits
//! the work over rayon and computes the same function (erf-based GELU, candle's `erf_f32`).

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

struct ParallelGeluErf;

fn gelu(v: f32) -> f32 {
    (candle_core::cpu::erf::erf_f32(v * std::f32::consts::FRAC_1_SQRT_2) + 1.0) * 0.5 * v
}

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
            .for_each(|(o, s)| {
                for (o, s) in o.iter_mut().zip(s) {
                    *o = gelu(*s);
                }
            });
        Ok((CpuStorage::F32(out), layout.shape().clone()))
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

    #[test]
    fn matches_candles_gelu_erf() {
        let x = Tensor::arange(-50_000f32, 50_000f32, &candle_core::Device::Cpu)
            .unwrap()
            .affine(1e-4, 0.0)
            .unwrap();
        let a = gelu_erf(&x).unwrap();
        let b = x.gelu_erf().unwrap();
        let d = (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert_eq!(d, 0.0);
    }
}
