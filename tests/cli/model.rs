//! `pytorrent fill-mask` and `pytorrent embed` end to end, on the parity checkpoints (a model
//! folder, and the same model as an id in a local Hugging Face cache layout).

use std::fs;
use std::path::PathBuf;

use crate::util::*;

fn model(name: &str) -> PathBuf {
    root().join("tests/fixtures/models").join(name)
}

fn reference(name: &str) -> serde_json::Value {
    serde_json::from_slice(&fs::read(model(name).join("reference.json")).unwrap()).unwrap()
}

fn top_tokens(v: &serde_json::Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| c["token"].as_u64().unwrap())
        .collect()
}

#[test]
fn fill_mask_from_a_folder_and_from_the_hf_cache() {
    let r = reference("roberta-tied");
    let text0 = r["texts"][0].as_str().unwrap();
    let text1 = r["texts"][1].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // A hub cache: models--org--name/refs/main → snapshots/<commit>/<files>.
    let repo = dir.path().join("hub/models--pytorrent--tiny-roberta");
    let commit = "0123456789abcdef0123456789abcdef01234567";
    fs::create_dir_all(repo.join("refs")).unwrap();
    fs::write(repo.join("refs/main"), commit).unwrap();
    let snap = repo.join("snapshots").join(commit);
    fs::create_dir_all(&snap).unwrap();
    for f in fs::read_dir(model("roberta-tied")).unwrap() {
        let f = f.unwrap().path();
        fs::copy(&f, snap.join(f.file_name().unwrap())).unwrap();
    }
    let cache = dir.path().join("hub");
    let folder = model("roberta-tied");
    for (spec, env) in [
        (folder.to_str().unwrap(), vec![]),
        (
            "pytorrent/tiny-roberta",
            vec![
                ("HF_HUB_CACHE", cache.to_str().unwrap()),
                ("HF_HUB_OFFLINE", "1"),
            ],
        ),
    ] {
        let o = pt!(
            "fill-mask",
            "--model",
            spec,
            "--text",
            text0,
            "--text",
            text1,
            "--json"
        )
        .envs(&env)
        .run();
        assert_eq!(code(&o), 0, "{spec}: {}", stderr(&o));
        let got: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(
            top_tokens(&got[0]["masks"][0]),
            top_tokens(&r["fill_mask"][0]),
            "{spec}"
        );
        assert_eq!(
            got[0]["masks"][0][0]["sequence"],
            r["fill_mask"][0][0]["sequence"]
        );
        assert_eq!(
            got[1]["masks"].as_array().unwrap().len(),
            2,
            "two masks scored independently"
        );
        assert_eq!(
            top_tokens(&got[1]["masks"][1]),
            top_tokens(&r["fill_mask"][1][1])
        );
    }
    // Inputs from a file: JSON strings keep their newlines.
    let inputs = dir.path().join("in.jsonl");
    fs::write(
        &inputs,
        format!("{}\n", serde_json::to_string(text0).unwrap()),
    )
    .unwrap();
    let o = pt!("fill-mask", "--model", folder, inputs, "--top-k", "2").ok();
    assert_eq!(
        stdout(&o).lines().filter(|l| l.starts_with("  0.")).count(),
        2,
        "{}",
        stdout(&o)
    );
    // An id missing from the cache is a usage error that names the cache.
    let o = pt!(
        "fill-mask",
        "--model",
        "pytorrent/absent",
        "--text",
        "a <mask>"
    )
    .env("HF_HUB_CACHE", cache)
    .fails_with(2);
    assert_stderr_has(&o, "nor is it a model id in the local Hugging Face cache");
    // A mistyped folder is said to be missing, with no talk of a cache.
    let o = pt!(
        "fill-mask",
        "--model",
        "./models/tiny-robreta",
        "--text",
        "a <mask>"
    )
    .fails_with(2);
    assert_stderr_has(&o, "./models/tiny-robreta: no such file or folder");
    assert!(!stderr(&o).contains("cache"), "{}", stderr(&o));
}

#[test]
fn a_checkpoint_without_mlm_head_is_refused_for_fill_mask() {
    let o = pt!(
        "fill-mask",
        "--model",
        model("roberta-bare"),
        "--text",
        "x = <mask>"
    )
    .fails_with(2);
    let err = stderr(&o);
    assert!(
        err.contains("no masked-language-model head") && err.contains("embeddings"),
        "{err}"
    );
    let o = pt!(
        "fill-mask",
        "--model",
        model("roberta-tied"),
        "--text",
        "no mask here"
    )
    .fails_with(2);
    assert_stderr_has(&o, "input 1: no <mask>");
}

