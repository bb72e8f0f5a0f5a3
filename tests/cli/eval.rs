//! `pytorrent eval retrieval` end to end on data-samples' test partition: a model's scores
//! equal those of its `embed` output, embeddings are cached, BM25 and random sit beside, the
//! result does not depend on threads, and bad requests fail before any model runs.

use std::fs;
use std::path::{Path, PathBuf};

use crate::util::*;

fn minilm() -> PathBuf {
    root().join("tests/fixtures/models/st-minilm")
}

/// The scores of a report, without its timing.
fn scores(v: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({"scores": v["scores"], "pytorrent": v["pytorrent"]})
}

fn retrieval(cache: &Path) -> Cmd {
    pt!(
        "eval",
        "retrieval",
        samples(),
        "--model",
        minilm(),
        "--protocol",
        "pool",
        "--cache",
        cache
    )
}

#[test]
fn a_models_scores_are_those_of_its_embed_output_and_come_from_the_cache_the_second_time() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let first = retrieval(&cache).json();
    let d = &first["pytorrent"];
    assert_eq!(d["protocol"], "pool");
    assert_eq!(d["queries"], 25);
    assert_eq!(d["candidates_per_query"], 25);
    assert_eq!(
        fs::read_dir(&cache).unwrap().count(),
        2,
        "query and candidate embeddings"
    );
    // The same vectors made by `embed`, given as files.
    let (q, c) = (dir.path().join("q.npy"), dir.path().join("c.npy"));
    for (field, out) in [("docstring", &q), ("code", &c)] {
        pt!(
            "embed",
            samples(),
            "--model",
            minilm(),
            "--field",
            field,
            "--partition",
            "test",
            "--out",
            out,
            "-q"
        )
        .ok();
    }
    let files = pt!(
        "eval",
        "retrieval",
        "--query-embeddings",
        &q,
        "--candidate-embeddings",
        &c,
        "--protocol",
        "pool"
    )
    .json();
    let (a, b) = (&first["scores"]["test"][0], &files["scores"]["test"][0]);
    for key in [
        "protocol_mrr",
        "protocol_mrr_at_1000",
        "ndcg_at_10",
        "accuracy_at_1",
        "map_at_100",
    ] {
        let (x, y) = (a[key].as_f64().unwrap(), b[key].as_f64().unwrap());
        assert!((x - y).abs() < 1e-6, "{key}: {x} against {y}");
    }
    // Second run: from the cache, the same scores.
    let again = retrieval(&cache).arg("--json").run();
    assert!(
        stderr(&again).contains("embeddings from"),
        "{}",
        stderr(&again)
    );
    let again: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(scores(&again), scores(&first));
    // Baselines: BM25 scored the same way, random as its exact expectation.
    let base = &first["pytorrent"]["baselines"];
    assert!(base["bm25"]["mrr"].as_f64().unwrap() > 0.0);
    let h25: f64 = (1..=25).map(|r| 1.0 / r as f64).sum::<f64>() / 25.0;
    assert!((base["random"]["mrr"].as_f64().unwrap() - h25).abs() < 1e-12);
}

#[test]
fn csn_batches_are_seeded_and_thread_count_does_not_matter() {
    let run = |threads: &str, seed: &str| {
        scores(
            &pt!(
                "eval",
                "retrieval",
                samples(),
                "--csn-batch",
                "10",
                "--seed",
                seed
            )
            .env("RAYON_NUM_THREADS", threads)
            .json(),
        )
    };
    let one = run("1", "3");
    assert_eq!(one["pytorrent"]["batches"], 2);
    assert_eq!(one["pytorrent"]["dropped"], 5);
    assert_eq!(one["pytorrent"]["system"], "bm25");
    assert_eq!(one, run("2", "3"));
    let seeds: Vec<serde_json::Value> = ["4", "5", "6"].iter().map(|s| run("2", s)).collect();
    assert!(
        seeds.iter().any(|s| s != &one),
        "the seed picks the batches"
    );
}

