//! The pack stage and the shards commands called as library functions, without the binary:
//! pack, verify, inspect, a task split and its merge, and refusals of old manifests.

use pytorrent_testkit::samples;
use std::path::{Path, PathBuf};

use pytorrent_corpus::InputConfig;
use pytorrent_io::{Classify, ErrorKind, Silent};
use pytorrent_pack::inspect::InspectConfig;
use pytorrent_pack::merge::MergeConfig;
use pytorrent_pack::verify::VerifyConfig;
use pytorrent_pack::{Mode, PackConfig};

fn tokenizer(dir: &Path) -> String {
    let out = dir.join("tok");
    let mut cfg =
        pytorrent_tokenizer::TrainConfig::new(InputConfig::new(vec![samples()]), out.clone());
    cfg.vocab_size = 1000;
    pytorrent_tokenizer::train_corpus::run(&cfg, &Silent).unwrap();
    out.display().to_string()
}

fn config(tok: &str, out: PathBuf) -> PackConfig {
    let mut cfg = PackConfig::new(vec![samples()], tok, out);
    cfg.settings.seq_len = 64;
    cfg.settings.shard_rows = 40;
    cfg.settings.segment_lines = 50;
    cfg
}

#[test]
fn pack_verify_inspect_and_a_task_split() {
    let dir = tempfile::tempdir().unwrap();
    let tok = tokenizer(dir.path());
    let out = dir.path().join("one");
    let report = pytorrent_pack::run(&config(&tok, out.clone()), &Silent).unwrap();
    assert_eq!(report.partitions.len(), 3);
    let train = &report.partitions[0];
    assert_eq!(train.partition, "train");
    assert_eq!(train.shards as u64, train.rows.div_ceil(40));
    let v = pytorrent_pack::verify::run(
        &VerifyConfig {
            dirs: vec![out.clone()],
        },
        &Silent,
    )
    .unwrap();
    assert!(v.ok && v.folders.len() == 3, "{v:?}");
    let rows = pytorrent_pack::inspect::run(
        &InspectConfig {
            dirs: vec![out.join("train")],
            row: 0,
            count: 2,
            tokenizer: None,
        },
        &Silent,
    )
    .unwrap();
    assert_eq!(rows.0.len(), 2);
    assert_eq!(rows.0[0].ids.len(), 64);
    // A segment's first block starts a record.
    assert!(rows.0[0].text.starts_with("<s>"), "{}", rows.0[0].text);
    assert_eq!(rows.0[1].row, 1);

    // Two tasks and a merge hold the same rows as one task.
    let multi = dir.path().join("multi");
    for index in 0..2 {
        let mut cfg = config(&tok, multi.clone());
        (cfg.num_tasks, cfg.task_index) = (Some(2), Some(index));
        pytorrent_pack::run(&cfg, &Silent).unwrap();
    }
    let merged = pytorrent_pack::merge::run(&MergeConfig { dir: multi.clone() }, &Silent).unwrap();
    assert_eq!(merged.tasks, 2);
    let m = pytorrent_pack::manifest::Manifest::read(&multi.join("train/manifest.json")).unwrap();
    assert_eq!((m.rows, m.records), (train.rows, train.records));
}

#[test]
fn settings_are_checked_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config("no-such-tokenizer-folder/", dir.path().join("o"));
    cfg.settings.shard_rows = 0;
    let e = pytorrent_pack::run(&cfg, &Silent).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Usage);
    assert!(e.to_string().contains("--shard-rows"), "{e}");
    let mut cfg = config("x", dir.path().join("o"));
    cfg.settings.mode = Mode::Record;
    cfg.settings.format = pytorrent_pack::shards::Format::Megatron;
    cfg.settings.static_mask = true;
    assert_eq!(
        pytorrent_pack::run(&cfg, &Silent).unwrap_err().kind(),
        ErrorKind::Usage
    );
}

#[test]
fn manifests_of_another_format_are_refused_by_resume_merge_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let tok = tokenizer(dir.path());
    let out = dir.path().join("old");
    let mut cfg = config(&tok, out.clone());
    cfg.partition = "test".parse().unwrap();
    pytorrent_pack::run(&cfg, &Silent).unwrap();
    // What a build of manifest format 1 wrote: no format_version.
    let path = out.join("test/manifest.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("format_version");
    v["tool"] = "pytorrent 0.1.0".into();
    std::fs::write(&path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();

    cfg.resume = true;
    let e = pytorrent_pack::run(&cfg, &Silent).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Usage);
    let msg = e.to_string();
    assert!(
        msg.contains("manifest format 1") && msg.contains("--resume"),
        "{msg}"
    );

    let v = pytorrent_pack::verify::run(
        &VerifyConfig {
            dirs: vec![out.clone()],
        },
        &Silent,
    )
    .unwrap();
    assert!(!v.ok);
    assert!(v.problems[0].problem.contains("manifest format 1"), "{v:?}");

    // A task folder of the old format is refused by merge.
    let task = dir.path().join("tasks/task-00000-of-00001");
    std::fs::create_dir_all(&task).unwrap();
    std::fs::rename(out.join("test"), task.join("test")).unwrap();
    std::fs::write(
        task.join("COMPLETE.json"),
        r#"{"task": {"count": 1, "index": 0}, "fingerprint": "old"}"#,
    )
    .unwrap();
    let e = pytorrent_pack::merge::run(
        &MergeConfig {
            dir: dir.path().join("tasks"),
        },
        &Silent,
    )
    .unwrap_err();
    assert!(e.to_string().contains("manifest format 1"), "{e}");
}
