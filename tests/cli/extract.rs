//! End-to-end tests of `pytorrent extract` on the sample sdists and on hostile inputs.

use std::fs;
use std::io::Write;

use crate::util::*;

pub(crate) fn packages() -> String {
    root()
        .join("data-samples/packages")
        .to_str()
        .unwrap()
        .to_string()
}

#[test]
fn extracts_the_sample_packages_into_a_valid_corpus_identically_on_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let mut trees = Vec::new();
    for threads in ["1", "2"] {
        let out = dir.path().join(format!("out{threads}"));
        let o = pt!(
            "extract",
            &packages(),
            "--out",
            out,
            "--scenario",
            "docstrings,comments,both",
            "--json",
            "-q", // Filters off: the counts are then those of the reference extractor.
            "--keep-tests",
            "--keep-dunder",
            "--keep-trivial",
            "--min-code-lines",
            "0",
            "--min-nl-words",
            "0",
            "--keep-duplicates",
            "--keep-near-duplicates"
        )
        .env("RAYON_NUM_THREADS", threads)
        .ok();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["packages"], 10);
        assert_eq!(
            v["records"]["docstrings"],
            serde_json::json!({"test": 25, "train": 459, "valid": 40})
        );
        assert!(v["records"]["comments"]["train"].as_u64().unwrap() > 0);
        assert_eq!(v["packages_with_problems"], serde_json::json!([]));
        let files: Vec<(String, Vec<u8>)> = tree(&out)
            .into_iter()
            .map(|f| (f.clone(), fs::read(out.join(&f)).unwrap()))
            .collect();
        trees.push(files);
        let o = pt!("corpus", "validate", out, "-q").run();
        assert_eq!(code(&o), 0, "the corpus validates: {}", stderr(&o));
    }
    assert_eq!(
        trees[0], trees[1],
        "byte-identical output with 1 and 2 threads"
    );
    let names: Vec<&str> = trees[0].iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.contains(&"docstrings/train/train_scenario_docstrings_chk_0.jsonl.gz"));
    assert!(names.contains(&"comments/valid/valid_scenario_comments_chk_0.jsonl.gz"));
    assert!(names.contains(&"both/test/test_scenario_both_chk_0.jsonl.gz"));
}

#[test]
fn every_function_is_accounted_for_in_each_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let v = pt!(
        "extract",
        &packages(),
        "--out",
        dir.path().join("out"),
        "--scenario",
        "docstrings,comments,both",
        "-q"
    )
    .json();
    let functions = v["functions"].as_u64().unwrap();
    for scenario in ["docstrings", "comments", "both"] {
        let outcomes = v["functions_by_scenario"][scenario].as_object().unwrap();
        let sum: u64 = outcomes.values().map(|n| n.as_u64().unwrap()).sum();
        assert_eq!(sum, functions, "{scenario}: {outcomes:?}");
        let written: u64 = v["records"][scenario]
            .as_object()
            .unwrap()
            .values()
            .map(|n| n.as_u64().unwrap())
            .sum();
        assert_eq!(outcomes["record"].as_u64().unwrap(), written, "{scenario}");
        assert!(outcomes["no_nl"].as_u64().unwrap() > 0, "{scenario}");
    }
}

#[test]
fn stats_find_the_metadata_fetch_wrote_beside_the_archives() {
    let dir = tempfile::tempdir().unwrap();
    // fetch's layout: DIR/packages/<archives> and DIR/Package_Metadata/pypi_packages/.
    let packages = dir.path().join("fetched/packages");
    fs::create_dir_all(&packages).unwrap();
    copy_sample("six-1.17.0.tar.gz", &packages);
    let meta = dir.path().join("fetched/Package_Metadata/pypi_packages");
    fs::create_dir_all(&meta).unwrap();
    fs::copy(
        metadata().join("pypi_packages/six.json"),
        meta.join("six.json"),
    )
    .unwrap();
    let o = pt!(
        "extract",
        packages,
        "--out",
        dir.path().join("out"),
        "--stats"
    )
    .ok();
    assert_stderr_has(&o, "metadata: 1 package");
    assert!(stdout(&o).contains("permissive"), "{}", stdout(&o));
}

#[test]
fn filters_are_on_by_default_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = pt!("extract", &packages(), "--out", out, "--json", "-q").ok();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let kept: u64 = v["records"]["docstrings"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    let f = &v["filtered"];
    for reason in ["test_path", "dunder", "short_code", "short_nl"] {
        assert!(f[reason].as_u64().unwrap_or(0) > 0, "{reason} counted: {f}");
    }
    assert!(kept < 524 && kept > 200, "{kept}");
    let o = pt!("corpus", "stats", out, "--json", "-q").run();
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        s["code_chars"]["min"].as_u64().unwrap() > 21,
        "the shortest sample function is filtered out"
    );
}

