//! The encoder forward pass and its heads, weight for weight as transformers defines them.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{LayerNorm, Linear, VarBuilder};

use crate::config::{Activation, Family, ModelConfig};
use crate::source::{resolve, ModelFiles, Weights};
use crate::{Error, Result};

/// Token ids of several inputs, padded to one length.
#[derive(Debug, Clone)]
pub struct Batch {
    pub ids: Vec<Vec<u32>>,
}

/// A linear layer's weight `[out, in]` and bias `[out]`.
struct Dense {
    w: Tensor,
    b: Tensor,
}

impl Dense {
    fn new(l: Linear) -> Dense {
        Dense {
            w: l.weight().clone(),
            b: l.bias().expect("loaded with bias").clone(),
        }
    }

    fn forward(&self, x: &Tensor, gelu: bool) -> candle_core::Result<Tensor> {
        crate::ops::linear(x, &self.w, &self.b, gelu)
    }
}

struct Layer {
    /// Query, key and value in one matmul; the query rows are pre-scaled by 1/√head_dim.
    qkv: Dense,
    attn_out: Dense,
    ln1: LayerNorm,
    inter: Dense,
    out: Dense,
    ln2: LayerNorm,
}

struct MlmHead {
    dense: Linear,
    norm: LayerNorm,
    activation: Activation,
    /// `[vocab, hidden]`: `lm_head.decoder.weight`, or the word embeddings when tied.
    decoder: Tensor,
    bias: Tensor,
}

pub struct Model {
    pub config: ModelConfig,
    pub files: ModelFiles,
    pub device: Device,
    pub dtype: DType,
    word: Tensor,
    position: Tensor,
    /// Row 0 of the token-type table: every input is segment 0.
    token_type: Tensor,
    emb_norm: LayerNorm,
    layers: Vec<Layer>,
    pooler: Option<Linear>,
    mlm: Option<MlmHead>,
    /// Why there is no MLM head, when there is none.
    pub mlm_missing: Option<String>,
}

/// Names of the tensors stored in the weight files.
fn tensor_names(weights: &Weights) -> Result<HashSet<String>> {
    Ok(match weights {
        Weights::Safetensors(paths) => {
            // SAFETY: the files are mapped read-only and not modified while mapped.
            let st = unsafe { candle_core::safetensors::MmapedSafetensors::multi(paths) }.map_err(
                |e| Error::Weights {
                    path: paths[0].clone(),
                    message: e.to_string(),
                },
            )?;
            st.tensors().into_iter().map(|(n, _)| n).collect()
        }
        Weights::Pytorch(p) => {
            check_zip_crcs(p)?;
            candle_core::pickle::PthTensors::new(p, None)
        }
        .map_err(|e| Error::Weights {
            path: p.clone(),
            message: e.to_string(),
        })?
        .tensor_infos()
        .keys()
        .cloned()
        .collect(),
    })
}

/// The encoder's tensors of a checkpoint (a masked-LM, a bare encoder or a
/// sentence-transformers folder; RoBERTa or BERT) in f32 on the CPU, by their names below the
/// `roberta.`/`bert.` prefix (`embeddings.…`, `encoder.layer.N.…`, `pooler.…`); heads and
/// other tensors are left out. For training from the checkpoint, where the inference
/// [`Model`] fuses and rescales weights.
pub fn encoder_tensors(files: &ModelFiles) -> Result<HashMap<String, Tensor>> {
    let names = tensor_names(&files.weights)?;
    let path = weights_path(&files.weights);
    let err = |e: candle_core::Error| Error::Weights {
        path: path.clone(),
        message: e.to_string(),
    };
    let prefix = ["roberta.", "bert.", ""]
        .into_iter()
        .find(|p| names.contains(&format!("{p}embeddings.word_embeddings.weight")))
        .ok_or_else(|| Error::Weights {
            path: path.clone(),
            message:
                "no embeddings.word_embeddings.weight (with or without a roberta./bert. prefix)"
                    .into(),
        })?;
    let all: Vec<(String, Tensor)> = match &files.weights {
        Weights::Safetensors(paths) => {
            let mut v = Vec::new();
            for p in paths {
                v.extend(candle_core::safetensors::load(p, &Device::Cpu).map_err(err)?);
            }
            v
        }
        Weights::Pytorch(p) => candle_core::pickle::read_all(p).map_err(err)?,
    };
    let mut out = HashMap::new();
    for (name, t) in all {
        let Some(rest) = name.strip_prefix(prefix) else {
            continue;
        };
        if ["embeddings.", "encoder.", "pooler."]
            .iter()
            .any(|s| rest.starts_with(s))
        {
            out.insert(rest.to_string(), t.to_dtype(DType::F32).map_err(err)?);
        }
    }
    Ok(out)
}

