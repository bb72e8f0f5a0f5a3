//! `pytorrent run`: the pipeline file, up-to-date checks, what re-runs after a change, the
//! selection flags and the report.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::util::*;

const PACKAGES: [&str; 4] = [
    "six-1.17.0.tar.gz",
    "idna-3.10.tar.gz",
    "tomli-2.2.1.tar.gz",
    "parse-1.20.2.tar.gz",
];

/// A project folder: four sample packages with their metadata, and a pipeline file.
fn project(dir: &Path, pack_seq_len: u32, vocab: u32) {
    let pkgs = dir.join("packages");
    fs::create_dir_all(pkgs.join("Package_Metadata/pypi_packages")).unwrap();
    let src = root().join("data-samples/packages");
    for p in PACKAGES {
        fs::copy(src.join(p), pkgs.join(p)).unwrap();
    }
    for entry in fs::read_dir(src.join("Package_Metadata/pypi_packages")).unwrap() {
        let e = entry.unwrap();
        fs::copy(
            e.path(),
            pkgs.join("Package_Metadata/pypi_packages")
                .join(e.file_name()),
        )
        .unwrap();
    }
    write_config(dir, pack_seq_len, vocab);
}

fn write_config(dir: &Path, pack_seq_len: u32, vocab: u32) {
    fs::write(
        dir.join("pipe.toml"),
        format!(
            r#"
[pipeline]
out = "run"
scenario = "docstrings"

[extract]
inputs = ["packages"]
scenario = "docstrings,both"
split = "60,20"

[stats]

[tokenizer]
vocab_size = {vocab}
field = "code"

[pack]
seq_len = {pack_seq_len}

[eval.overlap]
"#
        ),
    )
    .unwrap();
}

/// Stage → status of a `run --json`.
fn statuses(v: &serde_json::Value) -> BTreeMap<String, String> {
    v["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["stage"].as_str().unwrap().to_string(),
                s["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn run(dir: &Path, extra: &[&str]) -> BTreeMap<String, String> {
    let v = pt!("run", dir.join("pipe.toml"), "--quiet")
        .args(extra)
        .json();
    statuses(&v)
}

fn expect(got: &BTreeMap<String, String>, ran: &[&str]) {
    for (stage, status) in got {
        let want = if ran.contains(&stage.as_str()) {
            "ran"
        } else {
            "up_to_date"
        };
        assert_eq!(status, want, "stage {stage}: {got:?}");
    }
}

const ALL: [&str; 5] = ["extract", "stats", "tokenizer", "pack", "overlap"];

#[test]
fn only_the_stages_downstream_of_a_change_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    project(d, 64, 600);
    expect(&run(d, &[]), &ALL);
    let shards = d.join("run/shards/train");
    assert!(shards.is_dir(), "{:?}", tree(&d.join("run")));
    // Nothing changed: nothing runs.
    expect(&run(d, &[]), &[]);

    // A pack setting: pack alone (nothing reads its output here).
    write_config(d, 32, 600);
    expect(&run(d, &[]), &["pack"]);
    let manifest = read_text(&d.join("run/shards/train/manifest.json"));
    assert!(manifest.contains("\"seq_len\": 32"), "{manifest}");

    // A tokenizer setting: the tokenizer and pack, which reads it; not extract, stats or
    // overlap.
    write_config(d, 32, 500);
    expect(&run(d, &[]), &["tokenizer", "pack"]);

    // Setting it back is a change too (the output on disk is the 500 one).
    write_config(d, 32, 600);
    expect(&run(d, &[]), &["tokenizer", "pack"]);

    // An input's content: a new package re-runs everything that reads the corpus.
    fs::create_dir_all(d.join("packages/tinypkg/tinypkg")).unwrap();
    fs::write(
        d.join("packages/tinypkg/tinypkg/__init__.py"),
        "def greet(name):\n    \"\"\"Say hello to someone by name, politely.\"\"\"\n    \
         message = 'hello ' + name\n    return message.upper()\n",
    )
    .unwrap();
    expect(&run(d, &[]), &ALL);
    // Touching a file without changing it is no change.
    let init = d.join("packages/tinypkg/tinypkg/__init__.py");
    let text = fs::read(&init).unwrap();
    fs::write(&init, text).unwrap();
    expect(&run(d, &[]), &[]);
}

#[test]
fn selection_flags_and_force() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    project(d, 64, 600);
    // --until: the stages after it have not run, and say so.
    let got = run(d, &["--until", "tokenizer"]);
    assert_eq!(got["extract"], "ran");
    assert_eq!(got["tokenizer"], "ran");
    assert_eq!(got["pack"], "not_selected");
    assert_eq!(got["overlap"], "not_selected");
    assert!(!d.join("run/shards").exists());
    // --from pack picks up the outputs made before.
    let got = run(d, &["--from", "pack"]);
    assert_eq!(got["extract"], "not_selected");
    assert_eq!(got["pack"], "ran");
    assert_eq!(got["overlap"], "ran");
    // --force with --only re-runs just that stage, although it is up to date.
    let got = run(d, &["--only", "stats", "--force"]);
    assert_eq!(got["stats"], "ran");
    assert_eq!(got["pack"], "not_selected");
    expect(&run(d, &[]), &[]);

    // --from a stage whose input was never made is a usage error naming it.
    let fresh = tempfile::tempdir().unwrap();
    project(fresh.path(), 64, 600);
    let o = pt!("run", fresh.path().join("pipe.toml"), "--from", "pack").fails_with(2);
    assert_stderr_has(&o, "reads the output of extract");
    // A stage the file does not have.
    let o = pt!("run", d.join("pipe.toml"), "--only", "pretrain").fails_with(2);
    assert_stderr_has(&o, "no [pretrain] stage");
    let o = pt!("run", d.join("pipe.toml"), "--only", "packing").fails_with(2);
    assert_stderr_has(&o, "unknown stage");
}

