//! The per-row arithmetic of the fused kernels, each compiled for the baseline and for
//! AVX2 + FMA ([`pytorrent_model::dispatched!`]); both builds give the same bits.

use pytorrent_model::dispatched;
use pytorrent_model::simd::{exp, gelu_grad, lane_max, lane_sum};

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
        let (mean, rstd) = moments(&x, 1e-5);
        let base: Vec<f32> = (0..333)
            .map(|i| (x[i] - mean) * rstd * w[i] + w[i])
            .collect();
        assert_eq!(wide, base);
        let mut wide = vec![0f32; 333];
        softmax_bwd(&mut wide, &w, &x, 0.5);
        let (dot, total) = (lane_sum(333, |i| w[i] * x[i]), lane_sum(333, |i| w[i]));
        let base: Vec<f32> = (0..333)
            .map(|i| 0.5 * w[i] * (x[i] - dot / total))
            .collect();
        assert_eq!(wide, base);
    }
}
