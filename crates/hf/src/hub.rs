//! Model ids resolved in the local Hugging Face cache, with no network code: `hf-hub` is
//! built without its download features and only reads the cache layout
//! (`models--org--name/refs/main` → `snapshots/<commit>/…`).

use std::path::PathBuf;

use crate::{Error, Result};

/// The cache folder: `HF_HUB_CACHE`, else `HF_HOME/hub`, else `~/.cache/huggingface/hub`.
pub fn cache() -> hf_hub::Cache {
    match std::env::var_os("HF_HUB_CACHE") {
        Some(p) if !p.is_empty() => hf_hub::Cache::new(PathBuf::from(p)),
        _ => hf_hub::Cache::from_env(),
    }
}

/// The snapshot folder of `id` (`org/name`, optionally `@revision`) that holds one of
/// `any_of`.
pub fn snapshot_folder(id: &str, any_of: &[&str]) -> Result<PathBuf> {
    if !could_be_model_id(id) {
        // `./models/x`, `/data/ckpt` or `runs/a/b` cannot name a hub model: a mistyped path
        // is only that.
        return Err(Error::Load {
            path: PathBuf::from(id),
            message: "no such file or folder".into(),
        });
    }
    let cache = cache();
    let (name, revision) = match id.split_once('@') {
        Some((n, r)) => (n, r.to_string()),
        None => (id, "main".to_string()),
    };
    let repo = hf_hub::Repo::with_revision(name.to_string(), hf_hub::RepoType::Model, revision);
    let cached = cache.repo(repo);
    for f in any_of {
        if let Some(p) = cached.get(f) {
            return Ok(p
                .parent()
                .expect("a file in a snapshot folder")
                .to_path_buf());
        }
    }
    Err(Error::NotCached {
        id: id.to_string(),
        cache: cache.path().clone(),
        message: format!(
            "none of {} found (no network access is attempted)",
            any_of.join(", ")
        ),
    })
}

/// Whether `spec` has the shape of a hub id: `name` or `org/name` (letters, digits, `-`, `_`,
/// `.`), optionally `@revision`.
pub fn could_be_model_id(spec: &str) -> bool {
    let name = spec.split_once('@').map_or(spec, |(n, _)| n);
    let parts: Vec<&str> = name.split('/').collect();
    let part_ok = |p: &str| {
        !p.is_empty()
            && !p.starts_with('.')
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    parts.len() <= 2 && parts.iter().all(|p| part_ok(p))
}

#[cfg(test)]
mod tests {
    use super::could_be_model_id;

    #[test]
    fn paths_are_not_model_ids() {
        for id in ["roberta-base", "microsoft/codebert-base", "org/name@v1.0"] {
            assert!(could_be_model_id(id), "{id}");
        }
        for p in [
            "/abs/model",
            "./model",
            "../m",
            "runs/a/b",
            "model/",
            "a b",
            "~/m",
        ] {
            assert!(!could_be_model_id(p), "{p}");
        }
    }
}
