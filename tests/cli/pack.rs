//! End-to-end tests of `pytorrent pack` on the samples: blocks equal `group_texts` over the
//! tokenizer's own encodings, shards are numpy files with a manifest, output is deterministic.

use std::fs;
use std::path::Path;

use crate::util::*;

#[test]
fn concat_blocks_equal_group_texts_and_are_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let tok = tokenizer(dir.path());
    // The reference: every train record encoded with <s> … </s> by `tokenizer encode`.
    let o = pt!(
        "tokenizer",
        "encode",
        "--tokenizer",
        &tok,
        samples(),
        "--partition",
        "train",
        "-q"
    )
    .run();
    let mut all: Vec<u32> = Vec::new();
    for line in stdout(&o).lines() {
        all.extend(serde_json::from_str::<Vec<u32>>(line).unwrap());
    }
    let seq = 64;
    let full = all.len() / seq * seq;
    let mut shards = Vec::new();
    for threads in ["1", "2"] {
        let out = dir.path().join(format!("packed{threads}"));
        pack(&tok, &out)
            .args([
                "--seq-len",
                "64",
                "--shard-rows",
                "300",
                "--no-shuffle",
                "--read-chunk-bytes",
                "16384",
            ])
            .env("RAYON_NUM_THREADS", threads)
            .ok();
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
    pack(&tok, &out)
        .args(["--seq-len", "32", "--mode", "record", "--partition", "test"])
        .ok();
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
    pack(&tok, &out)
        .args(["--seq-len", "64", "--shard-rows", "200"])
        .ok();
    let o = pt!("shards", "verify", out).ok();
    assert_stderr_has(&o, "ok: 3 folders checked, 0 problems");

    let shard = out.join("train/shard-00001.npy");
    let mut bytes = fs::read(&shard).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    fs::write(&shard, &bytes).unwrap();
    let o = pt!("shards", "verify", out, "--json").fails_with(1);
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
    let o = pt!("shards", "verify", out.join("train")).fails_with(1);
    assert_stderr_has(&o, "id outside the vocabulary");
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

/// Every row of a partition folder's npy shards, and of a sibling array (`labels`, …).
fn npy_rows(dir: &Path, sibling: Option<&str>) -> Vec<Vec<i64>> {
    let m = manifest(dir);
    let mut rows = Vec::new();
    for s in m["shards"].as_array().unwrap() {
        let file = match sibling {
            None => s["file"].as_str().unwrap(),
            Some(k) => s[k]["file"].as_str().unwrap(),
        };
        let (r, c, v) = read_npy_i64(&dir.join(file));
        for i in 0..r {
            rows.push(v[i * c..(i + 1) * c].to_vec());
        }
    }
    rows
}

/// Every sequence of a partition folder's Megatron shards, read with the format's layout.
fn megatron_rows(dir: &Path) -> Vec<Vec<i64>> {
    let m = manifest(dir);
    let mut rows = Vec::new();
    for s in m["shards"].as_array().unwrap() {
        let bin = fs::read(dir.join(s["file"].as_str().unwrap())).unwrap();
        let idx = fs::read(dir.join(s["index"]["file"].as_str().unwrap())).unwrap();
        assert_eq!(&idx[..9], b"MMIDIDX\x00\x00");
        assert_eq!(u64::from_le_bytes(idx[9..17].try_into().unwrap()), 1);
        assert_eq!(idx[17], 8, "uint16");
        let n = u64::from_le_bytes(idx[18..26].try_into().unwrap()) as usize;
        let docs = u64::from_le_bytes(idx[26..34].try_into().unwrap()) as usize;
        assert_eq!(docs, n + 1);
        for i in 0..n {
            let len = i32::from_le_bytes(idx[34 + 4 * i..38 + 4 * i].try_into().unwrap()) as usize;
            let o = 34 + 4 * n + 8 * i;
            let ptr = i64::from_le_bytes(idx[o..o + 8].try_into().unwrap()) as usize;
            rows.push(
                bin[ptr..ptr + 2 * len]
                    .chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]) as i64)
                    .collect(),
            );
        }
    }
    rows
}

fn sorted(mut v: Vec<Vec<i64>>) -> Vec<Vec<i64>> {
    v.sort();
    v
}

