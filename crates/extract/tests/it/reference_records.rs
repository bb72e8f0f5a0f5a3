//! Whole records from `extract_package` against the CPython-`ast` reference
//! (`scripts/reference/ast_extract.py`), whose output on the real sdists in
//! data-samples/packages/ is the committed sample corpus, for the docstrings scenario: the
//! same functions (package, path, qualified name), and the same fields.
//!
//! Fields compared for equality: repo, path, func_name, original_string, code, docstring,
//! docstring_tokens, summary, url, sha, partition. Documented differences:
//! - `code_tokens`: ours come from the Python parser's own token stream, the reference's from
//!   CPython 3.11's `tokenize`. They differ only in f-strings, which CPython 3.11 returns as
//!   one STRING token and our parser (like CPython 3.12+) splits into start / middle /
//!   expression / end tokens; every other record must match exactly.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

use pytorrent_extract::package::{extract_package, ExtractOptions, Filters, Split};
use pytorrent_extract::units::Scenario;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn docstring_records_equal_the_reference_records() {
    let mut want: BTreeMap<(String, String, String), serde_json::Value> = BTreeMap::new();
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
            let key = (
                r["repo"].as_str().unwrap().into(),
                r["url"].as_str().unwrap().into(),
                r["func_name"].as_str().unwrap().into(),
            );
            want.insert(key, r);
        }
    }
    let opts = ExtractOptions {
        scenarios: vec![Scenario::Docstrings],
        split: Split::default(),
        limits: Default::default(),
        filters: Filters::none(),
        opt_out: None,
        scrub: false,
    };
    let mut got = BTreeMap::new();
    let mut archives: Vec<PathBuf> = std::fs::read_dir(root().join("data-samples/packages"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .collect();
    archives.sort();
    for a in &archives {
        let (outs, report) = extract_package(a, &opts);
        assert!(!report.has_problems(), "{report:?}");
        for o in outs {
            let r = serde_json::to_value(&o.record).unwrap();
            let key = (
                r["repo"].as_str().unwrap().into(),
                r["url"].as_str().unwrap().into(),
                r["func_name"].as_str().unwrap().into(),
            );
            got.insert(key, r);
        }
    }
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "same functions"
    );
    let mut token_differences = 0;
    for (k, w) in &want {
        let g = &got[k];
        for field in [
            "original_string",
            "code",
            "docstring",
            "docstring_tokens",
            "summary",
            "sha",
            "partition",
        ] {
            assert_eq!(g[field], w[field], "{k:?}: {field}");
        }
        if g["code_tokens"] != w["code_tokens"] {
            token_differences += 1;
            let has_fstring = w["code_tokens"].as_array().unwrap().iter().any(|t| {
                let t = t.as_str().unwrap().to_ascii_lowercase();
                t.starts_with("f'")
                    || t.starts_with("f\"")
                    || t.starts_with("rf")
                    || t.starts_with("fr")
            });
            assert!(
                has_fstring,
                "{k:?}: code_tokens differ without an f-string:\n ours {}\n ref  {}",
                g["code_tokens"], w["code_tokens"]
            );
        }
    }
    eprintln!(
        "code_tokens differ (f-strings) in {token_differences} of {} records",
        want.len()
    );
    assert!(
        token_differences < want.len() / 10,
        "{token_differences} records differ in code_tokens"
    );
}

#[test]
fn control_characters_from_docstring_escapes_are_written_back_as_escapes() {
    // A non-raw docstring: CPython's `ast` (and so the reference) reads `\ref` as a carriage
    // return and "ef", `\beta` as a backspace and "eta". The NL fields carry the escapes as
    // written (scripts/reference/ast_extract.py applies the same rule); the code, exact.
    let dir = tempfile::tempdir().unwrap();
    let pkg = dir.path().join("latexdoc-1.0");
    std::fs::create_dir_all(&pkg).unwrap();
    let source = "def area(r):\n    \"\"\"Area, as in \\ref{eq:area}; \\beta is \\x00 here.\n\n    More.\n    \"\"\"\n    x = r * r\n    y = x * 3.14159\n    return y\n";
    std::fs::write(pkg.join("latexdoc.py"), source).unwrap();
    let opts = ExtractOptions {
        scenarios: vec![Scenario::Docstrings],
        split: Split::default(),
        limits: Default::default(),
        filters: Filters::none(),
        opt_out: None,
        scrub: false,
    };
    let (outs, report) = extract_package(&pkg, &opts);
    assert_eq!(outs.len(), 1);
    let r = &outs[0].record;
    assert_eq!(
        r.docstring,
        "Area, as in \\ref{eq:area}; \\beta is \\x00 here.\n\nMore."
    );
    assert_eq!(
        r.summary,
        Some(Some(
            "Area, as in \\ref{eq:area}; \\beta is \\x00 here.".to_string()
        ))
    );
    // As the reference's word tokens of its summary give them.
    let want = [
        "Area", ",", "as", "in", "\\", "ref", "{", "eq", ":", "area", "}", ";", "\\", "beta", "is",
        "\\", "x00", "here", ".",
    ];
    assert_eq!(r.docstring_tokens, want);
    assert_eq!(r.original_string, source.trim_end());
    assert_eq!(report.nl_control_chars, 1);
}