#[test]
fn a_hostile_package_is_reported_and_does_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = dir.path().join("in");
    fs::create_dir_all(&inputs).unwrap();
    copy_sample("six-1.17.0.tar.gz", &inputs);
    // A truncated archive and one with a path-traversal member.
    let good = fs::read(root().join("data-samples/packages/idna-3.10.tar.gz")).unwrap();
    fs::write(inputs.join("idna-3.10.tar.gz"), &good[..good.len() / 3]).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    let name = b"evil-1.0/../../../etc/evil.py";
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    let body = b"def f():\n    \"\"\"Evil.\"\"\"\n";
    h.set_size(body.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append(&h, &body[..]).unwrap();
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(&b.into_inner().unwrap()).unwrap();
    fs::write(inputs.join("evil-1.0.tar.gz"), e.finish().unwrap()).unwrap();

    let out = dir.path().join("out");
    let extract = || {
        pt!(
            "extract",
            inputs,
            "--out",
            out,
            "--json",
            "--min-code-lines",
            "0"
        )
    };
    // The truncated archive failed as a whole: exit 1 after every package, unless skipped.
    let o = extract().fails_with(1);
    assert_stderr_has(&o, "1 package could not be read (idna)");
    let o = extract().args(["--on-error", "skip"]).ok();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["packages"], 3);
    assert_eq!(v["failed_packages"], serde_json::json!(["idna"]));
    assert_eq!(v["ok"], true);
    let problems = v["packages_with_problems"].as_array().unwrap();
    let by_name = |n: &str| {
        problems
            .iter()
            .find(|p| p["package"] == n)
            .unwrap_or_else(|| panic!("{n} listed"))
    };
    assert!(by_name("idna")["error"]
        .as_str()
        .unwrap()
        .contains("corrupt or truncated"));
    assert_eq!(
        by_name("evil")["refused"]["path_traversal"][0],
        "evil-1.0/../../../etc/evil.py"
    );
    assert!(
        v["records"]["docstrings"]["train"].as_u64().unwrap() > 0,
        "six is still extracted"
    );
    let err = stderr(&o);
    assert!(
        err.contains("problems in idna") && err.contains("problems in evil"),
        "{err}"
    );
    assert!(!dir.path().join("etc").exists() && !std::path::Path::new("/etc/evil.py").exists());
}

#[test]
fn bad_arguments_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    for args in [
        vec![
            "extract",
            "/no/such/package.tar.gz",
            "--out",
            out.to_str().unwrap(),
        ],
        vec![
            "extract",
            &packages(),
            "--out",
            out.to_str().unwrap(),
            "--scenario",
            "poems",
        ],
        vec![
            "extract",
            &packages(),
            "--out",
            out.to_str().unwrap(),
            "--split",
            "90,20",
        ],
    ] {
        Cmd::new().args(&args).fails_with(2);
    }
}

