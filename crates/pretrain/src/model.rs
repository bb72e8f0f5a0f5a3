//! `RobertaForMaskedLM` as trainable variables under transformers' tensor names.
//!
//! The forward pass is transformers' (post-LayerNorm layers, erf GELU, positions counted from
//! `padding_idx + 1` over non-padding ids, the MLM head tied to the word embeddings), built
//! from ops with a backward pass. The inference encoder of `pytorrent-model` fuses and
//! pre-scales weights and uses ops without gradients, so training keeps its own graph.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, Var, D};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::nn::{attention_probs, layer_norm, linear, linear_act, log_softmax, seed_of, Dropout};
use crate::spec::Arch;
use crate::{Error, Result};

/// How a parameter starts, as transformers' `_init_weights` does it for RoBERTa.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Init {
    Normal,
    /// Normal, with the padding row zeroed.
    Embedding,
    Zeros,
    Ones,
}

/// One training batch: `b` rows of `s` ids, the attention mask, and the positions to predict
/// (flat index `row * s + col`) with their labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub b: usize,
    pub s: usize,
    pub ids: Vec<u32>,
    pub attention: Vec<u8>,
    pub targets: Vec<(u32, u32)>,
}

/// What one forward pass over a batch gives.
pub struct Loss {
    /// Sum of the negative log-likelihoods of the targets (a scalar tensor in the graph).
    pub nll_sum: Tensor,
    /// Targets whose highest-scoring token is the label.
    pub correct: usize,
}

pub struct MlmModel {
    pub arch: Arch,
    pub device: Device,
    /// The dtype of the matrix multiplies (bf16 on a GPU); weights and state stay f32.
    pub compute: DType,
    params: Vec<(String, Var)>,
    index: HashMap<String, usize>,
}

/// The parameters in transformers' `named_parameters()` order, with shapes and init; the MLM
/// head's only when `head`.
fn layout(a: &Arch, head: bool) -> Vec<(String, Vec<usize>, Init)> {
    let (h, i) = (a.hidden, a.intermediate);
    let mut v: Vec<(String, Vec<usize>, Init)> = Vec::new();
    let mut push = |n: String, s: Vec<usize>, init: Init| v.push((n, s, init));
    let e = "roberta.embeddings";
    push(
        format!("{e}.word_embeddings.weight"),
        vec![a.vocab_size, h],
        Init::Embedding,
    );
    push(
        format!("{e}.position_embeddings.weight"),
        vec![a.max_position_embeddings, h],
        Init::Embedding,
    );
    push(
        format!("{e}.token_type_embeddings.weight"),
        vec![a.type_vocab_size, h],
        Init::Normal,
    );
    push(format!("{e}.LayerNorm.weight"), vec![h], Init::Ones);
    push(format!("{e}.LayerNorm.bias"), vec![h], Init::Zeros);
    for l in 0..a.layers {
        let p = format!("roberta.encoder.layer.{l}");
        for (name, o, n_in) in [
            ("attention.self.query", h, h),
            ("attention.self.key", h, h),
            ("attention.self.value", h, h),
            ("attention.output.dense", h, h),
        ] {
            push(format!("{p}.{name}.weight"), vec![o, n_in], Init::Normal);
            push(format!("{p}.{name}.bias"), vec![o], Init::Zeros);
        }
        push(
            format!("{p}.attention.output.LayerNorm.weight"),
            vec![h],
            Init::Ones,
        );
        push(
            format!("{p}.attention.output.LayerNorm.bias"),
            vec![h],
            Init::Zeros,
        );
        push(
            format!("{p}.intermediate.dense.weight"),
            vec![i, h],
            Init::Normal,
        );
        push(format!("{p}.intermediate.dense.bias"), vec![i], Init::Zeros);
        push(format!("{p}.output.dense.weight"), vec![h, i], Init::Normal);
        push(format!("{p}.output.dense.bias"), vec![h], Init::Zeros);
        push(format!("{p}.output.LayerNorm.weight"), vec![h], Init::Ones);
        push(format!("{p}.output.LayerNorm.bias"), vec![h], Init::Zeros);
    }
    if !head {
        return v;
    }
    push("lm_head.dense.weight".into(), vec![h, h], Init::Normal);
    push("lm_head.dense.bias".into(), vec![h], Init::Zeros);
    push("lm_head.layer_norm.weight".into(), vec![h], Init::Ones);
    push("lm_head.layer_norm.bias".into(), vec![h], Init::Zeros);
    push("lm_head.bias".into(), vec![a.vocab_size], Init::Zeros);
    v
}

