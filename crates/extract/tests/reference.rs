//! Our extractor against the CPython-`ast` reference (`scripts/reference/ast_extract.py`) on
//! the real sdists in data-samples/packages/. The reference's output is the committed sample
//! corpus (data-samples/corpus), whose records carry `path`, `func_name` and `docstring`.
//!
//! Every difference must be explained by a documented rule; the rules in force:
//! 1. Files CPython 3 cannot parse (e.g. Python 2 syntax) give the reference nothing; ours
//!    recovers and yields what parses. Such files are compared only for functions the
//!    reference has (none), so they may add functions on our side only.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::PathBuf;

use pytorrent_extract::archive::{read, strip_top_folder, Limits};
use pytorrent_extract::python::functions;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

type Key = (String, String, String, String); // package, path, qualname, docstring

fn reference() -> BTreeSet<Key> {
    let mut set = BTreeSet::new();
    for part in ["train", "valid", "test"] {
        let p = root().join(format!(
            "data-samples/corpus/docstrings/{part}/{part}_scenario_docstrings_chk_0.jsonl.gz"
        ));
        let mut text = String::new();
        pytorrent_io::open_input(&p, None)
            .unwrap()
            .reader
            .read_to_string(&mut text)
            .unwrap();
        for line in text.lines() {
            let r: serde_json::Value = serde_json::from_str(line).unwrap();
            let s = |k: &str| r[k].as_str().unwrap().to_string();
            set.insert((s("repo"), s("path"), s("func_name"), s("docstring")));
        }
    }
    set
}

#[test]
fn same_functions_and_docstrings_as_the_cpython_reference() {
    let want = reference();
    let mut got = BTreeSet::new();
    let mut files_with_errors = BTreeSet::new();
    let packages = root().join("data-samples/packages");
    let mut archives: Vec<PathBuf> = std::fs::read_dir(&packages)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .collect();
    archives.sort();
    assert_eq!(archives.len(), 10);
    for a in &archives {
        let file = a.file_name().unwrap().to_string_lossy();
        // "more_itertools-10.7.0.tar.gz" → the package name the corpus uses.
        let stem = file.trim_end_matches(".tar.gz");
        let name = stem.rsplit_once('-').unwrap().0.replace('_', "-");
        let mut c = read(a, &Limits::default());
        assert!(c.error.is_none(), "{file}: {:?}", c.error);
        assert!(c.refused.is_empty(), "{file}: {:?}", c.refused);
        strip_top_folder(&mut c.members);
        for m in &c.members {
            let Ok(src) =
                std::str::from_utf8(m.bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&m.bytes))
            else {
                continue;
            };
            let (fs, errors) = functions(src);
            if errors > 0 {
                files_with_errors.insert((name.clone(), m.path.clone()));
            }
            for f in fs {
                if let Some(doc) = f.docstring.filter(|d| !d.is_empty()) {
                    got.insert((name.clone(), m.path.clone(), f.qualname, doc));
                }
            }
        }
    }
    let missing: Vec<&Key> = want.difference(&got).collect();
    let extra: Vec<&Key> = got
        .difference(&want)
        .filter(|(pkg, path, _, _)| !files_with_errors.contains(&(pkg.clone(), path.clone())))
        .collect();
    assert!(
        missing.is_empty(),
        "{} reference functions not found, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(3)]
    );
    assert!(
        extra.is_empty(),
        "{} functions the reference does not have, e.g. {:?}",
        extra.len(),
        &extra[..extra.len().min(3)]
    );
    assert_eq!(
        got.len() - files_with_errors_count(&got, &files_with_errors),
        want.len()
    );
}

fn files_with_errors_count(got: &BTreeSet<Key>, files: &BTreeSet<(String, String)>) -> usize {
    got.iter()
        .filter(|(pkg, path, _, _)| files.contains(&(pkg.clone(), path.clone())))
        .count()
}
