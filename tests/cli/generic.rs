//! Corpora of any shape: records with only a text field, Parquet in and out, records without
//! partitions; BERT-family tokenizers and sentence-transformers folders.

use std::fs;
use std::path::{Path, PathBuf};

use crate::util::*;

fn fixture(rel: &str) -> PathBuf {
    root().join("tests/fixtures").join(rel)
}

fn expected_parquet() -> serde_json::Value {
    serde_json::from_slice(&fs::read(fixture("parquet/expected.json")).unwrap()).unwrap()
}

/// A corpus of `{"text": …}` records (as datatrove writes them), no partitions.
fn text_corpus(dir: &Path) -> PathBuf {
    let p = dir.join("plain.jsonl");
    let lines: Vec<String> = sample_lines()
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let r: serde_json::Value = serde_json::from_str(l).unwrap();
            serde_json::json!({"id": i, "text": r["code"], "metadata": {"repo": r["repo"]}})
                .to_string()
        })
        .collect();
    fs::write(&p, lines.join("\n") + "\n").unwrap();
    p
}

#[test]
fn records_with_only_a_text_field_train_encode_and_pack() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = text_corpus(dir.path());
    let tok = dir.path().join("tok");
    // No partitions: train takes them with --partition all, and says how otherwise.
    let o = pt!(
        "tokenizer",
        "train",
        corpus,
        "--text-field",
        "text",
        "--out",
        tok
    )
    .fails_with(1);
    assert_stderr_has(&o, "524 records have no partition");
    assert_stderr_has(&o, "--default-partition train");
    let v = pt!(
        "tokenizer",
        "train",
        corpus,
        "--text-field",
        "text",
        "--out",
        tok
    )
    .args(["--partition", "all", "--vocab-size", "1000", "-q"])
    .json();
    assert_eq!(v["texts"], 524);
    // The same texts as the PyTorrent view of the samples: the same ids.
    let plain = pt!(
        "tokenizer",
        "encode",
        "--tokenizer",
        tok,
        corpus,
        "--text-field",
        "text"
    )
    .ok();
    let view = pt!(
        "tokenizer",
        "encode",
        "--tokenizer",
        tok,
        samples(),
        "--field",
        "code"
    )
    .ok();
    let (plain, view) = (stdout(&plain), stdout(&view));
    let mut a: Vec<&str> = plain.lines().collect();
    let mut b: Vec<&str> = view.lines().collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    // Pack: nothing to pack without a partition, then a deterministic split.
    let out = dir.path().join("packed");
    let pack = || {
        pt!(
            "pack",
            corpus,
            "--tokenizer",
            tok,
            "--out",
            out,
            "--text-field",
            "text"
        )
        .args(["--seq-len", "64", "-q"])
    };
    let o = pack().fails_with(1);
    assert_stderr_has(&o, "nothing to pack");
    assert_stderr_has(&o, "--validation-split-percentage");
    assert!(!out.join("train/manifest.json").exists());
    let v = pack().args(["--validation-split-percentage", "10"]).json();
    let rows = |v: &serde_json::Value, p: &str| {
        v["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["partition"] == p)
            .unwrap()["records"]
            .as_u64()
            .unwrap()
    };
    let (train, valid) = (rows(&v, "train"), rows(&v, "valid"));
    assert_eq!(train + valid, 524);
    assert!((20..=90).contains(&valid), "about 10% to valid: {valid}");
    let again = pack().args(["--validation-split-percentage", "10"]).json();
    assert_eq!(rows(&again, "valid"), valid, "the split is deterministic");
    let v = pack().args(["--default-partition", "test"]).json();
    assert_eq!(rows(&v, "test"), 524);
}

