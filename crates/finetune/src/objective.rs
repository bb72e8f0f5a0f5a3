//! Embeddings and the contrastive loss as differentiable candle ops on the trainable encoder:
//! sentence-transformers' mean pooling, cosine similarity, `MultipleNegativesRankingLoss`.

use candle_core::{DType, Tensor, D};
use pytorrent_pretrain::model::{Batch, MlmModel};
use pytorrent_pretrain::nn::{seed_of, Dropout};
use pytorrent_pretrain::optim::{add_grads, gradients, zero_grads};

use crate::config::Loss;
use crate::Result;

/// Rows of ids padded to the longest with `pad`, as a batch without MLM targets.
pub fn column(rows: &[&[u32]], pad: u32) -> Batch {
    let s = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let mut ids = Vec::with_capacity(rows.len() * s);
    let mut attention = Vec::with_capacity(rows.len() * s);
    for r in rows {
        ids.extend_from_slice(r);
        attention.extend(std::iter::repeat_n(1u8, r.len()));
        ids.extend(std::iter::repeat_n(pad, s - r.len()));
        attention.extend(std::iter::repeat_n(0u8, s - r.len()));
    }
    Batch {
        b: rows.len(),
        s,
        ids,
        attention,
        targets: Vec::new(),
    }
}

/// Mean of the last hidden states over each row's tokens (padding left out): `[b, hidden]`.
pub fn embed(model: &MlmModel, batch: &Batch, drop: &mut Dropout) -> Result<Tensor> {
    let (b, s, h) = (batch.b, batch.s, model.arch.hidden);
    let hidden = model.hidden(batch, drop)?.reshape((b, s, h))?;
    let mask: Vec<f32> = batch.attention.iter().map(|&a| a as f32).collect();
    let mask = Tensor::from_vec(mask, (b, s, 1), &model.device)?;
    let sum = hidden.broadcast_mul(&mask)?.sum(1)?;
    // sentence-transformers clamps the count at 1e-9; every row has its special tokens.
    let count = mask.sum(1)?;
    Ok(sum.broadcast_div(&count)?)
}

/// Rows scaled to unit length (`torch.nn.functional.normalize`; no row is the zero vector
/// here, so its 1e-12 floor never applies).
pub fn normalize(x: &Tensor) -> Result<Tensor> {
    Ok(x.broadcast_div(&x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?)?)
}

/// `logsumexp` over each row; the row maximum is for range only and detached.
fn logsumexp(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    Ok(x.broadcast_sub(&max)?
        .exp()?
        .sum_keepdim(D::Minus1)?
        .log()?
        .add(&max)?)
}

/// The loss of one batch: `queries` `[b, h]` against `docs[0]` (the positives, `[b, h]`) and
/// any hard-negative columns `docs[1..]`, as `MultipleNegativesRankingLoss` computes it:
/// `mean_i(logsumexp_j(scale·cos(q_i, d_j)) − scale·cos(q_i, d⁺_i))`; the symmetric form
/// averages that normaliser with each positive code's against every query.
pub fn contrastive_loss(
    queries: &Tensor,
    docs: &[Tensor],
    scale: f64,
    loss: Loss,
) -> Result<Tensor> {
    let b = queries.dim(0)?;
    let q = normalize(queries)?;
    let d: Vec<Tensor> = docs.iter().map(normalize).collect::<Result<_>>()?;
    let all = Tensor::cat(&d, 0)?;
    let q2d = (q.matmul(&all.t()?)? * scale)?;
    let diag = Tensor::arange(0u32, b as u32, &q2d.device().clone())?.reshape((b, 1))?;
    let positive = q2d.gather(&diag, 1)?;
    let log_z = match loss {
        Loss::Mnrl => logsumexp(&q2d)?,
        Loss::Symmetric => {
            let d2q = (q.matmul(&d[0].t()?)? * scale)?.t()?.contiguous()?;
            ((logsumexp(&q2d)? + logsumexp(&d2q)?)? * 0.5)?
        }
    };
    Ok((log_z - positive)?.mean_all()?)
}

/// One micro-batch: column 0 the queries, 1 the codes, then one column per hard negative.
#[derive(Debug, Clone)]
pub struct Micro {
    pub columns: Vec<Batch>,
}

/// The loss of a micro-batch; dropout masks drawn column by column from `drop`.
pub fn micro_loss(
    model: &MlmModel,
    micro: &Micro,
    scale: f64,
    loss: Loss,
    drop: &mut Dropout,
) -> Result<Tensor> {
    let mut emb = Vec::with_capacity(micro.columns.len());
    for c in &micro.columns {
        emb.push(embed(model, c, drop)?);
    }
    contrastive_loss(&emb[0], &emb[1..], scale, loss)
}

/// One optimiser step's forward and backward passes: the mean of the micro-batches' losses
/// (as `Trainer` divides each by the accumulation steps) and the summed gradients.
pub fn loss_and_grads(
    model: &MlmModel,
    micros: &[Micro],
    scale: f64,
    loss: Loss,
    dropout_seed: u64,
) -> Result<(f64, Vec<Tensor>)> {
    let n = micros.len().max(1) as f64;
    let mut total = 0f64;
    let mut grads: Option<Vec<Tensor>> = None;
    for (k, m) in micros.iter().enumerate() {
        let mut drop = Dropout::new(seed_of(&[dropout_seed, k as u64]), true);
        let l = (micro_loss(model, m, scale, loss, &mut drop)? / n)?;
        total += l.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        let g = gradients(model.params(), &l.backward()?)?;
        grads = Some(add_grads(grads, g)?);
    }
    let grads = match grads {
        Some(g) => g,
        None => zero_grads(model.params())?,
    };
    Ok((total, grads))
}

/// Unit-length embeddings of `rows` (no dropout), in order; batches are formed by length so
/// little is padded.
pub fn embed_all(
    model: &MlmModel,
    rows: &[Vec<u32>],
    batch_size: usize,
    pad: u32,
) -> Result<Vec<Vec<f32>>> {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(rows[i].len()));
    let mut out = vec![Vec::new(); rows.len()];
    let mut drop = Dropout::new(0, false);
    for chunk in order.chunks(batch_size.max(1)) {
        let refs: Vec<&[u32]> = chunk.iter().map(|&i| rows[i].as_slice()).collect();
        let e = normalize(&embed(model, &column(&refs, pad), &mut drop)?.detach())?;
        let e: Vec<Vec<f32>> = e.to_device(&candle_core::Device::Cpu)?.to_vec2()?;
        for (&i, v) in chunk.iter().zip(e) {
            out[i] = v;
        }
    }
    Ok(out)
}

/// Mean reciprocal rank of query `i`'s own code `i` among all codes (the pool protocol; ties
/// rank the lower index first, as `eval retrieval` orders them).
pub fn pool_mrr(queries: &[Vec<f32>], codes: &[Vec<f32>]) -> f64 {
    use rayon::prelude::*;
    if queries.is_empty() {
        return 0.0;
    }
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    // Ranks in parallel, summed in order: the same figure whatever the thread count.
    let ranks: Vec<usize> = (0..queries.len())
        .into_par_iter()
        .map(|i| {
            let own = dot(&queries[i], &codes[i]);
            let above = codes
                .iter()
                .enumerate()
                .filter(|(j, c)| {
                    let s = dot(&queries[i], c);
                    s > own || (s == own && *j < i)
                })
                .count();
            above + 1
        })
        .collect();
    ranks.iter().map(|&r| 1.0 / r as f64).sum::<f64>() / queries.len() as f64
}