#[test]
fn requests_that_cannot_work_fail_before_a_model_loads() {
    // 25 pairs are fewer than one batch of 1,000: a data error, with the way out.
    let o = pt!("eval", "retrieval", samples(), "--model", "no/such-model").fails_with(1);
    assert!(stderr(&o).contains("25 pairs: fewer than one csn batch of 1000; give --csn-batch N (at most 25) or --protocol pool"), "{}", stderr(&o));
    let o = pt!(
        "eval",
        "retrieval",
        samples(),
        "--query-embeddings",
        "q.npy"
    )
    .fails_with(2);
    assert!(stderr(&o).contains("give both --query-embeddings and --candidate-embeddings"));
    let dir = tempfile::tempdir().unwrap();
    let (q, c) = (dir.path().join("q.npy"), dir.path().join("c.npy"));
    pt!(
        "embed",
        "--model",
        minilm(),
        "--text",
        "a",
        "--text",
        "b",
        "--out",
        &q,
        "-q"
    )
    .ok();
    pt!(
        "embed",
        "--model",
        minilm(),
        "--text",
        "a",
        "--out",
        &c,
        "-q"
    )
    .ok();
    let o = pt!(
        "eval",
        "retrieval",
        "--query-embeddings",
        &q,
        "--candidate-embeddings",
        &c,
        "--protocol",
        "pool"
    )
    .fails_with(1);
    assert!(
        stderr(&o).contains("2 query rows but 1 candidate rows"),
        "{}",
        stderr(&o)
    );
    fs::write(&c, b"not npy").unwrap();
    let o = pt!(
        "eval",
        "retrieval",
        "--query-embeddings",
        &q,
        "--candidate-embeddings",
        &c
    )
    .fails_with(1);
    assert!(
        stderr(&o).contains(&format!("{}: not an .npy file", c.display())),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_beir_folder_runs_in_the_pool_protocol_with_mteb_shaped_output() {
    let dir = tempfile::tempdir().unwrap();
    let beir = dir.path().join("mini");
    fs::create_dir_all(beir.join("qrels")).unwrap();
    let records: Vec<serde_json::Value> = sample_lines()
        .iter()
        .take(30)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut corpus = String::new();
    let mut queries = String::new();
    let mut qrels = String::from("query-id\tcorpus-id\tscore\n");
    for (i, r) in records.iter().enumerate() {
        corpus += &format!(
            "{}\n",
            serde_json::json!({"_id": format!("d{i}"), "title": "", "text": r["code"]})
        );
        queries += &format!(
            "{}\n",
            serde_json::json!({"_id": format!("q{i}"), "text": r["docstring"]})
        );
        qrels += &format!("q{i}\td{i}\t1\n");
    }
    fs::write(beir.join("corpus.jsonl"), corpus).unwrap();
    fs::write(beir.join("queries.jsonl"), queries).unwrap();
    fs::write(beir.join("qrels/test.tsv"), qrels).unwrap();
    let v = pt!("eval", "retrieval", "--beir", &beir, "--protocol", "pool").json();
    assert_eq!(v["task_name"], "mini");
    let s = &v["scores"]["test"][0];
    assert_eq!(s["main_score"], s["ndcg_at_10"]);
    // BEIR's and CoIR's names for the same numbers.
    assert_eq!(v["pytorrent"]["beir"]["NDCG@10"], s["ndcg_at_10"]);
    assert_eq!(v["pytorrent"]["beir"]["P@1"], s["precision_at_1"]);
    assert_eq!(v["pytorrent"]["queries"], 30);
    // AdvTest: CodeSearchNet-style lines, tokens joined by spaces.
    let adv = dir.path().join("test.jsonl");
    let lines: String = records
        .iter()
        .map(|r| format!("{}\n", serde_json::json!({"url": r["url"], "code_tokens": r["code_tokens"], "docstring_tokens": r["docstring_tokens"]})))
        .collect();
    fs::write(&adv, lines).unwrap();
    let v = pt!("eval", "retrieval", "--advtest", &adv, "--protocol", "pool").json();
    assert_eq!(v["task_name"], "AdvTest");
    assert_eq!(v["pytorrent"]["queries"], 30);
    assert!(
        v["pytorrent"]["scores"]["mrr"].as_f64().unwrap()
            > v["pytorrent"]["baselines"]["random"]["mrr"]
                .as_f64()
                .unwrap()
    );
    // CoSQA: queries with a retrieval_idx into code_idx_map.txt beside them.
    let cosqa = dir.path().join("cosqa");
    fs::create_dir_all(&cosqa).unwrap();
    let map: serde_json::Map<String, serde_json::Value> = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            (
                r["code"].as_str().unwrap().to_string(),
                serde_json::json!(1000 + i),
            )
        })
        .collect();
    let queries: Vec<serde_json::Value> = records
        .iter()
        .enumerate()
        .map(|(i, r)| serde_json::json!({"idx": format!("cosqa-test-{i}"), "doc": r["docstring"], "code": r["code"], "retrieval_idx": 1000 + i}))
        .collect();
    fs::write(
        cosqa.join("code_idx_map.txt"),
        serde_json::to_vec(&map).unwrap(),
    )
    .unwrap();
    fs::write(
        cosqa.join("cosqa-retrieval-test-500.json"),
        serde_json::to_vec(&queries).unwrap(),
    )
    .unwrap();
    let c = pt!(
        "eval",
        "retrieval",
        "--cosqa",
        cosqa.join("cosqa-retrieval-test-500.json"),
        "--protocol",
        "pool"
    )
    .json();
    assert_eq!(c["task_name"], "CoSQA");
    assert_eq!(c["pytorrent"]["queries"], 30);
    assert!(c["scores"]["test"][0]["ndcg_at_10"].as_f64().unwrap() > 0.3);
    // One answer a query: the random baseline is its exact expectation over 30 candidates.
    let h30: f64 = (1..=30).map(|r| 1.0 / r as f64).sum::<f64>() / 30.0;
    assert!(
        (c["pytorrent"]["baselines"]["random"]["mrr"]
            .as_f64()
            .unwrap()
            - h30)
            .abs()
            < 1e-12
    );
    let o = pt!("eval", "retrieval", "--beir", &beir).fails_with(2);
    assert!(
        stderr(&o).contains("--protocol csn needs pairs"),
        "{}",
        stderr(&o)
    );
}

