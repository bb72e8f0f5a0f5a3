//! End-to-end tests of `pytorrent corpus …` on data-samples/ and on corpora built here.

use std::fs;
use std::path::Path;

use crate::util::*;

#[test]
fn stats_matches_the_python_reference_on_the_samples() {
    // tests/fixtures/data-samples-stats.json was made by scripts/bench/py_stats.py.
    let want: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(root().join("tests/fixtures/data-samples-stats.json")).unwrap(),
    )
    .unwrap();
    let out = pt!("corpus", "stats", samples(), "--json", "--quiet").ok();
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "records",
        "distinct_packages",
        "records_per_partition",
        "top_packages",
    ] {
        assert_eq!(got[key], want[key], "{key}");
    }
    for key in [
        "code_chars",
        "code_whitespace_tokens",
        "docstring_chars",
        "docstring_whitespace_tokens",
    ] {
        for stat in [
            "count", "min", "p10", "p25", "p50", "p75", "p90", "p99", "max", "mean",
        ] {
            assert_eq!(got[key][stat], want[key][stat], "{key}.{stat}");
        }
    }
    for key in ["with_docstring", "with_summary", "exact_duplicates"] {
        assert_eq!(got[key]["count"], want[key], "{key}");
    }
}

#[test]
fn stats_joins_metadata_and_writes_a_self_contained_report() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.html");
    let out = pt!(
        "corpus",
        "stats",
        samples(),
        "--metadata",
        metadata(),
        "--report",
        report,
        "--json",
        "--quiet"
    )
    .ok();
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Every sample package is permissively licensed, by construction of data-samples/.
    assert_eq!(
        got["licenses"]["records_by_class"]["permissive"],
        got["records"]
    );
    assert_eq!(got["licenses"]["packages_by_class"]["permissive"], 10);
    assert!(
        got["licenses"]["records_by_license"]["MIT"]
            .as_u64()
            .unwrap()
            > 0
    );
    let html = fs::read_to_string(&report).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(
        html.matches("<svg").count() >= 4,
        "length histograms, packages, licenses"
    );
    assert!(html.contains("more-itertools"));
    assert!(
        !html.contains("<script") && !html.contains("src=\"http"),
        "self-contained"
    );
}

#[test]
fn human_table_names_partitions_and_top_packages() {
    let out = pt!("corpus", "stats", samples()).ok();
    let s = stdout(&out);
    assert!(s.contains("records             524"), "{s}");
    assert!(s.contains("partition valid"), "{s}");
    assert!(s.contains("more-itertools"), "{s}");
}

struct BadCase {
    name: &'static str,
    file: &'static str,
    bytes: Vec<u8>,
    /// Expected `file:line:` suffix (line number) and a phrase of the message.
    line: u64,
    phrase: &'static str,
    kind: &'static str,
}

fn bad_cases() -> Vec<BadCase> {
    let good = record("pkg", "def f():\n    return 1");
    let mut truncated = Vec::new();
    for i in 0..3000 {
        truncated.extend(record(&format!("p{i}"), &format!("def f{i}(): return {i}")).into_bytes());
        truncated.push(b'\n');
    }
    let gz = gzip(&truncated);
    let cut = gz[..gz.len() / 2].to_vec();
    vec![
        BadCase {
            name: "invalid json",
            file: "a.jsonl",
            bytes: format!("{good}\n{{\"repo\": \"x\",\n").into_bytes(),
            line: 2,
            phrase: "invalid JSON",
            kind: "invalid_json",
        },
        BadCase {
            name: "invalid utf-8",
            file: "b.jsonl",
            bytes: {
                let mut v = format!("{good}\n{good}\n").into_bytes();
                let bad = good.replacen("Does f.", "Does \u{1}f.", 1).into_bytes();
                let pos = bad.iter().position(|b| *b == 1).unwrap();
                let mut bad = bad;
                bad[pos] = 0xff;
                v.extend(bad);
                v.push(b'\n');
                v
            },
            line: 3,
            phrase: "invalid UTF-8",
            kind: "invalid_utf8",
        },
        BadCase {
            name: "wrong field type",
            file: "c.jsonl",
            bytes: format!(
                "{}\n",
                good.replacen("\"code_tokens\":[\"def\"", "\"code_tokens\":[7", 1)
            )
            .into_bytes(),
            line: 1,
            phrase: "field `code_tokens[0]`",
            kind: "wrong_type",
        },
        BadCase {
            name: "missing required field",
            file: "d.jsonl",
            bytes: {
                let mut v: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_str(&good).unwrap();
                v.remove("docstring");
                format!("{good}\n{}\n", serde_json::Value::Object(v)).into_bytes()
            },
            line: 2,
            phrase: "missing required field `docstring`",
            kind: "missing_field",
        },
        BadCase {
            name: "truncated gzip",
            file: "e.jsonl.gz",
            bytes: cut,
            line: 0,
            phrase: "truncated",
            kind: "compression",
        },
        BadCase {
            name: "not gzip",
            file: "f.jsonl.gz",
            bytes: b"BZh91AY&SY\x00\x01".to_vec(),
            line: 0,
            phrase: "not a gzip stream",
            kind: "compression",
        },
        BadCase {
            name: "not an object",
            file: "g.jsonl",
            bytes: format!("{good}\n[1, 2]\n").into_bytes(),
            line: 2,
            phrase: "not a JSON object",
            kind: "not_an_object",
        },
    ]
}

