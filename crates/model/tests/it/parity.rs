//! Parity with transformers on tiny random checkpoints (made by
//! scripts/reference/make_model_fixtures.py with transformers + torch): hidden states, mask
//! logits and pooled embeddings within 1e-4 (f32, CPU), the same fill-mask top-5.

use std::path::PathBuf;

use candle_core::{DType, Device};
use pytorrent_model::embed::{embed, EmbedOptions, Pooling};
use pytorrent_model::fill_mask::{fill_mask, FillMaskOptions};
use pytorrent_model::text::ModelTokenizer;
use pytorrent_model::{Error, Model};

const TOL: f32 = 1e-4;

fn fixtures() -> PathBuf {
    pytorrent_testkit::fixtures("models")
}

fn reference(name: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(fixtures().join(name).join("reference.json")).unwrap())
        .unwrap()
}

fn load(name: &str) -> (Model, ModelTokenizer) {
    let folder = fixtures().join(name);
    let model = Model::load(folder.to_str().unwrap(), &Device::Cpu, DType::F32).unwrap();
    let tok = ModelTokenizer::load(&folder, None).unwrap();
    (model, tok)
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

use pytorrent_testkit::max_abs_diff as max_diff;

fn texts(r: &serde_json::Value) -> Vec<String> {
    r["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

const ALL: [&str; 4] = ["roberta-tied", "roberta-untied", "roberta-bare", "bert"];
const MLM: [&str; 3] = ["roberta-tied", "roberta-untied", "bert"];

#[test]
fn hidden_states_match_transformers() {
    for name in ALL {
        let r = reference(name);
        let (model, tok) = load(name);
        let ids: Vec<Vec<u32>> = texts(&r).iter().map(|t| tok.encode(t).unwrap()).collect();
        let want_ids: Vec<Vec<u32>> = serde_json::from_value(r["ids"].clone()).unwrap();
        assert_eq!(ids, want_ids, "{name}: token ids");
        let hidden = model.hidden_states(&ids).unwrap();
        let h = model.config.hidden_size;
        for (i, row) in ids.iter().enumerate() {
            let got: Vec<f32> = hidden
                .get(i)
                .unwrap()
                .narrow(0, 0, row.len())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let d = max_diff(&got, &floats(&r["hidden"][i]));
            assert!(
                d <= TOL,
                "{name} text {i}: max |Δ| {d} over {} values of width {h}",
                got.len()
            );
        }
    }
}

#[test]
fn mask_logits_match_transformers() {
    for name in MLM {
        let r = reference(name);
        let (model, tok) = load(name);
        let ids: Vec<Vec<u32>> = texts(&r).iter().map(|t| tok.encode(t).unwrap()).collect();
        let hidden = model.hidden_states(&ids).unwrap();
        let at: Vec<(usize, usize)> = r["mask_logits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["row"].as_u64().unwrap() as usize,
                    m["position"].as_u64().unwrap() as usize,
                )
            })
            .collect();
        assert_eq!(at.len(), 4, "four masks in the three texts");
        let logits: Vec<Vec<f32>> = model.mlm_logits(&hidden, &at).unwrap().to_vec2().unwrap();
        for (k, m) in r["mask_logits"].as_array().unwrap().iter().enumerate() {
            let d = max_diff(&logits[k], &floats(&m["logits"]));
            assert!(d <= TOL, "{name} mask {k}: max |Δ| {d}");
        }
    }
}

#[test]
fn fill_mask_equals_the_pipeline() {
    for name in MLM {
        let r = reference(name);
        let (model, tok) = load(name);
        let opts = FillMaskOptions {
            top_k: 5,
            targets: None,
            batch_size: 2,
        };
        let got = fill_mask(&model, &tok, &texts(&r), &opts, &pytorrent_io::Silent).unwrap();
        for (i, want) in r["fill_mask"].as_array().unwrap().iter().enumerate() {
            // The pipeline returns a flat list for one mask, a list per mask otherwise.
            let want_masks: Vec<&serde_json::Value> = if want[0].is_array() {
                want.as_array().unwrap().iter().collect()
            } else {
                vec![want]
            };
            assert_eq!(got[i].len(), want_masks.len(), "{name} text {i}: masks");
            for (m, w) in want_masks.iter().enumerate() {
                let w = w.as_array().unwrap();
                let c = &got[i][m];
                assert_eq!(
                    c.iter().map(|c| c.token).collect::<Vec<_>>(),
                    w.iter()
                        .map(|x| x["token"].as_u64().unwrap() as u32)
                        .collect::<Vec<_>>(),
                    "{name} text {i} mask {m}: top-5 tokens"
                );
                for (c, x) in c.iter().zip(w) {
                    assert!(
                        (c.score - x["score"].as_f64().unwrap() as f32).abs() <= TOL,
                        "{name}: score"
                    );
                    assert_eq!(
                        c.token_str,
                        x["token_str"].as_str().unwrap(),
                        "{name}: token_str"
                    );
                    assert_eq!(
                        c.sequence,
                        x["sequence"].as_str().unwrap(),
                        "{name}: sequence"
                    );
                }
            }
        }
        let targets: Vec<String> = serde_json::from_value(r["targets"].clone()).unwrap();
        let opts = FillMaskOptions {
            top_k: 5,
            targets: Some(targets),
            batch_size: 1,
        };
        let got = fill_mask(&model, &tok, &texts(&r)[..1], &opts, &pytorrent_io::Silent).unwrap();
        let want = r["fill_mask_targets"].as_array().unwrap();
        assert_eq!(
            got[0][0].iter().map(|c| c.token).collect::<Vec<_>>(),
            want.iter()
                .map(|x| x["token"].as_u64().unwrap() as u32)
                .collect::<Vec<_>>(),
            "{name}: targets"
        );
    }
}

#[test]
fn pooled_embeddings_match_and_long_inputs_are_truncated() {
    for name in ALL {
        let r = reference(name);
        let (model, tok) = load(name);
        let mut all = texts(&r);
        all.push(r["long"].as_str().unwrap().to_string());
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        let long = tok.encode(&all[3]).unwrap();
        assert!(
            long.len() > model.config.max_tokens(),
            "the long input is longer than the table"
        );
        for (key, want) in r["embeddings"].as_object().unwrap() {
            let (pool, normalize) = match key.split_once('+') {
                Some((p, _)) => (p, true),
                None => (key.as_str(), false),
            };
            let opts = EmbedOptions {
                pooling: pool.parse::<Pooling>().unwrap(),
                normalize,
                batch_size: 3,
                max_tokens: model.config.max_tokens(),
                lower_case: false,
            };
            let warned = std::cell::Cell::new(0);
            let got = embed(&model, &tok, &refs, &opts, &|_| {
                warned.set(warned.get() + 1)
            })
            .unwrap();
            assert_eq!(warned.get(), 1, "{name}: one truncation warning");
            for (i, w) in want.as_array().unwrap().iter().enumerate() {
                let d = max_diff(&got[i], &floats(w));
                assert!(d <= TOL, "{name} {key} text {i}: max |Δ| {d}");
            }
        }
        if !model.has_pooler() {
            assert!(r["embeddings"].get("pooler").is_none());
        }
    }
}

#[test]
fn a_bare_encoder_loads_for_embeddings_and_refuses_fill_mask() {
    let (model, tok) = load("roberta-bare");
    assert!(!model.has_mlm_head());
    let opts = FillMaskOptions {
        top_k: 5,
        targets: None,
        batch_size: 1,
    };
    let e = fill_mask(
        &model,
        &tok,
        &["a <mask> b".to_string()],
        &opts,
        &pytorrent_io::Silent,
    )
    .unwrap_err();
    assert!(matches!(e, Error::Unsupported(_)), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("no masked-language-model head") && msg.contains("RobertaModel"),
        "{msg}"
    );
}

#[test]
fn missing_and_mis_shaped_weights_name_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let src = fixtures().join("roberta-tied");
    for f in std::fs::read_dir(&src).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, dir.path().join(f.file_name().unwrap())).unwrap();
    }
    // Rename one tensor in the safetensors header (same length, so offsets stay valid).
    let st = dir.path().join("model.safetensors");
    let mut bytes = std::fs::read(&st).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = String::from_utf8(bytes[8..8 + n].to_vec()).unwrap();
    let needle = "roberta.encoder.layer.1.attention.self.query.weight";
    assert!(header.contains(needle));
    let renamed = header.replace(
        needle,
        "roberta.encoder.layer.1.attention.self.qvery.weight",
    );
    bytes[8..8 + n].copy_from_slice(renamed.as_bytes());
    std::fs::write(&st, &bytes).unwrap();
    let e = Model::load(dir.path().to_str().unwrap(), &Device::Cpu, DType::F32)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("encoder.layer.1.attention.self.query.weight"),
        "{e}"
    );
    std::fs::copy(src.join("model.safetensors"), &st).unwrap();
    // A config that disagrees with the weights' shapes.
    let cfg = dir.path().join("config.json");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("\"intermediate_size\": 96", "\"intermediate_size\": 95");
    std::fs::write(&cfg, text).unwrap();
    let e = Model::load(dir.path().to_str().unwrap(), &Device::Cpu, DType::F32)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("intermediate.dense.weight"), "{e}");
}

#[test]
fn roberta_positions_skip_padding_and_count_in_integers() {
    let (model, _) = load("roberta-tied");
    let pad = model.config.pad_token_id;
    assert_eq!(
        model.position_ids(&[0, 7, 8, 2, pad, pad]),
        [2, 3, 4, 5, 1, 1]
    );
    // Far past 256, where a bf16 cumulative sum loses integers.
    let long: Vec<u32> = vec![9; 600];
    let p = model.position_ids(&long);
    assert_eq!(p[599], 601);
}
