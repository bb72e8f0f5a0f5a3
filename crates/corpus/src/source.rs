//! Finding corpus files: explicit files, standard input (`-`), and folders in PyTorrent's
//! layout (`<scenario>/{train,valid,test}/*_scenario_*_chk_N.jsonl.gz`) or CodeSearchNet's
//! (`python/final/jsonl/{train,valid,test}/*.jsonl.gz`). Files come in a stable order:
//! inputs as given, and inside a folder by relative path in natural order (`chk_2` before
//! `chk_10`).

use std::cmp::Ordering;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::record::Partition;

/// One input file and what its location says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFile {
    /// Where to read it (`-` for standard input).
    pub path: PathBuf,
    /// Path relative to the folder it was found in (the file name for explicit files); output
    /// that mirrors the input layout uses it.
    pub rel: PathBuf,
    /// Partition named by an enclosing folder (`train`, `valid`, `test`).
    pub partition: Option<Partition>,
    /// The folder above the partition folder in PyTorrent's layout (`docstrings`, `both`, …).
    pub scenario: Option<String>,
    /// Size on disk, for progress (unknown for standard input).
    pub size: Option<u64>,
}

impl InputFile {
    pub fn is_stdin(&self) -> bool {
        self.path == Path::new("-")
    }

    pub fn display(&self) -> String {
        if self.is_stdin() {
            "<stdin>".into()
        } else {
            self.path.display().to_string()
        }
    }
}

const SUFFIXES: &[&str] = &[
    ".jsonl",
    ".jsonl.gz",
    ".jsonl.gzip",
    ".jsonl.zst",
    ".jsonl.zstd",
    ".ndjson",
    ".ndjson.gz",
    ".ndjson.zst",
    ".parquet",
];

/// True for names the folder walk picks up as corpus files.
pub fn is_corpus_file_name(name: &str) -> bool {
    !name.starts_with('.') && SUFFIXES.iter().any(|s| name.ends_with(s))
}

/// Compares strings so that digit runs compare by value: `chk_2` < `chk_10`.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, _) => return Ordering::Less,
            (_, None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (na, nb) = (&a[..da], &b[..db]);
                let ta = trim_zeros(na);
                let tb = trim_zeros(nb);
                let ord = ta
                    .len()
                    .cmp(&tb.len())
                    .then_with(|| ta.cmp(tb))
                    .then_with(|| da.cmp(&db));
                if ord != Ordering::Equal {
                    return ord;
                }
                a = &a[da..];
                b = &b[db..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let n = d.iter().take_while(|c| **c == b'0').count();
    &d[n.min(d.len().saturating_sub(1))..]
}

/// A partition folder: `train`, `valid`, `test` or their usual aliases (`validation`,
/// `dev`, `val`, `training`, `testing`).
fn partition_of_dir(name: &str) -> Option<Partition> {
    Partition::parse(name)
}

/// The partition a file's own name gives, Hugging Face style: a word of the name before its
/// extension (`train-00000-of-00003.parquet`, `validation.jsonl`, `python_test_0.jsonl.gz`).
fn partition_of_file_name(name: &str) -> Option<Partition> {
    let stem = name.split('.').next().unwrap_or(name);
    stem.split(['-', '_']).find_map(Partition::parse)
}

/// The scenarios of PyTorrent, as config folders of a Hugging Face layout name them.
const SCENARIOS: [&str; 3] = ["docstrings", "comments", "both"];

/// Partition and scenario named by a file's location: the nearest folder named for a
/// partition and the folder just above it (unless that is CodeSearchNet's `jsonl`); else the
/// file's own name, and a scenario folder holding it. Folders are looked at up to `depth`
/// levels up (those inside the input folder and the input folder itself, or two for a file
/// given by itself): where a corpus lives on disk says nothing about its records.
fn hints(path: &Path, depth: usize) -> (Option<Partition>, Option<String>) {
    let mut dirs = path.ancestors().skip(1).take(depth);
    while let Some(d) = dirs.next() {
        let Some(name) = d.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some(p) = partition_of_dir(name) {
            let scenario = dirs
                .next()
                .and_then(|s| s.file_name())
                .and_then(|n| n.to_str())
                .filter(|n| *n != "jsonl")
                .map(str::to_owned);
            return (Some(p), scenario);
        }
    }
    let file = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let scenario = path
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .filter(|n| SCENARIOS.contains(n))
        .map(str::to_owned);
    (partition_of_file_name(file), scenario)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<InputFile>) -> Result<()> {
    let entries = fs::read_dir(dir).map_err(|e| pytorrent_io::Error::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| pytorrent_io::Error::io(dir, e))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == pytorrent_io::atomic::INCOMPLETE_MARKER {
            return Err(pytorrent_io::atomic::incomplete_error(dir).into());
        }
        if name.starts_with('.') {
            continue; // hidden files include our own unfinished temporary outputs
        }
        // Follows symlinks, so a corpus assembled from links reads as the files themselves.
        let meta = fs::metadata(&path).map_err(|e| pytorrent_io::Error::io(&path, e))?;
        if meta.is_dir() {
            walk(root, &path, out)?;
        } else if meta.is_file() && is_corpus_file_name(&name) {
            let rel = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
            let (partition, scenario) = hints(&path, rel.components().count());
            out.push(InputFile {
                path,
                rel,
                partition,
                scenario,
                size: Some(meta.len()),
            });
        }
    }
    Ok(())
}