#[test]
fn every_bad_input_case_names_file_line_and_problem() {
    let dir = tempfile::tempdir().unwrap();
    for case in bad_cases() {
        let path = dir.path().join(case.file);
        fs::write(&path, &case.bytes).unwrap();
        let p = path.to_str().unwrap();
        for cmd in ["validate", "stats"] {
            let out = pt!("corpus", cmd, p, "--quiet").run();
            assert_eq!(
                code(&out),
                1,
                "{}: {cmd} must exit 1: {}",
                case.name,
                stderr(&out)
            );
            let err = stderr(&out);
            let located = if case.line == 0 {
                format!("{p}:")
            } else {
                format!("{p}:{}:", case.line)
            };
            assert!(
                err.contains(&located),
                "{}: {cmd}: no location {located} in {err}",
                case.name
            );
            assert!(
                err.contains(case.phrase),
                "{}: {cmd}: no '{}' in {err}",
                case.name,
                case.phrase
            );
        }
        let out = pt!("corpus", "validate", p, "--json", "--quiet").run();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["valid"], false, "{}", case.name);
        assert_eq!(v["problems"][0]["kind"], case.kind, "{}", case.name);
    }
}

#[test]
fn truncated_gzip_is_reported_at_the_line_after_the_last_complete_one() {
    let dir = tempfile::tempdir().unwrap();
    let case = bad_cases()
        .into_iter()
        .find(|c| c.name == "truncated gzip")
        .unwrap();
    let path = dir.path().join(case.file);
    fs::write(&path, &case.bytes).unwrap();
    let out = pt!("corpus", "validate", path, "--json", "--quiet").run();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let records = v["summary"]["records"].as_u64().unwrap();
    assert!(
        records > 0 && records < 3000,
        "records before the cut are read: {records}"
    );
    assert!(v["problems"][0]["line"].as_u64().unwrap() > records);
}

#[test]
fn skip_policy_quarantines_rejected_lines_verbatim_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let good = record("pkg", "def f():\n    return 1");
    let bad_json = "{\"repo\": oops}";
    let bad_type = good.replacen("\"repo\":\"pkg\"", "\"repo\":42", 1);
    let input = format!("{good}\n{bad_json}\n{good}\n{bad_type}\n");
    let path = dir.path().join("in.jsonl");
    fs::write(&path, &input).unwrap();
    let out_path = dir.path().join("out.jsonl");
    let out = pt!(
        "corpus",
        "convert",
        path,
        "--out",
        out_path,
        "--on-error",
        "skip",
        "--json"
    )
    .ok();
    assert_eq!(
        fs::read_to_string(&out_path).unwrap(),
        format!("{good}\n{good}\n")
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["read"]["rejected"]["invalid_json"], 1);
    assert_eq!(v["read"]["rejected"]["wrong_type"], 1);
    assert_stderr_has(&out, "skipped 2 bad lines");
    let q = dir.path().join("out.jsonl.rejected.tsv");
    let quarantine = fs::read_to_string(&q).unwrap();
    let rows: Vec<&str> = quarantine.lines().collect();
    assert_eq!(rows.len(), 3, "header and two rows: {quarantine}");
    let cells: Vec<&str> = rows[1].splitn(5, '\t').collect();
    assert_eq!(cells[0], path.to_str().unwrap());
    assert_eq!(cells[1], "2");
    assert_eq!(cells[2], "invalid_json");
    assert_eq!(cells[4], bad_json, "the rejected line is kept verbatim");
    let cells: Vec<&str> = rows[2].splitn(5, '\t').collect();
    assert_eq!((cells[1], cells[2]), ("4", "wrong_type"));
    assert!(cells[3].contains("`repo`"), "{}", cells[3]);
    assert_eq!(cells[4], bad_type);
}