#[test]
fn duplicates_across_packages_keep_the_first_occurrence() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = dir.path().join("in");
    fs::create_dir_all(&inputs).unwrap();
    // An exact copy of six under another name: every record of it is a duplicate.
    copy_sample("six-1.17.0.tar.gz", &inputs);
    fs::copy(
        root().join("data-samples/packages/six-1.17.0.tar.gz"),
        inputs.join("sixcopy-1.17.0.tar.gz"),
    )
    .unwrap();
    // Two folders whose long function differs in one name: a near duplicate.
    let body: String = (0..40)
        .map(|i| format!("    v{i} = w{i} + {i}\n"))
        .collect();
    for (pkg, name) in [("alpha", "total"), ("beta", "totals")] {
        let d = dir.path().join(pkg);
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("m.py"), format!("def f(w0):\n    \"\"\"Add many numbers together.\"\"\"\n{body}    {name} = v1\n    return {name}\n")).unwrap();
    }
    let out = dir.path().join("out");
    let extract = || {
        pt!(
            "extract",
            inputs,
            dir.path().join("alpha"),
            dir.path().join("beta"),
            "--out",
            out,
            "-q"
        )
    };
    let v = extract().json();
    let d = &v["duplicates"]["docstrings"];
    assert!(d["exact"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(
        d["near"], 1,
        "beta's function is a near duplicate of alpha's: {v}"
    );
    let mut repos = std::collections::BTreeMap::new();
    for f in tree(&out) {
        for line in read_text(&out.join(&f)).lines() {
            let r: serde_json::Value = serde_json::from_str(line).unwrap();
            *repos
                .entry(r["repo"].as_str().unwrap().to_string())
                .or_insert(0u64) += 1;
        }
    }
    assert!(
        !repos.contains_key("sixcopy") && !repos.contains_key("beta"),
        "{repos:?}"
    );
    assert_eq!(
        repos["six"],
        d["exact"].as_u64().unwrap(),
        "every six record had its copy dropped"
    );
    assert_eq!(repos["alpha"], 1);

    let v = extract()
        .args(["--keep-duplicates", "--keep-near-duplicates"])
        .json();
    assert_eq!(v["duplicates"], serde_json::json!({}));
}

#[test]
fn opt_out_lists_remove_packages_and_files_in_extract_and_filter() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("opt-out.txt");
    fs::write(
        &list,
        "# removal requests\nSix\nmore_itertools:more_itertools/recipes.py\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let o = pt!(
        "extract",
        &packages(),
        "--out",
        out,
        "--opt-out",
        list,
        "--json",
        "-q"
    )
    .ok();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["opted_out_packages"], serde_json::json!(["six"]));
    assert_eq!(v["opted_out_files"], 1);
    let mut seen_mi = false;
    for f in tree(&out) {
        for line in read_text(&out.join(&f)).lines() {
            let r: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_ne!(r["repo"], "six");
            assert_ne!(
                (r["repo"].as_str(), r["path"].as_str()),
                (Some("more-itertools"), Some("more_itertools/recipes.py"))
            );
            seen_mi |= r["repo"] == "more-itertools";
        }
    }
    assert!(seen_mi, "the rest of more-itertools stays");

    // The same list applied to an existing corpus.
    let filtered = dir.path().join("filtered");
    let o = pt!(
        "corpus",
        "filter",
        samples(),
        "--out",
        filtered,
        "--opt-out",
        list,
        "--json",
        "-q"
    )
    .ok();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let dropped = v["filter"]["dropped"]["opt_out"].as_u64().unwrap();
    assert!(dropped > 24, "six's 24 records and recipes.py's: {dropped}");
    assert_eq!(v["filter"]["kept"].as_u64().unwrap() + dropped, 524);

    fs::write(&list, "pkg:[bad\n").unwrap();
    let o = pt!("extract", &packages(), "--out", out, "--opt-out", list).fails_with(2);
    assert_stderr_has(&o, "opt-out.txt:1: bad glob");
}

#[test]
fn secrets_and_emails_are_replaced_everywhere_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = dir.path().join("leaky");
    fs::create_dir_all(&pkg).unwrap();
    let src = "def connect(host):\n    \"\"\"Connect to the database; ask ops@corp-mail.net for access.\n\n    Uses the service account.\n    \"\"\"\n    # key id AKIAZ7QW3ERT5YUI9OPA, see the wiki\n    url = 'postgres://svc:Hunter2-real@' + host + '/db'\n    checksum = 'da39a3ee5e6b4b0d3255bfef95601890afd80709'\n    return open_db(url, checksum)\n";
    fs::write(pkg.join("db.py"), src).unwrap();
    let out = dir.path().join("out");
    let o = pt!(
        "extract",
        pkg,
        "--out",
        out,
        "--scenario",
        "docstrings,comments",
        "--json",
        "-q"
    )
    .ok();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // Counted once per record made from the function (two scenarios).
    assert_eq!(
        v["scrubbed"],
        serde_json::json!({"aws_access_key": 2, "email": 2, "url_password": 2})
    );
    let mut records = 0;
    for f in tree(&out) {
        for line in read_text(&out.join(&f)).lines() {
            records += 1;
            assert!(
                !line.contains("ops@corp-mail.net")
                    && !line.contains("AKIAZ7QW3ERT5YUI9OPA")
                    && !line.contains("Hunter2-real"),
                "{line}"
            );
            assert!(
                line.contains("da39a3ee5e6b4b0d3255bfef95601890afd80709"),
                "hashes stay"
            );
            let r: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(r["original_string"]
                .as_str()
                .unwrap()
                .contains("postgres://svc:<SECRET>@"));
        }
    }
    assert_eq!(records, 2);
    let raw = dir.path().join("raw");
    pt!("extract", pkg, "--out", raw, "--keep-secrets", "-q").ok();
    let text: String = tree(&raw).iter().map(|f| read_text(&raw.join(f))).collect();
    assert!(
        text.contains("ops@corp-mail.net"),
        "--keep-secrets keeps them"
    );
}

