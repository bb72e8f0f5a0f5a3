//! Failures in the middle of a run: a bad input under `fail`, a file-size limit (what a full
//! disk does to a writer), a kill. Whatever stops a run, nothing it leaves passes for a
//! finished output: multi-file outputs stay marked incomplete and readers refuse them, and a
//! tokenizer folder never holds a `tokenizer.json` from a run that did not finish.

use std::fs;
use std::path::Path;

use crate::util::*;

/// Runs the binary with `args` under a file-size limit of `blocks` (of 512 bytes, as `sh`'s
/// `ulimit -f` counts): a full disk as a writer meets it. SIGXFSZ is ignored, so the write
/// that passes the limit fails (EFBIG) as a write to a full disk fails (ENOSPC), instead of
/// killing the process.
fn limited(blocks: u64, args: &[&std::ffi::OsStr]) -> std::process::Output {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {blocks} && exec \"$0\" \"$@\""
        ))
        .arg(env!("CARGO_BIN_EXE_pytorrent"))
        .args(args)
        .output()
        .unwrap()
}

fn chunk_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(chunk_files(&p));
            } else if p.to_string_lossy().ends_with(".jsonl.gz") {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

#[test]
fn a_failed_convert_leaves_no_chunks_and_readers_refuse_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    // The sample corpus, then a bad line: under `fail` the run stops after chunks were done.
    let input = dir.path().join("in");
    fs::create_dir_all(&input).unwrap();
    let text =
        read_text(&samples().join("docstrings/train/train_scenario_docstrings_chk_0.jsonl.gz"));
    fs::write(input.join("a.jsonl"), &text).unwrap();
    fs::write(input.join("b.jsonl"), "{\"repo\": \n").unwrap();
    let out = dir.path().join("out");
    let o = pt!(
        "corpus",
        "convert",
        &input,
        "--layout",
        "pytorrent",
        "--chunk-records",
        "10",
        "--out",
        &out
    )
    .fails_with(1);
    assert_stderr_has(&o, "b.jsonl");
    assert_eq!(
        chunk_files(&out),
        Vec::<String>::new(),
        "chunks done before the error go"
    );
    assert!(out.join(".pytorrent-incomplete").is_file());
    let o = pt!("corpus", "validate", &out).fails_with(1);
    assert_stderr_has(&o, "an incomplete output");
    // Running it again on good input completes the folder.
    fs::remove_file(input.join("b.jsonl")).unwrap();
    pt!(
        "corpus",
        "convert",
        &input,
        "--layout",
        "pytorrent",
        "--chunk-records",
        "10",
        "--out",
        &out
    )
    .ok();
    assert!(!out.join(".pytorrent-incomplete").exists());
    assert!(chunk_files(&out).len() > 1);
    pt!("corpus", "validate", &out, "-q").ok();
}