#[test]
fn shuffle_is_seeded_and_only_reorders_records() {
    let dir = tempfile::tempdir().unwrap();
    let tok = tokenizer(dir.path());
    let base = [
        "--mode",
        "record",
        "--seq-len",
        "48",
        "--partition",
        "train",
        "--segment-lines",
        "100",
    ];
    let variants: [&[&str]; 4] = [
        &["--no-shuffle"],
        &["--seed", "1"],
        &["--seed", "1"],
        &["--seed", "2"],
    ];
    let mut outs = Vec::new();
    for (i, v) in variants.iter().enumerate() {
        let out = dir.path().join(format!("o{i}"));
        let mut args = base.to_vec();
        args.extend_from_slice(v);
        pack(&tok, &out).args(args).ok();
        outs.push(npy_rows(&out.join("train"), None));
    }
    assert_eq!(outs[1], outs[2], "same seed, same order");
    assert_ne!(outs[1], outs[3], "another seed, another order");
    assert_ne!(outs[0], outs[1], "shuffled differs from input order");
    assert_eq!(
        sorted(outs[0].clone()),
        sorted(outs[3].clone()),
        "the same rows"
    );
    // Bounded: records stay within their 100-line segment.
    let pos = |rows: &[Vec<i64>], r: &Vec<i64>| rows.iter().position(|x| x == r).unwrap();
    for (i, r) in outs[0].iter().enumerate() {
        assert_eq!(pos(&outs[3], r) / 100, i / 100, "row {i} left its segment");
    }
}

#[test]
fn static_masks_follow_the_mlm_rules_and_keep_the_text() {
    let dir = tempfile::tempdir().unwrap();
    let tok = tokenizer(dir.path());
    let plain = dir.path().join("plain");
    let masked = dir.path().join("masked");
    let base = ["--seq-len", "64", "--partition", "train", "--seed", "5"];
    pack(&tok, &plain).args(base).ok();
    let mut args = base.to_vec();
    args.extend(["--static-mask", "--dupe-factor", "2", "--shard-rows", "100"]);
    let mut twice = Vec::new();
    for threads in ["1", "2"] {
        pack(&tok, &masked)
            .args(&args)
            .env("RAYON_NUM_THREADS", threads)
            .ok();
        twice.push(
            tree(&masked)
                .into_iter()
                .map(|f| fs::read(masked.join(f)).unwrap())
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(
        twice[0], twice[1],
        "masks do not depend on the thread count"
    );
    let originals = npy_rows(&plain.join("train"), None);
    let inputs = npy_rows(&masked.join("train"), None);
    let labels = npy_rows(&masked.join("train"), Some("labels"));
    assert_eq!(inputs.len(), 2 * originals.len(), "two copies of each row");
    let m = manifest(&masked.join("train"));
    assert_eq!(m["static_mask"], true);
    assert_eq!(m["mlm_probability"], 0.15);
    assert_eq!(m["dupe_factor"], 2);
    let (mut selected, mut total, mut as_mask) = (0usize, 0usize, 0usize);
    for (i, orig) in originals.iter().enumerate() {
        let copies = [2 * i, 2 * i + 1];
        assert_ne!(
            labels[copies[0]], labels[copies[1]],
            "each copy has its own mask"
        );
        for c in copies {
            for j in 0..orig.len() {
                let (inp, lab) = (inputs[c][j], labels[c][j]);
                let special = orig[j] <= 4;
                if lab == -100 {
                    assert_eq!(inp, orig[j], "unselected tokens are unchanged");
                } else {
                    assert!(!special, "special tokens are never selected");
                    assert_eq!(lab, orig[j], "the label is the original id");
                    selected += 1;
                    as_mask += (inp == 4) as usize;
                }
                total += !special as usize;
            }
        }
    }
    let rate = selected as f64 / total as f64;
    assert!((rate - 0.15).abs() < 0.02, "selection rate {rate}");
    let share = as_mask as f64 / selected as f64;
    assert!((share - 0.8).abs() < 0.04, "<mask> share {share}");
    pt!("shards", "verify", masked).ok();
}

#[test]
fn megatron_shards_hold_the_same_sequences_as_npy() {
    let dir = tempfile::tempdir().unwrap();
    let tok = tokenizer(dir.path());
    for mode in ["concat", "record"] {
        let npy = dir.path().join(format!("npy-{mode}"));
        let meg = dir.path().join(format!("meg-{mode}"));
        let base = ["--seq-len", "40", "--mode", mode, "--shard-rows", "70"];
        pack(&tok, &npy).args(base).ok();
        let mut args = base.to_vec();
        args.extend(["--format", "megatron"]);
        pack(&tok, &meg).args(args).ok();
        for part in ["train", "valid", "test"] {
            let want: Vec<Vec<i64>> = match mode {
                "concat" => npy_rows(&npy.join(part), None),
                // Record rows without their padding.
                _ => npy_rows(&npy.join(part), None)
                    .into_iter()
                    .zip(npy_rows(&npy.join(part), Some("attention_mask")))
                    .map(|(r, m)| r[..m.iter().filter(|x| **x == 1).count()].to_vec())
                    .collect(),
            };
            assert_eq!(megatron_rows(&meg.join(part)), want, "{mode} {part}");
        }
        pt!("shards", "verify", meg).ok();
    }
    // Static masks have no place in Megatron files.
    let o = pack(&tok, &dir.path().join("x"))
        .args(["--format", "megatron", "--static-mask"])
        .fails_with(2);
    assert_stderr_has(&o, "Megatron");
}

#[test]
fn seq_len_beyond_the_model_position_table_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let tok = tokenizer(dir.path());
    let model = dir.path().join("model");
    fs::create_dir_all(&model).unwrap();
    fs::write(
        model.join("config.json"),
        r#"{"model_type": "roberta", "max_position_embeddings": 514, "pad_token_id": 1}"#,
    )
    .unwrap();
    let out = dir.path().join("o");
    let o = pack(&tok, &out)
        .args(["--seq-len", "513", "--model"])
        .arg(&model)
        .fails_with(2);
    assert_stderr_has(&o, "holds 512 tokens");
    pack(&tok, &out)
        .args(["--seq-len", "512", "--partition", "test", "--model"])
        .arg(&model)
        .ok();
}

#[test]
fn inspect_decodes_rows_back_to_the_records() {
    let dir = tempfile::tempdir().unwrap();
    let tok = tokenizer(dir.path());
    let out = dir.path().join("o");
    pack(&tok, &out)
        .args(["--mode", "record", "--seq-len", "512", "--no-shuffle"])
        .args(["--partition", "test", "--shard-rows", "10"])
        .ok();
    let o = pt!(
        "shards",
        "inspect",
        out.join("test"),
        "--row",
        "9",
        "--count",
        "2",
        "--json"
    )
    .ok();
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[1]["shard"], "shard-00001.npy",
        "row 10 opens the second shard"
    );
    let lines = sample_lines();
    let test: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["partition"] == "test")
        .collect();
    for (k, r) in rows.iter().enumerate() {
        let text = r["text"].as_str().unwrap();
        let code = test[9 + k]["code"].as_str().unwrap();
        let body = text.trim_start_matches("<s>").split("</s>").next().unwrap();
        assert!(
            code.starts_with(body) && body.len() > 20,
            "row {} decodes to its record:\n{text}",
            9 + k
        );
    }
}