#[test]
fn crlf_sources_give_the_records_of_their_lf_twins() {
    let dir = tempfile::tempdir().unwrap();
    let source = "def greet(name):\n    \"\"\"Say hello.\n\n    Then go on\n    at length.\n    \"\"\"\n    # build the greeting text\n    text = 'hello ' + name\n    return text\n";
    let mut outputs = Vec::new();
    for (kind, text) in [
        ("lf", source.to_string()),
        ("crlf", source.replace('\n', "\r\n")),
        ("cr", source.replace('\n', "\r")),
    ] {
        let pkg = dir.path().join(kind).join("greeter");
        fs::create_dir_all(&pkg).unwrap();
        fs::write(pkg.join("greet.py"), text).unwrap();
        let out = dir.path().join(format!("out-{kind}"));
        pt!(
            "extract",
            pkg,
            "--out",
            out,
            "--scenario",
            "docstrings,comments,both",
            "-q"
        )
        .ok();
        let mut records = Vec::new();
        for f in tree(&out) {
            records.extend(read_text(&out.join(f)).lines().map(str::to_owned));
        }
        assert_eq!(records.len(), 3, "{kind}: a record per scenario");
        assert!(
            records.iter().all(|r| !r.contains("\\r")),
            "{kind}: no field keeps a carriage return: {records:?}"
        );
        outputs.push(records);
    }
    assert_eq!(outputs[1], outputs[0], "CRLF as LF");
    assert_eq!(outputs[2], outputs[0], "CR as LF");
}

#[test]
fn files_with_syntax_errors_are_named_with_their_first_error() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = dir.path().join("broken");
    fs::create_dir_all(pkg.join("pkg")).unwrap();
    let good = "def fine(x):\n    \"\"\"Return x doubled, as a test of the reader.\"\"\"\n    y = x * 2\n    z = y + 0\n    return z\n";
    fs::write(pkg.join("pkg/good.py"), good).unwrap();
    fs::write(
        pkg.join("pkg/bad.py"),
        format!("{good}\ndef oops(:\n    pass\n"),
    )
    .unwrap();
    let out = dir.path().join("out");
    let o = pt!("extract", &pkg, "--out", &out, "--json").ok();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["files_with_syntax_errors"], 1);
    let p = &v["packages_with_problems"][0];
    let e = &p["syntax_errors"][0];
    assert_eq!(e["path"], "pkg/bad.py");
    assert_eq!(e["line"], 7);
    assert!(!e["message"].as_str().unwrap().is_empty());
    assert!(
        stderr(&o).contains("syntax error: pkg/bad.py:7: "),
        "{}",
        stderr(&o)
    );
    // Functions the parser recovered are still read: `fine` twice, minus the duplicate.
    assert_eq!(v["functions"], 3);
}

/// Every file under `dir` (hidden ones too) with its bytes, by relative path.
pub(crate) fn all_files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.push((rel, fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

pub(crate) const ALL_SCENARIOS: [&str; 2] = ["--scenario", "docstrings,comments,both"];

#[test]
fn a_killed_extract_resumes_to_the_bytes_of_an_uninterrupted_run() {
    use std::time::Instant;
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("reference");
    let start = Instant::now();
    pt!("extract", packages(), "--out", &reference, "-q")
        .args(ALL_SCENARIOS)
        .ok();
    let mut full = start.elapsed();
    let out = dir.path().join("interrupted");
    let journal = out.join(".extract-journal");
    let mut resumed_from_journal = 0;
    for attempt in 0..30 {
        let _ = fs::remove_dir_all(&out);
        let started = Instant::now();
        let mut child = pt!("extract", packages(), "--out", &out, "-q")
            .args(ALL_SCENARIOS)
            .spawn();
        // A kill somewhere in the run, from the clock.
        let f = random_fraction(0.1, 0.9);
        std::thread::sleep(full.mul_f64(f));
        let finished = child.try_wait().unwrap().is_some();
        child.kill().unwrap();
        child.wait().unwrap();
        if finished {
            full = started.elapsed();
            continue;
        }
        let segments = fs::read_dir(&journal)
            .map(|d| {
                d.filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .starts_with("segment-")
                })
                .count()
            })
            .unwrap_or(0);
        eprintln!(
            "attempt {attempt}: killed at {f:.2} of {full:?} with {segments} journal segments"
        );
        let o = pt!("extract", packages(), "--out", &out, "--resume", "-q")
            .args(ALL_SCENARIOS)
            .ok();
        assert!(
            all_files(&out) == all_files(&reference),
            "resumed output differs (attempt {attempt}): {}",
            stderr(&o)
        );
        if segments > 0 {
            resumed_from_journal += 1;
            if resumed_from_journal >= 2 {
                break;
            }
        }
    }
    assert!(
        resumed_from_journal > 0,
        "no kill landed after a journal segment"
    );
    // --resume with other settings is refused rather than mixing outputs.
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(journal.clone()).unwrap();
    fs::write(journal.join("settings.json"), "{\"fingerprint\": \"x\"}").unwrap();
    let o = pt!("extract", packages(), "--out", &out, "--resume").fails_with(2);
    assert_stderr_has(&o, "made with other settings");
}
