//! The pipeline file: a `[pipeline]` table (where the run goes) and one table per stage,
//! each that stage's config with the keys of its command's flags. A stage runs when its
//! table is present. Paths are relative to the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::stage::Stage;
use crate::{Error, Result};

/// A parsed pipeline file.
#[derive(Debug, Clone)]
pub struct PipelineFile {
    /// The file itself.
    pub path: PathBuf,
    /// Its folder, absolute: relative paths in the file start here.
    pub dir: PathBuf,
    /// The run folder (absolute): every stage's output, the stamps and the report.
    pub out: PathBuf,
    /// The scenario of the corpus that the tokenizer, pack and the checks read (default: the
    /// first of `extract.scenario`).
    pub scenario: Option<String>,
    /// Where the HTML report goes (absolute).
    pub report: PathBuf,
    /// A title for the report.
    pub title: String,
    /// The tables of the stages present, by stage.
    pub sections: BTreeMap<Stage, toml::Table>,
}

const PIPELINE_KEYS: [&str; 4] = ["out", "scenario", "report", "title"];

impl PipelineFile {
    /// Reads a pipeline file; `out` (from the command line, relative to the working folder)
    /// replaces the file's own `[pipeline] out`.
    pub fn load(path: &Path, out: Option<&Path>) -> Result<PipelineFile> {
        let text = std::fs::read_to_string(path).map_err(|e| pytorrent_io::Error::io(path, e))?;
        let dir = absolute(path.parent().unwrap_or(Path::new("")))?;
        Self::parse(&text, path, &dir, out)
    }

    pub fn parse(text: &str, path: &Path, dir: &Path, out: Option<&Path>) -> Result<PipelineFile> {
        let bad = |m: String| Error::Usage(format!("{}: {m}", path.display()));
        let mut table: toml::Table = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        let pipeline = match table.remove("pipeline") {
            None => toml::Table::new(),
            Some(toml::Value::Table(t)) => t,
            Some(_) => return Err(bad("[pipeline] must be a table".into())),
        };
        for key in pipeline.keys() {
            if !PIPELINE_KEYS.contains(&key.as_str()) {
                return Err(bad(format!(
                    "[pipeline] has no key {key:?} (keys: {})",
                    PIPELINE_KEYS.join(", ")
                )));
            }
        }
        let string = |key: &str| -> Result<Option<String>> {
            match pipeline.get(key) {
                None => Ok(None),
                Some(toml::Value::String(s)) => Ok(Some(s.clone())),
                Some(v) => Err(bad(format!("[pipeline] {key}: expected a string, got {v}"))),
            }
        };
        let stem = path
            .file_stem()
            .map_or("pipeline".to_string(), |s| s.to_string_lossy().into_owned());
        let out = match (out, string("out")?) {
            (Some(o), _) => absolute(o)?,
            (None, Some(o)) => normalize(&dir.join(o)),
            (None, None) => dir.join(format!("{stem}-run")),
        };
        let report = match string("report")? {
            Some(r) => normalize(&dir.join(r)),
            None => out.join("report.html"),
        };
        let mut sections = BTreeMap::new();
        for (key, value) in table {
            let toml::Value::Table(t) = value else {
                return Err(bad(format!("{key} must be a table ([{key}])")));
            };
            if key == "eval" {
                for (sub, value) in t {
                    let stage = match sub.parse::<Stage>() {
                        Ok(s) if s.section().starts_with("eval.") => s,
                        _ => {
                            return Err(bad(format!(
                                "[eval.{sub}]: not a check (fill_mask, cloze, retrieval, overlap)"
                            )))
                        }
                    };
                    let toml::Value::Table(t) = value else {
                        return Err(bad(format!("eval.{sub} must be a table")));
                    };
                    sections.insert(stage, t);
                }
                continue;
            }
            let stage = match key.parse::<Stage>() {
                Ok(s) if !s.section().starts_with("eval.") => s,
                _ => {
                    return Err(bad(format!(
                        "[{key}]: not a stage (pipeline, fetch, extract, stats, tokenizer, pack, \
                         pretrain, eval.fill_mask, eval.cloze, eval.retrieval, eval.overlap)"
                    )))
                }
            };
            sections.insert(stage, t);
        }
        if sections.is_empty() {
            return Err(bad(
                "no stage: give at least one stage table, e.g. [extract]".into(),
            ));
        }
        Ok(PipelineFile {
            path: path.to_path_buf(),
            dir: dir.to_path_buf(),
            out,
            scenario: string("scenario")?,
            report,
            title: string("title")?.unwrap_or(stem),
            sections,
        })
    }

    /// The stages present, in running order.
    pub fn stages(&self) -> Vec<Stage> {
        self.sections.keys().copied().collect()
    }
}

/// An absolute path without resolving links (so the report shows the paths people wrote).
pub fn absolute(p: &Path) -> Result<PathBuf> {
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    let cwd = std::env::current_dir().map_err(|e| pytorrent_io::Error::io(".", e))?;
    Ok(normalize(&cwd.join(p)))
}

/// `a/./b/../c` → `a/c`, lexically.
pub fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<PipelineFile> {
        PipelineFile::parse(text, Path::new("/c/p.toml"), Path::new("/c"), None)
    }

    #[test]
    fn stages_come_in_running_order_whatever_the_file_order() {
        let f = parse("[eval.overlap]\n[pack]\n[extract]\ninputs=['x']\n").unwrap();
        assert_eq!(
            f.stages(),
            vec![Stage::Extract, Stage::Pack, Stage::Overlap]
        );
        assert_eq!(f.out, Path::new("/c/p-run"));
        assert_eq!(f.report, Path::new("/c/p-run/report.html"));
    }

    #[test]
    fn typos_are_usage_errors_naming_the_key() {
        let e = parse("[extrct]\n").unwrap_err().to_string();
        assert!(e.contains("[extrct]: not a stage"), "{e}");
        let e = parse("[pipeline]\nuot='x'\n[extract]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no key \"uot\""), "{e}");
        let e = parse("[eval.clozze]\n").unwrap_err().to_string();
        assert!(e.contains("eval.clozze"), "{e}");
        assert!(matches!(parse(""), Err(Error::Usage(_))));
    }
}