#[test]
fn the_report_has_every_section_and_the_stage_results() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    project(d, 64, 600);
    let v = pt!("run", d.join("pipe.toml"), "--quiet").json();
    let report = Path::new(v["report"].as_str().unwrap()).to_path_buf();
    assert_eq!(report, d.join("run/report.html"));
    let html = read_text(&report);
    for id in [
        "pipeline",
        "corpus",
        "licenses",
        "tokenizer",
        "shards",
        "training",
        "fill-mask",
        "cloze",
        "retrieval",
        "overlap",
        "about",
    ] {
        assert!(
            html.contains(&format!("<section id=\"{id}\">")),
            "section {id}"
        );
    }
    // Self-contained: no scripts, no external references.
    assert!(!html.contains("<script"));
    assert!(!html.contains("src=\"http"));
    assert!(!html.contains("href=\"http"));
    // Figures of the run, as the stages reported them.
    let stats: serde_json::Value =
        serde_json::from_str(&read_text(&d.join("run/stages/stats.json"))).unwrap();
    let records = stats["report"]["records"].as_u64().unwrap();
    assert!(records > 0);
    assert!(html.contains(&format!("<th>records</th><td>{records}</td>")));
    // The run's headline figures, in --json and on the terminal.
    let results = v["results"].as_array().unwrap();
    let of = |stage: &str| {
        results
            .iter()
            .find(|r| r["stage"] == stage)
            .unwrap_or_else(|| panic!("{stage} in {results:?}"))
            .clone()
    };
    assert_eq!(of("stats")["figures"]["records"], records);
    assert!(
        of("tokenizer")["figures"]["bytes_per_token_train"]
            .as_f64()
            .unwrap()
            > 1.0
    );
    assert!(of("pack")["figures"]["rows_train"].as_u64().unwrap() > 0);
    assert!(of("overlap")["text"]
        .as_str()
        .unwrap()
        .contains("evaluation records"));
    let o = pt!("run", d.join("pipe.toml")).ok();
    assert!(stderr(&o).contains("results:"), "{}", stderr(&o));
    assert!(stderr(&o).contains("bytes per token"));
    // Licenses name their packages.
    assert!(html.contains("<th>MIT</th>"), "MIT row");
    assert!(html.contains("six"));
    // Stages absent from the file are said to be so.
    assert!(html.contains("not part of the pipeline"));
    assert_eq!(html.matches("<svg").count(), html.matches("</svg>").count());
}

