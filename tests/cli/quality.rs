//! What a default `extract` keeps of a package holding every case users hit
//! (`tests/fixtures/quality/`): no vendored code, no code rewritten that holds no secret, the
//! credential and the address still redacted, no control character in NL fields, comments
//! read by the documented rules.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;

use crate::util::*;

fn records(dir: &std::path::Path, scenario: &str) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let mut stack = vec![dir.join(scenario)];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(".jsonl.gz") {
                let mut text = String::new();
                flate2::read::MultiGzDecoder::new(fs::File::open(&p).unwrap())
                    .read_to_string(&mut text)
                    .unwrap();
                out.extend(text.lines().map(|l| serde_json::from_str(l).unwrap()));
            }
        }
    }
    out
}

#[test]
fn a_default_extract_keeps_no_vendored_code_rewrites_no_clean_code_and_cleans_nl_fields() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = root().join("tests/fixtures/quality");
    let out = dir.path().join("out");
    let o = pt!(
        "extract",
        fixtures.join("qualitypkg-1.0"),
        fixtures.join("vendor-2.0"),
        "--out",
        &out,
        "--scenario",
        "docstrings,comments,both",
        "--json"
    )
    .ok();
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();

    // Vendored trees of every kind are left out, counted by rule and by project; the
    // project named `vendor` keeps its own code.
    let rules: BTreeMap<String, u64> = serde_json::from_value(report["vendored"].clone()).unwrap();
    let want: BTreeMap<String, u64> = [
        ("node_modules", 1),
        ("site-packages", 2),
        ("vendor", 4),
        ("virtualenv", 2),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(rules, want);
    for project in [
        "pandas",
        "IPython",
        "six",
        "node-gyp",
        "requests",
        "tqdm",
        "configobj",
        "attr",
    ] {
        assert_eq!(report["vendored_projects"][project], 1, "{project}");
    }
    assert!(
        stderr(&o).contains("vendored files left out"),
        "{}",
        stderr(&o)
    );
    let docs = records(&out, "docstrings");
    let by_name: BTreeMap<String, &serde_json::Value> = docs
        .iter()
        .map(|r| (r["func_name"].as_str().unwrap().to_string(), r))
        .collect();
    assert!(
        docs.iter()
            .all(|r| !r["func_name"].as_str().unwrap().starts_with("vendored_")),
        "no vendored record"
    );
    assert!(by_name.contains_key("own_vendor_init") && by_name.contains_key("own_vendor_tools"));

    // Code without a secret is written exactly as in the file.
    let source = fs::read_to_string(fixtures.join("qualitypkg-1.0/qualitypkg/core.py")).unwrap();
    for name in [
        "ssh_remote_host",
        "credentials_pattern",
        "percent_encoding_note",
        "make_message_id",
        "addon_manifest",
        "latex_reference",
        "keeps_tabs_and_newlines",
        "commented_steps",
    ] {
        let r = by_name[name];
        let original = r["original_string"].as_str().unwrap();
        assert!(
            source.contains(original),
            "{name} was rewritten:\n{original}"
        );
    }
    // The credential and the address are still redacted.
    let db = by_name["production_database"]["original_string"]
        .as_str()
        .unwrap();
    assert!(db.contains("postgres://admin:<SECRET>@db.internal") && !db.contains("S3cr3t"));
    let who = by_name["maintainer_address"]["original_string"]
        .as_str()
        .unwrap();
    assert!(who.contains("<EMAIL>") && !who.contains("jane.roe"));
    // Once in each scenario that writes the function (docstrings and both).
    assert_eq!(report["scrubbed"]["url_password"], 2);
    assert_eq!(report["scrubbed"]["email"], 2);

    // NL fields hold no control character but newline and tab; `\ref` reads `\ref`.
    for scenario in ["docstrings", "comments", "both"] {
        for r in records(&out, scenario) {
            for field in ["docstring", "summary"] {
                let text = r[field].as_str().unwrap();
                assert!(
                    !text
                        .chars()
                        .any(|c| c.is_control() && c != '\n' && c != '\t'),
                    "{scenario} {field}: {text:?}"
                );
            }
            for t in r["docstring_tokens"].as_array().unwrap() {
                assert!(!t.as_str().unwrap().chars().any(char::is_control), "{t}");
            }
        }
    }
    let latex = by_name["latex_reference"]["docstring"].as_str().unwrap();
    assert!(
        latex.starts_with("See \\ref{eq:one} and the \\beta weights"),
        "{latex:?}"
    );
    // A `\t` escape is a tab, which the docstring's cleaning expands (as `inspect.cleandoc`
    // does); newlines stay.
    let tabs = by_name["keeps_tabs_and_newlines"]["docstring"]
        .as_str()
        .unwrap();
    assert!(
        tabs.contains("here and the newline\ncharacters"),
        "{tabs:?}"
    );

    // Comments: `##` and one space go, `#######` lines and tool pragmas are dropped.
    let comments = records(&out, "comments");
    let steps = comments
        .iter()
        .find(|r| r["func_name"] == "commented_steps")
        .unwrap();
    assert_eq!(
        steps["docstring"],
        "Section: clean the input\ntight comment\nthe sum"
    );
}