#[test]
fn blank_lines_crlf_and_bom_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let good = record("pkg", "def f(): pass");
    let path = dir.path().join("win.jsonl");
    fs::write(&path, format!("\u{feff}{good}\r\n\r\n   \r\n{good}\r\n")).unwrap();
    let out = pt!("corpus", "validate", path, "--json").ok();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["records"], 2);
    assert_eq!(v["summary"]["blank_lines"], 2);
}

#[test]
fn a_huge_line_and_deep_nesting_are_problems_not_crashes() {
    let dir = tempfile::tempdir().unwrap();
    let good = record("pkg", "def f(): pass");
    let huge = format!("{{\"x\": \"{}\"}}", "a".repeat(3 << 20));
    // Deep nesting inside an unknown field of a valid record: kept, never a stack overflow.
    let deep_ok = format!(
        "{},\"x\":{}{}}}",
        &good[..good.len() - 1],
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let deep_bad = format!("{{\"x\": {}", "{\"a\":".repeat(100_000));
    let path = dir.path().join("hostile.jsonl");
    fs::write(
        &path,
        format!("{good}\n{huge}\n{deep_ok}\n{deep_bad}\n{good}\n"),
    )
    .unwrap();
    let out = pt!(
        "corpus",
        "validate",
        path,
        "--max-line-bytes",
        "1000000",
        "--json"
    )
    .fails_with(1);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["records"], 3);
    assert_eq!(v["problems"][0]["kind"], "line_too_long");
    assert_eq!(v["problems"][0]["line"], 2);
    assert_eq!(v["problems"][1]["kind"], "invalid_json");
    assert_eq!(v["problems"][1]["line"], 4);
}

#[test]
fn round_trip_through_flat_jsonl_and_back_is_lossless() {
    let dir = tempfile::tempdir().unwrap();
    // The samples plus a record with unknown fields in odd places, explicit nulls, escapes.
    let odd = r#"{"zzz_first":{"k":[1,2.5e-3,null,"\u00e9"]},"repo":"Odd_Pkg","path":"a/b.py","func_name":"C.m","original_string":"def m(self):\n\t\"\"\"Doc.\"\"\"\n\treturn '\\u2603'","language":"python","code":"def m(self):\n\treturn '\\u2603'","code_tokens":["def","m"],"docstring":"Doc.","docstring_tokens":["Doc","."],"sha":null,"url":"a/b.py#L1-L3","partition":"train","summary":null,"custom":true}"#;
    let src = dir.path().join("src/docstrings/train");
    fs::create_dir_all(&src).unwrap();
    let mut lines = sample_lines();
    lines.push(odd.to_string());
    fs::write(src.join("extra.jsonl"), format!("{odd}\n")).unwrap();
    // Layout copy of the samples, plus the odd file.
    for part in ["train", "valid", "test"] {
        let name = format!("{part}_scenario_docstrings_chk_0.jsonl.gz");
        let from = samples().join("docstrings").join(part).join(&name);
        let to_dir = dir.path().join("src/docstrings").join(part);
        fs::create_dir_all(&to_dir).unwrap();
        fs::copy(from, to_dir.join(name)).unwrap();
    }
    let flat = dir.path().join("all.jsonl.zst");
    pt!(
        "corpus",
        "convert",
        dir.path().join("src"),
        "--out",
        flat,
        "-q"
    )
    .ok();
    let back = dir.path().join("back");
    pt!(
        "corpus",
        "convert",
        flat,
        "--out",
        back,
        "--layout",
        "pytorrent",
        "--scenario",
        "docstrings",
        "-q"
    )
    .ok();
    assert_eq!(
        tree(&back),
        [
            "docstrings/test/test_scenario_docstrings_chk_0.jsonl.gz",
            "docstrings/train/train_scenario_docstrings_chk_0.jsonl.gz",
            "docstrings/valid/valid_scenario_docstrings_chk_0.jsonl.gz",
        ]
    );
    // Every record comes back byte for byte, each in its partition, in input order.
    let mut got = Vec::new();
    for part in ["train", "valid", "test"] {
        let p = back.join(format!(
            "docstrings/{part}/{part}_scenario_docstrings_chk_0.jsonl.gz"
        ));
        got.extend(read_text(&p).lines().map(str::to_owned));
    }
    let mut want_sorted = lines.clone();
    want_sorted.sort();
    let mut got_sorted = got.clone();
    got_sorted.sort();
    assert_eq!(got_sorted, want_sorted);
    assert!(
        got.contains(&odd.to_string()),
        "unknown fields, nulls and escapes kept verbatim"
    );
    // And the owned Record type agrees on the value of every line.
    for line in &lines {
        let rec: pytorrent_corpus::Record = serde_json::from_str(line).unwrap();
        let again: serde_json::Value = serde_json::to_value(&rec).unwrap();
        assert_eq!(
            again,
            serde_json::from_str::<serde_json::Value>(line).unwrap()
        );
    }
}

