//! What a new user hit once: closed pipes, missing paths, bad lines in model inputs, JSON
//! errors, files nobody asked for, plurals, license classes, scenarios, vocabulary sizes and
//! the HTML report. Each test holds one of them fixed.

use std::fs;
use std::path::{Path, PathBuf};

use crate::util::*;

fn model(name: &str) -> PathBuf {
    root().join("tests/fixtures/models").join(name)
}

/// Fails the test when stderr shows a panic or an I/O error about the pipe.
#[track_caller]
fn assert_quiet_end(o: &std::process::Output, what: &str) {
    assert_eq!(code(o), 0, "{what}: {}", stderr(o));
    let err = stderr(o);
    for bad in ["panicked", "Broken pipe", "os error 32", "error:"] {
        assert!(!err.contains(bad), "{what}: {bad:?} in stderr:\n{err}");
    }
}

#[test]
fn a_reader_that_stops_early_ends_the_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let tok = tokenizer(dir.path());
    let shards = dir.path().join("shards");
    pack(&tok, &shards).args(["--seq-len", "64"]).ok();
    // Each prints far more than a pipe holds, so the reader's going away is seen mid-write.
    let o = pt!("shards", "inspect", shards, "--count", "100000").read_then_close(100);
    assert_quiet_end(&o, "shards inspect | head");
    let o = pt!("tokenizer", "encode", "--tokenizer", tok, samples(), "-q").read_then_close(100);
    assert_quiet_end(&o, "tokenizer encode | head");
    let o = pt!("corpus", "convert", samples(), "--out", "-", "-q").read_then_close(100);
    assert_quiet_end(&o, "corpus convert --out - | head");
    let o = pt!("tokenizer", "decode", "--tokenizer", tok, "0,5,6,7,2")
        .args(std::iter::repeat_n("0,8,9,2", 20000))
        .read_then_close(10);
    assert_quiet_end(&o, "tokenizer decode | head");
}

#[test]
fn a_missing_path_is_named_once_as_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let tok = tokenizer(dir.path());
    let nope = dir.path().join("nope");
    let out = dir.path().join("out");
    let cases: Vec<Cmd> = vec![
        pt!("corpus", "stats", nope),
        pt!("corpus", "validate", nope),
        pt!("corpus", "stats", samples(), "--metadata", nope),
        pt!("tokenizer", "train", nope, "--out", out),
        pt!("tokenizer", "encode", "--tokenizer", tok, nope),
        pt!("pack", nope, "--tokenizer", tok, "--out", out),
        pt!("extract", nope, "--out", out),
        pt!("shards", "verify", nope),
        pt!("shards", "inspect", nope),
        pt!("embed", "--model", model("bert"), nope, "--out", out),
    ];
    for cmd in cases {
        let o = cmd.fails_with(2);
        let err = stderr(&o);
        assert_eq!(
            err.matches("no such file or folder").count(),
            1,
            "the cause once, in our words:\n{err}"
        );
        assert!(err.contains(&format!("{}: no such file or folder", nope.display())));
        assert!(!err.contains("os error"), "{err}");
    }
    assert!(!out.exists(), "nothing written for a failed start");
}

#[test]
fn text_lines_read_folders_and_compressed_files_and_point_corpora_at_field() {
    let dir = tempfile::tempdir().unwrap();
    let gz = samples().join("docstrings/test/test_scenario_docstrings_chk_0.jsonl.gz");
    for input in [samples(), gz.clone()] {
        let o = pt!(
            "embed",
            "--model",
            model("bert"),
            &input,
            "--out",
            dir.path().join("e.npy")
        )
        .fails_with(1);
        // Read as records (decompressed, the folder walked), and told what to give.
        assert_stderr_has(&o, "_chk_0.jsonl.gz:1: no field `text`");
        assert_stderr_has(&o, "--field code|docstring");
        assert!(!stderr(&o).contains("Is a directory") && !stderr(&o).contains("UTF-8"));
    }
    // A gzip file of text lines reads like the plain one.
    let plain = dir.path().join("lines.txt");
    fs::write(&plain, "def f(): pass\n\"x = 1\"\n{\"text\": \"y\"}\n").unwrap();
    let packed = dir.path().join("lines.txt.gz");
    fs::write(&packed, gzip(&fs::read(&plain).unwrap())).unwrap();
    for (name, input) in [("plain", &plain), ("gz", &packed)] {
        let out = dir.path().join(format!("{name}.npy"));
        pt!("embed", "--model", model("bert"), input, "--out", out, "-q").ok();
    }
    assert_eq!(
        fs::read(dir.path().join("plain.npy")).unwrap(),
        fs::read(dir.path().join("gz.npy")).unwrap()
    );
}

