//! The keys every command that runs a model shares: which model, which tokenizer, where and
//! in what precision, and how many inputs per forward pass.

use std::path::Path;

use pytorrent_io::Reporter;
use serde::{Deserialize, Serialize};

use crate::device::{DeviceSpec, Precision};
use crate::text::ModelTokenizer;
use crate::{Model, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelOptions {
    /// Model folder (config.json + model.safetensors or pytorch_model.bin + tokenizer files),
    /// or a model id in the local Hugging Face cache.
    pub model: String,
    /// Tokenizer (default: the one in the model folder).
    #[serde(default)]
    pub tokenizer: Option<String>,
    /// cpu, cuda or cuda:N.
    #[serde(default)]
    pub device: DeviceSpec,
    /// f32, or f16 / bf16 on a GPU.
    #[serde(default)]
    pub dtype: Precision,
    /// Inputs per forward pass (inputs are sorted by length to pad little).
    #[serde(default = "default_batch_size")]
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

/// Inputs of a line-oriented file: JSON strings, objects with "text", or raw lines
/// (`-` for standard input), each with its line number.
pub fn read_text_lines(path: &Path) -> Result<Vec<(usize, String)>> {
    use std::io::BufRead;
    let io = |e| crate::Error::Io(pytorrent_io::Error::io(path, e));
    let reader: Box<dyn BufRead> = if path == Path::new("-") {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(path).map_err(io)?,
        ))
    };
    let mut out = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(io)?;
        if line.trim().is_empty() {
            continue;
        }
        let text = match serde_json::from_str::<serde_json::Value>(&line) {
            Ok(serde_json::Value::String(s)) => s,
            Ok(v @ serde_json::Value::Object(_)) => v["text"]
                .as_str()
                .ok_or_else(|| {
                    crate::Error::Usage(format!(
                        "{}:{}: a JSON object without a \"text\" string",
                        path.display(),
                        i + 1
                    ))
                })?
                .to_string(),
            _ => line,
        };
        out.push((i + 1, text));
    }
    Ok(out)
}