/// A `pytorch_model.bin` is a zip archive whose members carry CRC-32s, but the pickle loader
/// reads each tensor's bytes by length and never reaches the check at a member's end: a
/// flipped byte would load and silently change every score. Reading each member through once
/// makes the zip reader check it.
fn check_zip_crcs(path: &Path) -> Result<()> {
    let bad = |message: String| Error::Weights {
        path: path.to_path_buf(),
        message,
    };
    let file = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| bad(format!("not a readable zip archive: {e}")))?;
    for i in 0..zip.len() {
        let mut member = zip.by_index(i).map_err(|e| bad(e.to_string()))?;
        let name = member
            .name()
            .map_or_else(|_| format!("#{i}"), |n| n.to_string());
        std::io::copy(&mut member, &mut std::io::sink())
            .map_err(|e| bad(format!("member {name}: {e} (corrupt: checksum or length)")))?;
    }
    Ok(())
}

fn weights_path(w: &Weights) -> PathBuf {
    match w {
        Weights::Safetensors(p) => p[0].clone(),
        Weights::Pytorch(p) => p.clone(),
    }
}

/// Reads tensors by name from a checkpoint's weight files, naming the file in every error.
struct Loader<'a> {
    config: &'a ModelConfig,
    vb: VarBuilder<'static>,
    names: HashSet<String>,
    path: PathBuf,
    /// `roberta.`, `bert.` or empty: where the encoder's tensors live.
    prefix: &'static str,
}