/// The 1-based place of the token `piece` among `fill-mask`'s candidates for one text (whose
/// order is checked against transformers' pipeline in tests/cli/model.rs).
fn fill_mask_place(text: &str, piece: &str, mask: usize) -> u64 {
    let v = pt!(
        "fill-mask",
        "--model",
        root().join("tests/fixtures/models/roberta-tied"),
        "--text",
        text,
        "--top-k",
        "50"
    )
    .json();
    let cands = v[0]["masks"][mask].as_array().unwrap();
    1 + cands.iter().position(|c| c["token_str"] == piece).unwrap() as u64
}

#[test]
fn fill_mask_suites_rank_answers_as_fill_mask_orders_candidates_and_gate() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("suite.toml");
    fs::write(
        &suite,
        "name = \"mini\"\n[[group]]\ncategory = \"names\"\nprompts = [\n\
         { text = \"x = <mask>\", answers = [\"i\"] },\n\
         { text = \"x = <mask>\", answers = [\"else\", \"i\"] },\n\
         { text = \"x = <mask>\\ny = <mask>\", answers = [[\"else\"], [\"i\"]] },\n]\n",
    )
    .unwrap();
    let run = |extra: &[&str]| {
        pt!(
            "eval",
            "fill-mask",
            "--model",
            root().join("tests/fixtures/models/roberta-tied"),
            "--suite",
            &suite,
            "--worst",
            "10"
        )
        .args(extra)
    };
    let v = run(&[]).json();
    assert_eq!(v["prompts"], 3);
    assert_eq!(v["masks"], 4);
    let rank = |prompt: u64, mask: u64| {
        v["worst"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["prompt"] == prompt && s["mask"] == mask)
            .unwrap()["rank"]
            .as_u64()
            .unwrap()
    };
    let i = fill_mask_place("x = <mask>", " i", 0);
    let e = fill_mask_place("x = <mask>", " else", 0);
    assert_eq!(rank(1, 1), i);
    assert_eq!(rank(2, 1), i.min(e), "the best accepted answer counts");
    assert_eq!(
        rank(3, 1),
        fill_mask_place("x = <mask>\ny = <mask>", " else", 0)
    );
    assert_eq!(
        rank(3, 2),
        fill_mask_place("x = <mask>\ny = <mask>", " i", 1)
    );
    let mrr = [rank(1, 1), rank(2, 1), rank(3, 1), rank(3, 2)]
        .iter()
        .map(|&r| 1.0 / r as f64)
        .sum::<f64>()
        / 4.0;
    assert!((v["mrr"].as_f64().unwrap() - mrr).abs() < 1e-12);
    assert_eq!(v["categories"]["names"]["masks"], 4);
    // The gate: the report is printed, and the exit code says it failed.
    let o = run(&["--min-top5", "0.5", "--json"]).fails_with(1);
    assert!(
        stderr(&o).contains("top-5 accuracy 0.0000 is below --min-top5 0.5"),
        "{}",
        stderr(&o)
    );
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["masks"], 4);
    assert!(doc["failed"].as_str().unwrap().contains("--min-top5"));
}

