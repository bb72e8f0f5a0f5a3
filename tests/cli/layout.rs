//! The shape the project keeps: which crate may depend on which, flags defined with their
//! configs, and a README a newcomer reads in minutes.

use std::fs;

use crate::util::*;

/// The `pytorrent-*` crates a crate's manifest lists as normal dependencies.
fn depends_on(krate: &str) -> Vec<String> {
    let text = fs::read_to_string(root().join(format!("crates/{krate}/Cargo.toml"))).unwrap();
    let manifest: toml::Table = text.parse().unwrap();
    manifest
        .get("dependencies")
        .and_then(|d| d.as_table())
        .map(|d| {
            d.keys()
                .filter(|k| k.starts_with("pytorrent-"))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn light_stages_do_not_link_heavy_ones() {
    // pack reads a checkpoint's length from config.json (pytorrent-hf), without candle;
    // eval's MinHash lives in the corpus crate, not beside the archive reader and fetcher.
    assert!(!depends_on("pack").contains(&"pytorrent-model".into()));
    assert!(!depends_on("eval").contains(&"pytorrent-extract".into()));
    // Fetching and extracting are apart: the HTTP client is fetch's alone.
    assert!(!depends_on("extract").contains(&"pytorrent-fetch".into()));
    let extract = fs::read_to_string(root().join("crates/extract/Cargo.toml")).unwrap();
    assert!(!extract.contains("ureq"), "extract links no HTTP client");
}

#[test]
fn flags_come_from_the_stage_configs() {
    // A subcommand flattens its stage's config; hand-written copies of a config's fields
    // into flags (and back) are the exception.
    let mut copies = 0;
    for entry in fs::read_dir(root().join("crates/cli/src")).unwrap() {
        let text = fs::read_to_string(entry.unwrap().path()).unwrap();
        copies += text.matches("\nimpl From<&").count();
    }
    assert!(copies <= 3, "{copies} Args → Config copies in crates/cli");
}

#[test]
fn the_readme_is_short() {
    let lines = fs::read_to_string(root().join("README.md"))
        .unwrap()
        .lines()
        .count();
    assert!(
        lines <= 250,
        "README.md has {lines} lines; the reference goes to docs/"
    );
}