impl Loader<'_> {
    fn open<'c>(
        files: &ModelFiles,
        config: &'c ModelConfig,
        device: &Device,
        dtype: DType,
    ) -> Result<Loader<'c>> {
        let names = tensor_names(&files.weights)?;
        let path = weights_path(&files.weights);
        let vb = match &files.weights {
            // SAFETY: the files are mapped read-only and not modified while mapped.
            Weights::Safetensors(p) => unsafe {
                VarBuilder::from_mmaped_safetensors(p, dtype, device)
            },
            Weights::Pytorch(p) => VarBuilder::from_pth(p, dtype, device),
        }
        .map_err(|e| Error::Weights {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let prefix = ["roberta.", "bert.", ""]
            .into_iter()
            .find(|p| names.contains(&format!("{p}embeddings.word_embeddings.weight")))
            .ok_or_else(|| Error::Weights {
                path: path.clone(),
                message:
                    "no embeddings.word_embeddings.weight (with or without a roberta./bert. prefix)"
                        .into(),
            })?;
        Ok(Loader {
            config,
            vb,
            names,
            path,
            prefix,
        })
    }

    fn err(&self, e: candle_core::Error) -> Error {
        Error::Weights {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    fn has(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    /// The encoder's own tensors (under the prefix).
    fn base(&self) -> VarBuilder<'static> {
        match self.prefix {
            "" => self.vb.clone(),
            p => self.vb.pp(p.trim_end_matches('.')),
        }
    }

    fn get(
        &self,
        vb: &VarBuilder,
        shape: impl Into<candle_core::Shape>,
        name: &str,
    ) -> Result<Tensor> {
        let t = vb.get(shape, name).map_err(|e| self.err(e))?;
        // NaN or infinite weights make every output NaN with no error anywhere: refuse them
        // here, by name. `t * 0` is 0 for finite values and NaN for the others.
        let probe = t
            .affine(0.0, 0.0)
            .and_then(|d| d.to_dtype(DType::F32))
            .and_then(|d| d.sum_all())
            .and_then(|d| d.to_scalar::<f32>())
            .map_err(|e| self.err(e))?;
        if !probe.is_finite() {
            let full = match vb.prefix() {
                p if p.is_empty() => name.to_string(),
                p => format!("{p}.{name}"),
            };
            return Err(Error::Weights {
                path: self.path.clone(),
                message: format!("tensor {full} holds NaN or infinite values"),
            });
        }
        Ok(t)
    }

    fn linear(&self, vb: VarBuilder, i: usize, o: usize) -> Result<Linear> {
        Ok(Linear::new(
            self.get(&vb, (o, i), "weight")?,
            Some(self.get(&vb, o, "bias")?),
        ))
    }

    fn norm(&self, vb: VarBuilder, n: usize) -> Result<LayerNorm> {
        Ok(LayerNorm::new(
            self.get(&vb, n, "weight")?,
            self.get(&vb, n, "bias")?,
            self.config.layer_norm_eps,
        ))
    }

    fn layer(&self, i: usize) -> Result<Layer> {
        let (c, h) = (self.config, self.config.hidden_size);
        let l = self.base().pp(format!("encoder.layer.{i}"));
        let att = l.pp("attention");
        let q = self.linear(att.pp("self.query"), h, h)?;
        let k = self.linear(att.pp("self.key"), h, h)?;
        let v = self.linear(att.pp("self.value"), h, h)?;
        // Scaling the query projection instead of the scores saves a pass over the
        // [batch, heads, seq, seq] scores in every layer.
        let scale = 1.0 / (c.head_dim as f64).sqrt();
        let bias = |l: &Linear| l.bias().expect("loaded with bias").clone();
        let cat = |parts: &[Tensor]| Tensor::cat(parts, 0).map_err(|e| self.err(e));
        let qkv = Dense {
            w: cat(&[
                (q.weight() * scale).map_err(|e| self.err(e))?,
                k.weight().clone(),
                v.weight().clone(),
            ])?,
            b: cat(&[
                (bias(&q) * scale).map_err(|e| self.err(e))?,
                bias(&k),
                bias(&v),
            ])?,
        };
        Ok(Layer {
            qkv,
            attn_out: Dense::new(self.linear(att.pp("output.dense"), h, h)?),
            ln1: self.norm(att.pp("output.LayerNorm"), h)?,
            inter: Dense::new(self.linear(l.pp("intermediate.dense"), h, c.intermediate_size)?),
            out: Dense::new(self.linear(l.pp("output.dense"), c.intermediate_size, h)?),
            ln2: self.norm(l.pp("output.LayerNorm"), h)?,
        })
    }

    fn pooler(&self) -> Result<Option<Linear>> {
        let h = self.config.hidden_size;
        if !self.has(&format!("{}pooler.dense.weight", self.prefix)) {
            return Ok(None);
        }
        Ok(Some(self.linear(self.base().pp("pooler.dense"), h, h)?))
    }

    /// The MLM head, or why there is none.
    fn mlm_head(
        &self,
        word: &Tensor,
        folder: &Path,
    ) -> Result<std::result::Result<MlmHead, String>> {
        let c = self.config;
        let h = c.hidden_size;
        let (head, dense_name, norm_name, activation) = match c.family {
            Family::Roberta => (
                "lm_head",
                "lm_head.dense",
                "lm_head.layer_norm",
                Activation::GeluErf,
            ),
            Family::Bert => (
                "cls.predictions",
                "cls.predictions.transform.dense",
                "cls.predictions.transform.LayerNorm",
                c.activation,
            ),
        };
        if !self.has(&format!("{dense_name}.weight")) {
            return Ok(Err(format!(
                "{} has no masked-language-model head ({head}.* weights): it was saved as a bare \
                 encoder ({}), which gives embeddings but cannot fill masks",
                folder.display(),
                if c.architectures.is_empty() {
                    "no architectures listed".to_string()
                } else {
                    c.architectures.join(", ")
                }
            )));
        }
        let decoder_name = format!("{head}.decoder.weight");
        let decoder = if self.has(&decoder_name) {
            self.get(&self.vb, (c.vocab_size, h), &decoder_name)?
        } else if c.tie_word_embeddings {
            word.clone()
        } else {
            return Err(Error::Weights {
                path: self.path.clone(),
                message: format!("{decoder_name} is missing and tie_word_embeddings is false"),
            });
        };
        // The decoder's own bias is what the forward pass adds. transformers 4.x ties it to
        // `lm_head.bias` (a checkpoint may hold either name, or both, equal); 5.x ties them
        // only with tie_word_embeddings, so an untied 5.x head has two different tensors and
        // `lm_head.bias` is unused.
        let bias_names = [format!("{head}.decoder.bias"), format!("{head}.bias")];
        let bias_name = bias_names
            .iter()
            .find(|n| self.has(n))
            .ok_or_else(|| Error::Weights {
                path: self.path.clone(),
                message: format!(
                    "{} (or {}) is missing: the MLM head's output bias",
                    bias_names[1], bias_names[0]
                ),
            })?;
        Ok(Ok(MlmHead {
            dense: self.linear(self.vb.pp(dense_name), h, h)?,
            norm: self.norm(self.vb.pp(norm_name), h)?,
            activation,
            decoder,
            bias: self.get(&self.vb, c.vocab_size, bias_name)?,
        }))
    }
}

impl Model {
    /// Loads a model folder or a cached model id onto `device` in `dtype`.
    pub fn load(spec: &str, device: &Device, dtype: DType) -> Result<Model> {
        let files = resolve(spec)?;
        let text = std::fs::read_to_string(&files.config)
            .map_err(|e| pytorrent_io::Error::io(&files.config, e))?;
        let config = ModelConfig::parse(&text, &files.config)?;
        let loader = Loader::open(&files, &config, device, dtype)?;
        let (c, h) = (&config, config.hidden_size);
        let emb = loader.base().pp("embeddings");
        let word = loader.get(&emb, (c.vocab_size, h), "word_embeddings.weight")?;
        let position = loader.get(
            &emb,
            (c.max_position_embeddings, h),
            "position_embeddings.weight",
        )?;
        let token_type = loader
            .get(&emb, (c.type_vocab_size, h), "token_type_embeddings.weight")?
            .get(0)
            .map_err(|e| loader.err(e))?;
        let emb_norm = loader.norm(emb.pp("LayerNorm"), h)?;
        let layers = (0..c.num_layers)
            .map(|i| loader.layer(i))
            .collect::<Result<Vec<_>>>()?;
        let pooler = loader.pooler()?;
        let (mlm, mlm_missing) = match loader.mlm_head(&word, &files.folder)? {
            Ok(head) => (Some(head), None),
            Err(why) => (None, Some(why)),
        };
        drop(loader);
        Ok(Model {
            config,
            files,
            device: device.clone(),
            dtype,
            word,
            position,
            token_type,
            emb_norm,
            layers,
            pooler,
            mlm,
            mlm_missing,
        })
    }

    pub fn folder(&self) -> &Path {
        &self.files.folder
    }

    pub fn has_mlm_head(&self) -> bool {
        self.mlm.is_some()
    }

    pub fn has_pooler(&self) -> bool {
        self.pooler.is_some()
    }

    /// Position ids as transformers computes them, in integers: RoBERTa counts non-padding
    /// tokens from `padding_idx + 1` (padding keeps `padding_idx`); BERT numbers from 0.
    pub fn position_ids(&self, row: &[u32]) -> Vec<u32> {
        match self.config.family {
            Family::Roberta => roberta_position_ids(row, self.config.pad_token_id),
            Family::Bert => (0..row.len() as u32).collect(),
        }
    }

    /// Last hidden states `[batch, seq, hidden]` of `rows` (padded here with the pad id;
    /// each row must fit the position table).
    pub fn hidden_states(&self, rows: &[Vec<u32>]) -> Result<Tensor> {
        let b = rows.len();
        let s = rows.iter().map(Vec::len).max().unwrap_or(0);
        if b == 0 || s == 0 {
            return Err(Error::Usage("nothing to encode".into()));
        }
        if s > self.config.max_tokens() {
            return Err(Error::Usage(format!(
                "{s} tokens exceed the position table ({})",
                self.config.max_tokens()
            )));
        }
        let pad = self.config.pad_token_id;
        let mut ids = Vec::with_capacity(b * s);
        let mut pos = Vec::with_capacity(b * s);
        let mut mask = Vec::with_capacity(b * s);
        for r in rows {
            let mut row = r.clone();
            row.resize(s, pad);
            // Attention follows the real lengths; positions follow the ids (as transformers).
            let mut p = self.position_ids(&row);
            if self.config.family == Family::Roberta {
                // Padding added here gets padding_idx even if the pad id appears inside `r`.
                for x in p.iter_mut().skip(r.len()) {
                    *x = pad;
                }
            }
            pos.extend(p);
            mask.extend((0..s).map(|i| {
                if i < r.len() {
                    0f32
                } else {
                    min_value(self.dtype)
                }
            }));
            ids.extend(row);
        }
        let dev = &self.device;
        let ids = Tensor::from_vec(ids, b * s, dev)?;
        let pos = Tensor::from_vec(pos, b * s, dev)?;
        let x = self
            .word
            .index_select(&ids, 0)?
            .add(&self.position.index_select(&pos, 0)?)?
            .broadcast_add(&self.token_type)?;
        let mut x = self.emb_norm.forward(&x)?;
        // Without padding the mask adds nothing: skip the pass.
        let padded = rows.iter().any(|r| r.len() < s);
        let mask = if padded {
            Some(Tensor::from_vec(mask, (b, 1, 1, s), dev)?.to_dtype(self.dtype)?)
        } else {
            None
        };
        let (nh, d) = (self.config.num_heads, self.config.head_dim);
        let gelu_erf = self.config.activation == Activation::GeluErf;
        for l in &self.layers {
            let qkv = l.qkv.forward(&x, false)?.reshape((b, s, 3, nh, d))?;
            let part = |i: usize| -> candle_core::Result<Tensor> {
                qkv.narrow(2, i, 1)?
                    .squeeze(2)?
                    .transpose(1, 2)?
                    .contiguous()
            };
            let (q, k, v) = (part(0)?, part(1)?, part(2)?);
            let scores = q.matmul(&k.t()?)?;
            let probs = crate::ops::masked_softmax(&scores, mask.as_ref())?;
            let ctx = probs
                .matmul(&v)?
                .transpose(1, 2)?
                .contiguous()?
                .reshape((b * s, nh * d))?;
            x = l
                .ln1
                .forward(&crate::ops::add(&l.attn_out.forward(&ctx, false)?, &x)?)?;
            let inter = if gelu_erf {
                l.inter.forward(&x, true)?
            } else {
                activate(&l.inter.forward(&x, false)?, self.config.activation)?
            };
            x = l
                .ln2
                .forward(&crate::ops::add(&l.out.forward(&inter, false)?, &x)?)?;
        }
        Ok(x.reshape((b, s, self.config.hidden_size))?)
    }

    /// MLM logits `[n, vocab]` at `(row, position)` pairs of `hidden` (only those positions
    /// go through the head).
    pub fn mlm_logits(&self, hidden: &Tensor, at: &[(usize, usize)]) -> Result<Tensor> {
        let head = self
            .mlm
            .as_ref()
            .ok_or_else(|| Error::Unsupported(self.mlm_missing.clone().unwrap_or_default()))?;
        let (_, s, h) = hidden.dims3()?;
        let idx: Vec<u32> = at.iter().map(|(r, p)| (r * s + p) as u32).collect();
        let idx = Tensor::from_vec(idx, at.len(), &self.device)?;
        let x = hidden.reshape(((), h))?.index_select(&idx, 0)?;
        let x = activate(&head.dense.forward(&x)?, head.activation)?;
        let x = head.norm.forward(&x)?;
        Ok(x.matmul(&head.decoder.t()?)?.broadcast_add(&head.bias)?)
    }

    /// The pooler output `tanh(dense(h[:, 0]))`, `[batch, hidden]`.
    pub fn pooler_output(&self, hidden: &Tensor) -> Result<Tensor> {
        let pooler = self.pooler.as_ref().ok_or_else(|| {
            Error::Unsupported(format!(
                "{} has no pooler weights (pooler.dense); use --pooling mean or cls",
                self.folder().display()
            ))
        })?;
        let first = hidden.narrow(1, 0, 1)?.squeeze(1)?;
        Ok(pooler.forward(&first)?.tanh()?)
    }
}

/// RoBERTa's position ids (transformers' `create_position_ids_from_input_ids`): non-padding
/// ids count from `pad + 1`, padding keeps `pad`.
pub fn roberta_position_ids(row: &[u32], pad: u32) -> Vec<u32> {
    let mut n = 0;
    row.iter()
        .map(|id| {
            if *id == pad {
                pad
            } else {
                n += 1;
                pad + n
            }
        })
        .collect()
}

fn min_value(dtype: DType) -> f32 {
    match dtype {
        DType::F16 => -65504.0,
        _ => f32::MIN,
    }
}

fn activate(x: &Tensor, a: Activation) -> candle_core::Result<Tensor> {
    match a {
        Activation::GeluErf => crate::ops::gelu_erf(x),
        Activation::GeluTanh => x.gelu(),
        Activation::Relu => x.relu(),
    }
}
