//! End-to-end tests of `pytorrent tokenizer …` on data-samples/.

use std::fs;
use std::path::Path;

use crate::util::*;

fn train(out: &Path) -> Cmd {
    pt!(
        "tokenizer",
        "train",
        samples(),
        "--out",
        out,
        "--vocab-size",
        "1500",
        "--quiet"
    )
}

#[test]
fn training_is_byte_identical_across_runs_and_thread_counts() {
    let dir = tempfile::tempdir().unwrap();
    let mut outputs = Vec::new();
    for (i, threads) in ["1", "2", "2"].iter().enumerate() {
        let out = dir.path().join(format!("tok{i}"));
        train(&out)
            .args(["--read-chunk-bytes", "16384"])
            .env("RAYON_NUM_THREADS", threads)
            .ok();
        let files: Vec<Vec<u8>> = pytorrent_tokenizer::OUTPUT_FILES
            .iter()
            .map(|f| fs::read(out.join(f)).unwrap())
            .collect();
        outputs.push(files);
    }
    assert_eq!(outputs[0], outputs[1], "1 vs 2 threads");
    assert_eq!(outputs[1], outputs[2], "two runs on 2 threads");
}

#[test]
fn train_uses_the_train_partition_and_records_as_sequences() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tok");
    let v = train(&out).json();
    assert_eq!(v["texts"], 459, "train partition only");
    assert_eq!(v["counts"]["other_partition"], 65);
    assert_eq!(v["vocab_size"], 1500);
    let vocab: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("vocab.json")).unwrap()).unwrap();
    for (id, t) in ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        .iter()
        .enumerate()
    {
        assert_eq!(vocab[t], id, "{t}");
    }
    // Newline + indentation tokens only form when whole records are training sequences.
    assert!(
        vocab.get("ĊĠĠĠĠĠĠĠ").is_some(),
        "newline + 8 spaces is a token"
    );
    let merges = fs::read_to_string(out.join("merges.txt")).unwrap();
    assert!(merges.lines().count() > 1000);
    let cfg: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("tokenizer_config.json")).unwrap()).unwrap();
    assert_eq!(cfg["model_max_length"], 512);
}

