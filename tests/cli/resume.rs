//! `pytorrent pack` under interruption and scale-out: a run killed with SIGKILL and resumed
//! gives the same bytes as one that was never stopped; three tasks and a merge give the same
//! rows as one task.

use std::fs;
use std::path::Path;
use std::time::Instant;

use crate::util::*;

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    tree(dir)
        .into_iter()
        .map(|f| (f.clone(), fs::read(dir.join(&f)).unwrap()))
        .collect()
}

#[test]
fn resume_after_sigkill_is_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let tok = tokenizer(dir.path());
    // One row per shard: hundreds of renames and state writes to land a kill between.
    let extra = [
        "--seq-len",
        "64",
        "--shard-rows",
        "1",
        "--segment-lines",
        "60",
        "--static-mask",
        "--whole-word-mask",
    ];
    let reference = dir.path().join("reference");
    let start = Instant::now();
    pack(&tok, &reference).args(extra).ok();
    let mut full = start.elapsed();
    let out = dir.path().join("interrupted");
    let complete = || {
        ["train", "valid", "test"]
            .iter()
            .all(|p| out.join(p).join("manifest.json").is_file())
    };
    let mut killed_mid_run = 0;
    for attempt in 0..20 {
        // A run that got to the end before its kill starts the output over, and its time
        // (the machine may be busier than when the reference ran) sets the next kill.
        let fresh = attempt == 0 || complete();
        if fresh {
            let _ = fs::remove_dir_all(&out);
        }
        let cmd = pack(&tok, &out).args(extra);
        let started = Instant::now();
        let mut child = if fresh { cmd } else { cmd.arg("--resume") }.spawn();
        let f = random_fraction(0.05, 0.95);
        std::thread::sleep(full.mul_f64(f));
        let finished = child.try_wait().unwrap().is_some();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        eprintln!(
            "attempt {attempt}: killed at {f:.3} of {full:?}, fresh: {fresh}, finished before: {finished}, complete: {}",
            complete()
        );
        if finished {
            full = started.elapsed();
        } else if !complete() && out.join("train").is_dir() {
            killed_mid_run += 1;
        }
        if killed_mid_run >= 2 {
            break;
        }
    }
    assert!(
        killed_mid_run >= 1,
        "no kill landed while the run was writing"
    );
    let resume = || pack(&tok, &out).args(extra).arg("--resume");
    resume().ok();
    assert_eq!(
        files(&out),
        files(&reference),
        "resumed output equals the uninterrupted one"
    );
    // Resuming a complete output changes nothing.
    resume().ok();
    assert_eq!(files(&out), files(&reference));
    // Resuming with other settings is refused rather than mixed.
    let o = pack(&tok, &out)
        .args(["--seq-len", "32", "--shard-rows", "1", "--resume"])
        .fails_with(2);
    assert_stderr_has(&o, "other settings");
}

