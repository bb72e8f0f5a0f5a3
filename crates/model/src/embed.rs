//! Pooled embeddings: masked mean, first token, or the pooler; optionally L2-normalised.
//! Inputs are batched by length (longest first) for less padding; the output keeps input
//! order.

use candle_core::{DType, Tensor, D};

use crate::encoder::Model;
use crate::text::{encode_inputs, length_batches, ModelTokenizer};
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// Mean of the real tokens' hidden states (sentence-transformers' mean pooling).
    Mean,
    /// The first token's hidden state (`<s>` / `[CLS]`).
    Cls,
    /// `tanh(dense(h[CLS]))`, the model's pooler.
    Pooler,
}

impl std::str::FromStr for Pooling {
    type Err = Error;
    fn from_str(s: &str) -> Result<Pooling> {
        match s {
            "mean" => Ok(Pooling::Mean),
            "cls" => Ok(Pooling::Cls),
            "pooler" => Ok(Pooling::Pooler),
            other => Err(Error::Usage(format!(
                "--pooling {other}: expected mean, cls or pooler"
            ))),
        }
    }
}

#[derive(Debug, Clone)]
pub struct EmbedOptions {
    pub pooling: Pooling,
    pub normalize: bool,
    pub batch_size: usize,
}

/// Pools `[b, s, h]` hidden states of rows with `lengths` real tokens into `[b, h]`.
pub fn pool(model: &Model, hidden: &Tensor, lengths: &[usize], pooling: Pooling) -> Result<Tensor> {
    let (b, s, _) = hidden.dims3()?;
    Ok(match pooling {
        Pooling::Cls => hidden.narrow(1, 0, 1)?.squeeze(1)?,
        Pooling::Pooler => model.pooler_output(hidden)?,
        Pooling::Mean => {
            let mask: Vec<f32> = lengths
                .iter()
                .flat_map(|&l| (0..s).map(move |i| if i < l { 1.0 } else { 0.0 }))
                .collect();
            let mask =
                Tensor::from_vec(mask, (b, s, 1), hidden.device())?.to_dtype(hidden.dtype())?;
            let sum = hidden.broadcast_mul(&mask)?.sum(1)?;
            let count = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
            sum.broadcast_div(&count)?
        }
    })
}

/// L2 normalisation as `torch.nn.functional.normalize` (eps 1e-12).
pub fn normalize(x: &Tensor) -> Result<Tensor> {
    let norm = x
        .sqr()?
        .sum_keepdim(D::Minus1)?
        .sqrt()?
        .clamp(1e-12, f64::MAX)?;
    Ok(x.broadcast_div(&norm)?)
}

/// One vector per text, in input order; `warn` hears about truncated inputs.
pub fn embed(
    model: &Model,
    tok: &ModelTokenizer,
    texts: &[&str],
    opts: &EmbedOptions,
    warn: &dyn Fn(String),
) -> Result<Vec<Vec<f32>>> {
    let encoded = encode_inputs(tok, texts, model.config.max_tokens(), warn)?;
    if let Some(i) = encoded.iter().position(Vec::is_empty) {
        return Err(Error::Usage(format!("input {}: no tokens", i + 1)));
    }
    let mut out: Vec<Vec<f32>> = vec![Vec::new(); encoded.len()];
    for chunk in &length_batches(&encoded, opts.batch_size) {
        let rows: Vec<Vec<u32>> = chunk.iter().map(|&i| encoded[i].clone()).collect();
        let lengths: Vec<usize> = rows.iter().map(Vec::len).collect();
        let hidden = model.hidden_states(&rows)?;
        let mut v = pool(model, &hidden, &lengths, opts.pooling)?;
        if opts.normalize {
            v = normalize(&v)?;
        }
        for (row, &i) in v
            .to_dtype(DType::F32)?
            .to_vec2::<f32>()?
            .into_iter()
            .zip(chunk)
        {
            out[i] = row;
        }
    }
    Ok(out)
}
