//! sentence-transformers folders: what `SentenceTransformer.encode` does on top of the
//! encoder, read from the folder's own files — `modules.json` (the module list),
//! `sentence_bert_config.json` (`max_seq_length`, `do_lower_case`), the Pooling module's
//! `config.json` (mean or CLS pooling) and a `Normalize` module (L2 normalisation).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::embed::Pooling;
use crate::{Error, Result};

/// What a sentence-transformers folder asks of an embedding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentenceConfig {
    /// Inputs are cut to this many tokens, special tokens included (all-MiniLM-L6-v2: 256,
    /// below its 512 positions).
    pub max_seq_length: Option<usize>,
    pub do_lower_case: bool,
    pub pooling: Pooling,
    pub normalize: bool,
    /// The folder of the Transformer module (the root, or a subfolder such as `0_Transformer`).
    pub transformer: PathBuf,
}

#[derive(Deserialize)]
struct Module {
    #[serde(default)]
    path: String,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize, Default)]
struct BertConfig {
    #[serde(default)]
    max_seq_length: Option<usize>,
    #[serde(default)]
    do_lower_case: bool,
}

#[derive(Deserialize, Default)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
    #[serde(default)]
    pooling_mode_weightedmean_tokens: bool,
    #[serde(default)]
    pooling_mode_lasttoken: bool,
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| pytorrent_io::Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::Config {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

impl SentenceConfig {
    /// The folder's sentence-transformers setup, or `None` when it has no `modules.json`.
    pub fn read(folder: &Path) -> Result<Option<SentenceConfig>> {
        let modules_path = folder.join("modules.json");
        if !modules_path.is_file() {
            return Ok(None);
        }
        let modules: Vec<Module> = read_json(&modules_path)?;
        let mut cfg = SentenceConfig {
            max_seq_length: None,
            do_lower_case: false,
            pooling: Pooling::Mean,
            normalize: false,
            transformer: folder.to_path_buf(),
        };
        for m in &modules {
            let dir = folder.join(&m.path);
            match m.kind.rsplit('.').next().unwrap_or("") {
                "Transformer" => {
                    cfg.transformer = dir.clone();
                    let bert = dir.join("sentence_bert_config.json");
                    let b: BertConfig = if bert.is_file() {
                        read_json(&bert)?
                    } else {
                        BertConfig::default()
                    };
                    cfg.max_seq_length = b.max_seq_length;
                    cfg.do_lower_case = b.do_lower_case;
                }
                "Pooling" => cfg.pooling = pooling_of(&dir.join("config.json"))?,
                "Normalize" => cfg.normalize = true,
                other => {
                    return Err(Error::Unsupported(format!(
                        "{}: module {other} ({}) is not supported (Transformer, Pooling and \
                         Normalize are)",
                        modules_path.display(),
                        m.kind
                    )))
                }
            }
        }
        Ok(Some(cfg))
    }
}

fn pooling_of(path: &Path) -> Result<Pooling> {
    let p: PoolingConfig = read_json(path)?;
    let unsupported = [
        (p.pooling_mode_max_tokens, "max_tokens"),
        (p.pooling_mode_mean_sqrt_len_tokens, "mean_sqrt_len_tokens"),
        (p.pooling_mode_weightedmean_tokens, "weightedmean_tokens"),
        (p.pooling_mode_lasttoken, "lasttoken"),
    ];
    if let Some((_, mode)) = unsupported.iter().find(|(on, _)| *on) {
        return Err(Error::Unsupported(format!(
            "{}: pooling mode {mode} is not supported (mean_tokens or cls_token are)",
            path.display()
        )));
    }
    match (p.pooling_mode_cls_token, p.pooling_mode_mean_tokens) {
        (true, false) => Ok(Pooling::Cls),
        (false, true) => Ok(Pooling::Mean),
        (true, true) => Err(Error::Unsupported(format!(
            "{}: cls and mean pooling together (concatenated) are not supported",
            path.display()
        ))),
        (false, false) => Err(Error::Config {
            path: path.to_path_buf(),
            message: "no pooling mode is on".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minilm_style_folder() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(
            d.join("modules.json"),
            r#"[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
                {"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"},
                {"idx":2,"name":"2","path":"2_Normalize","type":"sentence_transformers.models.Normalize"}]"#,
        )
        .unwrap();
        std::fs::write(
            d.join("sentence_bert_config.json"),
            r#"{"max_seq_length": 256, "do_lower_case": false}"#,
        )
        .unwrap();
        std::fs::create_dir(d.join("1_Pooling")).unwrap();
        std::fs::write(
            d.join("1_Pooling/config.json"),
            r#"{"word_embedding_dimension": 384, "pooling_mode_cls_token": false,
                "pooling_mode_mean_tokens": true, "pooling_mode_max_tokens": false}"#,
        )
        .unwrap();
        let c = SentenceConfig::read(d).unwrap().unwrap();
        assert_eq!(
            (
                c.max_seq_length,
                c.pooling,
                c.normalize,
                c.transformer.as_path()
            ),
            (Some(256), Pooling::Mean, true, d)
        );
        std::fs::write(
            d.join("1_Pooling/config.json"),
            r#"{"pooling_mode_max_tokens": true}"#,
        )
        .unwrap();
        let e = SentenceConfig::read(d).unwrap_err().to_string();
        assert!(e.contains("max_tokens"), "{e}");
        assert_eq!(SentenceConfig::read(&d.join("1_Pooling")).unwrap(), None);
    }
}