#[test]
fn bad_pipeline_files_are_usage_errors_that_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    project(d, 64, 600);
    let cfg = d.join("pipe.toml");
    let text = read_text(&cfg);
    fs::write(&cfg, text.replace("seq_len", "seq_lenn")).unwrap();
    let o = pt!("run", &cfg).fails_with(2);
    assert_stderr_has(&o, "[pack] has no key `seq_lenn`");
    fs::write(&cfg, text.replace("[stats]", "[stats]\nout = \"x\"")).unwrap();
    let o = pt!("run", &cfg).fails_with(2);
    assert_stderr_has(&o, "[stats] has `out`");
    fs::write(&cfg, "[pack]\nseq_len = 64\n").unwrap();
    let o = pt!("run", &cfg).fails_with(2);
    assert_stderr_has(&o, "[pack] needs `inputs`, or a [extract] stage");
    let o = pt!("run", d.join("missing.toml")).fails_with(2);
    assert_stderr_has(&o, "missing.toml");
}

#[test]
fn a_failed_stage_leaves_no_stamp_and_the_next_run_redoes_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    project(d, 64, 600);
    expect(&run(d, &[]), &ALL);
    // A tokenizer that cannot be trained (vocabulary below the byte alphabet) fails the
    // run with a data or usage error; its old stamp is gone, so it is not "up to date"
    // later, and the stages after it did not run.
    write_config(d, 64, 5);
    let o = pt!("run", d.join("pipe.toml")).run();
    assert_ne!(code(&o), 0, "{}", stderr(&o));
    assert_stderr_has(&o, "stage tokenizer");
    assert!(!d.join("run/stages/tokenizer.json").exists());
    // The previous tokenizer folder is still whole (the failed one was built aside).
    assert!(d.join("run/tokenizer/tokenizer.json").is_file());
    write_config(d, 64, 600);
    expect(&run(d, &[]), &["tokenizer"]);
}

fn write_pretrain_config(dir: &Path, stop_after: Option<u32>) {
    let tiny = root().join("configs/models/tiny.toml");
    let stop = stop_after.map_or(String::new(), |n| format!("stop_after = {n}\n"));
    fs::write(
        dir.join("pipe.toml"),
        format!(
            r#"
[pipeline]
out = "run"

[extract]
inputs = ["packages"]
split = "60,20"

[tokenizer]
vocab_size = 400

[pack]
seq_len = 32

[pretrain]
model_config = "{}"
max_steps = 8
batch_size = 2
save_every = 2
eval_every = 4
eval_rows = 4
{stop}
[eval.fill_mask]
"#,
            tiny.display()
        ),
    )
    .unwrap();
}

#[test]
fn a_paused_pretrain_continues_to_the_same_model_as_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    project(d, 32, 400);
    write_pretrain_config(d, Some(4));
    let got = run(d, &[]);
    assert_eq!(got["pretrain"], "paused", "{got:?}");
    assert_eq!(got["fill_mask"], "waiting", "{got:?}");
    assert!(!d.join("run/stages/pretrain.json").exists());
    // Without the stop, the same run continues from its checkpoint, then the check runs.
    write_pretrain_config(d, None);
    let got = run(d, &[]);
    assert_eq!(got["extract"], "up_to_date");
    assert_eq!(got["pretrain"], "resumed", "{got:?}");
    assert_eq!(got["fill_mask"], "ran", "{got:?}");
    let stamp: serde_json::Value =
        serde_json::from_str(&read_text(&d.join("run/stages/pretrain.json"))).unwrap();
    assert_eq!(stamp["report"]["resumed_from"], 4);

    let clean = tempfile::tempdir().unwrap();
    let c = clean.path();
    project(c, 32, 400);
    write_pretrain_config(c, None);
    let got = run(c, &[]);
    assert_eq!(got["pretrain"], "ran");
    let weights = |root: &Path| fs::read(root.join("run/model/model.safetensors")).unwrap();
    assert!(
        weights(d) == weights(c),
        "resumed and uninterrupted models differ"
    );
    // The report draws the run's loss curves.
    let html = read_text(&d.join("run/report.html"));
    let training = &html[html.find("<section id=\"training\">").unwrap()..];
    let training = &training[..training.find("</section>").unwrap()];
    assert!(training.contains("<svg"), "{training}");
}

