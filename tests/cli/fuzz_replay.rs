//! The fuzz targets' committed inputs — seeds made from real data, and every input that once
//! made a target fail — replayed through the harness `cargo fuzz` runs (fuzz/harness.rs), as
//! a normal test: CI needs no nightly toolchain to keep fixed crashes fixed.

#[path = "../../fuzz/harness.rs"]
mod harness;

#[test]
fn every_regression_and_seed_input_passes_its_target() {
    let root = crate::util::root().join("fuzz");
    for (name, run) in harness::TARGETS {
        let mut ran = 0;
        for kind in ["regressions", "seeds"] {
            let Ok(rd) = std::fs::read_dir(root.join(kind).join(name)) else {
                continue;
            };
            let mut files: Vec<_> = rd.flatten().map(|e| e.path()).collect();
            files.sort();
            for f in files {
                let data = std::fs::read(&f).unwrap();
                let outcome = std::panic::catch_unwind(|| run(&data));
                assert!(outcome.is_ok(), "{name}: {} fails", f.display());
                ran += 1;
            }
        }
        assert!(ran > 0, "no seeds for {name}");
    }
}