#[test]
fn the_builtin_suite_runs_and_a_model_without_an_mlm_head_is_refused() {
    let v = pt!(
        "eval",
        "fill-mask",
        "--model",
        root().join("tests/fixtures/models/bert")
    )
    .json();
    assert!(v["prompts"].as_u64().unwrap() >= 200);
    assert_eq!(v["categories"].as_object().unwrap().len(), 10);
    let o = pt!(
        "eval",
        "fill-mask",
        "--model",
        root().join("tests/fixtures/models/roberta-bare")
    )
    .fails_with(2);
    assert!(
        stderr(&o).contains("no masked-language-model head"),
        "{}",
        stderr(&o)
    );
    let o = pt!(
        "eval",
        "fill-mask",
        "--model",
        root().join("tests/fixtures/models/bert"),
        "--suite",
        "no/such.toml"
    )
    .fails_with(2);
    assert!(stderr(&o).contains("no/such.toml"), "{}", stderr(&o));
}

#[test]
fn overlap_counts_exact_and_near_copies_of_evaluation_records_in_a_training_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let body: String = (0..40)
        .map(|i| format!("    a{i} = b{i} + {i}\n"))
        .collect();
    let long = format!("def f(x):\n{body}    return x\n");
    let line = |code: &str| format!("{}\n", serde_json::json!({ "text": code }));
    let eval = dir.path().join("eval.jsonl");
    fs::write(
        &eval,
        [
            line("def add(a, b):\n    return a + b\n"),
            line(&long),
            line("def unrelated():\n    return 42\n"),
        ]
        .concat(),
    )
    .unwrap();
    let train = dir.path().join("train.jsonl");
    fs::write(
        &train,
        [
            line("def other():\n    pass\n"),
            // The same tokens, other spacing.
            line("def add( a, b ):  return a+b"),
            // One name changed among ~300 tokens.
            line(&long.replace("a20 ", "z20 ")),
        ]
        .concat(),
    )
    .unwrap();
    let v = pt!("eval", "overlap", &train, &eval, "--text-field", "text").json();
    assert_eq!(v["eval_records"], 3);
    assert_eq!(v["train_records"], 3);
    assert_eq!(v["exact"]["count"], 1);
    assert_eq!(v["near"]["count"], 1);
    assert_eq!(v["leaked"]["count"], 2);
    let ex = v["examples"].as_array().unwrap();
    assert_eq!(ex[0]["kind"], "exact");
    assert_eq!(ex[0]["eval"], format!("{}:1", eval.display()));
    assert_eq!(ex[0]["train"], format!("{}:2", train.display()));
    assert_eq!(ex[1]["kind"], "near");
    // A stricter threshold leaves the near copy out.
    let v = pt!(
        "eval",
        "overlap",
        &train,
        &eval,
        "--text-field",
        "text",
        "--threshold",
        "1.0"
    )
    .json();
    assert_eq!(v["near"]["count"], 0);
    // PyTorrent partitions: the train partition holds every train record, none of test.
    let v = pt!(
        "eval",
        "overlap",
        samples(),
        samples(),
        "--eval-partition",
        "train"
    )
    .json();
    assert_eq!(v["leaked"]["share"], 1.0);
    let v = pt!("eval", "overlap", samples(), samples()).json();
    assert_eq!(v["eval_records"], 25);
    assert_eq!(v["leaked"]["count"], 0);
}

fn cloze_fixture() -> PathBuf {
    root().join("tests/fixtures/cloze")
}

