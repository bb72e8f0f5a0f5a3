//! The corpus stage's commands called as library functions (`run(config, reporter)`), without
//! the binary.

use pytorrent_testkit::samples;
use std::path::Path;

use pytorrent_corpus::convert::ConvertConfig;
use pytorrent_corpus::filter::FilterConfig;
use pytorrent_corpus::stats::StatsConfig;
use pytorrent_corpus::validate::ValidateConfig;
use pytorrent_corpus::writer::Layout;
use pytorrent_corpus::{InputConfig, OnError, Partition, Partitions};
use pytorrent_io::reporter::Recorder;
use pytorrent_io::{Classify, ErrorKind, Silent};

/// Records of the samples by partition, counted from the files themselves.
fn sample_counts() -> [u64; 3] {
    let mut n = [0u64; 3];
    for (i, p) in ["train", "valid", "test"].iter().enumerate() {
        let f = samples().join(format!(
            "docstrings/{p}/{p}_scenario_docstrings_chk_0.jsonl.gz"
        ));
        let mut s = String::new();
        std::io::Read::read_to_string(
            &mut pytorrent_io::open_input(&f, None).unwrap().reader,
            &mut s,
        )
        .unwrap();
        n[i] = s.lines().count() as u64;
    }
    n
}

fn line(repo: &str, partition: &str) -> String {
    serde_json::json!({"repo": repo, "path": "m.py", "func_name": "f",
        "original_string": "def f():\n    return 1", "language": "python",
        "code": "def f():\n    return 1", "code_tokens": ["def", "f"], "docstring": "Does f.",
        "docstring_tokens": ["Does", "f"], "sha": null, "url": "m.py#L1-L2", "partition": partition})
    .to_string()
}

#[test]
fn validate_reports_each_problem_by_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("c.jsonl");
    std::fs::write(
        &f,
        format!("{}\n{{\"repo\": 1}}\nnot json\n", line("a", "train")),
    )
    .unwrap();
    let rec = Recorder::default();
    let report = pytorrent_corpus::validate::run(
        &ValidateConfig::new(InputConfig::new(vec![f.clone()])),
        &rec,
    )
    .unwrap();
    assert!(!report.valid);
    assert_eq!(
        (report.summary.records, report.summary.rejected_total()),
        (1, 2)
    );
    assert_eq!(
        report
            .problems
            .iter()
            .map(|p| (p.line, p.kind.as_str()))
            .collect::<Vec<_>>(),
        [(2, "wrong_type"), (3, "invalid_json")]
    );
    let problems = rec.problems();
    assert_eq!(problems.len(), 2);
    assert!(
        problems[0].starts_with(&format!("{}:2: ", f.display())),
        "{problems:?}"
    );
    assert!(
        !dir.path().join("c.jsonl.rejected.tsv").exists(),
        "no quarantine unless asked"
    );
}

#[test]
fn stats_counts_the_partitions_asked_for() {
    let [train, valid, test] = sample_counts();
    let all = pytorrent_corpus::stats::run(
        &StatsConfig::new(InputConfig::new(vec![samples()])),
        &Silent,
    )
    .unwrap();
    assert_eq!(all.records, train + valid + test);
    let mut cfg = StatsConfig::new(InputConfig::new(vec![samples()]));
    cfg.partition = "valid,test".parse().unwrap();
    let some = pytorrent_corpus::stats::run(&cfg, &Silent).unwrap();
    assert_eq!(some.records, valid + test);
    assert_eq!(some.records_per_partition.get("train"), None);
}

#[test]
fn convert_to_a_chunked_layout_and_filter_by_partition() {
    let dir = tempfile::tempdir().unwrap();
    let [train, valid, test] = sample_counts();
    let mut cfg = ConvertConfig::new(InputConfig::new(vec![samples()]), dir.path().join("csn"));
    cfg.layout = Layout::CodeSearchNet;
    cfg.chunk_records = Some(100);
    let report = pytorrent_corpus::convert::run(&cfg, &Silent).unwrap();
    assert_eq!(report.records_per_partition["train"], train);
    assert_eq!(
        report.written.len() as u64,
        train.div_ceil(100) + valid.div_ceil(100) + test.div_ceil(100)
    );
    assert!(dir
        .path()
        .join("csn/python/final/jsonl/train/python_train_0.jsonl.gz")
        .is_file());

    let mut f = FilterConfig::new(
        InputConfig::new(vec![dir.path().join("csn")]),
        dir.path().join("train-only"),
    );
    f.partition = Partitions::only(Partition::Train);
    let kept = pytorrent_corpus::filter::run(&f, &Silent).unwrap();
    assert_eq!(kept.filter.kept, train);
    assert_eq!(kept.filter.dropped.values().sum::<u64>(), valid + test);
}

#[test]
fn bad_settings_are_usage_errors_and_bad_lines_data_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = ConvertConfig::new(InputConfig::new(vec![samples()]), dir.path().join("o"));
    cfg.layout = Layout::Mirror;
    let e = pytorrent_corpus::convert::run(&cfg, &Silent).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Usage, "{e}");
    let mut f = FilterConfig::new(InputConfig::new(vec![samples()]), dir.path().join("f"));
    f.spdx = Some(vec!["MIT".into()]);
    assert_eq!(
        pytorrent_corpus::filter::run(&f, &Silent)
            .unwrap_err()
            .kind(),
        ErrorKind::Usage
    );

    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{oops\n").unwrap();
    let cfg = ConvertConfig::new(
        InputConfig::new(vec![bad.clone()]),
        dir.path().join("x.jsonl"),
    );
    let e = pytorrent_corpus::convert::run(&cfg, &Silent).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Data);
    assert!(
        e.to_string().starts_with(&format!("{}:1:", bad.display())),
        "{e}"
    );
    assert!(
        !Path::new(&dir.path().join("x.jsonl")).exists(),
        "nothing under the final name"
    );
    // With skip, the bad line is counted and quarantined beside the output.
    let mut cfg = cfg;
    cfg.input.on_error = OnError::Skip;
    let report = pytorrent_corpus::convert::run(&cfg, &Silent).unwrap();
    assert_eq!(report.read.rejected_total(), 1);
    assert!(dir.path().join("x.jsonl.rejected.tsv").is_file());
}
