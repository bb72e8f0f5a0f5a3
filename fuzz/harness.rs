//! What each fuzz target runs, shared by the libFuzzer targets (`fuzz/fuzz_targets/`) and the
//! regression replay (`tests/fuzz_replay.rs`, a normal test in CI). Every function takes
//! arbitrary bytes: errors are the expected answer to bad input, a panic or an abort is a
//! defect. The differential target also panics when the fast encoder and `tokenizers` give
//! different ids.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// A target: its name and what it runs on one input.
pub type Target = (&'static str, fn(&[u8]));

/// The targets, by name: the folder names under `fuzz/seeds/` and `fuzz/regressions/`.
pub const TARGETS: &[Target] = &[
    ("jsonl_record", jsonl_record),
    ("parquet", parquet),
    ("archive", archive),
    ("python_source", python_source),
    ("tokenizer_json", tokenizer_json),
    ("vocab_merges", vocab_merges),
    ("fast_encoder", fast_encoder),
    ("shards", shards),
    ("model_files", model_files),
    ("pipeline_toml", pipeline_toml),
];

/// libfuzzer-sys aborts on any panic, even one the code under test catches and turns into
/// an error (third-party decoders that panic on malformed input are guarded so); the default
/// hook lets those through, and a panic that escapes still fails the target.
fn default_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| drop(std::panic::take_hook()));
}

/// A scratch folder holding `files`; removed when dropped.
fn scratch(files: &[(&str, &[u8])]) -> (tempfile::TempDir, Vec<PathBuf>) {
    default_panic_hook();
    let dir = tempfile::tempdir().expect("a temporary folder");
    let paths = files
        .iter()
        .map(|(name, bytes)| {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).expect("scratch file written");
            p
        })
        .collect();
    (dir, paths)
}

fn validate(path: &Path) {
    let mut input = pytorrent_corpus::input::InputConfig::new(vec![path.to_path_buf()]);
    input.on_error = pytorrent_corpus::OnError::Skip;
    input.max_line_bytes = 1 << 20;
    let cfg = pytorrent_corpus::validate::ValidateConfig::new(input);
    let _ = pytorrent_corpus::validate::run(&cfg, &pytorrent_io::Silent);
}

/// The JSONL record reader (plain or gzip, by the first byte's low bit) and validation.
pub fn jsonl_record(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let name = if first & 1 == 0 {
        "in.jsonl"
    } else {
        "in.jsonl.gz"
    };
    let (_dir, paths) = scratch(&[(name, rest)]);
    validate(&paths[0]);
}

/// The Parquet reader, through validation (every column read).
pub fn parquet(data: &[u8]) {
    let (_dir, paths) = scratch(&[("in.parquet", data)]);
    validate(&paths[0]);
}

/// The archive reader and the extractor: the first byte picks the archive kind.
pub fn archive(data: &[u8]) {
    use pytorrent_extract::archive::Limits;
    use pytorrent_extract::package::{extract_package, ExtractOptions, Filters, Split};
    use pytorrent_extract::units::Scenario;
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    const KINDS: [&str; 6] = [".tar.gz", ".tar.bz2", ".tar", ".zip", ".whl", ".conda"];
    let name = format!("pkg-1.0{}", KINDS[first as usize % KINDS.len()]);
    let (_dir, paths) = scratch(&[(&name, rest)]);
    let opts = ExtractOptions {
        scenarios: vec![Scenario::Docstrings, Scenario::Comments, Scenario::Both],
        split: Split::default(),
        limits: Limits {
            max_total_bytes: 64 << 20,
            ..Limits::default()
        },
        filters: Filters::default(),
        opt_out: None,
        scrub: true,
    };
    let _ = extract_package(&paths[0], &opts);
}

/// Decoding, parsing and every scenario's views of a Python file.
pub fn python_source(data: &[u8]) {
    use pytorrent_extract::units::Scenario;
    let (source, _) = pytorrent_extract::package::decode_source(data);
    let (units, _) = pytorrent_extract::units::units(&source);
    let lines = pytorrent_extract::python::LineIndex::new(&source);
    for u in &units {
        for s in [Scenario::Docstrings, Scenario::Comments, Scenario::Both] {
            let _ = u.nl(s);
            let code = u.code(s, &lines);
            let _ = pytorrent_extract::scrub::scrub(&code, None);
        }
    }
}

