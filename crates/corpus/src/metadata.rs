//! PyTorrent's `Package_Metadata`: PyPI JSON-API documents (`info`, `releases`, `urls`,
//! `last_serial`, `timestamp`) and scraped Anaconda documents (`title`, `summary`,
//! `detail.meta.license`, `detail.files`, …), read into one normalised [`PackageMeta`] and
//! joined to records by PEP 503 name.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::license::{License, LicenseSource};

/// PEP 503 normalisation: lower case, runs of `-`, `_`, `.` become one `-`.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_sep = false;
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_sep {
                out.push('-');
            }
            in_sep = true;
        } else {
            out.extend(c.to_lowercase());
            in_sep = false;
        }
    }
    out
}

/// A stable hash of a package's normalised name: which array-job task fetches or extracts it.
pub fn name_hash(name: &str) -> u64 {
    use sha2::Digest;
    let d = sha2::Sha256::digest(normalize_name(name).as_bytes());
    u64::from_le_bytes(d[..8].try_into().expect("8 bytes"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetaSource {
    Pypi,
    Anaconda,
}

/// One package's metadata, whichever document it came from.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct PackageMeta {
    pub name: String,
    pub normalized_name: String,
    pub version: Option<String>,
    pub summary: Option<String>,
    pub home_page: Option<String>,
    pub classifiers: Vec<String>,
    pub license: License,
    pub source: MetaSource,
    pub path: PathBuf,
}

#[derive(Deserialize)]
struct PypiDoc {
    info: PypiInfo,
}

#[derive(Deserialize)]
struct PypiInfo {
    name: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    home_page: Option<String>,
    #[serde(default)]
    license: Option<String>,
    #[serde(default)]
    license_expression: Option<String>,
    #[serde(default)]
    classifiers: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct AnacondaDoc {
    title: String,
    #[serde(default)]
    summary: Option<String>,
    detail: AnacondaDetail,
}

#[derive(Deserialize)]
struct AnacondaDetail {
    meta: AnacondaMeta,
    #[serde(default)]
    platform_versions: Vec<(String, String)>,
}

#[derive(Deserialize)]
struct AnacondaMeta {
    #[serde(default)]
    license: Option<String>,
    #[serde(default)]
    home: Option<String>,
}

fn meta_err(path: &Path, message: impl Into<String>) -> Error {
    Error::Metadata {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// Whether `bytes` is a JSON Schema document (a top-level `$schema` key) rather than a
/// package's metadata.
fn is_json_schema(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .is_some_and(|v| v.get("$schema").is_some() && v.get("info").is_none())
}

/// Parses one metadata document, telling the two layouts apart by their keys.
pub fn parse_metadata(path: &Path, bytes: &[u8]) -> Result<PackageMeta> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| meta_err(path, format!("invalid JSON: {e}")))?;
    let obj = value
        .as_object()
        .ok_or_else(|| meta_err(path, "not a JSON object"))?;
    if obj.contains_key("info") {
        let doc: PypiDoc = serde_path_to_error::deserialize(&value).map_err(|e| {
            meta_err(
                path,
                format!("PyPI document, field `{}`: {}", e.path(), e.inner()),
            )
        })?;
        let info = doc.info;
        let classifiers = info.classifiers.unwrap_or_default();
        let mut statements: Vec<(LicenseSource, &str)> = Vec::new();
        if let Some(expr) = info.license_expression.as_deref() {
            statements.push((LicenseSource::LicenseField, expr));
        }
        if let Some(l) = info.license.as_deref() {
            statements.push((LicenseSource::LicenseField, l));
        }
        for c in classifiers.iter().filter(|c| c.starts_with("License ::")) {
            statements.push((LicenseSource::Classifier, c));
        }
        let license = License::from_statements(&statements);
        Ok(PackageMeta {
            normalized_name: normalize_name(&info.name),
            name: info.name,
            version: non_empty(info.version),
            summary: non_empty(info.summary),
            home_page: non_empty(info.home_page),
            classifiers,
            license,
            source: MetaSource::Pypi,
            path: path.to_path_buf(),
        })
    } else if obj.contains_key("title") && obj.contains_key("detail") {
        let doc: AnacondaDoc = serde_path_to_error::deserialize(&value).map_err(|e| {
            meta_err(
                path,
                format!("Anaconda document, field `{}`: {}", e.path(), e.inner()),
            )
        })?;
        let license_text = doc.detail.meta.license.clone().unwrap_or_default();
        let license = License::from_statements(&[(LicenseSource::Anaconda, &license_text)]);
        // Platform versions look like ["\n\n linux-64", "v2.2.1"]; the newest is not marked,
        // so take the highest by natural order.
        let version = doc
            .detail
            .platform_versions
            .iter()
            .map(|(_, v)| v.trim().trim_start_matches('v').to_string())
            .max_by(|a, b| crate::source::natural_cmp(a, b));
        Ok(PackageMeta {
            normalized_name: normalize_name(&doc.title),
            name: doc.title,
            version,
            summary: non_empty(doc.summary),
            home_page: non_empty(doc.detail.meta.home),
            classifiers: Vec::new(),
            license,
            source: MetaSource::Anaconda,
            path: path.to_path_buf(),
        })
    } else {
        Err(meta_err(
            path,
            "neither a PyPI JSON-API document (no `info`) nor an Anaconda document (no `title`/`detail`)",
        ))
    }
}

/// Metadata for many packages, keyed by normalised name.
#[derive(Debug, Default)]
pub struct MetadataIndex {
    by_name: BTreeMap<String, PackageMeta>,
}

fn collect_json(path: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let meta = fs::metadata(path).map_err(|e| pytorrent_io::Error::io(path, e))?;
    if meta.is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    for entry in fs::read_dir(path).map_err(|e| pytorrent_io::Error::io(path, e))? {
        let entry = entry.map_err(|e| pytorrent_io::Error::io(path, e))?;
        let p = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if p.is_dir() {
            collect_json(&p, out)?;
        } else if name.ends_with(".json") {
            out.push(p);
        }
    }
    Ok(())
}

impl MetadataIndex {
    /// Loads every `*.json` under the given files or folders (e.g. a `Package_Metadata`
    /// folder with `pypi_packages/` and `anaconda_packages/`). When a package has both, the
    /// PyPI document wins (it carries classifiers and the exact version).
    pub fn load(paths: &[PathBuf]) -> Result<MetadataIndex> {
        let mut files = Vec::new();
        for p in paths {
            collect_json(p, &mut files)?;
        }
        files.sort();
        let metas: Vec<Option<PackageMeta>> = files
            .par_iter()
            .map(|p| {
                let bytes = fs::read(p).map_err(|e| pytorrent_io::Error::io(p, e))?;
                match parse_metadata(p, &bytes) {
                    Ok(m) => Ok(Some(m)),
                    // A JSON Schema describing the documents may sit beside them; it is told
                    // apart by its content, never by its name (`jsonschema.json` is a package).
                    Err(_) if is_json_schema(&bytes) => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .collect::<Result<_>>()?;
        let mut index = MetadataIndex::default();
        for m in metas.into_iter().flatten() {
            index.insert(m);
        }
        Ok(index)
    }

    /// [`MetadataIndex::load`] of `paths`, `None` when there are none; logs the count.
    pub fn load_logged(
        paths: &[PathBuf],
        reporter: &dyn pytorrent_io::Reporter,
    ) -> Result<Option<MetadataIndex>> {
        if paths.is_empty() {
            return Ok(None);
        }
        let index = MetadataIndex::load(paths)?;
        reporter.log(&format!(
            "metadata: {}",
            pytorrent_io::reporter::plural(index.len() as u64, "package", "packages")
        ));
        Ok(Some(index))
    }

    pub fn insert(&mut self, m: PackageMeta) {
        match self.by_name.get(&m.normalized_name) {
            Some(old) if old.source <= m.source => {}
            _ => {
                self.by_name.insert(m.normalized_name.clone(), m);
            }
        }
    }

    /// Looks a package up by any spelling of its name.
    pub fn get(&self, name: &str) -> Option<&PackageMeta> {
        self.by_name.get(&normalize_name(name))
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &PackageMeta> {
        self.by_name.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pep503() {
        assert_eq!(normalize_name("Foo.Bar__baz-_qux"), "foo-bar-baz-qux");
        assert_eq!(normalize_name("zope.interface"), "zope-interface");
        assert_eq!(normalize_name("PyYAML"), "pyyaml");
    }

    #[test]
    fn packages_named_like_schemas_are_loaded_and_schemas_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let doc = |name: &str| {
            format!(
                r#"{{"info":{{"name":"{name}","version":"1","license":"MIT","classifiers":[]}}}}"#
            )
        };
        for name in ["jsonschema", "fastjsonschema", "json-to-schema"] {
            fs::write(dir.path().join(format!("{name}.json")), doc(name)).unwrap();
        }
        fs::write(
            dir.path().join("pypi_schema.json"),
            r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object"}"#,
        )
        .unwrap();
        let index = MetadataIndex::load(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(index.len(), 3);
        assert!(index.get("JSONSchema").is_some() && index.get("json_to_schema").is_some());
    }

    #[test]
    fn neither_layout_is_an_error_naming_the_file() {
        let e = parse_metadata(Path::new("x.json"), br#"{"a":1}"#)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("x.json: neither"), "{e}");
        let e = parse_metadata(Path::new("y.json"), br#"{"info":{"name":5}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("info.name"), "{e}");
    }
}