/// Lines of model inputs, two of them bad for fill-mask (no mask) and one for every reader
/// (an object without `text`).
fn model_inputs(dir: &Path) -> PathBuf {
    let p = dir.join("inputs.jsonl");
    fs::write(
        &p,
        "\"def f(x): return <mask>\"\n\
         \"no mask here\"\n\
         {\"text\": \"import <mask>\"}\n\
         {\"body\": \"a <mask>\"}\n",
    )
    .unwrap();
    p
}

#[test]
fn model_commands_and_encode_take_the_bad_line_policy() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = model_inputs(dir.path());
    let q = dir.path().join("rejected.tsv");

    // fill-mask: a line without a mask is bad data, by file and line.
    let o = pt!("fill-mask", "--model", model("roberta-tied"), inputs).fails_with(1);
    assert_stderr_has(&o, "inputs.jsonl:2: no <mask> token to fill");
    let v = pt!("fill-mask", "--model", model("roberta-tied"), inputs)
        .args(["--on-error", "skip", "--quarantine"])
        .arg(&q)
        .json();
    let texts: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["def f(x): return <mask>", "import <mask>"]);
    let rejected = fs::read_to_string(&q).unwrap();
    let lines: Vec<&str> = rejected.lines().skip(1).collect();
    assert_eq!(lines.len(), 2, "{rejected}");
    assert!(lines[0].starts_with(&format!("{}\t2\tno_mask\t", inputs.display())));
    assert!(lines[1].contains("\t4\tmissing_field\t"), "{}", lines[1]);

    // embed: the object without text is bad; skipped, the rows and their ids say which.
    let out = dir.path().join("e.npy");
    let o = pt!("embed", "--model", model("bert"), inputs, "--out", out).fails_with(1);
    assert_stderr_has(&o, "inputs.jsonl:4: no field `text`");
    assert!(!out.exists(), "no partial output");
    let o = pt!("embed", "--model", model("bert"), inputs, "--out", out)
        .args(["--on-error", "skip"])
        .ok();
    assert_stderr_has(&o, "skipped 1 bad line (missing_field 1)");
    let (rows, _, _) = read_npy_f32(&out);
    assert_eq!(rows, 3);
    let ids = fs::read_to_string(format!("{}.ids.jsonl", out.display())).unwrap();
    let lines: Vec<u64> = ids
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["line"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(lines, [1, 2, 3]);

    // tokenizer encode: the same policy over --text-field records.
    let tok = tokenizer(dir.path());
    let o = pt!(
        "tokenizer",
        "encode",
        "--tokenizer",
        tok,
        inputs,
        "--text-field",
        "text"
    )
    .fails_with(1);
    assert_stderr_has(&o, "inputs.jsonl:1:");
    let q2 = dir.path().join("enc-rejected.tsv");
    let o = pt!(
        "tokenizer",
        "encode",
        "--tokenizer",
        tok,
        inputs,
        "--text-field",
        "text"
    )
    .args(["--on-error", "skip", "--quarantine"])
    .arg(&q2)
    .ok();
    assert_eq!(
        stdout(&o).lines().count(),
        1,
        "only line 3 is an object with text"
    );
    assert_eq!(fs::read_to_string(&q2).unwrap().lines().count(), 1 + 3);
}

#[test]
fn json_mode_reports_failures_as_a_json_error_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.jsonl");
    fs::write(
        &bad,
        format!("{}\nnot json\n", record("pkg", "def f(): pass")),
    )
    .unwrap();
    for (cmd, kind, exit, needle) in [
        (
            pt!("corpus", "stats", dir.path().join("nope")),
            "usage",
            2,
            "no such file",
        ),
        (pt!("corpus", "stats", &bad), "data", 1, "bad.jsonl:2:"),
        (
            pt!(
                "pack",
                &bad,
                "--tokenizer",
                dir.path().join("no-tok"),
                "--out"
            )
            .arg(dir.path().join("s")),
            "usage",
            2,
            "no-tok",
        ),
    ] {
        let o = cmd.arg("--json").fails_with(exit);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", stdout(&o)));
        assert_eq!(v["error"]["kind"], kind);
        assert!(
            v["error"]["message"].as_str().unwrap().contains(needle),
            "{v}"
        );
    }
}