#[test]
fn a_second_run_on_the_same_folder_is_refused_while_the_first_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    project(d, 64, 600);
    fs::create_dir_all(d.join("run/stages")).unwrap();
    let lock = fs::File::create(d.join("run/stages/.lock")).unwrap();
    lock.lock().unwrap();
    let o = pt!("run", d.join("pipe.toml")).fails_with(2);
    assert_stderr_has(&o, "another `pytorrent run` is using");
    // Released (as when the first run ends or is killed): the run goes ahead.
    drop(lock);
    expect(&run(d, &[]), &ALL);
}

/// Every file of a run's output but those that record when and how long (the report, the
/// stage stamps, logs, and pretraining's wall-clock columns and fields), with its bytes.
fn run_outputs(out: &Path) -> Vec<(String, Vec<u8>)> {
    tree(out)
        .into_iter()
        .filter(|f| {
            !(f.starts_with("stages/")
                || f.starts_with("report.")
                || f.ends_with(".log")
                || f.ends_with("trainer_state.json"))
        })
        .map(|f| {
            let mut bytes = fs::read(out.join(&f)).unwrap();
            if f.ends_with("log.csv") {
                // Every column but the two wall-clock ones (elapsed_s, tokens_per_s).
                let text = String::from_utf8(bytes).unwrap();
                assert!(text.starts_with(
                    "step,epoch,lr,loss,grad_norm,tokens,elapsed_s,tokens_per_s,valid_loss"
                ));
                bytes = text
                    .lines()
                    .map(|l| {
                        let cols: Vec<&str> = l.split(',').collect();
                        [&cols[..6], &cols[8..]].concat().join(",")
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
                    .into_bytes();
            }
            (f, bytes)
        })
        .collect()
}

#[test]
fn a_killed_run_run_again_gives_the_outputs_of_an_uninterrupted_run() {
    // Both runs in the same folder, since manifests and reports record absolute paths: the
    // reference is moved aside before the killed runs start.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    project(d, 32, 400);
    write_pretrain_config(d, None);
    let start = std::time::Instant::now();
    run(d, &[]);
    let full = start.elapsed();
    fs::rename(d.join("run"), d.join("reference")).unwrap();

    let mut landed = 0;
    for attempt in 0..6 {
        let f = random_fraction(0.1, 0.9);
        let mut child = pt!("run", d.join("pipe.toml"), "--quiet").spawn();
        std::thread::sleep(full.mul_f64(f));
        let finished = child.try_wait().unwrap().is_some();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        eprintln!("attempt {attempt}: killed at {f:.2} of {full:?}, finished before: {finished}");
        if !finished {
            landed += 1;
            if landed == 3 {
                break;
            }
        } else {
            // It got to the end: start over, so that the next kill lands mid-run.
            fs::remove_dir_all(d.join("run")).unwrap();
        }
    }
    assert!(landed >= 1, "no kill landed while the pipeline ran");
    run(d, &[]);
    let (want, got) = (
        run_outputs(&d.join("reference")),
        run_outputs(&d.join("run")),
    );
    let names = |v: &[(String, Vec<u8>)]| v.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&got), names(&want));
    for ((name, a), (_, b)) in want.iter().zip(&got) {
        assert!(a == b, "{name} differs after the kills");
    }
}