/// A `tokenizer.json` loaded, inspected and used; where the fast encoder takes it, its ids
/// must equal `tokenizers`' own.
pub fn tokenizer_json(data: &[u8]) {
    let (_dir, paths) = scratch(&[("tokenizer.json", data)]);
    let Ok(loaded) = pytorrent_tokenizer::load(&paths[0].display().to_string()) else {
        return;
    };
    let _ = loaded.id_bound();
    let _ = pytorrent_tokenizer::SpecialIds::of(&loaded.tokenizer);
    same_ids(
        &loaded.tokenizer,
        "def add(a, b):\n    \"\"\"Return a + b.\"\"\"\n    return a + b\n",
    );
}

/// `vocab.json` + `merges.txt` (split at the first 0xFF byte) loaded and used.
pub fn vocab_merges(data: &[u8]) {
    let cut = data.iter().position(|b| *b == 0xff).unwrap_or(data.len());
    let merges = data.get(cut + 1..).unwrap_or_default();
    let (dir, _) = scratch(&[("vocab.json", &data[..cut]), ("merges.txt", merges)]);
    if let Ok(loaded) = pytorrent_tokenizer::load(&dir.path().display().to_string()) {
        let _ = loaded.id_bound();
        same_ids(&loaded.tokenizer, "x = 1  # one\n");
    }
}

/// Ids of `text` from the fast encoder (when it takes the tokenizer) and from `tokenizers`:
/// any difference is a failure.
fn same_ids(tok: &tokenizers::Tokenizer, text: &str) {
    if let Some(fast) = pytorrent_tokenizer::fast::FastEncoder::new(tok) {
        same_ids_with(tok, &fast, text);
    }
}

fn same_ids_with(
    tok: &tokenizers::Tokenizer,
    fast: &pytorrent_tokenizer::fast::FastEncoder<'_>,
    text: &str,
) {
    use pytorrent_tokenizer::Encoder;
    for special in [false, true] {
        let reference = tok.encode(text, special).map(|e| e.get_ids().to_vec());
        let ours = fast
            .encode_batch(&[text], special)
            .map(|mut v| v.pop().unwrap_or_default());
        if let (Ok(r), Ok(o)) = (&reference, &ours) {
            assert_eq!(
                o, r,
                "fast encoder ids differ from tokenizers' for {text:?}"
            );
        }
    }
    if let (Ok(words), Ok(r)) = (fast.encode_batch_words(&[text]), tok.encode(text, false)) {
        assert_eq!(words[0].0, r.get_ids(), "word ids differ for {text:?}");
    }
}

/// The shipped model's tokenizer, loaded once.
fn shipped_tokenizer() -> &'static tokenizers::Tokenizer {
    static TOK: std::sync::OnceLock<tokenizers::Tokenizer> = std::sync::OnceLock::new();
    TOK.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .map(|d| d.join("data-samples/models/pytorrent-small-mlm/tokenizer.json"))
            .find(|p| p.is_file())
            .expect("data-samples/models/pytorrent-small-mlm/tokenizer.json");
        pytorrent_tokenizer::load(&path.display().to_string())
            .expect("the shipped tokenizer loads")
            .tokenizer
    })
}

/// Differential: the fast encoder against `tokenizers` on arbitrary text (the encoder is
/// made once: its memo of pieces persists across inputs, as in a long encoding run).
pub fn fast_encoder(data: &[u8]) {
    static FAST: std::sync::OnceLock<pytorrent_tokenizer::fast::FastEncoder<'static>> =
        std::sync::OnceLock::new();
    let tok = shipped_tokenizer();
    let fast = FAST.get_or_init(|| {
        pytorrent_tokenizer::fast::FastEncoder::new(tok).expect("a byte-level BPE tokenizer")
    });
    same_ids_with(tok, fast, &String::from_utf8_lossy(data));
}