/// Whether HF `Trainer` leaves a parameter out of weight decay: biases and LayerNorm weights.
pub fn no_decay(name: &str) -> bool {
    name.ends_with("bias") || name.contains("LayerNorm") || name.contains("layer_norm")
}

fn normal(rng: &mut ChaCha8Rng, std: f64) -> f32 {
    // Box–Muller: rand 0.9 has no normal distribution without rand_distr, and this is all
    // initialisation needs.
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos() * std) as f32
}

impl MlmModel {
    /// A freshly initialised model; every parameter draws from its own seeded generator.
    pub fn init(arch: Arch, seed: u64, device: &Device, compute: DType) -> Result<MlmModel> {
        let mut tensors = HashMap::new();
        for (k, (name, shape, init)) in layout(&arch, true).into_iter().enumerate() {
            let n: usize = shape.iter().product();
            let data: Vec<f32> = match init {
                Init::Zeros => vec![0.0; n],
                Init::Ones => vec![1.0; n],
                Init::Normal | Init::Embedding => {
                    let mut rng = ChaCha8Rng::seed_from_u64(seed_of(&[seed, 0x1417, k as u64]));
                    let mut d: Vec<f32> = (0..n)
                        .map(|_| normal(&mut rng, arch.initializer_range))
                        .collect();
                    if init == Init::Embedding {
                        let (p, w) = (arch.pad_id as usize, shape[1]);
                        if p < shape[0] {
                            d[p * w..(p + 1) * w].iter_mut().for_each(|x| *x = 0.0);
                        }
                    }
                    d
                }
            };
            tensors.insert(name, Tensor::from_vec(data, shape, &Device::Cpu)?);
        }
        Self::from_tensors(arch, tensors, device, compute, "initial weights")
    }

    /// A model from named tensors (a checkpoint's). `lm_head.decoder.bias` stands for
    /// `lm_head.bias`; an untied `lm_head.decoder.weight` is refused.
    pub fn from_tensors(
        arch: Arch,
        tensors: HashMap<String, Tensor>,
        device: &Device,
        compute: DType,
        origin: &str,
    ) -> Result<MlmModel> {
        Self::build(arch, tensors, device, compute, origin, true)
    }

    /// The encoder alone (no MLM head: [`MlmModel::hidden`] only), from tensors named
    /// `roberta.…` as here (a BERT encoder's too, renamed so).
    pub fn encoder(
        arch: Arch,
        tensors: HashMap<String, Tensor>,
        device: &Device,
        compute: DType,
        origin: &str,
    ) -> Result<MlmModel> {
        Self::build(arch, tensors, device, compute, origin, false)
    }

    fn build(
        arch: Arch,
        mut tensors: HashMap<String, Tensor>,
        device: &Device,
        compute: DType,
        origin: &str,
        head: bool,
    ) -> Result<MlmModel> {
        if !tensors.contains_key("lm_head.bias") {
            if let Some(b) = tensors.remove("lm_head.decoder.bias") {
                tensors.insert("lm_head.bias".into(), b);
            }
        }
        let mut params = Vec::new();
        let mut index = HashMap::new();
        for (name, shape, _) in layout(&arch, head) {
            let t = tensors
                .get(&name)
                .ok_or_else(|| Error::Usage(format!("{origin}: no tensor {name}")))?;
            if t.dims() != shape.as_slice() {
                return Err(Error::Usage(format!(
                    "{origin}: {name} has shape {:?}, the config says {shape:?}",
                    t.dims()
                )));
            }
            let var = Var::from_tensor(&t.to_dtype(DType::F32)?.to_device(device)?)?;
            index.insert(name.clone(), params.len());
            params.push((name, var));
        }
        Ok(MlmModel {
            arch,
            device: device.clone(),
            compute,
            params,
            index,
        })
    }

