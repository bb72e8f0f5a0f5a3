//! The trainer against PyTorch + transformers (fixtures of
//! scripts/pretrain/make_pretrain_fixtures.py): the loss, every gradient, and the parameters
//! after three AdamW steps with warm-up and clipping, from the same starting weights; and a
//! saved checkpoint that holds what `save_pretrained` holds and gives transformers' logits.

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use pytorrent_pretrain::checkpoint;
use pytorrent_pretrain::model::{Batch, MlmModel};
use pytorrent_pretrain::optim::{clip_grad_norm, lr_at, AdamW, AdamWConfig};
use pytorrent_pretrain::spec::Arch;
use pytorrent_pretrain::train::loss_and_grads;
use serde_json::Value;

fn fixtures() -> PathBuf {
    pytorrent_testkit::fixtures("pretrain")
}

fn load(name: &str) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(fixtures().join(name), &Device::Cpu).unwrap()
}

fn batch_json() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("batch.json")).unwrap()).unwrap()
}

fn model() -> MlmModel {
    let arch = Arch::from_config_json(&fixtures().join("config.json")).unwrap();
    MlmModel::from_tensors(
        arch,
        load("init.safetensors"),
        &Device::Cpu,
        DType::F32,
        "init",
    )
    .unwrap()
}

fn batch() -> Batch {
    let j = batch_json();
    let rows = |k: &str| -> Vec<Vec<i64>> { serde_json::from_value(j[k].clone()).unwrap() };
    let (ids, att, labels) = (rows("input_ids"), rows("attention_mask"), rows("labels"));
    let (b, s) = (ids.len(), ids[0].len());
    let mut targets = Vec::new();
    for (r, row) in labels.iter().enumerate() {
        for (c, l) in row.iter().enumerate() {
            if *l >= 0 {
                targets.push(((r * s + c) as u32, *l as u32));
            }
        }
    }
    Batch {
        b,
        s,
        ids: ids.concat().into_iter().map(|v| v as u32).collect(),
        attention: att.concat().into_iter().map(|v| v as u8).collect(),
        targets,
    }
}

fn max_abs(t: &Tensor) -> f32 {
    t.abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    max_abs(&(a - b).unwrap())
}

#[test]
fn loss_and_every_gradient_match_pytorch() {
    let (m, b) = (model(), batch());
    let want = load("expected.safetensors");
    let (loss, grads, _) = loss_and_grads(&m, &[b], 0).unwrap();
    let expected = want["loss"].to_vec1::<f32>().unwrap()[0] as f64;
    assert!((loss - expected).abs() < 1e-5, "loss {loss} vs {expected}");
    for ((name, _), g) in m.params().iter().zip(&grads) {
        let w = &want[&format!("grad.{name}")];
        if name.ends_with("attention.self.key.bias") {
            // Exactly zero in exact arithmetic (a key bias adds the same amount to every
            // score of a row, which softmax ignores): both sides hold rounding noise only.
            assert!(max_abs(w) < 1e-7 && max_abs(g) < 1e-7, "{name}: not ~0");
            continue;
        }
        let rel = max_diff(g, w) / max_abs(w).max(1e-12);
        assert!(rel < 1e-4, "{name}: relative gradient error {rel}");
    }
}

#[test]
fn three_adamw_steps_with_warmup_and_clipping_match_pytorch() {
    let (m, b) = (model(), batch());
    let j = batch_json();
    let h = &j["hyper"];
    let f = |k: &str| h[k].as_f64().unwrap();
    let mut opt = AdamW::new(
        m.params(),
        AdamWConfig {
            lr: f("lr"),
            beta1: h["betas"][0].as_f64().unwrap(),
            beta2: h["betas"][1].as_f64().unwrap(),
            eps: f("eps"),
            weight_decay: f("weight_decay"),
        },
    )
    .unwrap();
    let (warmup, total) = (f("warmup_steps") as u64, f("total_steps") as u64);
    for t in 0..3u64 {
        let (loss, mut grads, _) = loss_and_grads(&m, std::slice::from_ref(&b), 0).unwrap();
        let want_loss = j["losses"][t as usize].as_f64().unwrap();
        assert!(
            (loss - want_loss).abs() < 1e-5,
            "step {t}: loss {loss} vs {want_loss}"
        );
        let norm = clip_grad_norm(&mut grads, f("max_grad_norm")).unwrap();
        let want_norm = j["grad_norms"][t as usize].as_f64().unwrap();
        assert!(
            (norm - want_norm).abs() < 1e-4 * want_norm,
            "step {t}: norm {norm} vs {want_norm}"
        );
        let lr = lr_at(f("lr"), t, warmup, total);
        assert!((lr - j["lrs"][t as usize].as_f64().unwrap()).abs() < 1e-12);
        opt.step(&grads, lr).unwrap();
    }
    let want = load("expected.safetensors");
    let init = load("init.safetensors");
    for (name, v) in m.params() {
        let w = &want[&format!("step3.{name}")];
        let d = max_diff(v.as_tensor(), w);
        assert!(d < 1e-5, "{name}: parameters after 3 steps differ by {d}");
        // The steps did move every parameter (the comparison is not of the start), but the
        // key biases, whose gradient is zero.
        if !name.ends_with("attention.self.key.bias") {
            assert!(max_diff(w, &init[name]) > 1e-4, "{name} did not move");
        }
    }
}

#[test]
fn a_checkpoint_holds_what_save_pretrained_writes_and_gives_transformers_logits() {
    let m = model();
    let b = batch();
    let want = load("expected.safetensors");
    // Our own training graph first.
    let ours = m.logits(&b).unwrap();
    assert!(max_diff(&ours, &want["logits"]) < 1e-4);

    let dir = tempfile::tempdir().unwrap();
    let tok = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/cloze/model/tokenizer.json");
    checkpoint::write_model(dir.path(), &m, DType::F32, &[tok]).unwrap();
    let keys: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("saved_keys.json")).unwrap())
            .unwrap();
    let saved =
        candle_core::safetensors::load(dir.path().join("model.safetensors"), &Device::Cpu).unwrap();
    let mut names: Vec<String> = saved.keys().cloned().collect();
    names.sort();
    assert_eq!(
        names, keys,
        "no missing or unexpected keys for RobertaForMaskedLM"
    );
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("config.json")).unwrap())
            .unwrap();
    assert_eq!(config["architectures"][0], "RobertaForMaskedLM");

    // The inference encoder (itself checked against transformers) reads it back with the
    // MLM head and gives transformers' logits at every position.
    let loaded =
        pytorrent_model::Model::load(&dir.path().display().to_string(), &Device::Cpu, DType::F32)
            .unwrap();
    let rows: Vec<Vec<u32>> = b
        .ids
        .chunks(b.s)
        .zip(b.attention.chunks(b.s))
        .map(|(r, a)| {
            r.iter()
                .zip(a)
                .filter(|(_, m)| **m == 1)
                .map(|(i, _)| *i)
                .collect()
        })
        .collect();
    let hidden = loaded.hidden_states(&rows).unwrap();
    for (r, row) in rows.iter().enumerate() {
        let at: Vec<(usize, usize)> = (0..row.len()).map(|c| (r, c)).collect();
        let got = loaded.mlm_logits(&hidden, &at).unwrap();
        let w = want["logits"]
            .get(r)
            .unwrap()
            .narrow(0, 0, row.len())
            .unwrap();
        assert!(max_diff(&got, &w) < 1e-4, "row {r}");
    }
}