#[test]
fn a_text_field_that_is_missing_or_not_a_string_is_named_by_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.jsonl");
    fs::write(
        &p,
        "{\"text\": \"def f(): pass\"}\n{\"content\": \"x\"}\n{\"text\": 3}\n{\"text\": \"a\"\n",
    )
    .unwrap();
    let tok = tokenizer(dir.path());
    let encode = || {
        pt!(
            "tokenizer",
            "encode",
            "--tokenizer",
            &tok,
            &p,
            "--text-field",
            "text"
        )
    };
    let o = encode().fails_with(1);
    assert_stderr_has(&o, &format!("{}:2: no field `text`", p.display()));
    let o = encode().args(["--on-error", "skip", "--out", "-"]).ok();
    assert_eq!(stdout(&o).lines().count(), 1);
    let q = fs::read_to_string(dir.path().join("bad.jsonl.rejected.tsv"))
        .err()
        .map(|_| ());
    assert!(
        q.is_some(),
        "stdout output: no quarantine file unless asked"
    );
    let o = encode()
        .args(["--on-error", "skip", "--out"])
        .arg(dir.path().join("ids.jsonl"))
        .ok();
    assert_stderr_has(&o, "skipped 3 bad lines");
    let q = fs::read_to_string(dir.path().join("ids.jsonl.rejected.tsv")).unwrap();
    assert!(q.contains("field `text` is a number, not a string"), "{q}");
    assert!(q.contains("\t4\tinvalid_json\t"), "{q}");
}

#[test]
fn parquet_written_by_pyarrow_reads_like_the_jsonl_it_came_from() {
    let want = expected_parquet();
    // Every PyTorrent column: the same statistics as the JSONL test partition.
    let pq = pt!(
        "corpus",
        "stats",
        fixture("parquet/pytorrent-test.parquet"),
        "-q"
    )
    .json();
    let js = pt!("corpus", "stats", samples(), "--partition", "test", "-q").json();
    for key in [
        "records",
        "distinct_packages",
        "code_chars",
        "docstring_chars",
    ] {
        assert_eq!(pq[key], js[key], "{key}");
    }
    assert_eq!(
        pq["records"], want["pytorrent-test.parquet"]["rows"],
        "every row read"
    );
    // A hub-style code dataset: splits from the file names, the text from `content`.
    let dir = tempfile::tempdir().unwrap();
    let ids = dir.path().join("ids.jsonl");
    let tok = tokenizer(dir.path());
    let o = pt!(
        "tokenizer",
        "encode",
        "--tokenizer",
        &tok,
        fixture("parquet/hub")
    )
    .args([
        "--text-field",
        "content",
        "--partition",
        "validation",
        "--no-special-tokens",
    ])
    .arg("--out")
    .arg(&ids)
    .ok();
    assert_stderr_has(&o, "encoded 10 texts");
    let direct = pt!(
        "tokenizer",
        "encode",
        "--tokenizer",
        &tok,
        "--no-special-tokens"
    )
    .args(
        want["hub/data/validation-00000-of-00001.parquet"]["contents"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| ["--text".to_string(), c.as_str().unwrap().to_string()]),
    )
    .ok();
    assert_eq!(fs::read_to_string(&ids).unwrap(), stdout(&direct));
    // A datatrove-style file (text, id, a metadata struct) packs with --text-field text.
    let out = dir.path().join("packed");
    let v = pt!(
        "pack",
        fixture("parquet/datatrove.parquet"),
        "--tokenizer",
        &tok,
        "--out",
        out
    )
    .args(["--text-field", "text", "--default-partition", "train"])
    .args([
        "--mode",
        "record",
        "--seq-len",
        "512",
        "--partition",
        "train",
        "-q",
    ])
    .json();
    assert_eq!(v["partitions"][0]["records"], 12);
}