#[test]
fn cloze_predictions_equal_run_cloze_py_and_accuracy_is_exact_match() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("predictions.txt");
    let data = cloze_fixture().join("clozeTest.json");
    // Words and answers are found beside the data, as CodeXGLUE lays them out.
    let v = pt!(
        "eval",
        "cloze",
        "--model",
        cloze_fixture().join("model"),
        &data,
        "--out",
        &out
    )
    .json();
    let ours = read_text(&out);
    let theirs = read_text(&cloze_fixture().join("predictions.txt"));
    assert_eq!(
        ours, theirs,
        "predictions of scripts/reference/make_cloze_fixtures.py"
    );
    let distinct: std::collections::BTreeSet<&str> = theirs
        .lines()
        .map(|l| l.split("<CODESPLIT>").nth(1).unwrap())
        .collect();
    assert!(
        distinct.len() > 3,
        "the fixture's predictions vary: {distinct:?}"
    );
    let answers = read_text(&cloze_fixture().join("answers.txt"));
    let correct = answers
        .lines()
        .zip(theirs.lines())
        .filter(|(a, p)| a == p)
        .count();
    assert_eq!(v["correct"], correct);
    assert_eq!(v["items"], answers.lines().count());
    let acc = v["accuracy"].as_f64().unwrap();
    assert!((acc - correct as f64 / answers.lines().count() as f64).abs() < 1e-12);
    // An answer for an item the data lacks is an error; so are words outside the
    // vocabulary, said by name.
    let extra = dir.path().join("answers.txt");
    fs::write(&extra, format!("{answers}nope-1<CODESPLIT>self\n")).unwrap();
    let o = pt!(
        "eval",
        "cloze",
        "--model",
        cloze_fixture().join("model"),
        &data,
        "--answers",
        &extra
    )
    .fails_with(1);
    assert!(
        stderr(&o).contains("idx nope-1 is not an item of"),
        "{}",
        stderr(&o)
    );
    let words = dir.path().join("words.txt");
    let fixture_words = read_text(&cloze_fixture().join("cloze_test_words.txt"));
    fs::write(&words, format!("{fixture_words}\nreturn_value_xyz\n")).unwrap();
    let v = pt!(
        "eval",
        "cloze",
        "--model",
        cloze_fixture().join("model"),
        &data,
        "--words",
        &words
    )
    .json();
    assert_eq!(
        v["words_not_in_vocabulary"],
        serde_json::json!(["return_value_xyz"])
    );
}

