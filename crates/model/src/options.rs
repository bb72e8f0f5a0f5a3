//! The keys every command that runs a model shares: which model, which tokenizer, where and
//! in what precision, and how many inputs per forward pass.

use pytorrent_io::Reporter;
use serde::{Deserialize, Serialize};

use crate::device::{DeviceSpec, Precision};
use crate::text::ModelTokenizer;
use crate::{Model, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct ModelOptions {
    /// Model folder (config.json + model.safetensors or pytorch_model.bin + tokenizer files),
    /// or a model id in the local Hugging Face cache.
    #[cfg_attr(feature = "cli", arg(long))]
    pub model: String,
    /// Tokenizer (default: the one in the model folder).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub tokenizer: Option<String>,
    /// cpu, cuda or cuda:N.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long, default_value = "cpu"))]
    pub device: DeviceSpec,
    /// f32, or f16 / bf16 on a GPU.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long, default_value = "f32"))]
    pub dtype: Precision,
    /// Inputs per forward pass (inputs are sorted by length to pad little).
    #[serde(default = "default_batch_size")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = default_batch_size()))]
    pub batch_size: usize,
}

fn default_batch_size() -> usize {
    8
}

impl ModelOptions {
    pub fn new(model: impl Into<String>) -> ModelOptions {
        ModelOptions {
            model: model.into(),
            tokenizer: None,
            device: DeviceSpec::Cpu,
            dtype: Precision::F32,
            batch_size: default_batch_size(),
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.batch_size == 0 {
            return Err(crate::Error::Usage(
                "--batch-size must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// Loads the model and its tokenizer, and says what was loaded.
    pub fn load(&self, reporter: &dyn Reporter) -> Result<(Model, ModelTokenizer)> {
        self.validate()?;
        let device = self.device.open()?;
        let dtype = self.dtype.dtype(&device)?;
        let model = Model::load(&self.model, &device, dtype)?;
        let tok = ModelTokenizer::load(model.folder(), self.tokenizer.as_deref())?;
        reporter.log(&format!(
            "{}: {} ({} layers, hidden {}, {}) on {}",
            self.model,
            model.config.model_type,
            model.config.num_layers,
            model.config.hidden_size,
            if model.has_mlm_head() {
                "with MLM head"
            } else {
                "no MLM head"
            },
            self.device
        ));
        Ok((model, tok))
    }
}
