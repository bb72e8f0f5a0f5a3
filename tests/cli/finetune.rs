//! `pytorrent finetune`: a stopped and resumed run writes the bytes an uninterrupted one does,
//! whatever the thread count; the output is a sentence-transformers folder `embed` and
//! `eval retrieval` load; refusals with the right exit codes.

use std::path::{Path, PathBuf};

use crate::util::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn base(out: &Path) -> Cmd {
    let r = root();
    pt!(
        "finetune",
        r.join("data-samples/corpus"),
        "--init",
        r.join("data-samples/models/pytorrent-small-mlm"),
        "--out",
        out
    )
}

fn finetune(out: &Path) -> Cmd {
    base(out)
        .args([
            "--max-steps",
            "6",
            "--batch-size",
            "4",
            "--max-seq-length",
            "32",
        ])
        .args([
            "--eval-every",
            "2",
            "--eval-pairs",
            "12",
            "--seed",
            "3",
            "--lr",
            "1e-4",
        ])
        .args(["--hard-negatives", "1"])
}

/// log.csv without the wall-clock columns (elapsed_s, pairs_per_s).
fn log_without_times(out: &Path) -> Vec<String> {
    read_text(&out.join("log.csv"))
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            [&f[..6], &f[8..]].concat().join(",")
        })
        .collect()
}

#[test]
fn a_resumed_run_writes_the_bytes_of_an_uninterrupted_one_whatever_the_threads() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    let report = finetune(&whole).args(["-q"]).json();
    assert_eq!(report["steps"], 6);
    assert_eq!(report["finished"], true);
    assert!(report["valid_mrr_init"].as_f64().unwrap() > 0.0);
    assert_eq!(
        report["valid_curve"].as_array().unwrap().len(),
        4,
        "{report}"
    );
    for f in [
        "modules.json",
        "sentence_bert_config.json",
        "1_Pooling/config.json",
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "README.md",
        "mrr.svg",
    ] {
        assert!(whole.join(f).is_file(), "no {f}");
    }
    let st: serde_json::Value =
        serde_json::from_str(&read_text(&whole.join("sentence_bert_config.json"))).unwrap();
    assert_eq!(st["max_seq_length"], 32);

    let parts = dir.path().join("parts");
    let first = finetune(&parts)
        .env("RAYON_NUM_THREADS", "1")
        .args(["--stop-after", "3", "-q"])
        .json();
    assert_eq!(first["finished"], false);
    // Again without --resume: refused, nothing overwritten.
    let o = finetune(&parts).arg("-q").fails_with(2);
    assert_stderr_has(&o, "--resume");
    let done = finetune(&parts)
        .env("RAYON_NUM_THREADS", "2")
        .args(["--resume", "-q"])
        .json();
    assert_eq!(done["resumed_from"], 3);
    assert_eq!(done["finished"], true);
    let bytes = |d: &Path| std::fs::read(d.join("model.safetensors")).unwrap();
    assert!(bytes(&whole) == bytes(&parts), "resumed weights differ");
    assert_eq!(log_without_times(&whole), log_without_times(&parts));
    assert_eq!(report["valid_mrr"], done["valid_mrr"]);
    // Other settings on resume are refused.
    let o = finetune(&parts)
        .args(["--resume", "--scale", "10", "-q"])
        .fails_with(2);
    assert_stderr_has(&o, "other settings");

    // The folder is a model the other commands take, as sentence-transformers folders are.
    let npy = dir.path().join("e.npy");
    pt!(
        "embed",
        "--model",
        &whole,
        "--text",
        "def add(a, b): return a + b",
        "--out",
        &npy,
        "-q"
    )
    .ok();
    let (rows, dim, _) = read_npy_f32(&npy);
    assert_eq!((rows, dim), (1, 256));
    let r = pt!(
        "eval",
        "retrieval",
        root().join("data-samples/corpus"),
        "--model",
        &whole,
        "--protocol",
        "pool",
        "--no-cache",
        "-q"
    )
    .json();
    assert!(
        r["scores"]["test"][0]["mrr_at_10"].as_f64().unwrap() > 0.0,
        "{r}"
    );
}

#[test]
fn finetune_refuses_bad_requests() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    // In-batch negatives need two pairs a batch.
    let o = base(&out).args(["--batch-size", "1"]).fails_with(2);
    assert_stderr_has(&o, "--batch-size 1");
    // A tokenizer folder is not a model.
    let r = root();
    let tok = tokenizer(dir.path());
    let o = pt!(
        "finetune",
        r.join("data-samples/corpus"),
        "--init",
        &tok,
        "--out",
        &out
    )
    .fails_with(2);
    assert_stderr_has(&o, "tokenizer folder");
    // Longer texts than the model's positions.
    let o = base(&out).args(["--max-seq-length", "4096"]).fails_with(2);
    assert_stderr_has(&o, "takes 128 tokens");
    // An --out whose 1_Pooling/ holds someone else's file: refused before any training, the
    // file left alone.
    let theirs = dir.path().join("theirs");
    std::fs::create_dir_all(theirs.join("1_Pooling")).unwrap();
    std::fs::write(theirs.join("1_Pooling/notes.txt"), "mine").unwrap();
    let o = finetune(&theirs).fails_with(2);
    assert_stderr_has(&o, "notes.txt");
    assert_eq!(read_text(&theirs.join("1_Pooling/notes.txt")), "mine");
    // A corpus without pairs in the partition: a data error naming it.
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, record("org/x", "def f():\n    return 1\n") + "\n").unwrap();
    let o = pt!(
        "finetune",
        &empty,
        "--init",
        r.join("data-samples/models/pytorrent-small-mlm"),
        "--out",
        &out
    )
    .fails_with(1);
    assert_stderr_has(&o, "at least 2");
}