#[test]
fn cloze_make_writes_codexglue_files_from_one_partition_deterministically() {
    let dir = tempfile::tempdir().unwrap();
    let make = |out: &Path, seed: &str| {
        pt!(
            "eval",
            "cloze",
            "make",
            samples(),
            "--kind",
            "all",
            "--seed",
            seed,
            "--out",
            out
        )
        .ok()
    };
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    make(&a, "1");
    make(&b, "1");
    make(&c, "2");
    for f in ["clozeTest.json", "answers.txt", "cloze_test_words.txt"] {
        assert_eq!(
            fs::read(a.join(f)).unwrap(),
            fs::read(b.join(f)).unwrap(),
            "{f}"
        );
    }
    assert_ne!(
        fs::read(a.join("answers.txt")).unwrap(),
        fs::read(c.join("answers.txt")).unwrap()
    );
    let items: Vec<serde_json::Value> =
        serde_json::from_slice(&fs::read(a.join("clozeTest.json")).unwrap()).unwrap();
    let answers = read_text(&a.join("answers.txt"));
    let words = read_text(&a.join("cloze_test_words.txt"));
    assert!(!words.ends_with('\n'));
    // Test records only: each item is a test record's code tokens with one word masked.
    let test: Vec<serde_json::Value> =
        read_text(&samples().join("docstrings/test/test_scenario_docstrings_chk_0.jsonl.gz"))
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    assert!(!items.is_empty() && items.len() <= test.len());
    for (item, line) in items.iter().zip(answers.lines()) {
        let (idx, word) = line.split_once("<CODESPLIT>").unwrap();
        assert_eq!(item["idx"], idx);
        assert!(words.lines().any(|w| w == word));
        let pl: Vec<String> = item["pl_tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect();
        assert_eq!(pl.iter().filter(|t| *t == "<mask>").count(), 1);
        let filled: Vec<String> = pl
            .iter()
            .map(|t| {
                if t == "<mask>" {
                    word.to_string()
                } else {
                    t.clone()
                }
            })
            .collect();
        assert!(
            test.iter()
                .any(|r| r["code_tokens"] == serde_json::json!(filled)
                    && r["docstring_tokens"] == item["nl_tokens"]),
            "{idx}"
        );
    }
    // maxmin masks max or min only.
    let mm = dir.path().join("mm");
    pt!(
        "eval",
        "cloze",
        "make",
        samples(),
        "--kind",
        "maxmin",
        "--partition",
        "all",
        "--out",
        &mm
    )
    .ok();
    assert!(read_text(&mm.join("answers.txt"))
        .lines()
        .all(|l| l.ends_with("<CODESPLIT>max") || l.ends_with("<CODESPLIT>min")));
    assert_eq!(read_text(&mm.join("cloze_test_words.txt")), "max\nmin");
}

#[test]
fn a_cloze_mask_past_the_models_length_is_a_miss_not_a_failure() {
    // The shipped model reads 128 positions; one test record of the sample corpus has its
    // first candidate word further in.
    let dir = tempfile::tempdir().unwrap();
    let set = dir.path().join("set");
    pt!(
        "eval",
        "cloze",
        "make",
        samples(),
        "--kind",
        "all",
        "--out",
        &set
    )
    .ok();
    let model = root().join("data-samples/models/pytorrent-small-mlm");
    let o = pt!(
        "eval",
        "cloze",
        "--model",
        &model,
        set.join("clozeTest.json"),
        "--json"
    )
    .ok();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let cut = v["masks_cut"].as_array().unwrap();
    assert!(!cut.is_empty(), "the fixture needs a cut mask: {v}");
    assert!(stderr(&o).contains("a miss when scored"), "{}", stderr(&o));
    // Accuracy is over every answer, the cut ones counted wrong.
    let answers = read_text(&set.join("answers.txt")).lines().count();
    let correct = v["correct"].as_u64().unwrap() as usize;
    assert_eq!(v["items"], answers);
    let acc = v["accuracy"].as_f64().unwrap();
    assert!((acc - correct as f64 / answers as f64).abs() < 1e-12);
    let per_word_total: u64 = v["per_word"]
        .as_object()
        .unwrap()
        .values()
        .map(|x| x[1].as_u64().unwrap())
        .sum();
    assert_eq!(per_word_total as usize, answers);
    // The folder `make` wrote stands for its clozeTest.json.
    let o = pt!("eval", "cloze", "--model", &model, &set, "--json").ok();
    let w: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((&w["correct"], &w["items"]), (&v["correct"], &v["items"]));
}

#[test]
fn retrieval_reads_pairs_from_two_named_fields_and_one_partition_rule() {
    let dir = tempfile::tempdir().unwrap();
    // {docstring, code} records with no partition: what a user's own pairs look like.
    let data = dir.path().join("pairs.jsonl");
    let lines: Vec<String> = sample_lines()
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            serde_json::json!({"docstring": v["docstring"], "code": v["code"]}).to_string()
        })
        .take(40)
        .collect();
    std::fs::write(&data, lines.join("\n")).unwrap();
    let base =
        |extra: &[&str]| pt!("eval", "retrieval", &data, "--protocol", "pool", "-q").args(extra);
    // Without a partition rule, the test partition is empty, and the error says why.
    let o = base(&["--query-field", "docstring", "--code-field", "code"]).fails_with(1);
    assert_stderr_has(&o, "40 records have no partition");
    assert_stderr_has(&o, "--default-partition");
    let v = base(&[
        "--query-field",
        "docstring",
        "--code-field",
        "code",
        "--default-partition",
        "test",
    ])
    .json();
    assert_eq!(v["pytorrent"]["queries"], 40);
    // No model: BM25 is the system, and it finds most answers of 40.
    assert_eq!(v["pytorrent"]["system"], "bm25");
    assert!(v["pytorrent"]["scores"]["mrr"].as_f64().unwrap() > 0.3);
    // One field alone is a usage error; PyTorrent records need neither flag.
    base(&["--query-field", "docstring"]).fails_with(2);
}