#[test]
fn a_full_disk_during_extract_leaves_an_output_readers_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("corpus");
    let o = limited(
        16,
        &[
            "extract".as_ref(),
            root().join("data-samples/packages").as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
            "-q".as_ref(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "a 8 KiB file limit stops extract");
    assert_stderr_has(&o, out.to_str().unwrap());
    assert_stderr_has(&o, "File too large");
    assert!(out.join(".pytorrent-incomplete").is_file());
    for reader in [&["corpus", "validate"][..], &["corpus", "stats"]] {
        let o = pt!().args(reader).arg(&out).fails_with(1);
        assert_stderr_has(&o, "an incomplete output");
    }
    // A chunk file given alone is refused too: its folder is an incomplete output.
    if let Some(f) = chunk_files(&out).first() {
        assert_stderr_has(
            &pt!("corpus", "validate", f).fails_with(1),
            "an incomplete output",
        );
    }
}

#[test]
fn a_tokenizer_whose_run_failed_does_not_load() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tok");
    // tokenizer.json is the largest file: the limit stops the run while writing it, last.
    let o = limited(
        40,
        &[
            "tokenizer".as_ref(),
            "train".as_ref(),
            samples().as_os_str(),
            "--vocab-size".as_ref(),
            "1200".as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
            "-q".as_ref(),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert_stderr_has(&o, out.to_str().unwrap());
    assert_stderr_has(&o, "File too large");
    assert!(!out.join("tokenizer.json").exists());
    let o = pt!("tokenizer", "inspect", "--tokenizer", &out).fails_with(1);
    assert_stderr_has(&o, "an incomplete tokenizer folder");
}

#[test]
fn a_parquet_file_the_decoder_panics_on_is_a_named_data_error() {
    // Found by the parquet fuzz target: a negative column offset made the parquet crate
    // assert instead of returning an error.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.parquet");
    fs::copy(
        root().join("fuzz/regressions/parquet/negative-column-offset"),
        &f,
    )
    .unwrap();
    let o = pt!("corpus", "validate", &f).fails_with(1);
    assert_stderr_has(&o, "bad.parquet");
    assert_stderr_has(&o, "not a readable Parquet file");
}

#[test]
fn tokenizer_files_the_tokenizers_crate_panics_on_are_named_load_errors() {
    // Found by the tokenizer_json and vocab_merges fuzz targets.
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("tokenizer.json");
    fs::copy(
        root().join("fuzz/regressions/tokenizer_json/decoder-json-panic"),
        &json,
    )
    .unwrap();
    let o = pt!("tokenizer", "inspect", "--tokenizer", &json).fails_with(1);
    assert_stderr_has(&o, "tokenizer.json");
    assert_stderr_has(&o, "the decoder failed on malformed data");
    // vocab.json, then 0xFF, then merges.txt (as the harness splits them).
    let bytes = fs::read(root().join("fuzz/regressions/vocab_merges/long-merge-panic")).unwrap();
    let cut = bytes.iter().position(|b| *b == 0xff).unwrap();
    let folder = dir.path().join("vm");
    fs::create_dir_all(&folder).unwrap();
    fs::write(folder.join("vocab.json"), &bytes[..cut]).unwrap();
    fs::write(folder.join("merges.txt"), &bytes[cut + 1..]).unwrap();
    // Whether `tokenizers` panics here depends on its hash maps' random order: the folder
    // loads or is refused as malformed, and never crashes the command.
    let o = pt!("tokenizer", "inspect", "--tokenizer", &folder).run();
    match code(&o) {
        0 => {}
        1 => assert_stderr_has(&o, "vm: the decoder failed on malformed data"),
        c => panic!("exit {c}: {}", stderr(&o)),
    }
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
}

/// Copies `from` (a file or folder) to `to`, recursively.
fn copy_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        fs::create_dir_all(to).unwrap();
        for e in fs::read_dir(from).unwrap().flatten() {
            copy_tree(&e.path(), &to.join(e.file_name()));
        }
    } else {
        fs::copy(from, to).unwrap();
    }
}

#[test]
fn a_read_only_output_folder_is_a_named_error_and_nothing_is_written() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    // Root writes through permission bits, so as root the commands run as `nobody`; the
    // binary and inputs are copied where that user can read them.
    let as_root = fs::metadata("/proc/self").map(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid() == 0
    });
    let as_root = as_root.unwrap_or(false);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
    let bin = d.join("pytorrent");
    if fs::hard_link(env!("CARGO_BIN_EXE_pytorrent"), &bin).is_err() {
        fs::copy(env!("CARGO_BIN_EXE_pytorrent"), &bin).unwrap();
    }
    let packages = d.join("packages");
    fs::create_dir_all(&packages).unwrap();
    for f in ["six-1.17.0.tar.gz", "idna-3.10.tar.gz"] {
        copy_tree(
            &root().join("data-samples/packages").join(f),
            &packages.join(f),
        );
    }
    let corpus = d.join("corpus");
    copy_tree(&samples(), &corpus);
    let tok = d.join("tok");
    copy_tree(
        &root().join("data-samples/models/pytorrent-small-mlm"),
        &tok,
    );
    let ro = d.join("ro");
    fs::create_dir_all(&ro).unwrap();
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();

    let run = |args: &[&std::ffi::OsStr]| {
        let mut c = std::process::Command::new(&bin);
        c.args(args).env("HOME", d).current_dir(d);
        if as_root {
            c.uid(65534).gid(65534);
        }
        c.output().unwrap()
    };
    let cases: Vec<(&str, Vec<&std::ffi::OsStr>)> = vec![
        (
            "extract into a new folder",
            vec![
                "extract".as_ref(),
                packages.as_os_str(),
                "--out".as_ref(),
                ro.join("corpus").into_os_string().leak(),
            ],
        ),
        (
            "extract into the read-only folder itself",
            vec![
                "extract".as_ref(),
                packages.as_os_str(),
                "--out".as_ref(),
                ro.as_os_str(),
            ],
        ),
        (
            "corpus convert",
            vec![
                "corpus".as_ref(),
                "convert".as_ref(),
                corpus.as_os_str(),
                "--out".as_ref(),
                ro.join("c.jsonl").into_os_string().leak(),
            ],
        ),
        (
            "tokenizer train",
            vec![
                "tokenizer".as_ref(),
                "train".as_ref(),
                corpus.as_os_str(),
                "--vocab-size".as_ref(),
                "600".as_ref(),
                "--out".as_ref(),
                ro.join("tok").into_os_string().leak(),
            ],
        ),
        (
            "pack",
            vec![
                "pack".as_ref(),
                corpus.as_os_str(),
                "--tokenizer".as_ref(),
                tok.as_os_str(),
                "--out".as_ref(),
                ro.join("shards").into_os_string().leak(),
            ],
        ),
    ];
    for (what, args) in cases {
        let mut args = args;
        args.push("-q".as_ref());
        let o = run(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{what}: exit 1\n{err}");
        assert!(
            err.contains(ro.to_str().unwrap()) && err.contains("ermission denied"),
            "{what}: the error names the folder and the cause\n{err}"
        );
        assert!(!err.contains("panicked"), "{what}\n{err}");
        assert_eq!(
            fs::read_dir(&ro).unwrap().count(),
            0,
            "{what}: nothing written"
        );
    }
}

