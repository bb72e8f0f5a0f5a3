//! Which index: the flag, the environment or pip's own configuration, never a built-in host;
//! and the projects an index lists (PEP 691 JSON or PEP 503 HTML).

use std::path::PathBuf;

use pytorrent_corpus::metadata::normalize_name;
use serde::Serialize;

use crate::http::{get, GetError};
use crate::pypi::FetchOptions;

/// The JSON API base for a simple-index URL: a trailing `/simple` becomes `/pypi`.
pub fn json_api_from_index(index: &str) -> String {
    let trimmed = index.trim_end_matches('/');
    match trimmed.strip_suffix("/simple") {
        Some(base) => format!("{base}/pypi"),
        None => format!("{trimmed}/pypi"),
    }
}

/// `index-url` in the `[global]` (or `[install]`/`[download]`) section of a pip.conf.
fn pip_conf_index(text: &str) -> Option<String> {
    let mut section = String::new();
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with('[') && l.ends_with(']') {
            section = l[1..l.len() - 1].trim().to_ascii_lowercase();
        } else if matches!(section.as_str(), "global" | "install" | "download") {
            if let Some((k, v)) = l.split_once(['=', ':']) {
                if k.trim().eq_ignore_ascii_case("index-url")
                    || k.trim().eq_ignore_ascii_case("index_url")
                {
                    return Some(v.trim().to_string());
                }
            }
        }
    }
    None
}

/// Where the index URL came from, for the summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct IndexChoice {
    pub index_url: String,
    pub source: String,
}

/// The index to use: the flag, `PYTORRENT_INDEX_URL`, `PIP_INDEX_URL`, pip's configuration
/// files (`PIP_CONFIG_FILE`, then the user's and the system's pip.conf), else what the local
/// `python3 -m pip` uses by default.
pub fn resolve_index(flag: Option<&str>) -> Option<IndexChoice> {
    let choice = |url: String, source: &str| {
        Some(IndexChoice {
            index_url: url,
            source: source.into(),
        })
    };
    if let Some(f) = flag {
        return choice(f.to_string(), "--index-url");
    }
    for var in ["PYTORRENT_INDEX_URL", "PIP_INDEX_URL"] {
        if let Ok(v) = std::env::var(var) {
            if !v.trim().is_empty() {
                return choice(v.trim().to_string(), var);
            }
        }
    }
    let mut files: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("PIP_CONFIG_FILE") {
        files.push(p.into());
    }
    if let Some(home) = std::env::var_os("HOME") {
        let home = PathBuf::from(home);
        let xdg = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".config"));
        files.push(xdg.join("pip/pip.conf"));
        files.push(home.join(".pip/pip.conf"));
    }
    files.push(PathBuf::from("/etc/pip.conf"));
    for f in files {
        if let Some(url) = std::fs::read_to_string(&f)
            .ok()
            .as_deref()
            .and_then(pip_conf_index)
        {
            return choice(url, &f.display().to_string());
        }
    }
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "from pip._internal.models.index import PyPI; print(PyPI.simple_url)",
        ])
        .output()
        .ok()?;
    let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !url.is_empty()).then(|| IndexChoice {
        index_url: url,
        source: "python3 -m pip default".into(),
    })
}

/// The projects a simple index lists at its root: PEP 691 JSON (`{"projects": [{"name"}]}`)
/// when the index speaks it, else the anchors of its PEP 503 HTML page.
/// Returns the names that pass [`pytorrent_io::project_name_problem`] and, apart, those that
/// do not.
pub(crate) fn list_projects(
    agent: &ureq::Agent,
    index_url: &str,
    opts: &FetchOptions,
) -> crate::error::Result<(Vec<String>, Vec<String>)> {
    let url = format!("{}/", index_url.trim_end_matches('/'));
    let mut body = Vec::new();
    let mut ctype = None;
    get(
        agent,
        &url,
        opts,
        Some("application/vnd.pypi.simple.v1+json, text/html;q=0.1"),
        opts.max_metadata_bytes,
        &mut |r, t| {
            ctype = t.map(str::to_string);
            body.clear();
            r.read_to_end(&mut body).map(|_| ())
        },
    )
    .map_err(|e| {
        let hint = match e {
            GetError::TooLarge(_) => " (raise --max-metadata-bytes)",
            _ => "",
        };
        crate::error::Error::Remote(format!("{url}: {}{hint}", e.describe()))
    })?;
    let bad = |m: String| crate::error::Error::Remote(format!("{url}: {m}"));
    let names: Vec<String> = if ctype.as_deref().is_some_and(|t| t.contains("json")) {
        let doc: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| bad(format!("invalid JSON: {e}")))?;
        doc["projects"]
            .as_array()
            .ok_or_else(|| bad("no `projects` list".into()))?
            .iter()
            .filter_map(|p| p["name"].as_str().map(str::to_string))
            .collect()
    } else {
        let text = String::from_utf8_lossy(&body);
        text.split("<a")
            .skip(1)
            .filter_map(|a| {
                let inner = a.split_once('>')?.1;
                let name = inner.split_once("</a>")?.0.trim();
                (!name.is_empty()).then(|| name.to_string())
            })
            .collect()
    };
    let (mut names, refused): (Vec<String>, Vec<String>) = names
        .into_iter()
        .partition(|n| pytorrent_io::project_name_problem(n).is_none());
    names.sort_by_key(|n| normalize_name(n));
    names.dedup_by_key(|n| normalize_name(n));
    Ok((names, refused))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_api_is_derived_from_the_simple_index() {
        assert_eq!(
            json_api_from_index("https://index.invalid/simple/"),
            "https://index.invalid/pypi"
        );
        assert_eq!(
            json_api_from_index("https://mirror.invalid/repo/simple"),
            "https://mirror.invalid/repo/pypi"
        );
    }

    #[test]
    fn pip_conf_sections() {
        let conf = "[global]\ntimeout = 60\nindex-url = https://mirror.invalid/simple\n[install]\nindex-url = https://other.invalid/simple\n";
        assert_eq!(
            pip_conf_index(conf).as_deref(),
            Some("https://mirror.invalid/simple")
        );
        assert_eq!(pip_conf_index("[global]\ncert = x\n"), None);
    }
}