#[test]
fn three_tasks_and_a_merge_give_the_rows_of_one_task() {
    let dir = tempfile::tempdir().unwrap();
    let tok = tokenizer(dir.path());
    let extra = [
        "--seq-len",
        "64",
        "--shard-rows",
        "50",
        "--segment-lines",
        "40",
        "--static-mask",
    ];
    let single = dir.path().join("single");
    // The one-task reference: same segments, same seed.
    pack(&tok, &single).args(extra).ok();
    let multi = dir.path().join("multi");
    let task = || pack(&tok, &multi).args(extra);
    task().args(["--num-tasks", "3", "--task-index", "0"]).ok();
    // Task 1 as a Slurm array task (ids 5..7), task 2 as a Kubernetes Indexed Job pod.
    task()
        .envs(&[
            ("SLURM_ARRAY_TASK_COUNT", "3"),
            ("SLURM_ARRAY_TASK_ID", "6"),
            ("SLURM_ARRAY_TASK_MIN", "5"),
        ])
        .ok();
    // Merging before every task is done is refused, naming the missing task.
    let o = pt!("shards", "merge", multi).fails_with(1);
    assert_stderr_has(&o, "task index 2");
    task()
        .args(["--num-tasks", "3"])
        .env("JOB_COMPLETION_INDEX", "2")
        .ok();
    for i in 0..3 {
        assert!(multi
            .join(format!("task-{i:05}-of-00003/COMPLETE.json"))
            .is_file());
    }
    pt!("shards", "merge", multi).ok();
    pt!("shards", "verify", multi.join("train")).ok();

    let rows = |dir: &Path, what: &str| -> Vec<Vec<i64>> {
        let m: serde_json::Value =
            serde_json::from_slice(&fs::read(dir.join("manifest.json")).unwrap()).unwrap();
        let mut out = Vec::new();
        for s in m["shards"].as_array().unwrap() {
            let f = if what == "ids" {
                s["file"].as_str().unwrap()
            } else {
                s[what]["file"].as_str().unwrap()
            };
            let (r, c, v) = read_npy_i64(&dir.join(f));
            out.extend((0..r).map(|i| v[i * c..(i + 1) * c].to_vec()));
        }
        out
    };
    for part in ["train", "valid", "test"] {
        let pair = |d: &Path| -> Vec<(Vec<i64>, Vec<i64>)> {
            let mut v: Vec<_> = rows(&d.join(part), "ids")
                .into_iter()
                .zip(rows(&d.join(part), "labels"))
                .collect();
            v.sort();
            v
        };
        let (a, b) = (pair(&single), pair(&multi));
        assert!(!a.is_empty());
        assert_eq!(
            a, b,
            "{part}: the same rows with the same masks, in task-major order"
        );
        let count = |d: &Path, k: &str| -> u64 {
            let m: serde_json::Value =
                serde_json::from_slice(&fs::read(d.join(part).join("manifest.json")).unwrap())
                    .unwrap();
            m[k].as_u64().unwrap()
        };
        for k in ["records", "rows", "tokens", "dropped_tokens"] {
            assert_eq!(count(&single, k), count(&multi, k), "{part} {k}");
        }
    }
}

#[test]
fn a_merge_checks_the_markers_and_every_shard_it_links() {
    let dir = tempfile::tempdir().unwrap();
    let tok = tokenizer(dir.path());
    let multi = dir.path().join("multi");
    let task = |i: &str| {
        pack(&tok, &multi)
            .args(["--seq-len", "64", "--shard-rows", "50", "--num-tasks", "2"])
            .args(["--task-index", i])
            .ok()
    };
    task("0");
    task("1");
    let marker = multi.join("task-00001-of-00002/COMPLETE.json");
    let good = fs::read(&marker).unwrap();
    // An empty, a truncated and another task's marker are not completion.
    for (bad, says) in [
        (Vec::new(), "not a completion marker"),
        (good[..good.len() / 2].to_vec(), "not a completion marker"),
        (
            fs::read(multi.join("task-00000-of-00002/COMPLETE.json")).unwrap(),
            "but the folder is task 1 of 2",
        ),
    ] {
        fs::write(&marker, bad).unwrap();
        let o = pt!("shards", "merge", &multi).fails_with(1);
        assert_stderr_has(&o, says);
    }
    fs::write(&marker, good).unwrap();
    // A shard corrupted after its task finished is named, not linked in.
    let train = multi.join("task-00001-of-00002/train");
    let m: serde_json::Value =
        serde_json::from_slice(&fs::read(train.join("manifest.json")).unwrap()).unwrap();
    let shard = train.join(m["shards"][0]["file"].as_str().unwrap());
    let mut b = fs::read(&shard).unwrap();
    let last = b.len() - 1;
    b[last] ^= 1;
    fs::write(&shard, b).unwrap();
    let o = pt!("shards", "merge", &multi).fails_with(1);
    assert_stderr_has(&o, "the shard is corrupt");
    assert_stderr_has(&o, m["shards"][0]["file"].as_str().unwrap());
}

