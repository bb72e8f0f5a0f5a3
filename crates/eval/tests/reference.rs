//! `eval retrieval` against CodeSearchNet's `compute_ranks` (a NumPy port) and
//! sentence-transformers' `InformationRetrievalEvaluator` on fixed embeddings with many exact
//! ties (tests/fixtures/retrieval, made by scripts/reference/make_retrieval_fixtures.py).

use std::path::PathBuf;

use pytorrent_eval::retrieval::{run, Direction, Protocol, RetrievalConfig};
use serde_json::Value;

fn fixtures() -> PathBuf {
    pytorrent_testkit::fixtures("retrieval")
}

fn reference() -> Value {
    serde_json::from_slice(&std::fs::read(fixtures().join("reference.json")).unwrap()).unwrap()
}

fn close(what: &str, got: f64, want: &Value) {
    let want = want
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: no reference value"));
    assert!((got - want).abs() < 1e-6, "{what}: {got} against {want}");
}

fn check(direction: Direction, protocol: Protocol) {
    let mut cfg = RetrievalConfig::new(Vec::new());
    cfg.query_embeddings = Some(fixtures().join("queries.npy"));
    cfg.candidate_embeddings = Some(fixtures().join("candidates.npy"));
    cfg.direction = direction;
    cfg.protocol = protocol;
    cfg.no_shuffle = true;
    if direction == Direction::CodeToText {
        // Codes ask: the code-side file holds the queries.
        std::mem::swap(&mut cfg.query_embeddings, &mut cfg.candidate_embeddings);
    }
    let report = run(&cfg, &pytorrent_io::Silent).unwrap();
    let r = &reference()[direction.name()][protocol.name()];
    let s = &report.pytorrent.scores;
    let label = format!("{} {}", direction.name(), protocol.name());
    close(&format!("{label} MRR"), s.mrr.unwrap(), &r["mrr"]);
    if protocol == Protocol::Pool {
        close(
            &format!("{label} MRR@1000"),
            s.mrr_at_1000.unwrap(),
            &r["mrr_at_1000"],
        );
    } else {
        assert_eq!(report.pytorrent.batches, Some(2));
        assert_eq!(report.pytorrent.dropped, 100);
    }
    let named = s.ir.named();
    let want = r["ir"].as_object().unwrap();
    assert_eq!(named.len(), want.len(), "{label}: the same metrics");
    for (name, v) in want {
        close(&format!("{label} {name}"), named[name], v);
    }
}

#[test]
fn csn_text_to_code_matches_the_references() {
    check(Direction::TextToCode, Protocol::Csn);
}

#[test]
fn pool_text_to_code_matches_the_references() {
    check(Direction::TextToCode, Protocol::Pool);
}

#[test]
fn csn_code_to_text_matches_the_references() {
    check(Direction::CodeToText, Protocol::Csn);
}

#[test]
fn pool_code_to_text_matches_the_references() {
    check(Direction::CodeToText, Protocol::Pool);
}
