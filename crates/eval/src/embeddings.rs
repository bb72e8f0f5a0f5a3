//! Embeddings of an evaluation set's texts and codes by a `pytorrent-model` encoder, cached as
//! npy under a key of the model's files, the settings and the texts, so a second run over the
//! same set (another protocol, another direction) does not encode again.

use std::path::{Path, PathBuf};

use pytorrent_io::npy::{Dtype, NpyWriter};
use pytorrent_io::{Reporter, Unit};
use pytorrent_model::embed::{embed, settings, Choices, EmbedOptions};
use pytorrent_model::options::ModelOptions;
use pytorrent_model::sentence::SentenceConfig;
use pytorrent_model::source::Weights;
use pytorrent_model::text::ModelTokenizer;
use pytorrent_model::Model;
use sha2::{Digest, Sha256};

use crate::search::Matrix;
use crate::Result;

/// Texts encoded per call, so progress moves and memory stays one chunk of encodings.
const CHUNK: usize = 1024;

/// A loaded model with the settings it embeds with, and a fingerprint of both.
pub struct Encoder {
    pub model: Model,
    pub tok: ModelTokenizer,
    pub opts: EmbedOptions,
    fingerprint: String,
}

impl Encoder {
    pub fn load(
        options: &ModelOptions,
        choices: &Choices,
        reporter: &dyn Reporter,
    ) -> Result<Encoder> {
        let (model, tok) = options.load(reporter)?;
        let st = SentenceConfig::read(&model.files.root)?;
        let opts = settings(&model, st.as_ref(), choices, options.batch_size)?;
        let mut h = Sha256::new();
        h.update(b"pytorrent embeddings 1\n");
        h.update(std::fs::read(&model.files.config).unwrap_or_default());
        let weights: Vec<PathBuf> = match &model.files.weights {
            Weights::Safetensors(files) => files.clone(),
            Weights::Pytorch(file) => vec![file.clone()],
        };
        for w in &weights {
            h.update(pytorrent_io::fingerprint::sha256_file(w)?.as_bytes());
        }
        h.update(
            tok.tokenizer
                .to_string(false)
                .unwrap_or_default()
                .as_bytes(),
        );
        h.update(
            format!(
                "{:?} {} {} {}",
                opts.pooling, opts.normalize, opts.max_tokens, opts.lower_case
            )
            .as_bytes(),
        );
        Ok(Encoder {
            model,
            tok,
            opts,
            fingerprint: pytorrent_io::fingerprint::hex(&h.finalize()),
        })
    }

    /// The cache file of these texts under this model.
    fn cache_file(&self, dir: &Path, texts: &[String]) -> PathBuf {
        let mut h = Sha256::new();
        h.update(self.fingerprint.as_bytes());
        for t in texts {
            h.update((t.len() as u64).to_le_bytes());
            h.update(t.as_bytes());
        }
        let key = pytorrent_io::fingerprint::hex(&h.finalize());
        dir.join(format!("{}.npy", &key[..32]))
    }

    /// One row per text, in order; from `cache` when it holds them, else encoded and stored
    /// there. `what` names the texts in progress and warnings.
    pub fn embed(
        &self,
        texts: &[String],
        what: &str,
        cache: Option<&Path>,
        reporter: &dyn Reporter,
    ) -> Result<Matrix> {
        let file = cache.map(|dir| self.cache_file(dir, texts));
        if let Some(f) = file.as_ref().filter(|f| f.is_file()) {
            if let Ok(m) = Matrix::read_npy(f) {
                if m.rows == texts.len() {
                    reporter.log(&format!("{what}: embeddings from {}", f.display()));
                    return Ok(m);
                }
            }
        }
        let dim = self.model.config.hidden_size;
        let mut rows = Vec::with_capacity(texts.len() * dim);
        let mut cut = 0usize;
        reporter.begin(
            &format!("embed {what}"),
            Unit::Items("texts"),
            Some(texts.len() as u64),
        );
        for chunk in texts.chunks(CHUNK) {
            let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
            let counted = std::sync::atomic::AtomicUsize::new(0);
            let vectors = embed(&self.model, &self.tok, &refs, &self.opts, &|_| {
                counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            })?;
            cut += counted.into_inner();
            for v in vectors {
                rows.extend_from_slice(&v);
            }
            reporter.advance(chunk.len() as u64);
        }
        reporter.end();
        if cut > 0 {
            reporter.warn(&format!(
                "{what}: {} longer than {} tokens and truncated",
                pytorrent_io::reporter::plural(cut as u64, "input was", "inputs were"),
                self.opts.max_tokens
            ));
        }
        let m = Matrix::new(texts.len(), dim, rows);
        if let Some(f) = file {
            if let Some(dir) = f.parent() {
                std::fs::create_dir_all(dir).map_err(|e| pytorrent_io::Error::io(dir, e))?;
            }
            let mut w = NpyWriter::create(&f, Dtype::Float32, dim)?;
            for i in 0..m.rows {
                w.push_row_f32(m.row(i))?;
            }
            w.finish()?;
        }
        Ok(m)
    }
}

/// `$XDG_CACHE_HOME/pytorrent/embeddings`, else `~/.cache/pytorrent/embeddings`.
pub fn default_cache() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("pytorrent").join("embeddings"))
}