/// Expands inputs (files, folders, `-`) into corpus files, in a stable order.
pub fn discover(inputs: &[PathBuf]) -> Result<Vec<InputFile>> {
    if inputs.is_empty() {
        return Err(Error::Usage(
            "no input given (pass files, folders, or - for standard input)".into(),
        ));
    }
    let mut files = Vec::new();
    for input in inputs {
        if input == Path::new("-") {
            files.push(InputFile {
                path: input.clone(),
                rel: PathBuf::from("stdin.jsonl"),
                partition: None,
                scenario: None,
                size: None,
            });
            continue;
        }
        let meta = fs::metadata(input).map_err(|e| pytorrent_io::Error::io(input, e))?;
        // Our own chunked outputs sit at most three levels above a file
        // (`out/scenario/partition/chunk`); a folder may hold one anywhere below.
        let levels = if meta.is_dir() { 0 } else { 3 };
        if let Some(dir) = pytorrent_io::atomic::incomplete_output(input, levels) {
            return Err(pytorrent_io::atomic::incomplete_error(&dir).into());
        }
        if meta.is_dir() {
            let mut found = Vec::new();
            walk(input, input, &mut found)?;
            if found.is_empty() {
                return Err(Error::Usage(format!(
                    "{}: no corpus files (*.jsonl, *.jsonl.gz, *.jsonl.zst, *.parquet) in this folder",
                    input.display()
                )));
            }
            found.sort_by(|a, b| natural_cmp(&a.rel.to_string_lossy(), &b.rel.to_string_lossy()));
            files.extend(found);
        } else {
            let (partition, scenario) = hints(input, 2);
            let rel = PathBuf::from(input.file_name().unwrap_or(input.as_os_str()));
            files.push(InputFile {
                path: input.clone(),
                rel,
                partition,
                scenario,
                size: Some(meta.len()),
            });
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order() {
        let mut v = vec!["a_chk_10", "a_chk_2", "a_chk_1", "b", "a_chk_02"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["a_chk_1", "a_chk_2", "a_chk_02", "a_chk_10", "b"]);
    }

    #[test]
    fn layouts_give_partition_and_scenario() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for rel in [
            "both/train/train_scenario_both_chk_10.jsonl.gz",
            "both/train/train_scenario_both_chk_2.jsonl.gz",
            "both/valid/valid_scenario_both_chk_0.jsonl.gz",
            "python/final/jsonl/test/python_test_0.jsonl.gz",
            "both/train/.train_scenario_both_chk_3.jsonl.gz.abc.tmp",
            "README.md",
        ] {
            let p = root.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, b"").unwrap();
        }
        let files = discover(&[root.to_path_buf()]).unwrap();
        let rels: Vec<_> = files
            .iter()
            .map(|f| f.rel.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            rels,
            [
                "both/train/train_scenario_both_chk_2.jsonl.gz",
                "both/train/train_scenario_both_chk_10.jsonl.gz",
                "both/valid/valid_scenario_both_chk_0.jsonl.gz",
                "python/final/jsonl/test/python_test_0.jsonl.gz",
            ]
        );
        assert_eq!(files[0].partition, Some(Partition::Train));
        assert_eq!(files[0].scenario.as_deref(), Some("both"));
        assert_eq!(files[2].partition, Some(Partition::Valid));
        assert_eq!(files[3].partition, Some(Partition::Test));
        assert_eq!(files[3].scenario, None);
    }

    #[test]
    fn hugging_face_layouts_and_folders_above_the_input() {
        // Above the input, a folder called `test` says nothing about the corpus inside.
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("test/corpus");
        for rel in [
            "data/train-00000-of-00002.parquet",
            "data/train-00001-of-00002.parquet",
            "data/validation-00000-of-00001.parquet",
            "both/test-00000-of-00001.parquet",
            "dev/part.jsonl",
            "misc.jsonl",
        ] {
            let p = root.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, b"").unwrap();
        }
        let files = discover(std::slice::from_ref(&root)).unwrap();
        let got: Vec<(String, Option<Partition>, Option<String>)> = files
            .iter()
            .map(|f| {
                (
                    f.rel.to_string_lossy().into_owned(),
                    f.partition,
                    f.scenario.clone(),
                )
            })
            .collect();
        let want = [
            (
                "both/test-00000-of-00001.parquet",
                Some(Partition::Test),
                Some("both"),
            ),
            (
                "data/train-00000-of-00002.parquet",
                Some(Partition::Train),
                None,
            ),
            (
                "data/train-00001-of-00002.parquet",
                Some(Partition::Train),
                None,
            ),
            (
                "data/validation-00000-of-00001.parquet",
                Some(Partition::Valid),
                None,
            ),
            // The folder above a partition folder is its scenario, as in PyTorrent's layout.
            ("dev/part.jsonl", Some(Partition::Valid), Some("corpus")),
            ("misc.jsonl", None, None),
        ];
        let want: Vec<(String, Option<Partition>, Option<String>)> = want
            .iter()
            .map(|(r, p, s)| (r.to_string(), *p, s.map(str::to_string)))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn empty_folder_and_missing_file_are_usage_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert!(discover(&[dir.path().to_path_buf()])
            .unwrap_err()
            .is_usage());
        assert!(discover(&[dir.path().join("nope.jsonl")])
            .unwrap_err()
            .is_usage());
        assert!(discover(&[]).unwrap_err().is_usage());
    }
}