#[test]
fn a_corpus_with_empty_partitions_still_gets_its_tokenizer() {
    // Every package in train: valid and test are empty, which the tokenizer stage's
    // compression table reports instead of failing the stage.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    project(d, 32, 400);
    fs::write(
        d.join("pipe.toml"),
        "[pipeline]\nout = \"run\"\n\n[extract]\ninputs = [\"packages\"]\nsplit = \"100,0\"\n\n\
         [tokenizer]\nvocab_size = 400\n",
    )
    .unwrap();
    let v = pt!("run", d.join("pipe.toml"), "--quiet").json();
    let got = statuses(&v);
    assert_eq!(got["tokenizer"], "ran", "{v}");
    let stamp: serde_json::Value =
        serde_json::from_str(&read_text(&d.join("run/stages/tokenizer.json"))).unwrap();
    let compression = &stamp["report"]["compression"];
    assert!(
        compression["train"]["results"][0]["texts"]
            .as_u64()
            .unwrap()
            > 0,
        "{compression}"
    );
    for p in ["valid", "test"] {
        assert_eq!(compression[p]["texts"], 0, "{compression}");
        assert!(compression[p]["skipped"]
            .as_str()
            .unwrap()
            .contains(&format!("partition(s) {p}")));
    }
    assert!(d.join("run/tokenizer/tokenizer.json").is_file());
    assert!(read_text(&d.join("run/report.html")).contains("0 (empty)"));
}

#[test]
fn a_package_extract_cannot_read_fails_the_run_after_the_report() {
    // Under the default on_error = "fail", `pytorrent extract` exits 1 for a package it
    // cannot read; the pipeline says the same (after running the rest and writing its
    // report), rather than stamping the stage as a success and going quietly on.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    project(d, 64, 600);
    let idna = d.join("packages/idna-3.10.tar.gz");
    let good = fs::read(&idna).unwrap();
    fs::write(&idna, &good[..good.len() / 3]).unwrap();
    let o = pt!("run", d.join("pipe.toml"), "--json").fails_with(1);
    assert_stderr_has(&o, "extract: 1 package could not be read (idna)");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    expect(&statuses(&v), &ALL);
    assert!(d.join("run/report.html").is_file());
    assert!(d.join("run/stages/extract.json").is_file());
}

/// A pipeline with `[finetune]`: the stage starts from the given model, the retrieval check
/// scores its output beside that model, and the report shows the fine-tuning with its
/// validation MRR curve.
#[test]
fn a_finetune_stage_is_scored_beside_the_model_it_started_from() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    project(d, 64, 600);
    let mlm = root().join("data-samples/models/pytorrent-small-mlm");
    fs::write(
        d.join("ft.toml"),
        format!(
            r#"
[pipeline]
out = "run"
scenario = "docstrings"

[extract]
inputs = ["packages"]
split = "60,20"

[finetune]
init = "{}"
max_steps = 4
batch_size = 4
max_seq_length = 32
eval_every = 2

[eval.retrieval]
protocol = "pool"
no_cache = true
"#,
            mlm.display()
        ),
    )
    .unwrap();
    let v = pt!("run", d.join("ft.toml"), "--quiet").json();
    let html = read_text(&d.join("run/report.html"));
    let section = &html[html.find("<section id=\"finetune\">").unwrap()..];
    let section = &section[..section.find("</section>").unwrap()];
    assert!(section.contains("valid MRR before"), "{section}");
    assert!(section.contains("<svg"), "the MRR curve");
    let retrieval: serde_json::Value =
        serde_json::from_str(&read_text(&d.join("run/stages/retrieval.json"))).unwrap();
    let p = &retrieval["report"]["pytorrent"];
    assert_eq!(
        p["system"],
        format!("model:{}", d.join("run/retrieval-model").display())
    );
    assert!(
        p["baselines"][format!("model:{}", mlm.display())]["mrr"].is_number(),
        "{p}"
    );
    let results = v["results"].as_array().unwrap();
    let ft = results.iter().find(|r| r["stage"] == "finetune").unwrap();
    assert_eq!(ft["figures"]["steps"], 4);
}