#[test]
fn read_only_commands_write_nothing_unasked() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("cwd");
    fs::create_dir_all(&work).unwrap();
    let bad = dir.path().join("bad.jsonl");
    fs::write(
        &bad,
        format!("{}\nnot json\n", record("pkg", "def f(): pass")),
    )
    .unwrap();
    let o = pt!("corpus", "stats", &bad, "--on-error", "skip")
        .current_dir(&work)
        .ok();
    assert!(
        stdout(&o).contains("rejected lines      1"),
        "{}",
        stdout(&o)
    );
    let o = pt!("corpus", "validate", &bad, "--on-error", "skip")
        .current_dir(&work)
        .fails_with(1);
    assert_stderr_has(&o, "1 problem");
    // Asked for, the quarantine is written where it was asked.
    let q = dir.path().join("asked.tsv");
    pt!(
        "corpus",
        "stats",
        &bad,
        "--on-error",
        "skip",
        "--quarantine",
        q,
        "-q"
    )
    .current_dir(&work)
    .ok();
    assert_eq!(fs::read_to_string(&q).unwrap().lines().count(), 2);
    fs::remove_file(&q).unwrap();
    assert_eq!(
        tree(&work),
        Vec::<String>::new(),
        "nothing in the working folder"
    );
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        2,
        "nothing beside the input"
    );
}

#[test]
fn counts_of_one_are_singular() {
    let dir = tempfile::tempdir().unwrap();
    let tok = tokenizer(dir.path());
    let shards = dir.path().join("shards");
    let gz = samples().join("docstrings/valid/valid_scenario_docstrings_chk_0.jsonl.gz");
    let bad = dir.path().join("bad.jsonl");
    fs::write(
        &bad,
        format!("{}\nnot json\n", record("pkg", "def f(): pass")),
    )
    .unwrap();
    let runs = [
        (
            pt!("pack", samples(), "--tokenizer", tok, "--out", shards)
                .args(["--partition", "valid", "--seq-len", "64"])
                .ok(),
            "in 1 shard ",
        ),
        (
            pt!("shards", "verify", shards.join("valid")).ok(),
            "1 folder checked, 0 problems",
        ),
        (pt!("corpus", "validate", gz).ok(), "1 file, 40 records"),
        (
            pt!(
                "corpus",
                "convert",
                gz,
                "--out",
                dir.path().join("one.jsonl")
            )
            .ok(),
            "into 1 file",
        ),
        (pt!("corpus", "validate", bad).fails_with(1), "1 problem"),
        (
            pt!("corpus", "stats", samples(), "--metadata")
                .arg(metadata().join("pypi_packages/six.json"))
                .args(["--report"])
                .arg(dir.path().join("r.html"))
                .ok(),
            "metadata: 1 package",
        ),
    ];
    for (o, singular) in &runs {
        assert_stderr_has(o, singular);
        let err = stderr(o);
        for wrong in [
            "1 shards",
            "1 files",
            "1 problems",
            "1 folders",
            "1 records",
            "1 packages",
        ] {
            assert!(!err.contains(wrong), "{wrong:?}:\n{err}");
        }
    }
    let html = fs::read_to_string(dir.path().join("r.html")).unwrap();
    assert!(html.contains("(1 package)"), "the report's metadata line");
}

/// A metadata folder: six as published (MIT), and a copy of it relicensed GPL-3.0 under the
/// name of another sample package (toolz); every other package has none.
fn mixed_metadata(dir: &Path) -> PathBuf {
    let m = dir.join("meta");
    fs::create_dir_all(&m).unwrap();
    let six = fs::read_to_string(metadata().join("pypi_packages/six.json")).unwrap();
    fs::write(m.join("six.json"), &six).unwrap();
    let mut doc: serde_json::Value = serde_json::from_str(&six).unwrap();
    doc["info"]["name"] = "toolz".into();
    doc["info"]["license"] = "GPL-3.0-only".into();
    doc["info"]["license_expression"] = "GPL-3.0-only".into();
    doc["info"]["classifiers"] =
        serde_json::json!(["License :: OSI Approved :: GNU General Public License v3 (GPLv3)"]);
    fs::write(m.join("toolz.json"), doc.to_string()).unwrap();
    m
}