#[test]
fn a_record_without_partition_gets_it_from_its_folder_when_flattened() {
    let dir = tempfile::tempdir().unwrap();
    let mut v: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&record("pkg", "def f(): pass")).unwrap();
    v.remove("partition");
    let line = serde_json::Value::Object(v).to_string();
    let d = dir.path().join("corpus/valid");
    fs::create_dir_all(&d).unwrap();
    fs::write(d.join("x.jsonl"), format!("{line}\n")).unwrap();
    let flat = dir.path().join("flat.jsonl");
    pt!(
        "corpus",
        "convert",
        dir.path().join("corpus"),
        "--out",
        flat
    )
    .ok();
    let got = fs::read_to_string(&flat).unwrap();
    assert_eq!(
        got.trim_end(),
        format!("{},\"partition\":\"valid\"}}", &line[..line.len() - 1])
    );
    // A chunked layout needs a partition: without folder or field, the error says so.
    fs::write(dir.path().join("loose.jsonl"), format!("{line}\n")).unwrap();
    let out = pt!(
        "corpus",
        "convert",
        dir.path().join("loose.jsonl"),
        "--out",
        dir.path().join("o"),
        "--layout",
        "pytorrent"
    )
    .fails_with(1);
    assert_stderr_has(&out, "loose.jsonl:1: record has no partition");
}

fn big_corpus(dir: &Path) -> std::path::PathBuf {
    // ~10k records in a layout, each sample record repeated under several package names.
    let root = dir.join("big");
    let lines = sample_lines();
    for (part, copies) in [("train", 16), ("valid", 3), ("test", 2)] {
        let d = root.join("both").join(part);
        fs::create_dir_all(&d).unwrap();
        for chunk in 0..2 {
            let mut text = String::new();
            for c in 0..copies {
                for l in &lines {
                    let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                    v["repo"] = format!("{}-{c}-{chunk}", v["repo"].as_str().unwrap()).into();
                    v["partition"] = part.into();
                    text.push_str(&v.to_string());
                    text.push('\n');
                }
            }
            fs::write(
                d.join(format!("{part}_scenario_both_chk_{chunk}.jsonl.gz")),
                gzip(text.as_bytes()),
            )
            .unwrap();
        }
    }
    root
}

#[test]
fn output_is_identical_whatever_the_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let input = big_corpus(dir.path());
    let mut results = Vec::new();
    for threads in ["1", "2", "3"] {
        let out_dir = dir.path().join(format!("out{threads}"));
        let env = [("RAYON_NUM_THREADS", threads)];
        // Small work units so records really are spread over threads.
        pt!(
            "corpus",
            "convert",
            input,
            "--out",
            out_dir,
            "--layout",
            "codesearchnet",
            "--chunk-records",
            "1000",
            "--read-chunk-bytes",
            "65536",
            "-q"
        )
        .envs(&env)
        .ok();
        let stats = pt!(
            "corpus",
            "stats",
            input,
            "--json",
            "-q",
            "--read-chunk-bytes",
            "65536"
        )
        .envs(&env)
        .ok();
        let files: Vec<(String, Vec<u8>)> = tree(&out_dir)
            .into_iter()
            .map(|f| (f.clone(), fs::read(out_dir.join(&f)).unwrap()))
            .collect();
        results.push((files, stats.stdout));
    }
    assert!(
        results[0].0.len() > 10,
        "several chunk files: {}",
        results[0].0.len()
    );
    assert_eq!(results[0], results[1], "1 vs 2 threads");
    assert_eq!(results[0], results[2], "1 vs 3 threads");
}