#[test]
fn embed_text_lines_and_a_corpus_view() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["roberta-bare", "bert"] {
        let r = reference(name);
        let lines = dir.path().join("texts.jsonl");
        let mut all: Vec<String> = r["texts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| serde_json::to_string(t).unwrap())
            .collect();
        all.push(serde_json::to_string(&r["long"]).unwrap());
        fs::write(&lines, all.join("\n") + "\n").unwrap();
        let out = dir.path().join(format!("{name}.npy"));
        let o = pt!(
            "embed",
            "--model",
            model(name),
            lines,
            "--out",
            out,
            "--pooling",
            "mean",
            "--normalize",
            "--batch-size",
            "3"
        )
        .ok();
        assert_stderr_has(&o, "1 input was longer");
        let (rows, cols, v) = read_npy_f32(&out);
        assert_eq!((rows, cols), (4, 48));
        let want: Vec<f32> = r["embeddings"]["mean+normalize"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|row| {
                row.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap() as f32)
            })
            .collect();
        let d = v
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(d <= 1e-4, "{name}: max |Δ| {d}");
        let ids = fs::read_to_string(format!("{}.ids.jsonl", out.display())).unwrap();
        assert_eq!(ids.lines().count(), 4);
    }
    // A corpus view: one row per record, named in ids.jsonl.
    let out = dir.path().join("docstrings.npy");
    pt!(
        "embed",
        "--model",
        model("roberta-bare"),
        samples(),
        "--field",
        "docstring",
        "--partition",
        "valid,test",
        "--pooling",
        "pooler",
        "--out",
        out,
        "-q"
    )
    .ok();
    let (rows, cols, _) = read_npy_f32(&out);
    assert_eq!((rows, cols), (65, 48), "40 valid + 25 test records");
    let ids = fs::read_to_string(format!("{}.ids.jsonl", out.display())).unwrap();
    let first: serde_json::Value = serde_json::from_str(ids.lines().next().unwrap()).unwrap();
    assert_eq!(first["row"], 0);
    assert!(first["func_name"].is_string() && first["partition"].is_string());
    // Pooler pooling needs pooler weights.
    let o = pt!(
        "embed",
        "--model",
        model("bert"),
        samples(),
        "--field",
        "code",
        "--pooling",
        "pooler",
        "--out",
        out
    )
    .fails_with(2);
    assert_stderr_has(&o, "no pooler");
}

#[test]
fn a_flipped_byte_in_pytorch_model_bin_is_named_not_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m");
    fs::create_dir_all(&m).unwrap();
    for e in fs::read_dir(model("roberta-untied")).unwrap() {
        let p = e.unwrap().path();
        fs::copy(&p, m.join(p.file_name().unwrap())).unwrap();
    }
    // Intact, it loads.
    pt!("fill-mask", "--model", &m, "--text", "def f(x): <mask> x").ok();
    // One byte of tensor data flipped (the middle of the file is weights).
    let bin = m.join("pytorch_model.bin");
    let mut bytes = fs::read(&bin).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    fs::write(&bin, bytes).unwrap();
    let o = pt!("fill-mask", "--model", &m, "--text", "def f(x): <mask> x").fails_with(1);
    assert_stderr_has(&o, "pytorch_model.bin");
    assert_stderr_has(&o, "corrupt");
}

#[test]
fn nan_weights_and_a_negative_layer_norm_eps_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m");
    fs::create_dir_all(&m).unwrap();
    for e in fs::read_dir(model("roberta-tied")).unwrap() {
        let p = e.unwrap().path();
        fs::copy(&p, m.join(p.file_name().unwrap())).unwrap();
    }
    pt!("fill-mask", "--model", &m, "--text", "def f(x): <mask> x").ok();
    // A NaN written over the first value of one layer's output bias.
    let st = m.join("model.safetensors");
    let mut b = fs::read(&st).unwrap();
    let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&b[8..8 + n]).unwrap();
    let (name, info) = header
        .as_object()
        .unwrap()
        .iter()
        .find(|(k, v)| k.ends_with("layer.0.output.dense.bias") && v["dtype"] == "F32")
        .expect("an f32 bias in the fixture");
    let start = 8 + n + info["data_offsets"][0].as_u64().unwrap() as usize;
    b[start..start + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    fs::write(&st, &b).unwrap();
    let o = pt!("fill-mask", "--model", &m, "--text", "def f(x): <mask> x").fails_with(1);
    assert_stderr_has(&o, "NaN or infinite");
    assert_stderr_has(&o, name);
    // An impossible epsilon in config.json.
    fs::copy(model("roberta-tied").join("model.safetensors"), &st).unwrap();
    let cfg = m.join("config.json");
    let mut c: serde_json::Value = serde_json::from_slice(&fs::read(&cfg).unwrap()).unwrap();
    c["layer_norm_eps"] = serde_json::json!(-1.0);
    fs::write(&cfg, c.to_string()).unwrap();
    let o = pt!("fill-mask", "--model", &m, "--text", "def f(x): <mask> x").fails_with(1);
    assert_stderr_has(&o, "layer_norm_eps -1 must be a positive number");
}