    pub fn params(&self) -> &[(String, Var)] {
        &self.params
    }

    pub fn param(&self, name: &str) -> &Tensor {
        self.params[self.index[name]].1.as_tensor()
    }

    /// The parameters as named tensors (what `model.safetensors` holds).
    pub fn tensors(&self) -> HashMap<String, Tensor> {
        self.params
            .iter()
            .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
            .collect()
    }

    /// Position ids of every row, as transformers computes them for RoBERTa.
    fn positions(&self, batch: &Batch) -> Vec<u32> {
        batch
            .ids
            .chunks(batch.s)
            .flat_map(|row| {
                if self.arch.bert {
                    (0..row.len() as u32).collect()
                } else {
                    pytorrent_model::encoder::roberta_position_ids(row, self.arch.pad_id)
                }
            })
            .collect()
    }

    fn lin(&self, x: &Tensor, name: &str) -> candle_core::Result<Tensor> {
        linear(
            x,
            self.param(&format!("{name}.weight")),
            self.param(&format!("{name}.bias")),
            self.compute,
        )
    }

    fn lin_gelu(&self, x: &Tensor, name: &str) -> candle_core::Result<Tensor> {
        linear_act(
            x,
            self.param(&format!("{name}.weight")),
            self.param(&format!("{name}.bias")),
            self.compute,
            true,
        )
    }

    fn norm(&self, x: &Tensor, name: &str) -> candle_core::Result<Tensor> {
        layer_norm(
            x,
            self.param(&format!("{name}.weight")),
            self.param(&format!("{name}.bias")),
            self.arch.layer_norm_eps,
        )
    }

    /// Last hidden states `[b * s, hidden]`.
    pub fn hidden(&self, batch: &Batch, drop: &mut Dropout) -> Result<Tensor> {
        let (b, s, a) = (batch.b, batch.s, &self.arch);
        if s > a.max_tokens() {
            return Err(Error::Usage(format!(
                "rows of {s} tokens exceed the model's position table ({} tokens)",
                a.max_tokens()
            )));
        }
        let dev = &self.device;
        let ids = Tensor::from_vec(batch.ids.clone(), b * s, dev)?;
        let pos = Tensor::from_vec(self.positions(batch), b * s, dev)?;
        let e = "roberta.embeddings";
        let x = self
            .param(&format!("{e}.word_embeddings.weight"))
            .index_select(&ids, 0)?
            .add(
                &self
                    .param(&format!("{e}.position_embeddings.weight"))
                    .index_select(&pos, 0)?,
            )?
            .broadcast_add(
                &self
                    .param(&format!("{e}.token_type_embeddings.weight"))
                    .get(0)?,
            )?;
        let mut x = drop.apply(&self.norm(&x, &format!("{e}.LayerNorm"))?, a.hidden_dropout)?;
        let mask = if batch.attention.iter().all(|m| *m == 1) {
            None
        } else {
            let m: Vec<f32> = batch
                .attention
                .iter()
                .map(|m| if *m == 1 { 0.0 } else { f32::MIN })
                .collect();
            Some(Tensor::from_vec(m, (b, s), dev)?)
        };
        let (nh, d) = (a.heads, a.head_dim());
        let scale = 1.0 / (d as f64).sqrt();
        for l in 0..a.layers {
            let p = format!("roberta.encoder.layer.{l}");
            // Q, K and V in one matmul over weights concatenated for this step (the
            // concatenation is differentiable: each part gets its own gradient back).
            let att = format!("{p}.attention.self");
            let w = Tensor::cat(
                &[
                    self.param(&format!("{att}.query.weight")),
                    self.param(&format!("{att}.key.weight")),
                    self.param(&format!("{att}.value.weight")),
                ],
                0,
            )?;
            let bias = Tensor::cat(
                &[
                    self.param(&format!("{att}.query.bias")),
                    self.param(&format!("{att}.key.bias")),
                    self.param(&format!("{att}.value.bias")),
                ],
                0,
            )?;
            let qkv = linear(&x, &w, &bias, self.compute)?.reshape((b, s, 3, nh, d))?;
            let part = |i: usize| -> candle_core::Result<Tensor> {
                qkv.narrow(2, i, 1)?
                    .squeeze(2)?
                    .transpose(1, 2)?
                    .contiguous()
            };
            let (q, k, v) = (part(0)?, part(1)?, part(2)?);
            let scores = if self.compute == DType::F32 {
                q.matmul(&k.t()?)?
            } else {
                q.to_dtype(self.compute)?
                    .matmul(&k.to_dtype(self.compute)?.t()?)?
                    .to_dtype(DType::F32)?
            };
            let probs = drop.apply(
                &attention_probs(&scores, scale, mask.as_ref())?,
                a.attention_dropout,
            )?;
            let ctx = if self.compute == DType::F32 {
                probs.matmul(&v)?
            } else {
                probs
                    .to_dtype(self.compute)?
                    .matmul(&v.to_dtype(self.compute)?)?
                    .to_dtype(DType::F32)?
            };
            let ctx = ctx
                .transpose(1, 2)?
                .contiguous()?
                .reshape((b * s, a.hidden))?;
            let attn = drop.apply(
                &self.lin(&ctx, &format!("{p}.attention.output.dense"))?,
                a.hidden_dropout,
            )?;
            x = self.norm(&(attn + &x)?, &format!("{p}.attention.output.LayerNorm"))?;
            let inter = self.lin_gelu(&x, &format!("{p}.intermediate.dense"))?;
            let out = drop.apply(
                &self.lin(&inter, &format!("{p}.output.dense"))?,
                a.hidden_dropout,
            )?;
            x = self.norm(&(out + &x)?, &format!("{p}.output.LayerNorm"))?;
        }
        Ok(x)
    }

