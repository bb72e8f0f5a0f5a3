//! Records the git commit the binary is built from, for `pytorrent --version` and for the
//! pipeline's fingerprints. Builds outside a git checkout (a source archive) take
//! `PYTORRENT_GIT_COMMIT` from the environment, else say `unknown`.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=PYTORRENT_GIT_COMMIT");
    let commit = std::env::var("PYTORRENT_GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=PYTORRENT_GIT_COMMIT={commit}");
    // Re-run when HEAD moves; only paths that exist (a missing one would re-run every build).
    let git = Path::new(".git");
    let mut watched = false;
    if let Ok(head) = std::fs::read_to_string(git.join("HEAD")) {
        println!("cargo:rerun-if-changed=.git/HEAD");
        watched = true;
        if let Some(r) = head.strip_prefix("ref: ") {
            let r = git.join(r.trim());
            if r.exists() {
                println!("cargo:rerun-if-changed={}", r.display());
            }
        }
        if git.join("packed-refs").exists() {
            println!("cargo:rerun-if-changed=.git/packed-refs");
        }
    }
    if !watched {
        println!("cargo:rerun-if-changed=build.rs");
    }
}

fn git_commit() -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()?;
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !s.is_empty()).then_some(s)
}
