//! The training loop on real shards (the sample corpus, packed here): every parameter gets a
//! gradient, a stopped and resumed run computes what an uninterrupted one does, the output
//! folder is a model the rest of the toolkit loads, and bad requests are refused.

use pytorrent_testkit::samples;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use pytorrent_corpus::InputConfig;
use pytorrent_io::{Classify, ErrorKind, Silent};
use pytorrent_pack::PackConfig;
use pytorrent_pretrain::model::{Batch, MlmModel};
use pytorrent_pretrain::spec::{Arch, ModelSpec};
use pytorrent_pretrain::train::loss_and_grads;
use pytorrent_pretrain::PretrainConfig;

/// A tokenizer and npy shards of 32-token rows from the sample corpus.
fn shards(dir: &Path, static_mask: bool) -> PathBuf {
    let tok = dir.join("tok");
    let mut t =
        pytorrent_tokenizer::TrainConfig::new(InputConfig::new(vec![samples()]), tok.clone());
    t.vocab_size = 500;
    pytorrent_tokenizer::train_corpus::run(&t, &Silent).unwrap();
    let out = dir.join(if static_mask {
        "shards-static"
    } else {
        "shards"
    });
    let mut p = PackConfig::new(vec![samples()], tok.display().to_string(), out.clone());
    p.settings.seq_len = 32;
    p.settings.shard_rows = 100;
    p.settings.static_mask = static_mask;
    pytorrent_pack::run(&p, &Silent).unwrap();
    out
}

fn spec_file(dir: &Path, dropout: f64) -> PathBuf {
    let p = dir.join("tiny.toml");
    std::fs::write(
        &p,
        format!(
            "layers = 2\nhidden = 32\nheads = 4\nintermediate = 64\nmax_positions = 32\n\
             hidden_dropout = {dropout}\nattention_dropout = {dropout}\n"
        ),
    )
    .unwrap();
    p
}

fn config(shards: &Path, out: &Path, spec: &Path) -> PretrainConfig {
    let mut c = PretrainConfig::new(shards.to_path_buf(), out.to_path_buf());
    c.model_config = Some(spec.to_path_buf());
    c.max_steps = 6;
    c.batch_size = 4;
    c.grad_accum = 2;
    c.lr = 1e-3;
    c.warmup_steps = Some(2);
    c.eval_every = Some(3);
    c.eval_rows = 8;
    c.seed = 11;
    c
}

#[test]
fn every_parameter_gets_a_nonzero_gradient() {
    let spec = ModelSpec {
        layers: 2,
        hidden: 16,
        heads: 2,
        intermediate: 32,
        max_positions: 10,
        hidden_dropout: 0.1,
        attention_dropout: 0.1,
        layer_norm_eps: 1e-5,
        initializer_range: 0.02,
    };
    let arch = Arch::new(&spec, 50, 1, 0, 2);
    let model = MlmModel::init(arch, 3, &Device::Cpu, DType::F32).unwrap();
    // Two rows, the second padded; targets in both.
    let batch = Batch {
        b: 2,
        s: 6,
        ids: vec![0, 7, 8, 9, 10, 2, 0, 11, 12, 2, 1, 1],
        attention: vec![1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0],
        targets: vec![(1, 30), (3, 31), (8, 32)],
    };
    let (_, grads, _) = loss_and_grads(&model, &[batch], 5).unwrap();
    for ((name, _), g) in model.params().iter().zip(&grads) {
        let n = g
            .abs()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(n > 0.0, "{name} gets no gradient");
    }
}

fn log_columns(path: &Path) -> Vec<String> {
    // step, epoch, lr, loss, grad_norm, tokens; then the validation columns (timings left out).
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            [&f[..6], &f[8..]].concat().join(",")
        })
        .collect()
}

