//! `pytorrent pretrain`: shards → a model the other commands load; --json; --stop-after and
//! --resume from the command line; refusals with the right exit codes.

use crate::util::*;

fn tiny_model(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("tiny.toml");
    std::fs::write(
        &p,
        "layers = 1\nhidden = 32\nheads = 2\nintermediate = 64\nmax_positions = 64\n",
    )
    .unwrap();
    p
}

#[test]
fn pretrain_writes_a_model_that_fill_mask_loads_and_resumes_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let tok = tokenizer(dir.path());
    let shards = dir.path().join("shards");
    pack(&tok, &shards).args(["--seq-len", "64"]).ok();
    let model = tiny_model(dir.path());
    let out = dir.path().join("run");
    let common = |o: &std::path::Path| {
        pt!("pretrain", &shards, "--out", o, "--model-config", &model)
            .args([
                "--max-steps",
                "4",
                "--batch-size",
                "4",
                "--eval-every",
                "2",
                "--eval-rows",
                "8",
            ])
            .args(["--seed", "5", "--lr", "1e-3"])
    };
    let first = common(&out).args(["--stop-after", "2", "-q"]).json();
    assert_eq!(first["steps"], 2);
    assert_eq!(first["finished"], false);
    // The same command again is refused: the folder holds checkpoints.
    let o = common(&out).arg("-q").fails_with(2);
    assert_stderr_has(&o, "--resume");
    let done = common(&out).args(["--resume", "-q"]).json();
    assert_eq!(done["resumed_from"], 2);
    assert_eq!(done["finished"], true);
    assert!(done["valid"]["loss"].as_f64().unwrap().is_finite());
    assert!(done["parameters"].as_u64().unwrap() > 10_000);
    let log = read_text(&out.join("log.csv"));
    assert_eq!(log.lines().count(), 5, "{log}");

    let filled = pt!("fill-mask", "--model", &out, "--text", "def <mask>(self):").json();
    assert_eq!(filled[0]["masks"][0].as_array().unwrap().len(), 5);

    // f16 weights for shipping: half the bytes, still loadable.
    let half = dir.path().join("half");
    common(&half).args(["--save-dtype", "f16", "-q"]).ok();
    let size = |d: &std::path::Path| {
        std::fs::metadata(d.join("model.safetensors"))
            .unwrap()
            .len()
    };
    assert!(size(&half) < size(&out) * 6 / 10);
    pt!(
        "fill-mask",
        "--model",
        &half,
        "--text",
        "import <mask>",
        "-q"
    )
    .ok();
}

#[test]
fn pretrain_refuses_bad_requests_with_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let o = pt!(
        "pretrain",
        dir.path().join("missing"),
        "--out",
        dir.path().join("o"),
        "--model-config",
        &model
    )
    .fails_with(2);
    assert_stderr_has(&o, "missing");
    // Neither a model config nor a checkpoint.
    pt!("pretrain", dir.path(), "--out", dir.path().join("o")).fails_with(2);
    let o = pt!(
        "pretrain",
        dir.path(),
        "--out",
        dir.path().join("o"),
        "--model-config",
        &model,
        "--json"
    )
    .fails_with(2);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["error"]["kind"], "usage");
}

#[test]
fn the_shipped_model_loads_and_fills_masks() {
    let dir = root().join("data-samples/models/pytorrent-small-mlm");
    let size = std::fs::metadata(dir.join("model.safetensors"))
        .unwrap()
        .len();
    assert!(
        size <= 15 << 20,
        "the shipped model must stay under 15 MB: {size}"
    );
    let config: serde_json::Value =
        serde_json::from_str(&read_text(&dir.join("config.json"))).unwrap();
    assert_eq!(config["architectures"][0], "RobertaForMaskedLM");
    // transformers truncates to the tokenizer's model_max_length: it must fit the position
    // table (RoBERTa numbers positions from padding_idx + 1).
    let tok: serde_json::Value =
        serde_json::from_str(&read_text(&dir.join("tokenizer_config.json"))).unwrap();
    let positions = config["max_position_embeddings"].as_u64().unwrap();
    let pad = config["pad_token_id"].as_u64().unwrap();
    assert!(
        tok["model_max_length"].as_u64().unwrap() < positions - pad,
        "{tok}"
    );
    let filled = pt!(
        "fill-mask",
        "--model",
        &dir,
        "--text",
        "def __init__(<mask>, name):"
    )
    .json();
    assert_eq!(filled[0]["masks"][0].as_array().unwrap().len(), 5);
    // It has learnt something: `self` opens a method's parameters.
    let scored = pt!(
        "fill-mask",
        "--model",
        &dir,
        "--text",
        "def __init__(<mask>, name):",
        "--targets",
        "range,True,self,None"
    )
    .json();
    assert_eq!(scored[0]["masks"][0][0]["token_str"], "self", "{scored}");
}

#[test]
fn a_tokenizer_folder_given_as_the_model_is_a_usage_error_that_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let tok = dir.path().join("tok");
    pt!(
        "tokenizer",
        "train",
        samples(),
        "--out",
        &tok,
        "--vocab-size",
        "400",
        "-q"
    )
    .ok();
    let o = pt!("fill-mask", "--model", &tok, "--text", "x = <mask>").fails_with(2);
    assert_stderr_has(&o, "a tokenizer folder, not a model");
}

#[test]
fn max_positions_sizes_the_model_for_longer_shards() {
    let dir = tempfile::tempdir().unwrap();
    let tok = tokenizer(dir.path());
    let shards = dir.path().join("shards");
    pack(&tok, &shards).args(["--seq-len", "96"]).ok();
    // The model file takes 64 positions: the error says how to take 96.
    let model = tiny_model(dir.path());
    let run = |out: &str, extra: &[&str]| {
        pt!(
            "pretrain",
            &shards,
            "--out",
            dir.path().join(out),
            "--model-config",
            &model
        )
        .args([
            "--max-steps",
            "1",
            "--batch-size",
            "2",
            "--eval-rows",
            "2",
            "-q",
        ])
        .args(extra)
    };
    let o = run("short", &[]).fails_with(2);
    assert_stderr_has(&o, "give --max-positions 96");
    let done = run("long", &["--max-positions", "96"]).json();
    assert_eq!(done["steps"], 1);
    let config: serde_json::Value =
        serde_json::from_str(&read_text(&dir.path().join("long/config.json"))).unwrap();
    // RoBERTa's position table: the positions, the padding index and one more.
    assert!(config["max_position_embeddings"].as_u64().unwrap() >= 98);
    let o = run("huge", &["--max-positions", "99999999"]).fails_with(2);
    assert_stderr_has(&o, "--max-positions must be between");
}