#[test]
fn parquet_out_round_trips_and_packs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pq");
    pt!(
        "corpus",
        "convert",
        samples(),
        "--format",
        "parquet",
        "--out",
        out,
        "-q"
    )
    .ok();
    assert_eq!(
        tree(&out),
        [
            "README.md",
            "data/test-00000-of-00001.parquet",
            "data/train-00000-of-00001.parquet",
            "data/validation-00000-of-00001.parquet",
        ]
    );
    let card = fs::read_to_string(out.join("README.md")).unwrap();
    assert!(
        card.starts_with("---\nconfigs:\n- config_name: default\n"),
        "{card}"
    );
    assert!(
        card.contains("  - name: validation\n    num_bytes:"),
        "{card}"
    );
    assert!(card.contains("num_examples: 40"), "{card}");
    // Back to JSONL: the same records, field for field.
    let back = dir.path().join("back.jsonl");
    pt!("corpus", "convert", out, "--out", back, "-q").ok();
    let mut got: Vec<serde_json::Value> = fs::read_to_string(&back)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut want: Vec<serde_json::Value> = sample_lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let key = |v: &serde_json::Value| format!("{}{}{}", v["repo"], v["path"], v["func_name"]);
    got.sort_by_key(key);
    want.sort_by_key(key);
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        for field in [
            "repo",
            "code",
            "code_tokens",
            "docstring",
            "docstring_tokens",
            "url",
        ] {
            assert_eq!(g[field], w[field], "{field} of {}", key(w));
        }
    }
    // Shards as Parquet rows: verify reads them back.
    let tok = tokenizer(dir.path());
    let packed = dir.path().join("packed");
    pack(&tok, &packed)
        .args(["--format", "parquet", "--seq-len", "64", "--static-mask"])
        .ok();
    assert!(packed.join("train/shard-00000.parquet").is_file());
    let o = pt!("shards", "verify", packed).ok();
    assert_stderr_has(&o, "ok: 3 folders checked, 0 problems");

    // The same bytes whatever the thread count, for the corpus and for the shards.
    let files = |d: &Path| -> Vec<(String, Vec<u8>)> {
        tree(d)
            .into_iter()
            .map(|f| (f.clone(), fs::read(d.join(&f)).unwrap()))
            .collect()
    };
    let one = dir.path().join("pq-1");
    pt!(
        "corpus",
        "convert",
        samples(),
        "--format",
        "parquet",
        "--out",
        one,
        "-q"
    )
    .env("RAYON_NUM_THREADS", "1")
    .ok();
    assert!(
        files(&one) == files(&out),
        "convert: 1 thread against the default"
    );
    let packed1 = dir.path().join("packed-1");
    pack(&tok, &packed1)
        .args(["--format", "parquet", "--seq-len", "64", "--static-mask"])
        .env("RAYON_NUM_THREADS", "1")
        .ok();
    let shards = |d: &Path| {
        files(d)
            .into_iter()
            .filter(|(f, _)| f.ends_with(".parquet"))
            .collect::<Vec<_>>()
    };
    assert!(
        shards(&packed1) == shards(&packed),
        "pack: 1 thread against the default"
    );
}

#[test]
fn wordpiece_tokenizers_pack_as_their_own_pairs() {
    let st = fixture("models/st-minilm");
    let reference: serde_json::Value =
        serde_json::from_slice(&fs::read(st.join("reference.json")).unwrap()).unwrap();
    let v = pt!("tokenizer", "inspect", "--tokenizer", st).json();
    assert_eq!(v["model"], "WordPiece");
    assert_eq!(
        (v["roles"]["start"].as_str(), v["roles"]["end"].as_str()),
        (Some("[CLS]"), Some("[SEP]"))
    );
    assert_eq!(v["roles"]["pad"], "[PAD]");
    assert_eq!(v["roles"]["mask"], "[MASK]");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p");
    let t = st.to_str().unwrap();
    pack(t, &out)
        .args(["--field", "nl+code", "--mode", "record", "--seq-len", "512"])
        .args(["--no-shuffle", "--partition", "test"])
        .ok();
    let rows: Vec<serde_json::Value> = serde_json::from_slice(
        &pt!("shards", "inspect", &out, "--count", "5", "--json")
            .ok()
            .stdout,
    )
    .unwrap();
    for (row, want) in rows.iter().zip(reference["pairs"].as_array().unwrap()) {
        let real = row["attention_mask"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| **m == 1)
            .count();
        let ids: Vec<u64> = row["ids"].as_array().unwrap()[..real]
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        let want: Vec<u64> = want["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(
            ids, want,
            "[CLS] NL [SEP] code [SEP] as the tokenizer pairs them"
        );
        assert!(row["text"].as_str().unwrap().starts_with("[CLS]"));
    }
    // Static masks with the tokenizer's own [MASK].
    let masked = dir.path().join("m");
    pack(t, &masked)
        .args([
            "--seq-len",
            "64",
            "--static-mask",
            "--whole-word-mask",
            "--partition",
            "test",
        ])
        .ok();
    let o = pt!("shards", "inspect", &masked, "--count", "3").ok();
    assert!(stdout(&o).contains("[MASK]"), "{}", stdout(&o));
}