#[test]
fn a_resumed_run_equals_an_uninterrupted_one_and_the_output_is_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let data = shards(dir.path(), false);
    let spec = spec_file(dir.path(), 0.1);

    let whole = dir.path().join("whole");
    let report = pytorrent_pretrain::run(&config(&data, &whole, &spec), &Silent).unwrap();
    assert!(report.finished && report.steps == 6 && report.resumed_from.is_none());
    let valid = report.valid.expect("validation ran");
    assert!(valid.loss.is_finite() && valid.ppl > 1.0 && (0.0..=1.0).contains(&valid.acc));
    assert!(report.train_loss.unwrap() < report.uniform_loss + 0.5);

    let split = dir.path().join("split");
    let mut first = config(&data, &split, &spec);
    first.stop_after = Some(3);
    let r1 = pytorrent_pretrain::run(&first, &Silent).unwrap();
    assert!(!r1.finished && r1.steps == 3);
    assert!(
        !split.join("model.safetensors").exists(),
        "no final model before the end"
    );
    // Without --resume a folder with checkpoints is refused, not overwritten.
    let e = pytorrent_pretrain::run(&config(&data, &split, &spec), &Silent).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Usage, "{e}");
    let mut second = config(&data, &split, &spec);
    second.resume = true;
    let r2 = pytorrent_pretrain::run(&second, &Silent).unwrap();
    assert_eq!(r2.resumed_from, Some(3));
    assert!(r2.finished);
    // Resuming a finished run does nothing and reports the losses the log ends with.
    let again = pytorrent_pretrain::run(&second, &Silent).unwrap();
    assert!(again.finished && again.resumed_from == Some(6));
    let (v2, v3) = (r2.valid.unwrap(), again.valid.expect("from the log"));
    assert!((v2.loss - v3.loss).abs() < 1e-6 && (v2.acc - v3.acc).abs() < 1e-6);
    assert!(again.train_loss.unwrap().is_finite());

    assert_eq!(
        log_columns(&whole.join("log.csv")),
        log_columns(&split.join("log.csv"))
    );
    assert_eq!(
        log_columns(&whole.join("log.csv")).len(),
        7,
        "a header and six steps"
    );
    assert_eq!(
        std::fs::read(whole.join("model.safetensors")).unwrap(),
        std::fs::read(split.join("model.safetensors")).unwrap(),
        "the same weights, bit for bit"
    );
    // Resuming with other settings is refused.
    let mut other = config(&data, &split, &spec);
    other.resume = true;
    other.lr = 2e-3;
    other.max_steps = 9;
    assert_eq!(
        pytorrent_pretrain::run(&other, &Silent).unwrap_err().kind(),
        ErrorKind::Usage
    );

    // The run folder is a model: fill-mask loads it, with its tokenizer.
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "log.csv",
        "loss.svg",
    ] {
        assert!(whole.join(f).is_file(), "{f}");
    }
    assert!(std::fs::read_to_string(whole.join("loss.svg"))
        .unwrap()
        .contains("<svg"));
    let ck = pytorrent_pretrain::checkpoint::list(&whole);
    assert_eq!(ck.iter().map(|c| c.0).collect::<Vec<_>>(), vec![3, 6]);
    let m = pytorrent_model::Model::load(&whole.display().to_string(), &Device::Cpu, DType::F32)
        .unwrap();
    assert!(m.has_mlm_head());
    // The tokenizer was made for 512 tokens, the model takes 32: transformers truncates to
    // tokenizer_config.json's model_max_length, which must fit the position table.
    let tok_config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(whole.join("tokenizer_config.json")).unwrap())
            .unwrap();
    assert_eq!(tok_config["model_max_length"], 32);

    // --init continues from the result.
    let cont = dir.path().join("cont");
    let mut c = config(&data, &cont, &spec);
    c.model_config = None;
    c.init = Some(whole.clone());
    c.max_steps = 2;
    let r = pytorrent_pretrain::run(&c, &Silent).unwrap();
    assert!(r.finished);
}

#[test]
fn static_labels_are_trained_on_and_bad_requests_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = shards(dir.path(), true);
    let spec = spec_file(dir.path(), 0.0);
    let out = dir.path().join("static");
    let mut c = config(&data, &out, &spec);
    c.max_steps = 2;
    let r = pytorrent_pretrain::run(&c, &Silent).unwrap();
    assert!(r.finished && r.train_loss.unwrap().is_finite());

    let usage = |c: PretrainConfig| pytorrent_pretrain::run(&c, &Silent).unwrap_err();
    let mut none = config(&data, &dir.path().join("x"), &spec);
    none.model_config = None;
    assert_eq!(usage(none).kind(), ErrorKind::Usage);
    let missing = usage(config(
        &dir.path().join("nope"),
        &dir.path().join("y"),
        &spec,
    ));
    assert_eq!(missing.kind(), ErrorKind::Usage);
    assert!(missing.to_string().contains("nope"), "{missing}");
    // Rows longer than the model's position table.
    let short = dir.path().join("short.toml");
    std::fs::write(
        &short,
        "layers = 1\nhidden = 16\nheads = 2\nintermediate = 32\nmax_positions = 16\n",
    )
    .unwrap();
    let e = usage(config(&data, &dir.path().join("z"), &short));
    assert!(e.to_string().contains("32 tokens"), "{e}");
    // A model config with a typo names the file.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "layers = 1\nhiden = 16\n").unwrap();
    let e = usage(config(&data, &dir.path().join("w"), &bad));
    assert!(e.to_string().contains("bad.toml"), "{e}");
}

#[test]
fn ids_beyond_the_vocabulary_are_a_data_error_naming_the_shard() {
    let dir = tempfile::tempdir().unwrap();
    let data = shards(dir.path(), false);
    // Every id of every train shard becomes 0xFFFF (the shards hold u16 ids).
    for e in std::fs::read_dir(data.join("train")).unwrap() {
        let shard = e.unwrap().path();
        let name = shard.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.starts_with("shard-") && name.ends_with(".npy")) {
            continue;
        }
        let mut bytes = std::fs::read(&shard).unwrap();
        let header = 10 + u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        bytes[header..].iter_mut().for_each(|b| *b = 0xFF);
        std::fs::write(&shard, bytes).unwrap();
    }
    let spec = spec_file(dir.path(), 0.0);
    let e =
        pytorrent_pretrain::run(&config(&data, &dir.path().join("o"), &spec), &Silent).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Data, "{e}");
    let m = e.to_string();
    assert!(
        m.contains("/train/shard-")
            && m.contains(".npy: row")
            && m.contains("65535")
            && m.contains("vocabulary"),
        "{m}"
    );
}

#[cfg(unix)]
#[test]
fn the_saved_model_is_readable_by_others() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let arch = Arch::from_config_json(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/pretrain/config.json"),
    )
    .unwrap();
    let m = MlmModel::init(arch, 0, &Device::Cpu, DType::F32).unwrap();
    pytorrent_pretrain::checkpoint::write_model(dir.path(), &m, DType::F16, &[]).unwrap();
    let mode = std::fs::metadata(dir.path().join("model.safetensors"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o044, 0o044, "{mode:o}");
}
