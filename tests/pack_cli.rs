//! End-to-end tests of `pytorrent pack` on the samples: blocks equal `group_texts` over the
//! tokenizer's own encodings, shards are numpy files with a manifest, output is deterministic.

mod common;

use std::fs;
use std::path::Path;

use common::*;

/// Reads a 2-D little-endian uint16/uint8 .npy written by us: (rows, cols, values).
fn read_npy(path: &Path) -> (usize, usize, Vec<u32>) {
    let b = fs::read(path).unwrap();
    assert_eq!(&b[..6], b"\x93NUMPY");
    let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
    let header = String::from_utf8_lossy(&b[10..10 + hlen]).to_string();
    let shape = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap()
        .to_string();
    let dims: Vec<usize> = shape
        .split(',')
        .map(|x| x.trim())
        .filter(|x| !x.is_empty())
        .map(|x| x.parse().unwrap())
        .collect();
    let data = &b[10 + hlen..];
    let values = if header.contains("<u2") {
        data.chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]) as u32)
            .collect()
    } else {
        assert!(header.contains("|u1"), "{header}");
        data.iter().map(|v| *v as u32).collect()
    };
    (dims[0], dims[1], values)
}

fn tokenizer(dir: &Path) -> String {
    let t = dir.join("tok");
    let o = run(&[
        "tokenizer",
        "train",
        samples().to_str().unwrap(),
        "--out",
        t.to_str().unwrap(),
        "--vocab-size",
        "1200",
        "-q",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    t.to_str().unwrap().to_string()
}

#[test]
fn concat_blocks_equal_group_texts_and_are_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let tok = tokenizer(dir.path());
    // The reference: every train record encoded with <s> … </s> by `tokenizer encode`.
    let o = run(&[
        "tokenizer",
        "encode",
        "--tokenizer",
        &tok,
        samples().to_str().unwrap(),
        "--partition",
        "train",
        "-q",
    ]);
    let mut all: Vec<u32> = Vec::new();
    for line in stdout(&o).lines() {
        all.extend(serde_json::from_str::<Vec<u32>>(line).unwrap());
    }
    let seq = 64;
    let full = all.len() / seq * seq;
    let mut shards = Vec::new();
    for threads in ["1", "2"] {
        let out = dir.path().join(format!("packed{threads}"));
        let o = run_in(
            None,
            &[("RAYON_NUM_THREADS", threads)],
            &[
                "pack",
                samples().to_str().unwrap(),
                "--tokenizer",
                &tok,
                "--out",
                out.to_str().unwrap(),
                "--seq-len",
                "64",
                "--shard-rows",
                "300",
                "--read-chunk-bytes",
                "16384",
                "-q",
            ],
            None,
        );
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let files: Vec<(String, Vec<u8>)> = tree(&out)
            .into_iter()
            .map(|f| (f.clone(), fs::read(out.join(&f)).unwrap()))
            .collect();
        shards.push(files);
        let manifest: serde_json::Value =
            serde_json::from_slice(&fs::read(out.join("train/manifest.json")).unwrap()).unwrap();
        let mut got = Vec::new();
        let mut rows = 0;
        for s in manifest["shards"].as_array().unwrap() {
            let p = out.join("train").join(s["file"].as_str().unwrap());
            assert_eq!(
                s["sha256"].as_str().unwrap(),
                pytorrent_io::sha256_file(&p).unwrap()
            );
            let (r, c, v) = read_npy(&p);
            assert_eq!(c, 64);
            assert_eq!(r, s["rows"].as_u64().unwrap() as usize);
            rows += r;
            got.extend(v);
        }
        assert_eq!(
            manifest["shards"].as_array().unwrap().len(),
            rows.div_ceil(300)
        );
        assert_eq!(
            got,
            all[..full],
            "blocks are the concatenated encodings cut every 64 tokens"
        );
        assert_eq!(
            manifest["dropped_tokens"].as_u64().unwrap() as usize,
            all.len() - full
        );
        assert_eq!(manifest["dtype"], "uint16");
    }
    assert_eq!(shards[0], shards[1], "byte-identical with 1 and 2 threads");
}

#[test]
fn record_mode_writes_attention_masks() {
    let dir = tempfile::tempdir().unwrap();
    let tok = tokenizer(dir.path());
    let out = dir.path().join("rec");
    let o = run(&[
        "pack",
        samples().to_str().unwrap(),
        "--tokenizer",
        &tok,
        "--out",
        out.to_str().unwrap(),
        "--seq-len",
        "32",
        "--mode",
        "record",
        "--partition",
        "test",
        "-q",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        tree(&out),
        [
            "test/attention_mask-00000.npy",
            "test/manifest.json",
            "test/shard-00000.npy"
        ]
    );
    let (rows, cols, ids) = read_npy(&out.join("test/shard-00000.npy"));
    let (_, _, mask) = read_npy(&out.join("test/attention_mask-00000.npy"));
    assert_eq!((rows, cols), (25, 32), "one row per test record");
    for r in 0..rows {
        let row = &ids[r * 32..(r + 1) * 32];
        let m = &mask[r * 32..(r + 1) * 32];
        let real = m.iter().filter(|x| **x == 1).count();
        assert_eq!(row[0], 0, "<s> first");
        assert_eq!(row[real - 1], 2, "</s> closes the real tokens");
        assert!(row[real..].iter().all(|t| *t == 1), "<pad> after");
    }
}

#[test]
fn verify_names_the_shard_with_a_flipped_byte() {
    let dir = tempfile::tempdir().unwrap();
    let tok = tokenizer(dir.path());
    let out = dir.path().join("packed");
    let o = run(&[
        "pack",
        samples().to_str().unwrap(),
        "--tokenizer",
        &tok,
        "--out",
        out.to_str().unwrap(),
        "--seq-len",
        "64",
        "--shard-rows",
        "200",
        "-q",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = run(&["shards", "verify", out.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("ok: 3 folders checked, 0 problems"),
        "{}",
        stderr(&o)
    );

    let shard = out.join("train/shard-00001.npy");
    let mut bytes = fs::read(&shard).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    fs::write(&shard, &bytes).unwrap();
    let o = run(&["shards", "verify", out.to_str().unwrap(), "--json"]);
    assert_eq!(code(&o), 1);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let problems = v["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0]["file"]
        .as_str()
        .unwrap()
        .ends_with("train/shard-00001.npy"));
    assert!(problems[0]["problem"].as_str().unwrap().contains("sha256"));

    // An id beyond the vocabulary is caught even when the manifest's digest is updated.
    bytes[last] = 0xff;
    bytes[last - 1] = 0xff;
    fs::write(&shard, &bytes).unwrap();
    let m = out.join("train/manifest.json");
    let mut manifest: serde_json::Value = serde_json::from_slice(&fs::read(&m).unwrap()).unwrap();
    manifest["shards"][1]["sha256"] = pytorrent_io::sha256_file(&shard).unwrap().into();
    fs::write(&m, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let o = run(&["shards", "verify", out.join("train").to_str().unwrap()]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("id outside the vocabulary"),
        "{}",
        stderr(&o)
    );
}