#[test]
fn a_bert_sentence_transformers_model_fine_tunes_too() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bert");
    let r = root();
    let report = pt!(
        "finetune",
        r.join("data-samples/corpus"),
        "--init",
        r.join("tests/fixtures/models/st-minilm"),
        "--out",
        &out
    )
    .args([
        "--max-steps",
        "3",
        "--batch-size",
        "8",
        "--eval-pairs",
        "12",
        "-q",
    ])
    .json();
    assert_eq!(report["finished"], true);
    let config: serde_json::Value =
        serde_json::from_str(&read_text(&out.join("config.json"))).unwrap();
    assert_eq!(config["architectures"][0], "BertModel");
    assert_eq!(config["model_type"], "bert");
    // BERT's positions run from 0: the whole table is usable.
    let st: serde_json::Value =
        serde_json::from_str(&read_text(&out.join("sentence_bert_config.json"))).unwrap();
    assert_eq!(st["max_seq_length"], 64);
    // The weights moved, and the folder embeds.
    let before =
        std::fs::read(r.join("tests/fixtures/models/st-minilm/model.safetensors")).unwrap();
    assert_ne!(
        std::fs::read(out.join("model.safetensors")).unwrap(),
        before
    );
    let npy = dir.path().join("e.npy");
    pt!(
        "embed",
        "--model",
        &out,
        "--text",
        "def add(a, b): return a + b",
        "--out",
        &npy,
        "-q"
    )
    .ok();
    assert_eq!(read_npy_f32(&npy).1, 48);
}

/// The shipped retrieval model is what its card says: on the sample corpus's test partition
/// (packages neither shipped model trained on) it ranks code far better than the MLM it
/// started from.
#[test]
fn the_shipped_retrieval_model_beats_the_mlm_it_started_from() {
    let r = root();
    let report = pt!(
        "eval",
        "retrieval",
        r.join("data-samples/corpus"),
        "--model",
        r.join("data-samples/models/pytorrent-small-retrieval"),
        "--baseline-model",
        r.join("data-samples/models/pytorrent-small-mlm"),
        "--protocol",
        "pool",
        "--no-cache",
        "-q"
    )
    .json();
    let p = &report["pytorrent"];
    let ours = p["scores"]["mrr"].as_f64().unwrap();
    let mlm_name = format!(
        "model:{}",
        r.join("data-samples/models/pytorrent-small-mlm").display()
    );
    let mlm = p["baselines"][&mlm_name]["mrr"].as_f64().unwrap();
    let random = p["baselines"]["random"]["mrr"].as_f64().unwrap();
    assert!(ours > 2.0 * mlm, "fine-tuned {ours} vs MLM {mlm}");
    assert!(mlm > 0.0 && ours > random);
}

/// What `pytorrent finetune` writes loads in sentence-transformers with the embeddings ours
/// gives: the shipped retrieval model (a finetune output) against embeddings
/// `SentenceTransformer(DIR).encode` made (scripts/finetune/make_st_reference.py), a text
/// past max_seq_length among them.
#[test]
fn a_finetune_output_embeds_as_sentence_transformers_does() {
    let r = root();
    let reference: serde_json::Value = serde_json::from_str(&read_text(
        &r.join("tests/fixtures/finetune/st-reference.json"),
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let npy = dir.path().join("e.npy");
    let mut cmd = pt!(
        "embed",
        "--model",
        r.join("data-samples/models/pytorrent-small-retrieval"),
        "--out",
        &npy,
        "-q"
    );
    let texts = reference["texts"].as_array().unwrap();
    for t in texts {
        cmd = cmd.args(["--text", t.as_str().unwrap()]);
    }
    cmd.ok();
    let (rows, dim, ours) = read_npy_f32(&npy);
    let want = reference["embeddings"].as_array().unwrap();
    assert_eq!((rows, dim), (want.len(), want[0].as_array().unwrap().len()));
    for (i, row) in want.iter().enumerate() {
        for (j, v) in row.as_array().unwrap().iter().enumerate() {
            let d = (ours[i * dim + j] as f64 - v.as_f64().unwrap()).abs();
            assert!(d < 1e-4, "text {i}, dimension {j}: differs by {d}");
        }
    }
}