#[test]
fn filter_keeps_the_layout_and_counts_what_it_drops() {
    let dir = tempfile::tempdir().unwrap();
    let s = samples();
    let m = metadata();
    let filter = |name: &str, extra: &[&str]| {
        let out_dir = dir.path().join(name);
        let v = pt!("corpus", "filter", s, "--out", out_dir, "-q")
            .args(extra)
            .json();
        (out_dir, v)
    };
    let layout = tree(&s);

    let (d, v) = filter(
        "permissive",
        &["--metadata", m.to_str().unwrap(), "--license", "permissive"],
    );
    assert_eq!(tree(&d), layout);
    assert_eq!(v["filter"]["kept"], 524);

    let (d, v) = filter("mit", &["--metadata", m.to_str().unwrap(), "--spdx", "MIT"]);
    // Files that keep no record are not written (no MIT package is in the test partition).
    let written = tree(&d);
    assert!(written
        .iter()
        .all(|f| layout.contains(f) && !read_text(&d.join(f)).is_empty()));
    assert_eq!(written.len(), 2, "{written:?}");
    let kept = v["filter"]["kept"].as_u64().unwrap();
    assert_eq!(
        kept + v["filter"]["dropped"]["license"].as_u64().unwrap(),
        524
    );
    let mit_packages = ["six", "tomli", "more-itertools", "parse"];
    let mut n = 0;
    for f in tree(&d) {
        for line in read_text(&d.join(f)).lines() {
            let r: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(
                mit_packages.contains(&r["repo"].as_str().unwrap()),
                "{}",
                r["repo"]
            );
            n += 1;
        }
    }
    assert_eq!(n, kept);

    let (d, v) = filter(
        "copyleft",
        &["--metadata", m.to_str().unwrap(), "--license", "copyleft"],
    );
    assert_eq!(v["filter"]["kept"], 0);
    assert!(
        !d.exists() || tree(&d).is_empty(),
        "no empty files: {:?}",
        tree(&d)
    );

    // A family name matches the family's ids (the metadata says `LicenseRef-BSD`,
    // `BSD-3-Clause`); an id nobody has is said so.
    let (_, v) = filter("bsd", &["--metadata", m.to_str().unwrap(), "--spdx", "BSD"]);
    assert!(v["filter"]["kept"].as_u64().unwrap() > 0, "{v}");
    let o = pt!(
        "corpus",
        "filter",
        s,
        "--out",
        dir.path().join("gpl"),
        "--metadata",
        m
    )
    .args(["--spdx", "GPL-9.9"])
    .ok();
    assert_stderr_has(
        &o,
        "--spdx GPL-9.9 matches no package's license in the metadata",
    );
    // Packages without metadata are their own class, as statistics show them.
    let some_meta = dir.path().join("some-meta");
    fs::create_dir_all(&some_meta).unwrap();
    fs::copy(m.join("pypi_packages/six.json"), some_meta.join("six.json")).unwrap();
    let (_, v) = filter(
        "no-meta",
        &[
            "--metadata",
            some_meta.to_str().unwrap(),
            "--license",
            "no_metadata",
        ],
    );
    assert_eq!(
        v["filter"]["kept"].as_u64().unwrap(),
        524 - 24,
        "all but six's"
    );

    let (d, v) = filter("valid", &["--partition", "valid"]);
    assert_eq!(
        tree(&d),
        ["docstrings/valid/valid_scenario_docstrings_chk_0.jsonl.gz"]
    );
    assert_eq!(
        (
            v["filter"]["kept"].as_u64(),
            v["filter"]["dropped"]["partition"].as_u64()
        ),
        (Some(40), Some(484))
    );

    let (_, v) = filter("pkgs", &["--packages", "Six,IDNA"]);
    assert_eq!(
        v["filter"]["kept"],
        24 + 6,
        "names compared after PEP 503 normalisation"
    );

    let (_, v) = filter(
        "len",
        &["--min-code-chars", "100", "--max-code-chars", "1000"],
    );
    let d = &v["filter"]["dropped"];
    assert!(d["code_too_short"].as_u64().unwrap() > 0 && d["code_too_long"].as_u64().unwrap() > 0);

    let out = pt!(
        "corpus",
        "filter",
        s,
        "--out",
        dir.path().join("x"),
        "--license",
        "permissive"
    )
    .run();
    assert_eq!(
        code(&out),
        2,
        "a license filter without metadata is a usage error"
    );
    assert!(stderr(&out).contains("--metadata"));
}