#[test]
fn encode_decode_inspect_and_eval() {
    let dir = tempfile::tempdir().unwrap();
    let tok = dir.path().join("tok");
    train(&tok).ok();
    let t = tok.to_str().unwrap();

    let text = "def greet(name):\n    return 'hello ' + name\n";
    let o = pt!("tokenizer", "encode", "--tokenizer", t, "--text", text).ok();
    let ids: Vec<u32> = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!((ids[0], *ids.last().unwrap()), (0, 2), "<s> … </s>");
    let joined: Vec<String> = ids.iter().map(u32::to_string).collect();
    let o = pt!("tokenizer", "decode", "--tokenizer", t, &joined.join(",")).run();
    assert_eq!(
        stdout(&o).trim_end_matches('\n'),
        text.trim_end_matches('\n'),
        "decode inverts encode"
    );

    // stdin text, and a corpus view with a partition filter, to JSONL.
    let o = pt!(
        "tokenizer",
        "encode",
        "--tokenizer",
        t,
        "--text",
        "-",
        "--no-special-tokens"
    )
    .stdin(text.as_bytes())
    .run();
    let plain: Vec<u32> = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(plain, ids[1..ids.len() - 1]);
    let out = dir.path().join("test.jsonl");
    pt!(
        "tokenizer",
        "encode",
        "--tokenizer",
        t,
        samples(),
        "--partition",
        "test",
        "--out",
        out,
        "-q"
    )
    .ok();
    let lines = fs::read_to_string(&out).unwrap();
    assert_eq!(lines.lines().count(), 25);
    let o = pt!("tokenizer", "decode", "--tokenizer", t, "--json")
        .stdin(lines.as_bytes())
        .ok();
    let decoded: Vec<String> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let test_codes: Vec<String> =
        read_text(&samples().join("docstrings/test/test_scenario_docstrings_chk_0.jsonl.gz"))
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["code"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
    assert_eq!(
        decoded, test_codes,
        "byte-level BPE round-trips every record"
    );

    // Without --json, texts come as they are, from arguments and from stdin alike.
    let first = lines.lines().next().unwrap();
    let raw = pt!("tokenizer", "decode", "--tokenizer", t)
        .stdin(first)
        .ok();
    assert_eq!(stdout(&raw), format!("{}\n", test_codes[0]));
    let ids: Vec<u32> = serde_json::from_str(first).unwrap();
    let joined: Vec<String> = ids.iter().map(u32::to_string).collect();
    let args = pt!("tokenizer", "decode", "--tokenizer", t, joined.join(" ")).ok();
    assert_eq!(stdout(&args), stdout(&raw));

    let o = pt!("tokenizer", "decode", "--tokenizer", t, "999999").fails_with(1);
    assert!(stderr(&o).contains("outside the vocabulary"));

    let o = pt!("tokenizer", "inspect", "--tokenizer", t, "--json").run();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["vocab_size"], 1500);
    assert_eq!(v["special_tokens"]["<mask>"], 4);
    assert!(v["merges"].as_u64().unwrap() > 1000);

    // A second, smaller tokenizer compresses worse on the test partition.
    let small = dir.path().join("small");
    pt!(
        "tokenizer",
        "train",
        samples(),
        "--out",
        small,
        "--vocab-size",
        "400",
        "-q"
    )
    .ok();
    let o = pt!(
        "tokenizer",
        "eval",
        samples(),
        "--tokenizer",
        t,
        "--compare",
        small,
        "--json",
        "-q"
    )
    .ok();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let r = &v["results"];
    assert_eq!(r[0]["texts"], 25);
    assert_eq!(r[0]["bytes"], r[1]["bytes"]);
    assert!(r[0]["bytes_per_token"].as_f64().unwrap() > r[1]["bytes_per_token"].as_f64().unwrap());
}

#[test]
fn loads_vocab_and_merges_only_and_a_model_id_from_the_local_hf_cache() {
    let dir = tempfile::tempdir().unwrap();
    let tok = dir.path().join("tok");
    train(&tok).ok();
    let text = "import os\nprint(os.getcwd())";
    let encode = |spec: &str, env: &[(&str, &str)]| {
        let o = pt!("tokenizer", "encode", "--tokenizer", spec, "--text", text)
            .envs(env)
            .run();
        assert_eq!(code(&o), 0, "{spec}: {}", stderr(&o));
        stdout(&o)
    };
    let want = encode(tok.to_str().unwrap(), &[]);

    // A published-RoBERTa-style folder: vocab.json + merges.txt only.
    let pair = dir.path().join("pair");
    fs::create_dir_all(&pair).unwrap();
    for f in ["vocab.json", "merges.txt"] {
        fs::copy(tok.join(f), pair.join(f)).unwrap();
    }
    assert_eq!(encode(pair.to_str().unwrap(), &[]), want);

    // The Hugging Face cache layout: models--org--name/{refs/main, snapshots/<commit>/…}.
    let cache = dir.path().join("hf/hub");
    let repo = cache.join("models--pytorrent--tiny-bpe");
    let snap = repo.join("snapshots/0123abcd");
    fs::create_dir_all(&snap).unwrap();
    fs::create_dir_all(repo.join("refs")).unwrap();
    fs::write(repo.join("refs/main"), "0123abcd").unwrap();
    for f in ["vocab.json", "merges.txt", "tokenizer.json"] {
        fs::copy(tok.join(f), snap.join(f)).unwrap();
    }
    assert_eq!(
        encode(
            "pytorrent/tiny-bpe",
            &[("HF_HUB_CACHE", cache.to_str().unwrap())]
        ),
        want
    );
    let home = dir.path().join("hf");
    assert_eq!(
        encode("pytorrent/tiny-bpe", &[("HF_HOME", home.to_str().unwrap())]),
        want
    );

    let o = pt!("tokenizer", "inspect", "--tokenizer", "pytorrent/missing")
        .env("HF_HUB_CACHE", cache)
        .fails_with(2);
    assert_stderr_has(
        &o,
        "pytorrent/missing: no such file or folder; nor is it a model id in the local Hugging Face cache",
    );
    assert_stderr_has(&o, "hf download pytorrent/missing");
    // A path that cannot be a model id is only a missing path.
    let o = pt!(
        "tokenizer",
        "inspect",
        "--tokenizer",
        dir.path().join("tok-typo")
    )
    .fails_with(2);
    assert_stderr_has(&o, "tok-typo: no such file or folder");
    assert!(!stderr(&o).contains("cache"), "{}", stderr(&o));
}