/// `path` cut to half its length.
fn truncate_half(path: &Path) {
    let b = fs::read(path).unwrap();
    fs::write(path, &b[..b.len() / 2]).unwrap();
}

/// Runs `cmd`, which must fail with exit 1 naming `file` and not panicking.
fn names_it(cmd: Cmd, file: &str, what: &str) {
    let o = cmd.fails_with(1);
    let err = stderr(&o);
    assert!(err.contains(file), "{what}: the error names {file}\n{err}");
    assert!(!err.contains("panicked"), "{what}\n{err}");
}

#[test]
fn truncated_checkpoints_shards_manifests_and_parquet_files_are_named_data_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let shipped = root().join("data-samples/models/pytorrent-small-mlm");

    // A checkpoint cut short, and one whose header is garbage.
    for (name, damage) in [
        ("cut", truncate_half as fn(&Path)),
        ("garbled", |p: &Path| {
            let mut b = fs::read(p).unwrap();
            b[8..40].fill(b'#');
            fs::write(p, b).unwrap();
        }),
    ] {
        let m = d.join(format!("model-{name}"));
        copy_tree(&shipped, &m);
        damage(&m.join("model.safetensors"));
        let vectors = d.join(format!("{name}.npy"));
        for args in [
            &["fill-mask", "def f(x): <mask> x"][..],
            &[
                "embed",
                "def f(x): return x",
                "--out",
                vectors.to_str().unwrap(),
            ],
        ] {
            names_it(
                pt!().args(args).arg("--model").arg(&m),
                "model.safetensors",
                &format!("{name} checkpoint, {}", args[0]),
            );
        }
    }

    // Shards: one cut short, then a manifest cut short; verify and pretrain both name them.
    let shards = d.join("shards");
    pack(shipped.to_str().unwrap(), &shards)
        .args(["--seq-len", "32", "--shard-rows", "50"])
        .ok();
    let tiny = root().join("configs/models/tiny.toml");
    let pretrain = |out: &str| {
        pt!(
            "pretrain",
            &shards,
            "--out",
            d.join(out),
            "--model-config",
            &tiny,
            "--max-steps",
            "1",
            "--batch-size",
            "2",
            "-q"
        )
    };
    let shard = shards.join("train/shard-00001.npy");
    let whole = fs::read(&shard).unwrap();
    truncate_half(&shard);
    names_it(
        pt!("shards", "verify", &shards),
        "shard-00001.npy",
        "verify, cut shard",
    );
    names_it(pretrain("p1"), "shard-00001.npy", "pretrain, cut shard");
    fs::write(&shard, whole).unwrap();
    pt!("shards", "verify", &shards).ok();
    let manifest = shards.join("train/manifest.json");
    truncate_half(&manifest);
    names_it(
        pt!("shards", "verify", &shards),
        "manifest.json",
        "verify, cut manifest",
    );
    names_it(pretrain("p2"), "manifest.json", "pretrain, cut manifest");

    // A Parquet file cut short: every reader names it.
    let pq = d.join("cut.parquet");
    fs::copy(
        root().join("tests/fixtures/parquet/pytorrent-test.parquet"),
        &pq,
    )
    .unwrap();
    truncate_half(&pq);
    names_it(pt!("corpus", "validate", &pq), "cut.parquet", "validate");
    names_it(pt!("corpus", "stats", &pq), "cut.parquet", "stats");
    names_it(
        pt!(
            "pack",
            &pq,
            "--tokenizer",
            &shipped,
            "--out",
            d.join("pq-shards"),
            "-q"
        ),
        "cut.parquet",
        "pack",
    );
    assert!(!d.join("pq-shards/train/manifest.json").exists());
    assert!(!d.join("cut.npy").exists() && !d.join("garbled.npy").exists());
}