#[test]
fn convert_rotates_chunks_and_writes_both_published_layouts() {
    let dir = tempfile::tempdir().unwrap();
    let s = samples();
    let py = dir.path().join("py");
    pt!(
        "corpus",
        "convert",
        s,
        "--out",
        py,
        "--layout",
        "pytorrent",
        "--chunk-records",
        "100",
        "-q"
    )
    .ok();
    let files = tree(&py);
    let train: Vec<_> = files
        .iter()
        .filter(|f| f.starts_with("docstrings/train/"))
        .collect();
    assert_eq!(
        train.len(),
        5,
        "459 train records in chunks of 100: {files:?}"
    );
    assert!(
        files.contains(&"docstrings/train/train_scenario_docstrings_chk_4.jsonl.gz".to_string())
    );
    assert_eq!(
        read_text(&py.join("docstrings/train/train_scenario_docstrings_chk_4.jsonl.gz"))
            .lines()
            .count(),
        59
    );

    let csn = dir.path().join("csn");
    pt!(
        "corpus",
        "convert",
        py,
        "--out",
        csn,
        "--layout",
        "codesearchnet",
        "--compression",
        "zstd",
        "-q"
    )
    .ok();
    assert_eq!(
        tree(&csn),
        [
            "python/final/jsonl/test/python_test_0.jsonl.zst",
            "python/final/jsonl/train/python_train_0.jsonl.zst",
            "python/final/jsonl/valid/python_valid_0.jsonl.zst",
        ]
    );
    // The CodeSearchNet layout reads back with partitions from its folders.
    let out = pt!("corpus", "stats", csn, "--json", "-q").run();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["records_per_partition"],
        serde_json::json!({"test": 25, "train": 459, "valid": 40})
    );
}

#[test]
fn a_failed_run_leaves_no_output_under_a_final_name() {
    let dir = tempfile::tempdir().unwrap();
    let good = record("pkg", "def f(): pass");
    let input = dir.path().join("in.jsonl");
    let mut text = String::new();
    for _ in 0..1000 {
        text.push_str(&good);
        text.push('\n');
    }
    text.push_str("{broken\n");
    fs::write(&input, text).unwrap();
    let out_dir = dir.path().join("out");
    pt!(
        "corpus",
        "convert",
        input,
        "--out",
        out_dir,
        "--layout",
        "pytorrent",
        "-q"
    )
    .fails_with(1);
    let left = if out_dir.exists() {
        tree(&out_dir)
    } else {
        vec![]
    };
    // Only the marker that tells readers the folder is incomplete.
    assert_eq!(
        left,
        [".pytorrent-incomplete"],
        "nothing may look complete, and no temporary files stay"
    );
}

#[test]
fn stdin_input_and_exit_codes() {
    let bytes =
        fs::read(samples().join("docstrings/valid/valid_scenario_docstrings_chk_0.jsonl.gz"))
            .unwrap();
    let out = pt!("corpus", "stats", "-", "--json", "-q")
        .stdin(bytes.clone())
        .ok();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["records"], 40,
        "gzip on stdin is recognised by its magic bytes"
    );

    let out = pt!("corpus", "stats", "/nonexistent/corpus.jsonl").fails_with(2);
    assert!(stderr(&out).contains("/nonexistent/corpus.jsonl"));
    pt!("corpus", "stats", "--no-such-flag", "x").fails_with(2);
    pt!("corpus", "stats", samples(), "--partition", "dev-set").fails_with(2);
}

#[test]
fn plain_text_records_read_as_pytorrent_records_say_which_flag_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("hub.jsonl");
    fs::write(&f, "{\"text\": \"def f():\\n    return 1\", \"id\": 3}\n").unwrap();
    let o = pt!("corpus", "stats", &f).fails_with(1);
    assert_stderr_has(&o, "hub.jsonl:1: missing required field `repo`");
    assert_stderr_has(&o, "it has text, id");
    assert_stderr_has(&o, "--text-field text");
}