#[test]
fn license_classes_name_their_packages() {
    let dir = tempfile::tempdir().unwrap();
    let meta = mixed_metadata(dir.path());
    let report = dir.path().join("r.html");
    let v = pt!(
        "corpus",
        "stats",
        samples(),
        "--metadata",
        meta,
        "--report",
        report,
        "-q"
    )
    .json();
    let l = &v["licenses"];
    assert_eq!(l["packages_by_class"]["permissive"], 1);
    assert_eq!(l["packages"]["copyleft"], serde_json::json!(["toolz"]));
    let none: Vec<&str> = l["packages"]["no_metadata"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(none.len(), 10 - 2, "{none:?}");
    assert!(!none.contains(&"six") && !none.contains(&"toolz"));
    let per_class: u64 = l["records_by_class"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(per_class, 524, "every record in one class");
    let o = pt!("corpus", "stats", samples(), "--metadata", meta).ok();
    assert!(
        stdout(&o).contains("copyleft packages: toolz"),
        "{}",
        stdout(&o)
    );
    // In the report: each class in its own colour, and its packages named.
    let html = fs::read_to_string(&report).unwrap();
    for colour in ["#3C9650", "#C83C32", "#C8C8C8"] {
        assert!(html.contains(colour), "{colour}");
    }
    assert!(html.contains("copyleft packages (1)") && html.contains("toolz"));
}

#[test]
fn scenarios_are_counted_apart_and_survive_flattening() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus");
    pt!(
        "extract",
        root().join("data-samples/packages"),
        "--out",
        corpus,
        "--scenario",
        "docstrings,both",
        "-q"
    )
    .ok();
    let v = pt!("corpus", "stats", corpus, "-q").json();
    // The same function in two scenarios is no duplicate: within each there are none.
    assert_eq!(v["exact_duplicates"]["count"], 0);
    let sc = &v["scenarios"];
    let (d, b) = (&sc["docstrings"], &sc["both"]);
    assert_eq!(
        d["records"].as_u64().unwrap() + b["records"].as_u64().unwrap(),
        v["records"].as_u64().unwrap()
    );
    assert_eq!(
        (
            d["exact_duplicates"].as_u64(),
            b["exact_duplicates"].as_u64()
        ),
        (Some(0), Some(0))
    );

    // Flattened, each record says its scenario; stats still tell them apart.
    let flat = dir.path().join("flat.jsonl");
    pt!("corpus", "convert", corpus, "--out", flat, "-q").ok();
    let scenarios: Vec<String> = fs::read_to_string(&flat)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["scenario"].to_string())
        .collect();
    assert!(scenarios
        .iter()
        .all(|s| s == "\"docstrings\"" || s == "\"both\""));
    let again = pt!("corpus", "stats", flat, "-q").json();
    assert_eq!(again["scenarios"], v["scenarios"]);

    // Back in the PyTorrent layout: the same files with the same lines.
    let back = dir.path().join("back");
    pt!(
        "corpus",
        "convert",
        flat,
        "--out",
        back,
        "--layout",
        "pytorrent",
        "-q"
    )
    .ok();
    assert_eq!(tree(&back), tree(&corpus));
    for f in tree(&corpus) {
        let sorted = |p: &Path| {
            let mut l: Vec<String> = read_text(p).lines().map(str::to_owned).collect();
            l.sort();
            l
        };
        assert_eq!(sorted(&back.join(&f)), sorted(&corpus.join(&f)), "{f}");
    }
}

#[test]
fn a_vocabulary_smaller_than_asked_is_said() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tok");
    let o = pt!(
        "tokenizer",
        "train",
        samples(),
        "--out",
        out,
        "--vocab-size",
        "50000"
    )
    .ok();
    assert_stderr_has(&o, "fewer than the 50000 asked for");
    let v = pt!("tokenizer", "inspect", "--tokenizer", out).json();
    let size = v["vocab_size"].as_u64().unwrap();
    assert!(size < 50000);
    assert_stderr_has(&o, &format!("has {size} entries"));
}

#[test]
fn the_report_says_what_made_it_and_breaks_records_down() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.html");
    pt!(
        "corpus",
        "stats",
        samples(),
        "--metadata",
        metadata(),
        "--report",
        report,
        "-q"
    )
    .env("SOURCE_DATE_EPOCH", "1700000000")
    .ok();
    let html = fs::read_to_string(&report).unwrap();
    for needle in [
        concat!("pytorrent ", env!("CARGO_PKG_VERSION")),
        "2023-11-14 22:13 UTC",
        "corpus stats",
        &metadata().display().to_string(),
        "Partitions and scenarios",
        "<th>scenario</th>",
        // A package with two license ids counts under both: said.
        "1 package names several licenses",
        "jsonpointer.</p>",
    ] {
        assert!(html.contains(needle), "no {needle:?} in the report");
    }
    // Bars carry their values: records per partition among them.
    let labels: Vec<&str> = html
        .split("text-anchor=\"start\"")
        .skip(1)
        .filter_map(|t| t.split_once('>').and_then(|(_, r)| r.split_once("</text>")))
        .map(|(label, _)| label.trim())
        .collect();
    for n in ["459", "40", "25"] {
        assert!(labels.contains(&n), "no value label {n}: {labels:?}");
    }
    assert!(!html.contains("<script"), "self-contained, no scripts");
}
