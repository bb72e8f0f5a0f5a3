//! Content digests of a stage's inputs, and the stage fingerprint built from them.
//!
//! Inputs the user names (package folders, metadata, a model folder, a suite file) are
//! hashed by content — a folder as the sorted list of its files' relative paths and digests —
//! so that an edited file re-runs what reads it while a touched but unchanged one does not.
//! File digests are remembered by (size, modification time) in a cache beside the stamps:
//! hashing hundreds of gigabytes of packages on every run would make "up to date" slow.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Result;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Cached {
    len: u64,
    mtime_ns: i128,
    sha256: String,
}

/// Hashes files and folders, with a (size, mtime) cache kept in one JSON file.
pub struct Hasher {
    cache_path: PathBuf,
    cache: Mutex<BTreeMap<PathBuf, Cached>>,
}

impl Hasher {
    pub fn open(cache_path: PathBuf) -> Hasher {
        let cache = std::fs::read(&cache_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Hasher {
            cache_path,
            cache: Mutex::new(cache),
        }
    }

    /// The digest of a file, or of a folder's files (recursively, by relative path).
    pub fn digest(&self, path: &Path) -> Result<String> {
        let meta = std::fs::metadata(path).map_err(|e| pytorrent_io::Error::io(path, e))?;
        if meta.is_file() {
            return self.file(path, &meta);
        }
        let mut files = Vec::new();
        walk(path, path, &mut files)?;
        files.sort();
        let mut h = Sha256::new();
        for rel in files {
            let full = path.join(&rel);
            let meta = std::fs::metadata(&full).map_err(|e| pytorrent_io::Error::io(&full, e))?;
            h.update(rel.to_string_lossy().as_bytes());
            h.update([0]);
            h.update(self.file(&full, &meta)?.as_bytes());
            h.update([b'\n']);
        }
        Ok(pytorrent_io::fingerprint::hex(&h.finalize()))
    }

    fn file(&self, path: &Path, meta: &std::fs::Metadata) -> Result<String> {
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i128);
        let key = path.to_path_buf();
        if let Some(c) = self.cache.lock().expect("not poisoned").get(&key) {
            if c.len == meta.len() && c.mtime_ns == mtime_ns {
                return Ok(c.sha256.clone());
            }
        }
        let sha256 = pytorrent_io::fingerprint::sha256_file(path)?;
        self.cache.lock().expect("not poisoned").insert(
            key,
            Cached {
                len: meta.len(),
                mtime_ns,
                sha256: sha256.clone(),
            },
        );
        Ok(sha256)
    }

    /// Writes the cache back (atomically; a failure only costs re-hashing next time).
    pub fn save(&self) -> Result<()> {
        let cache = self.cache.lock().expect("not poisoned");
        let bytes = serde_json::to_vec(&*cache).expect("a map of plain values serialises");
        pytorrent_io::atomic::write_atomic(&self.cache_path, &bytes)?;
        Ok(())
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| pytorrent_io::Error::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| pytorrent_io::Error::io(dir, e))?;
        let path = entry.path();
        let meta = std::fs::metadata(&path).map_err(|e| pytorrent_io::Error::io(&path, e))?;
        if meta.is_dir() {
            walk(root, &path, out)?;
        } else {
            out.push(path.strip_prefix(root).unwrap_or(&path).to_path_buf());
        }
    }
    Ok(())
}

/// A stage's fingerprint: the sha256 of the tool version, the stage, its settings (JSON,
/// with the run and config folders written as `$OUT` and `$CONFIG` so that moving a whole
/// project does not invalidate it), its inputs' digests and its upstream fingerprints.
pub fn stage_fingerprint(
    tool: &str,
    stage: &str,
    settings: &serde_json::Value,
    inputs: &BTreeMap<String, String>,
    upstream: &BTreeMap<String, String>,
) -> String {
    let doc = serde_json::json!({
        "tool": tool,
        "stage": stage,
        "settings": settings,
        "inputs": inputs,
        "upstream": upstream,
    });
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(&doc).expect("plain JSON"));
    pytorrent_io::fingerprint::hex(&h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_digest_follows_content_not_timestamps() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("pkgs");
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(d.join("a.txt"), "one").unwrap();
        std::fs::write(d.join("sub/b.txt"), "two").unwrap();
        let h = Hasher::open(dir.path().join("cache.json"));
        let first = h.digest(&d).unwrap();
        // Rewritten with the same bytes: same digest.
        std::fs::write(d.join("a.txt"), "one").unwrap();
        assert_eq!(h.digest(&d).unwrap(), first);
        // Changed content (same length): a new digest.
        std::fs::write(d.join("sub/b.txt"), "TWO").unwrap();
        // Filesystem clocks tick coarsely: make the edit visibly later, as real edits are.
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(d.join("sub/b.txt"))
            .unwrap()
            .set_modified(later)
            .unwrap();
        let changed = h.digest(&d).unwrap();
        assert_ne!(changed, first);
        // A renamed file changes it too.
        std::fs::rename(d.join("a.txt"), d.join("c.txt")).unwrap();
        assert_ne!(h.digest(&d).unwrap(), changed);
        h.save().unwrap();
        let again = Hasher::open(dir.path().join("cache.json"));
        assert_eq!(again.digest(&d).unwrap(), h.digest(&d).unwrap());
    }
}
