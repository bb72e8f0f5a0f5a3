//! The tokenizer stage's commands called as library functions, without the binary; npy output
//! read back with ndarray-npy, an independent reader.

use pytorrent_testkit::samples;
use std::path::{Path, PathBuf};

use ndarray::Array1;
use ndarray_npy::ReadNpyExt;
use pytorrent_corpus::{InputConfig, Partition, Partitions};
use pytorrent_io::reporter::Recorder;
use pytorrent_io::Silent;
use pytorrent_tokenizer::decode::{run_io, DecodeConfig};
use pytorrent_tokenizer::encode::EncodeConfig;
use pytorrent_tokenizer::eval::EvalConfig;
use pytorrent_tokenizer::inspect::{default_text, InspectConfig};
use pytorrent_tokenizer::TrainConfig;

fn train(dir: &Path, vocab: usize) -> (PathBuf, Recorder, pytorrent_tokenizer::TrainReport) {
    let out = dir.join(format!("tok{vocab}"));
    let mut cfg = TrainConfig::new(InputConfig::new(vec![samples()]), out.clone());
    cfg.vocab_size = vocab;
    let rec = Recorder::default();
    let report = pytorrent_tokenizer::train_corpus::run(&cfg, &rec).unwrap();
    (out, rec, report)
}

#[test]
fn train_writes_the_folder_and_says_when_the_vocabulary_is_smaller() {
    let dir = tempfile::tempdir().unwrap();
    let (out, rec, report) = train(dir.path(), 1200);
    assert_eq!(report.vocab_size, 1200);
    assert_eq!(report.merges, 1200 - 261);
    for f in pytorrent_tokenizer::OUTPUT_FILES {
        assert!(out.join(f).is_file(), "{f}");
    }
    assert!(rec.warnings().is_empty(), "{:?}", rec.warnings());
    let (_, rec, report) = train(dir.path(), 60_000);
    assert!(report.vocab_size < 60_000);
    let w = rec.warnings();
    assert!(
        w.len() == 1
            && w[0].contains(&format!("{} entries", report.vocab_size))
            && w[0].contains("60000"),
        "{w:?}"
    );
}

#[test]
fn encode_to_npy_equals_encode_to_jsonl_and_decodes_back() {
    let dir = tempfile::tempdir().unwrap();
    let (tok, _, _) = train(dir.path(), 1200);
    let tok = tok.display().to_string();
    let mut cfg = EncodeConfig::new(tok.clone(), vec![samples()]);
    cfg.partition = Partitions::only(Partition::Valid);
    cfg.out = Some(dir.path().join("ids.jsonl"));
    let jsonl = pytorrent_tokenizer::encode::run(&cfg, &Silent).unwrap();
    cfg.out = Some(dir.path().join("ids.npy"));
    let npy = pytorrent_tokenizer::encode::run(&cfg, &Silent).unwrap();
    assert_eq!((jsonl.texts, jsonl.tokens), (npy.texts, npy.tokens));
    let rows: Vec<Vec<u32>> = std::fs::read_to_string(dir.path().join("ids.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let open = |name: &str| std::fs::File::open(dir.path().join(name)).unwrap();
    let ids = Array1::<u32>::read_npy(open("ids.npy")).unwrap();
    let offsets = Array1::<i64>::read_npy(open("ids.offsets.npy")).unwrap();
    assert_eq!(offsets.len(), rows.len() + 1);
    for (i, r) in rows.iter().enumerate() {
        let (a, b) = (offsets[i] as usize, offsets[i + 1] as usize);
        assert_eq!(ids.slice(ndarray::s![a..b]).to_vec(), *r, "text {i}");
    }
    // Decoding the first ids gives the record's code back.
    let dc = DecodeConfig {
        tokenizer: tok,
        ids: Vec::new(),
        keep_special_tokens: false,
    };
    let input = format!("{}\n", serde_json::to_string(&rows[0]).unwrap());
    let mut out = Vec::new();
    run_io(&dc, true, &mut input.as_bytes(), &mut out).unwrap();
    let text: String = serde_json::from_str(String::from_utf8(out).unwrap().trim()).unwrap();
    assert!(
        text.starts_with("def ") || text.starts_with("async def"),
        "{text}"
    );
}

#[test]
fn eval_and_inspect() {
    let dir = tempfile::tempdir().unwrap();
    let (tok, _, _) = train(dir.path(), 1200);
    let tok = tok.display().to_string();
    let cfg = EvalConfig::new(InputConfig::new(vec![samples()]), tok.clone());
    let report = pytorrent_tokenizer::eval::run(&cfg, &Silent).unwrap();
    let r = &report.results[0];
    assert!(r.texts > 0 && r.tokens > r.texts);
    assert!(
        r.bytes_per_token > 1.5 && r.bytes_per_token < 8.0,
        "{}",
        r.bytes_per_token
    );
    let cfg = InspectConfig {
        tokenizer: tok,
        text: default_text(),
    };
    let i = pytorrent_tokenizer::inspect::run(&cfg, &Silent).unwrap();
    assert_eq!(i.vocab_size, 1200);
    let ids: Vec<u32> = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        .iter()
        .map(|t| i.special_tokens[*t])
        .collect();
    assert_eq!(ids, [0, 1, 2, 3, 4]);
    assert_eq!(
        (i.roles.start.as_deref(), i.roles.end.as_deref()),
        (Some("<s>"), Some("</s>"))
    );
    assert_eq!(i.roles.pair_middle, ["</s>"], "RoBERTa pairs: </s></s>");
    assert_eq!((i.sample.ids[0], *i.sample.ids.last().unwrap()), (0, 2));
}
