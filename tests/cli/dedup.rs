//! End-to-end tests of `pytorrent corpus dedup`: extract tasks de-duplicated across each
//! other, in one process or in stages, to the records one extract task writes.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::extract::{all_files, packages, ALL_SCENARIOS};
use crate::util::*;

/// A package folder of long documented functions; `changed` renames one token in each
/// (a near duplicate of the original), `far` changes half of each (not one).
fn near_package(dir: &Path, name: &str, changed: bool, far: bool) -> PathBuf {
    let root = dir.join(name);
    fs::create_dir_all(root.join(name)).unwrap();
    let mut src = String::new();
    for f in 0..4 {
        src += &format!("def work_{f}(x):\n    \"\"\"Adds up the steps of part {f}.\"\"\"\n");
        for i in 0..40 {
            let lhs = if changed && i == 20 {
                format!("renamed_{i}")
            } else if far && i % 2 == 0 {
                format!("other_{f}_{i}")
            } else {
                format!("step_{f}_{i}")
            };
            src += &format!("    {lhs} = x * {i} + {f}\n");
        }
        src += "    return x\n\n";
    }
    fs::write(root.join(name).join("work.py"), src).unwrap();
    root
}

/// The inputs: the sample packages with renamed copies of two of them (exact duplicates
/// across packages), and three package folders of which one is a near duplicate.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let pkgs = dir.join("pkgs");
    fs::create_dir_all(&pkgs).unwrap();
    let src = PathBuf::from(packages());
    for e in fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            fs::copy(&p, pkgs.join(p.file_name().unwrap())).unwrap();
        }
    }
    fs::copy(
        src.join("six-1.17.0.tar.gz"),
        pkgs.join("sixcopy-1.17.0.tar.gz"),
    )
    .unwrap();
    fs::copy(
        src.join("idna-3.10.tar.gz"),
        pkgs.join("idnafork-3.10.tar.gz"),
    )
    .unwrap();
    vec![
        pkgs,
        near_package(dir, "worka", false, false),
        near_package(dir, "workb", true, false),
        near_package(dir, "workc", false, true),
    ]
}

