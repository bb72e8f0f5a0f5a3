//! `scripts/gpu/device-check.sh --dry-run`: the script a lent GPU machine runs, run here on
//! the CPU with its smallest sizes, so that it works before the few minutes it exists for.

#[test]
fn the_device_check_script_runs_every_step_on_the_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("check");
    let o = std::process::Command::new(crate::util::root().join("scripts/gpu/device-check.sh"))
        .args([
            "--dry-run",
            "--bin",
            env!("CARGO_BIN_EXE_pytorrent"),
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let results: Vec<serde_json::Value> = std::fs::read_to_string(out.join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let status = |prefix: &str| -> Vec<String> {
        results
            .iter()
            .filter(|r| r["check"].as_str().unwrap().starts_with(prefix))
            .map(|r| r["status"].as_str().unwrap().to_string())
            .collect()
    };
    // Each of the four parts ran: parity passed, the measurements were made.
    // (Where torch is installed, the comparisons with transformers add rows.)
    let fill = status("parity fill-mask");
    let embed = status("parity embed");
    assert!(
        !fill.is_empty() && fill.iter().all(|s| s == "PASS"),
        "{text}"
    );
    assert!(
        embed.len() >= 2 && embed.iter().all(|s| s == "PASS"),
        "{text}"
    );
    assert_eq!(status("embed throughput"), ["INFO"], "{text}");
    assert_eq!(status("pretrain"), ["INFO"], "{text}");
    assert_eq!(status("cores extract").len(), 2, "{text}");
    assert_eq!(status("cores encode").len(), 2, "{text}");
    assert!(results.iter().all(|r| r["status"] != "FAIL"), "{text}");
    // The table comes last.
    assert!(text.trim_end().ends_with("0 failed"), "{text}");
}