#[test]
fn resume_checks_the_shards_it_builds_on() {
    let dir = tempfile::tempdir().unwrap();
    let tok = tokenizer(dir.path());
    let out = dir.path().join("out");
    let args = ["--seq-len", "64", "--shard-rows", "4"];
    pack(&tok, &out).args(args).ok();
    let train = out.join("train");
    let m: serde_json::Value =
        serde_json::from_slice(&fs::read(train.join("manifest.json")).unwrap()).unwrap();
    let shards = m["shards"].as_array().unwrap().clone();
    assert!(shards.len() >= 3);
    let resume = || pack(&tok, &out).args(args).arg("--resume");

    // A flipped byte in an earlier shard of a complete partition.
    let first = train.join(shards[1]["file"].as_str().unwrap());
    let good = fs::read(&first).unwrap();
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    fs::write(&first, &bad).unwrap();
    let o = resume().fails_with(1);
    assert_stderr_has(&o, "shard-00001.npy: sha256");
    assert_stderr_has(&o, "--resume cannot build on it");
    // Deleted.
    fs::remove_file(&first).unwrap();
    assert_stderr_has(
        &resume().fails_with(1),
        "shard-00001.npy: missing or unreadable",
    );
    fs::write(&first, &good).unwrap();
    resume().ok();

    // A state that lists a shard twice (a partition killed before its manifest).
    fs::remove_file(train.join("manifest.json")).unwrap();
    let state = serde_json::json!({
        "fingerprint": m["fingerprint"],
        "cursor": {"key": {"order": 0, "segment": 0}, "rows": 0},
        "counts": {"records": 0, "missing_field": 0, "dropped_tokens": 0},
        "shards": [shards[0], shards[0], shards[2]],
    });
    fs::write(train.join(".pack-state.json"), state.to_string()).unwrap();
    let o = resume().fails_with(1);
    assert_stderr_has(&o, "listed as shard 1, which is named shard-00001");
}

#[test]
fn a_manifest_naming_files_outside_its_folder_is_refused_by_every_reader() {
    // A task folder from elsewhere whose manifest names a path: merge would link it to
    // `out/../…` and read it from outside, verify and pretrain would read outside.
    let dir = tempfile::tempdir().unwrap();
    let tok = tokenizer(dir.path());
    let multi = dir.path().join("multi");
    for i in ["0", "1"] {
        pack(&tok, &multi)
            .args(["--seq-len", "64", "--num-tasks", "2", "--task-index", i])
            .ok();
    }
    let train = multi.join("task-00001-of-00002/train");
    let mpath = train.join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&fs::read(&mpath).unwrap()).unwrap();
    let first = m["shards"][0]["file"].as_str().unwrap().to_string();
    // The shard moved out of the folder, its name in the manifest now a path to it.
    fs::rename(train.join(&first), dir.path().join("escape-1.npy")).unwrap();
    m["shards"][0]["file"] = "../../../escape-1.npy".into();
    fs::write(&mpath, serde_json::to_vec(&m).unwrap()).unwrap();
    let o = pt!("shards", "merge", &multi).fails_with(1);
    assert_stderr_has(&o, "is not a plain file name");
    assert_stderr_has(&o, "manifest.json");
    assert!(!dir.path().join("escape-00000.npy").exists());
    assert!(!multi.join("train/manifest.json").exists());
    let o = pt!("shards", "verify", &train).fails_with(1);
    assert_stderr_has(&o, "is not a plain file name");
    let o = pt!(
        "pretrain",
        &train,
        "--out",
        dir.path().join("model"),
        "--model-config",
        root().join("configs/models/tiny.toml"),
        "--max-steps",
        "1"
    )
    .fails_with(1);
    assert_stderr_has(&o, "is not a plain file name");
}