#[test]
fn shards_roll_over_by_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let tok = tokenizer(dir.path());
    let out = dir.path().join("o");
    // 64 uint16 ids = 128 bytes a row: 4 KiB holds 32 rows.
    pack(&tok, &out)
        .args([
            "--seq-len",
            "64",
            "--partition",
            "train",
            "--shard-bytes",
            "4K",
        ])
        .ok();
    let m = manifest(&out.join("train"));
    let rows: Vec<u64> = m["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["rows"].as_u64().unwrap())
        .collect();
    assert!(rows.len() > 2, "{rows:?}");
    assert!(rows[..rows.len() - 1].iter().all(|r| *r == 32), "{rows:?}");
    assert_eq!(m["shard_bytes"], 4096);
    pack(&tok, &out).args(["--shard-bytes", "4X"]).fails_with(2);
}

#[test]
fn ids_past_16_bits_are_stored_wide_even_in_a_small_vocabulary() {
    // A tokenizer of 1,200 entries whose `Ġreturn` has id 70,000: counting entries would
    // choose uint16 and wrap that id to 4,464 without a word.
    let dir = tempfile::tempdir().unwrap();
    let tok = tokenizer(dir.path());
    let file = Path::new(&tok).join("tokenizer.json");
    let mut t: serde_json::Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    assert!(
        t["model"]["vocab"]["Ġreturn"].is_u64(),
        "the sample vocabulary has Ġreturn"
    );
    t["model"]["vocab"]["Ġreturn"] = serde_json::json!(70000);
    let sparse = dir.path().join("sparse");
    fs::create_dir_all(&sparse).unwrap();
    fs::write(sparse.join("tokenizer.json"), t.to_string()).unwrap();
    let corpus = dir.path().join("c.jsonl");
    let mut text = String::new();
    for i in 0..40 {
        text.push_str(&format!(
            "{{\"text\": \"def f{i}(x):\\n    return x + {i}\\n\"}}\n"
        ));
    }
    fs::write(&corpus, text).unwrap();
    let out = dir.path().join("packed");
    pt!(
        "pack",
        &corpus,
        "--tokenizer",
        &sparse,
        "--text-field",
        "text",
        "--out",
        &out,
        "--seq-len",
        "32",
        "--default-partition",
        "train",
        "-q"
    )
    .ok();
    let m = manifest(&out.join("train"));
    let shard = out
        .join("train")
        .join(m["shards"][0]["file"].as_str().unwrap());
    let (header, _, _) = npy_parts(&fs::read(&shard).unwrap());
    assert!(header.contains("'<i4'"), "ids need 32 bits: {header}");
    let ids: Vec<i64> = npy_rows(&out.join("train"), None).concat();
    assert!(ids.contains(&70000), "the far id survives");
    assert!(!ids.contains(&(70000 - 65536)), "and is not wrapped");
    assert!(ids.iter().all(|&i| (0..70001).contains(&i)));
    pt!("shards", "verify", &out, "-q").ok();
}