/// Every record line under `dir`, by scenario and partition (from the file's path), sorted.
fn records(dir: &Path) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (rel, bytes) in all_files(dir) {
        if !rel.ends_with(".jsonl.gz") || rel.split('/').any(|c| c.starts_with('.')) {
            continue;
        }
        // …/<scenario>/…/<partition>/python_<partition>_<n>.jsonl.gz, under a task folder
        // or not.
        let parts: Vec<&str> = rel.split('/').filter(|c| !c.starts_with("task-")).collect();
        let key = format!("{}/{}", parts[0], parts[parts.len() - 2]);
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .unwrap();
        out.entry(key)
            .or_default()
            .extend(text.lines().map(str::to_owned));
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

fn without_work(files: Vec<(String, Vec<u8>)>) -> Vec<(String, Vec<u8>)> {
    files
        .into_iter()
        .filter(|(p, _)| !p.starts_with(".dedup-work"))
        .collect()
}

fn extract_tasks(inputs: &[PathBuf], out: &Path, extra: &[&str]) {
    for i in 0..3 {
        pt!("extract", "--out", out, "--num-tasks", "3", "-q")
            .args(inputs)
            .args(["--task-index", &i.to_string()])
            .args(ALL_SCENARIOS)
            .args(extra)
            .ok();
    }
}

fn json(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn staged_dedup_of_three_tasks_writes_the_one_process_bytes_and_the_one_task_records() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = inputs(dir.path());
    let one = dir.path().join("one");
    let single = json(
        &pt!("extract", "--out", &one, "--json", "-q")
            .args(&inputs)
            .args(ALL_SCENARIOS)
            .ok(),
    );
    for kind in ["exact", "near"] {
        assert!(
            single["duplicates"]["docstrings"][kind]
                .as_u64()
                .unwrap_or(0)
                > 0,
            "the inputs hold {kind} duplicates across packages: {}",
            single["duplicates"]
        );
    }
    let tasks = dir.path().join("tasks");
    extract_tasks(&inputs, &tasks, &[]);
    // A task resumed from its journal writes the same keys as the run that parsed.
    let keys = tasks.join("task-00001-of-00003/.extract-journal/keys");
    let parsed = all_files(&keys);
    assert!(parsed.iter().any(|(p, _)| p == "docstrings.bands"));
    pt!(
        "extract",
        "--out",
        &tasks,
        "--num-tasks",
        "3",
        "--task-index",
        "1",
        "--resume",
        "-q"
    )
    .args(&inputs)
    .args(ALL_SCENARIOS)
    .ok();
    assert!(all_files(&keys) == parsed, "replayed keys differ");

    // One process.
    let all = dir.path().join("all");
    let v = json(&pt!("corpus", "dedup", &tasks, "--out", &all, "--json", "-q").ok());
    assert_eq!(v["duplicates"], single["duplicates"]);
    assert_eq!(v["records"], single["records"]);
    assert_eq!(v["functions_by_scenario"], single["functions_by_scenario"]);
    assert!(!all.join(".dedup-work").exists(), "its work files are gone");
    assert_eq!(
        records(&all),
        records(&one),
        "the one-task extract's records"
    );
    assert!(all.join("task-00001-of-00003").is_dir());

    // Staged: three buckets tasks, the clusters task, three write tasks.
    let staged = dir.path().join("staged");
    let stage = |args: &[&str]| {
        pt!("corpus", "dedup", &tasks, "--out", &staged, "--json")
            .args(args)
            .ok()
    };
    for j in ["0", "1", "2"] {
        let o = stage(&["--stage", "buckets", "--num-tasks", "3", "--task-index", j]);
        assert_eq!(json(&o)["stage"], "buckets");
    }
    let c = json(&stage(&["--stage", "clusters"]));
    assert_eq!(
        c["scenarios"]["docstrings"]["near"],
        single["duplicates"]["docstrings"]["near"]
    );
    for i in ["0", "1", "2"] {
        stage(&["--stage", "write", "--num-tasks", "3", "--task-index", i]);
    }
    assert!(
        without_work(all_files(&staged)) == all_files(&all),
        "staged output differs from the one process's"
    );

    // A finished stage run again does nothing.
    let work = staged.join(".dedup-work");
    let before = all_files(&work);
    let o = stage(&[
        "--stage",
        "buckets",
        "--num-tasks",
        "3",
        "--task-index",
        "1",
    ]);
    assert!(stderr(&o).contains("had finished"), "{}", stderr(&o));
    let o = stage(&["--stage", "write", "--num-tasks", "3", "--task-index", "2"]);
    assert!(stderr(&o).contains("had finished"), "{}", stderr(&o));
    assert!(all_files(&work) == before, "nothing was rewritten");

    // A stage killed half-way (no done.json, a file cut short, a sort run left behind) runs
    // again to the same bytes.
    let b0 = work.join("buckets/task-00000-of-00003");
    fs::remove_file(b0.join("done.json")).unwrap();
    fs::write(b0.join("docstrings.pairs"), [1u8; 7]).unwrap();
    fs::write(b0.join(".sort-run.abc123.tmp"), [2u8; 99]).unwrap();
    let o = stage(&[
        "--stage",
        "buckets",
        "--num-tasks",
        "3",
        "--task-index",
        "0",
    ]);
    assert!(!stderr(&o).contains("had finished"));
    assert!(
        all_files(&work) == before,
        "the re-run wrote the same bytes"
    );

    // Stages out of order, or a split that is not the extract's, are usage errors.
    let fresh = dir.path().join("fresh");
    let o = pt!(
        "corpus",
        "dedup",
        &tasks,
        "--out",
        &fresh,
        "--stage",
        "write",
        "--num-tasks",
        "3",
        "--task-index",
        "0"
    )
    .fails_with(2);
    assert_stderr_has(&o, "the clusters stage has not finished");
    let o = pt!("corpus", "dedup", &tasks, "--out", &fresh, "--stage", "clusters").fails_with(2);
    assert_stderr_has(&o, "no buckets tasks");
    let o = pt!(
        "corpus",
        "dedup",
        &tasks,
        "--out",
        &fresh,
        "--stage",
        "write",
        "--num-tasks",
        "2",
        "--task-index",
        "0"
    )
    .fails_with(2);
    assert_stderr_has(&o, "one task per extract task: --num-tasks 3");
    pt!(
        "corpus",
        "dedup",
        &tasks,
        "--out",
        &fresh,
        "--stage",
        "buckets",
        "--num-tasks",
        "2",
        "--task-index",
        "0"
    )
    .ok();
    let o = pt!("corpus", "dedup", &tasks, "--out", &fresh, "--stage", "clusters").fails_with(2);
    assert_stderr_has(&o, "buckets tasks 1 of 2 have not finished");

    // Work files of another extract run are refused, by name.
    let other = dir.path().join("other");
    extract_tasks(&inputs, &other, &["--near-dup-threshold", "0.9"]);
    let o = pt!("corpus", "dedup", &other, "--out", &staged, "--stage", "clusters").fails_with(2);
    assert_stderr_has(&o, "made from another extract run");
    assert_stderr_has(&o, "task-00000-of-00003");
}

#[test]
fn dedup_checks_that_it_has_every_task_of_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = inputs(dir.path());
    let shared = dir.path().join("tasks");
    extract_tasks(&inputs, &shared, &[]);
    let tasks: Vec<PathBuf> = (0..3)
        .map(|i| shared.join(format!("task-0000{i}-of-00003")))
        .collect();
    // The task folders one by one are the same input as their shared folder.
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    pt!("corpus", "dedup", &shared, "--out", &a, "-q").ok();
    pt!("corpus", "dedup", "--out", &b, "-q").args(&tasks).ok();
    assert!(all_files(&a) == all_files(&b));
    // A task run again replaces its own folder only.
    let before: Vec<_> = [&tasks[0], &tasks[2]].map(|t| all_files(t)).into();
    pt!(
        "extract",
        "--out",
        &shared,
        "--num-tasks",
        "3",
        "--task-index",
        "1",
        "-q"
    )
    .args(&inputs)
    .args(ALL_SCENARIOS)
    .ok();
    let after: Vec<_> = [&tasks[0], &tasks[2]].map(|t| all_files(t)).into();
    assert!(before == after, "the other tasks' folders are untouched");

    // A `.dedup-work` in --out that holds what the stages do not write is not deleted.
    let theirs = dir.path().join("theirs");
    std::fs::create_dir_all(theirs.join(".dedup-work")).unwrap();
    std::fs::write(theirs.join(".dedup-work/notes.txt"), "mine").unwrap();
    let o = pt!("corpus", "dedup", &shared, "--out", &theirs).fails_with(2);
    assert_stderr_has(&o, "notes.txt");
    assert_eq!(read_text(&theirs.join(".dedup-work/notes.txt")), "mine");

    let x = dir.path().join("x");
    let o = pt!("corpus", "dedup", &shared, "--out", shared.join("merged")).fails_with(2);
    assert_stderr_has(&o, "overlap");
    let o = pt!("corpus", "dedup", &tasks[0], &tasks[1], "--out", &x).fails_with(2);
    assert_stderr_has(&o, "tasks 2 of 3 are missing");
    let o = pt!("corpus", "dedup", &tasks[0], &tasks[0], &tasks[2], "--out", &x).fails_with(2);
    assert_stderr_has(&o, "given twice");
    let o = pt!("corpus", "dedup", &a, "--out", &x).fails_with(2);
    assert_stderr_has(&o, "no extract journal");
    let o = pt!("corpus", "dedup", &shared, "--out", &x, "--task-index", "0").fails_with(2);
    assert_stderr_has(&o, "give --stage too");
}

#[test]
fn the_local_runner_runs_the_array_stages_to_the_one_task_records() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = inputs(dir.path());
    let run = dir.path().join("run");
    let o = std::process::Command::new("bash")
        .arg(root().join("scripts/scale-out/local_run.sh"))
        .arg(&run)
        .arg(&inputs[0])
        .args(["3", "2"])
        .env("PYTORRENT", env!("CARGO_BIN_EXE_pytorrent"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let one = dir.path().join("one");
    pt!(
        "extract",
        &inputs[0],
        "--out",
        &one,
        "-q",
        "--on-error",
        "skip"
    )
    .args(ALL_SCENARIOS)
    .ok();
    assert_eq!(records(&run.join("corpus")), records(&one));
    let times = fs::read_to_string(run.join("times.tsv")).unwrap();
    for step in [
        "extract 2/3",
        "buckets 1/2",
        "clusters",
        "write 0/3",
        "stats",
    ] {
        assert!(times.contains(step), "{step} in {times}");
    }
    assert!(fs::read_to_string(run.join("corpus-stats.txt"))
        .unwrap()
        .contains("records"));
}
