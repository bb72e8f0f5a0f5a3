//! The extract stage called as a library function, without the binary.

use std::path::PathBuf;

use pytorrent_extract::units::Scenario;
use pytorrent_extract::ExtractConfig;
use pytorrent_io::{Classify, ErrorKind, Silent, Unit};

fn packages() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data-samples/packages")
}

/// Counts what a run reports as it goes.
#[derive(Default)]
struct Counting(std::sync::atomic::AtomicU64);

impl pytorrent_io::Reporter for Counting {
    fn begin(&self, what: &str, unit: Unit, total: Option<u64>) {
        assert_eq!(
            (what, unit, total),
            ("extract", Unit::Items("packages"), Some(2))
        );
    }
    fn advance(&self, n: u64) {
        self.0.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }
}

#[test]
fn two_packages_in_two_scenarios_with_their_summary() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = vec![
        packages().join("six-1.17.0.tar.gz"),
        packages().join("idna-3.10.tar.gz"),
    ];
    let mut cfg = ExtractConfig::new(inputs, dir.path().join("out"));
    cfg.scenario = vec![Scenario::Docstrings, Scenario::Both];
    cfg.stats = true;
    let progress = Counting::default();
    let report = pytorrent_extract::run::run(&cfg, &progress).unwrap();
    assert_eq!(progress.0.into_inner(), 2, "one step a package");
    assert_eq!(report.packages, 2);
    assert!(report.functions > 0 && report.python_files > 0);
    let written: u64 = report.written.iter().map(|w| w.records).sum();
    let counted: u64 = report.records.values().flat_map(|p| p.values()).sum();
    assert_eq!(written, counted);
    assert_eq!(
        report.records.keys().collect::<Vec<_>>(),
        ["both", "docstrings"]
    );
    let stats = report.stats.as_ref().expect("asked for");
    assert_eq!(stats.records, written);
    assert!(report.summary().contains("extracted 2 packages"));
}

#[test]
fn bad_settings_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = ExtractConfig::new(vec![packages()], dir.path().join("o"));
    cfg.near_dup_threshold = 1.5;
    let e = pytorrent_extract::run::run(&cfg, &Silent).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Usage, "{e}");
    let cfg = ExtractConfig::new(
        vec![dir.path().join("missing.tar.gz")],
        dir.path().join("o"),
    );
    let e = pytorrent_extract::run::run(&cfg, &Silent).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Usage);
    assert!(e.to_string().contains("missing.tar.gz"), "{e}");
    assert!("90,20"
        .parse::<pytorrent_extract::package::Split>()
        .is_err());
}