#[test]
fn a_tokenizer_without_what_pack_needs_is_named() {
    let dir = tempfile::tempdir().unwrap();
    // The WordPiece tokenizer without its [MASK] token.
    let src: serde_json::Value =
        serde_json::from_slice(&fs::read(fixture("models/st-minilm/tokenizer.json")).unwrap())
            .unwrap();
    let mut t = src.clone();
    t["added_tokens"] = serde_json::Value::Array(
        src["added_tokens"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["content"] != "[MASK]")
            .cloned()
            .collect(),
    );
    t["model"]["vocab"]
        .as_object_mut()
        .unwrap()
        .remove("[MASK]");
    let path = dir.path().join("tokenizer.json");
    fs::write(&path, serde_json::to_vec(&t).unwrap()).unwrap();
    let o = pack(path.to_str().unwrap(), &dir.path().join("o"))
        .args(["--static-mask", "--seq-len", "64"])
        .fails_with(2);
    assert_stderr_has(
        &o,
        "no mask token (<mask>, [MASK]), which static masking needs",
    );
}

#[test]
fn embed_gives_what_sentence_transformers_gives() {
    let st = fixture("models/st-minilm");
    let reference: serde_json::Value =
        serde_json::from_slice(&fs::read(st.join("reference.json")).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lines = dir.path().join("texts.jsonl");
    let texts = reference["texts"].as_array().unwrap();
    fs::write(
        &lines,
        texts
            .iter()
            .map(|t| t.to_string() + "\n")
            .collect::<String>(),
    )
    .unwrap();
    let out = dir.path().join("e.npy");
    let v = pt!("embed", "--model", &st, &lines, "--out", &out).json();
    let over = reference["token_counts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n.as_u64().unwrap() > 24)
        .count();
    assert_eq!(v["max_tokens"], 24, "sentence_bert_config's max_seq_length");
    assert_eq!(v["truncated"], over as u64);
    assert_eq!(v["truncated_inputs"].as_array().unwrap().len(), over);
    assert_eq!(
        v["truncated_inputs"][0]["line"], 3,
        "the third text is the first over 24"
    );
    assert_eq!(
        (v["pooling"].as_str(), v["normalize"].as_bool()),
        (Some("mean"), Some(true))
    );
    let (rows, cols, got) = read_npy_f32(&out);
    assert_eq!(rows, texts.len());
    for (i, want) in reference["embeddings"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        for (j, w) in want.as_array().unwrap().iter().enumerate() {
            let d = (got[i * cols + j] - w.as_f64().unwrap() as f32).abs();
            assert!(d < 1e-5, "text {i}, dimension {j}: |Δ| {d}");
        }
    }
    // --max-length overrides the folder's; --text gives inputs inline.
    let v = pt!(
        "embed",
        "--model",
        &st,
        "--out",
        dir.path().join("x.npy"),
        "--max-length",
        "8"
    )
    .args(
        texts
            .iter()
            .flat_map(|t| ["--text".to_string(), t.as_str().unwrap().to_string()]),
    )
    .json();
    assert_eq!(
        (v["max_tokens"].as_u64(), v["rows"].as_u64()),
        (Some(8), Some(4))
    );
    assert_eq!(v["truncated"], 4);
}

#[test]
fn a_failed_parquet_conversion_leaves_nothing_that_looks_finished() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    // Over 4 MiB before the bad line, so that files are open when the run fails.
    let mut lines: Vec<String> = std::iter::repeat_n(sample_lines(), 4).flatten().collect();
    lines.insert(2000, "{\"repo\": ".into());
    fs::write(&input, lines.join("\n") + "\n").unwrap();
    let out = dir.path().join("pq");
    let o = pt!("corpus", "convert", input, "--format", "parquet", "--out", out).fails_with(1);
    assert_stderr_has(&o, "in.jsonl:2001:");
    let left: Vec<String> = if out.exists() { tree(&out) } else { Vec::new() };
    assert!(left.is_empty(), "no files, temporary or final: {left:?}");
}
