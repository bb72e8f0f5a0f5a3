//! AdamW, the learning-rate schedule and gradient clipping, as PyTorch and HF `Trainer`
//! compute them.
//!
//! candle-nn's `AdamW` decays every parameter; `Trainer` leaves biases and LayerNorm weights
//! out, so the optimiser here keeps a decay flag per parameter. The update follows
//! `torch.optim.AdamW` step for step: decoupled decay `p ← p·(1 − lr·wd)`, then
//! `p ← p − lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε)`.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::model::no_decay;
use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdamWConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        // RoBERTa's pretraining values.
        AdamWConfig {
            lr: 5e-4,
            beta1: 0.9,
            beta2: 0.98,
            eps: 1e-6,
            weight_decay: 0.01,
        }
    }
}

/// Checks AdamW's settings and the clipping norm (flag names as the commands spell them):
/// each outside its range gives NaN or no training at all.
pub fn check_settings(c: &AdamWConfig, max_grad_norm: f64) -> std::result::Result<(), String> {
    let checks: [(&str, f64, bool, &str); 5] = [
        (
            "--weight-decay",
            c.weight_decay,
            c.weight_decay >= 0.0,
            "0 or more",
        ),
        (
            "--beta1",
            c.beta1,
            (0.0..1.0).contains(&c.beta1),
            "in [0, 1)",
        ),
        (
            "--beta2",
            c.beta2,
            (0.0..1.0).contains(&c.beta2),
            "in [0, 1)",
        ),
        ("--adam-eps", c.eps, c.eps > 0.0, "above 0"),
        (
            "--max-grad-norm",
            max_grad_norm,
            max_grad_norm >= 0.0,
            "0 (no clipping) or more",
        ),
    ];
    for (flag, v, ok, range) in checks {
        if !(ok && v.is_finite()) {
            return Err(format!("{flag} {v}: must be a finite number {range}"));
        }
    }
    Ok(())
}

/// Linear warm-up from 0, then linear decay to 0 at `total` steps
/// (`get_linear_schedule_with_warmup`). `step` counts optimiser steps from 0, so the first
/// step runs at learning rate 0, as under `Trainer`.
pub fn lr_at(base: f64, step: u64, warmup: u64, total: u64) -> f64 {
    let factor = if step < warmup {
        step as f64 / warmup.max(1) as f64
    } else {
        (total.saturating_sub(step)) as f64 / (total.saturating_sub(warmup)).max(1) as f64
    };
    base * factor.max(0.0)
}

struct Slot {
    var: Var,
    decay: bool,
    m: Tensor,
    v: Tensor,
}

pub struct AdamW {
    pub config: AdamWConfig,
    /// Optimiser steps taken.
    pub t: u64,
    slots: Vec<(String, Slot)>,
}