/// npy headers and data, Megatron indexes, manifests and the verification of a shard folder
/// built from the bytes (the first byte picks which).
pub fn shards(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    match first % 5 {
        0 => {
            if let Ok((descr, _, start)) = pytorrent_io::npy::read_header(rest) {
                for d in [
                    pytorrent_io::npy::Dtype::Uint8,
                    pytorrent_io::npy::Dtype::Uint16,
                    pytorrent_io::npy::Dtype::Int32,
                ] {
                    if d.descr() == descr {
                        let body = &rest[start.min(rest.len())..];
                        let usable = body.len() / d.size() * d.size();
                        let _ = pytorrent_io::npy::decode(d, &body[..usable]);
                    }
                }
            }
        }
        1 => {
            let _ = pytorrent_pack::megatron::Index::parse(rest);
        }
        2 => {
            // A manifest, with a small shard beside it for it to describe.
            let shard = small_npy();
            let (dir, paths) = scratch(&[("manifest.json", rest), ("shard-00000.npy", &shard)]);
            let _ = pytorrent_pack::manifest::Manifest::read(&paths[0]);
            let _ = pytorrent_pack::verify::verify_folder(dir.path());
        }
        3 => {
            // The same folder as pretraining and `shards inspect` read it.
            let shard = small_npy();
            let (dir, _) = scratch(&[("manifest.json", rest), ("shard-00000.npy", &shard)]);
            let _ = pytorrent_pack::inspect::read_rows(dir.path(), 0, 4);
            if let Ok(mut p) = pytorrent_pretrain::data::Partition::open(dir.path()) {
                let sizes = p.sizes().to_vec();
                for (s, rows) in sizes.iter().enumerate() {
                    for r in 0..(*rows).min(4) {
                        let _ = p.row(s, r);
                    }
                }
            }
        }
        _ => {
            // One complete task of a split run, its manifest these bytes, merged.
            let shard = small_npy();
            let marker = br#"{"task": {"index": 0, "count": 1}, "fingerprint": "f"}"#;
            let (dir, _) = scratch(&[]);
            let task = dir.path().join("task-00000-of-00001");
            std::fs::create_dir_all(task.join("train")).expect("scratch folder");
            for (name, bytes) in [
                ("COMPLETE.json", &marker[..]),
                ("train/manifest.json", rest),
                ("train/shard-00000.npy", &shard),
            ] {
                std::fs::write(task.join(name), bytes).expect("scratch file written");
            }
            let _ = pytorrent_pack::merge::merge(dir.path());
        }
    }
}

/// A 1 × 4 `uint16` npy file (ids 0–3).
fn small_npy() -> Vec<u8> {
    let mut header = "{'descr': '<u2', 'fortran_order': False, 'shape': (1, 4), }".to_string();
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for id in 0u16..4 {
        out.extend_from_slice(&id.to_le_bytes());
    }
    out
}

/// `config.json` parsing and, with the shipped config, a `model.safetensors` of these bytes.
pub fn model_files(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    if first & 1 == 0 {
        let text = String::from_utf8_lossy(rest);
        let _ = pytorrent_model::ModelConfig::parse(&text, Path::new("config.json"));
        return;
    }
    let config = br#"{"architectures":["RobertaForMaskedLM"],"model_type":"roberta","vocab_size":16,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":16,"max_position_embeddings":20,"type_vocab_size":1,"layer_norm_eps":1e-5,"pad_token_id":1,"hidden_act":"gelu"}"#;
    let (dir, _) = scratch(&[("config.json", config), ("model.safetensors", rest)]);
    let device = pytorrent_model::device::parse_device("cpu").expect("cpu");
    let dtype = pytorrent_model::device::parse_dtype("f32", &device).expect("f32");
    let _ = pytorrent_model::Model::load(&dir.path().display().to_string(), &device, dtype);
}

/// Pipeline TOML files: parsed and planned.
pub fn pipeline_toml(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("pipeline.toml");
    if let Ok(file) =
        pytorrent_pipeline::config::PipelineFile::parse(&text, &path, dir.path(), None)
    {
        let _ = pytorrent_pipeline::plan::plan(&file);
    }
}