#[test]
fn inspect_of_a_tokenizer_with_a_huge_id_stays_small() {
    // One vocabulary entry at id 2^31: serialising the tokenizer walked every id up to it
    // (gigabytes, an abort under a memory limit). Run under a 1 GiB address-space limit.
    let dir = tempfile::tempdir().unwrap();
    let src = root().join("tests/fixtures/models/roberta-tied/tokenizer.json");
    let mut t: serde_json::Value = serde_json::from_slice(&fs::read(&src).unwrap()).unwrap();
    let merges = t["model"]["merges"].as_array().unwrap().len();
    t["model"]["vocab"]["zzhuge"] = serde_json::json!(1u64 << 31);
    let file = dir.path().join("tokenizer.json");
    fs::write(&file, t.to_string()).unwrap();
    let o = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -v 1048576 && exec "$0" tokenizer inspect --tokenizer "$1" --json -q"#)
        .arg(env!("CARGO_BIN_EXE_pytorrent"))
        .arg(&file)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["merges"], merges);
}

#[test]
fn a_vocab_and_merges_pair_with_a_huge_id_loads_in_little_memory() {
    // Found by the vocab_merges fuzz target: loading converted the pair through JSON, which
    // walks every id up to the largest (8 GB for an id of 2^31). 1 GiB address-space limit.
    let dir = tempfile::tempdir().unwrap();
    let shipped = root().join("data-samples/models/pytorrent-small-mlm");
    let mut vocab: serde_json::Value =
        serde_json::from_slice(&fs::read(shipped.join("vocab.json")).unwrap()).unwrap();
    vocab["zzhuge"] = serde_json::json!(2_199_999_999u64);
    let tok = dir.path().join("tok");
    fs::create_dir_all(&tok).unwrap();
    fs::write(tok.join("vocab.json"), vocab.to_string()).unwrap();
    fs::copy(shipped.join("merges.txt"), tok.join("merges.txt")).unwrap();
    let o = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -v 1048576 && exec "$0" tokenizer encode --tokenizer "$1" --text "def f(x): return x" --json -q"#)
        .arg(env!("CARGO_BIN_EXE_pytorrent"))
        .arg(&tok)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ids: Vec<u64> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (ids[0], *ids.last().unwrap()),
        (0, 2),
        "<s> … </s>: {ids:?}"
    );
}

#[test]
fn tokenizer_eval_takes_the_partition_rule_train_and_pack_take() {
    let dir = tempfile::tempdir().unwrap();
    let tok = tokenizer(dir.path());
    let data = dir.path().join("text.jsonl");
    std::fs::write(
        &data,
        "{\"text\": \"def f(x): return x\"}\n{\"text\": \"import os\"}\n",
    )
    .unwrap();
    let o = pt!(
        "tokenizer",
        "eval",
        &data,
        "--tokenizer",
        &tok,
        "--text-field",
        "text"
    )
    .fails_with(2);
    assert_stderr_has(&o, "2 records have no partition");
    let v = pt!(
        "tokenizer",
        "eval",
        &data,
        "--tokenizer",
        &tok,
        "--text-field",
        "text",
        "--default-partition",
        "test"
    )
    .json();
    assert_eq!(v["results"][0]["texts"], 2);
}