#[test]
fn verify_checks_token_counts_per_shard_and_in_total() {
    let dir = tempfile::tempdir().unwrap();
    let tok = tokenizer(dir.path());
    for (name, args) in [
        ("npy", vec!["--mode", "record"]),
        ("masked", vec!["--mode", "record", "--static-mask"]),
        ("megatron", vec!["--format", "megatron"]),
        ("parquet", vec!["--format", "parquet", "--mode", "record"]),
    ] {
        let out = dir.path().join(name);
        pack(&tok, &out)
            .args(["--seq-len", "64", "--shard-rows", "50"])
            .args(&args)
            .ok();
        pt!("shards", "verify", &out).ok();
        let m = out.join("train/manifest.json");
        let good = fs::read(&m).unwrap();
        let mut v: serde_json::Value = serde_json::from_slice(&good).unwrap();
        // One shard's count raised, the total kept equal to the shards' sum.
        let n = v["shards"][0]["tokens"].as_u64().unwrap();
        v["shards"][0]["tokens"] = (n + 3).into();
        v["tokens"] = (v["tokens"].as_u64().unwrap() + 3).into();
        fs::write(&m, v.to_string()).unwrap();
        let o = pt!("shards", "verify", out.join("train")).fails_with(1);
        assert_stderr_has(&o, &format!("{n} tokens, the manifest says {}", n + 3));
        // The total alone.
        let mut v: serde_json::Value = serde_json::from_slice(&good).unwrap();
        let total = v["tokens"].as_u64().unwrap();
        v["tokens"] = (total - 1).into();
        fs::write(&m, v.to_string()).unwrap();
        let o = pt!("shards", "verify", out.join("train")).fails_with(1);
        assert_stderr_has(
            &o,
            &format!(
                "shards hold {total} tokens, the manifest says {}",
                total - 1
            ),
        );
    }
}

#[test]
fn a_parquet_pack_carries_a_dataset_card_listing_the_splits_with_rows() {
    let dir = tempfile::tempdir().unwrap();
    let tok = tokenizer(dir.path());
    // A corpus without test records: its test partition packs no rows.
    let corpus = dir.path().join("corpus/docstrings");
    std::fs::create_dir_all(&corpus).unwrap();
    for part in ["train", "valid"] {
        let from = root().join("data-samples/corpus/docstrings").join(part);
        let to = corpus.join(part);
        std::fs::create_dir_all(&to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
        }
    }
    let out = dir.path().join("packed");
    let packed = || {
        pt!(
            "pack",
            dir.path().join("corpus"),
            "--tokenizer",
            &tok,
            "--out",
            &out
        )
        .args(["--format", "parquet", "--seq-len", "64", "-q"])
        .ok()
    };
    packed();
    let card = read_text(&out.join("README.md"));
    assert!(
        card.starts_with("---\nconfigs:\n- config_name: default\n  data_files:\n"),
        "{card}"
    );
    assert!(
        card.contains("  - split: train\n    path: \"train/*.parquet\"\n"),
        "{card}"
    );
    assert!(
        card.contains("  - split: validation\n    path: \"valid/*.parquet\"\n"),
        "{card}"
    );
    assert!(!card.contains("split: test"), "{card}");
    // Run again: the card is its own, rewritten; a card a user wrote is left alone.
    packed();
    std::fs::write(out.join("README.md"), "my notes\n").unwrap();
    packed();
    assert_eq!(read_text(&out.join("README.md")), "my notes\n");
}