    /// The MLM head over hidden states `[n, hidden]`: logits `[n, vocab]`.
    pub fn head(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.lin_gelu(x, "lm_head.dense")?;
        let x = self.norm(&x, "lm_head.layer_norm")?;
        let word = self.param("roberta.embeddings.word_embeddings.weight");
        Ok(linear(&x, word, self.param("lm_head.bias"), self.compute)?)
    }

    /// Logits of every position `[b, s, vocab]` (no dropout).
    pub fn logits(&self, batch: &Batch) -> Result<Tensor> {
        let h = self.hidden(batch, &mut Dropout::new(0, false))?;
        Ok(self
            .head(&h)?
            .reshape((batch.b, batch.s, self.arch.vocab_size))?)
    }

    /// The loss over the batch's targets only: their hidden states are gathered before the
    /// head (candle's `cross_entropy` has no ignore index, and the head over every position
    /// would cost a vocabulary-sized matmul per token).
    pub fn loss(&self, batch: &Batch, drop: &mut Dropout) -> Result<Loss> {
        if batch.targets.is_empty() {
            return Ok(Loss {
                nll_sum: Tensor::zeros((), DType::F32, &self.device)?,
                correct: 0,
            });
        }
        let h = self.hidden(batch, drop)?;
        let n = batch.targets.len();
        let at: Vec<u32> = batch.targets.iter().map(|t| t.0).collect();
        let labels: Vec<u32> = batch.targets.iter().map(|t| t.1).collect();
        let at = Tensor::from_vec(at, n, &self.device)?;
        let logits = self.head(&h.index_select(&at, 0)?)?;
        let predicted: Vec<u32> = logits.detach().argmax(D::Minus1)?.to_vec1()?;
        let correct = predicted
            .iter()
            .zip(&labels)
            .filter(|(p, l)| p == l)
            .count();
        let labels = Tensor::from_vec(labels, (n, 1), &self.device)?;
        let nll_sum = log_softmax(&logits)?.gather(&labels, 1)?.sum_all()?.neg()?;
        Ok(Loss { nll_sum, correct })
    }
}