impl AdamW {
    pub fn new(params: &[(String, Var)], config: AdamWConfig) -> Result<AdamW> {
        let slots = params
            .iter()
            .map(|(n, v)| {
                Ok((
                    n.clone(),
                    Slot {
                        var: v.clone(),
                        decay: !no_decay(n),
                        m: v.zeros_like()?,
                        v: v.zeros_like()?,
                    },
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(AdamW {
            config,
            t: 0,
            slots,
        })
    }

    /// One step with gradients `grads[i]` for parameter `i` at learning rate `lr`.
    pub fn step(&mut self, grads: &[Tensor], lr: f64) -> Result<()> {
        let c = &self.config;
        self.t += 1;
        let bc1 = 1.0 - c.beta1.powi(self.t as i32);
        let bc2_sqrt = (1.0 - c.beta2.powi(self.t as i32)).sqrt();
        for ((_, s), g) in self.slots.iter_mut().zip(grads) {
            // torch: exp_avg.lerp_(grad, 1 - β₁); exp_avg_sq.mul_(β₂).addcmul_(grad, grad, 1 - β₂)
            s.m = (&s.m + ((g - &s.m)? * (1.0 - c.beta1))?)?;
            s.v = ((&s.v * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
            let mut p = s.var.as_tensor().clone();
            if s.decay && c.weight_decay != 0.0 {
                p = (p * (1.0 - lr * c.weight_decay))?;
            }
            let denom = ((s.v.sqrt()? / bc2_sqrt)? + c.eps)?;
            let p = (p - ((&s.m / denom)? * (lr / bc1))?)?;
            s.var.set(&p)?;
        }
        Ok(())
    }

    /// The moments by name (`exp_avg.NAME`, `exp_avg_sq.NAME`) for the training state.
    pub fn state(&self) -> HashMap<String, Tensor> {
        let mut out = HashMap::new();
        for (n, s) in &self.slots {
            out.insert(format!("exp_avg.{n}"), s.m.clone());
            out.insert(format!("exp_avg_sq.{n}"), s.v.clone());
        }
        out
    }

    /// Puts back moments saved by [`AdamW::state`] after `t` steps.
    pub fn restore(&mut self, t: u64, state: &HashMap<String, Tensor>) -> Result<()> {
        for (n, s) in &mut self.slots {
            let get = |k: String| {
                state
                    .get(&k)
                    .ok_or_else(|| Error::Usage(format!("the training state has no {k}")))
            };
            let dev = s.var.device().clone();
            s.m = get(format!("exp_avg.{n}"))?.to_device(&dev)?;
            s.v = get(format!("exp_avg_sq.{n}"))?.to_device(&dev)?;
        }
        self.t = t;
        Ok(())
    }
}

/// The gradient of every parameter, in order; a parameter without one is an error (the
/// graph lost it: an op without a backward pass).
pub fn gradients(params: &[(String, Var)], grads: &GradStore) -> Result<Vec<Tensor>> {
    params
        .iter()
        .map(|(n, v)| {
            grads.get(v.as_tensor()).cloned().ok_or_else(|| {
                Error::Usage(format!(
                    "no gradient reached {n}: the graph does not connect it"
                ))
            })
        })
        .collect()
}

/// `acc + g`, parameter by parameter (gradient accumulation over micro-batches).
pub fn add_grads(acc: Option<Vec<Tensor>>, g: Vec<Tensor>) -> Result<Vec<Tensor>> {
    Ok(match acc {
        None => g,
        Some(acc) => acc
            .iter()
            .zip(&g)
            .map(|(a, b)| a + b)
            .collect::<candle_core::Result<_>>()?,
    })
}

/// Zero gradients for every parameter (a step with nothing to learn from).
pub fn zero_grads(params: &[(String, Var)]) -> Result<Vec<Tensor>> {
    Ok(params
        .iter()
        .map(|(_, v)| v.zeros_like())
        .collect::<candle_core::Result<_>>()?)
}

/// Scales gradients so that their global L2 norm is at most `max_norm`, as
/// `torch.nn.utils.clip_grad_norm_` does; returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut [Tensor], max_norm: f64) -> Result<f64> {
    let mut sq = 0f64;
    for g in grads.iter() {
        sq += g
            .sqr()?
            .sum_all()?
            .to_dtype(candle_core::DType::F64)?
            .to_scalar::<f64>()?;
    }
    let norm = sq.sqrt();
    if max_norm > 0.0 {
        let coef = (max_norm / (norm + 1e-6)).min(1.0);
        if coef < 1.0 {
            for g in grads.iter_mut() {
                *g = (&*g * coef)?;
            }
        }
    }
    Ok(norm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays_to_zero() {
        let lr = |s| lr_at(1.0, s, 4, 12);
        assert_eq!(lr(0), 0.0);
        assert_eq!(lr(2), 0.5);
        assert_eq!(lr(4), 1.0);
        assert_eq!(lr(8), 0.5);
        assert_eq!(lr(12), 0.0);
        assert_eq!(lr(20), 0.0);
        assert_eq!(
            lr_at(1.0, 0, 0, 10),
            1.0,
            "no warm-up starts at the full rate"
        );
    }
}
