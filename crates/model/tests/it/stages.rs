//! fill-mask and embed called as library functions, against the transformers references of
//! the parity fixtures; embeddings read back with ndarray-npy.

use std::path::PathBuf;

use ndarray::Array2;
use ndarray_npy::ReadNpyExt;
use pytorrent_io::reporter::Recorder;
use pytorrent_io::{Classify, ErrorKind, Silent};
use pytorrent_model::embed::{EmbedConfig, Pooling};
use pytorrent_model::fill_mask::FillMaskConfig;
use pytorrent_model::options::ModelOptions;

fn model(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/models")
        .join(name)
}

fn reference(name: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(model(name).join("reference.json")).unwrap()).unwrap()
}

#[test]
fn fill_mask_run_gives_the_pipeline_top_k() {
    let r = reference("roberta-tied");
    let mut cfg = FillMaskConfig::new(ModelOptions::new(
        model("roberta-tied").display().to_string(),
    ));
    cfg.text = vec![r["texts"][0].as_str().unwrap().to_string()];
    let rec = Recorder::default();
    let report = pytorrent_model::fill_mask::run(&cfg, &rec).unwrap();
    let got: Vec<u64> = report.0[0].masks[0]
        .iter()
        .map(|c| c.token as u64)
        .collect();
    let want: Vec<u64> = r["fill_mask"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["token"].as_u64().unwrap())
        .collect();
    assert_eq!(got, want);
    assert!(rec.logs()[0].contains("with MLM head"), "{:?}", rec.logs());

    let mut bare = cfg.clone();
    bare.model.model = model("roberta-bare").display().to_string();
    let e = pytorrent_model::fill_mask::run(&bare, &Silent).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Usage);
    assert!(
        e.to_string().contains("no masked-language-model head"),
        "{e}"
    );
}

#[test]
fn embed_run_writes_the_reference_vectors_and_counts_truncations() {
    let r = reference("roberta-tied");
    let dir = tempfile::tempdir().unwrap();
    let lines = dir.path().join("in.txt");
    let texts: Vec<String> = r["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| serde_json::to_string(t).unwrap())
        .collect();
    std::fs::write(
        &lines,
        format!(
            "{}\n{}\n",
            texts.join("\n"),
            serde_json::to_string(&r["long"]).unwrap()
        ),
    )
    .unwrap();
    let out = dir.path().join("e.npy");
    let mut cfg = EmbedConfig::new(
        ModelOptions::new(model("roberta-tied").display().to_string()),
        vec![lines],
        out.clone(),
    );
    cfg.choices.pooling = Some(Pooling::Mean);
    let rec = Recorder::default();
    let report = pytorrent_model::embed::run(&cfg, &rec).unwrap();
    assert_eq!((report.rows, report.truncated), (4, 1));
    assert!(
        rec.warnings()[0].contains("1 input was longer"),
        "{:?}",
        rec.warnings()
    );
    let got = Array2::<f32>::read_npy(std::fs::File::open(&out).unwrap()).unwrap();
    assert_eq!(got.dim(), (4, report.dim));
    let want = &r["embeddings"]["mean"];
    for (i, row) in want.as_array().unwrap().iter().enumerate() {
        for (j, v) in row.as_array().unwrap().iter().enumerate() {
            let d = (got[[i, j]] - v.as_f64().unwrap() as f32).abs();
            assert!(d < 1e-4, "row {i} column {j}: {d}");
        }
    }
    let ids = std::fs::read_to_string(cfg.ids_path()).unwrap();
    assert_eq!(ids.lines().count(), 4);
    assert!(
        ids.lines().next().unwrap().starts_with("{\"row\":0,"),
        "{ids}"
    );
}
