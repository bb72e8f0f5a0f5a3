//! The trust boundary: what an index, a channel, a pipeline file or a data file says never
//! writes outside its place, never deletes what the command did not make, and never makes
//! the process allocate or download without bound. Each test is a hostile input that did one
//! of these before.

use std::fs;

use crate::fetch::{fetch_json, ok, serve, sha, Answer};
use crate::fetch_faults::{serve_raw, Reply};
use crate::util::tree;

/// A PyPI JSON document of release 1.0 with one sdist, `size` given or not.
fn sized_doc(name: &str, file: &str, body: &[u8], size: Option<u64>) -> Vec<u8> {
    let mut f = serde_json::json!({"filename": file, "url": format!("/files/{file}"),
        "packagetype": "sdist", "upload_time_iso_8601": "2020-01-01T00:00:00Z",
        "digests": {"sha256": sha(body)}});
    if let Some(n) = size {
        f["size"] = n.into();
    }
    serde_json::json!({"info": {"name": name, "version": "1.0", "license": "MIT",
        "classifiers": []}, "releases": {"1.0": [f]}})
    .to_string()
    .into_bytes()
}

/// A folder outside every test's temporary folder whose path normalises to itself as a
/// package name would (lowercase letters and digits only), so that a fetch that joined an
/// index's absolute "name" would write there.
struct Outside(std::path::PathBuf);

impl Outside {
    fn new(tag: &str) -> Outside {
        let p = std::env::temp_dir().join(format!("pytorrenttrust{tag}{}", std::process::id()));
        fs::create_dir_all(&p).unwrap();
        Outside(p)
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn names_an_index_lists_never_leave_the_output_folder() {
    let outside = Outside::new("fetch");
    let victim = outside.0.join("victim");
    let victim_str = victim.to_str().unwrap().to_string();
    // A user's file where the hostile name points; kept metadata must not be read from it
    // either.
    fs::write(outside.0.join("victim.json"), b"the user's own file").unwrap();
    let hostile = [victim_str.as_str(), "../../escape", "a/b", "tab\there", ""];
    let mut projects: Vec<serde_json::Value> = hostile
        .iter()
        .map(|n| serde_json::json!({ "name": n }))
        .collect();
    projects.push(serde_json::json!({"name": "good"}));
    projects.push(serde_json::json!({"name": "liar"}));
    let body = b"good archive".to_vec();
    let liar_body = b"liar archive".to_vec();
    let mut routes = vec![(
        "/simple/".to_string(),
        Answer {
            headers: vec![(
                "Content-Type",
                "application/vnd.pypi.simple.v1+json".to_string(),
            )],
            ..ok(serde_json::json!({ "projects": projects }).to_string())
        },
    )];
    // The index answers for the hostile names too, as a hostile index would.
    for n in [
        victim_str.to_lowercase(),
        "--/--/escape".into(),
        "a/b".into(),
    ] {
        routes.push((
            format!("/pypi/{n}/json"),
            ok(sized_doc("x", "x-1.0.tar.gz", &body, None)),
        ));
    }
    routes.push((
        "/pypi/good/json".into(),
        ok(sized_doc("good", "good-1.0.tar.gz", &body, None)),
    ));
    routes.push(("/files/good-1.0.tar.gz".into(), ok(body.clone())));
    // A document that describes another package than the one asked for.
    routes.push((
        "/pypi/liar/json".into(),
        ok(sized_doc("good", "liar-1.0.tar.gz", &liar_body, None)),
    ));
    routes.push(("/files/liar-1.0.tar.gz".into(), ok(liar_body)));
    routes.push(("/files/x-1.0.tar.gz".into(), ok(body.clone())));
    let (idx, log) = serve(routes);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dl");
    let (code, v) = fetch_json(&idx, &["--all", "--refresh-metadata"], &out);
    assert_eq!(code, 1, "the lying document is a failed package: {v}");
    assert_eq!(
        fs::read(outside.0.join("victim.json")).unwrap(),
        b"the user's own file",
        "nothing written outside --out"
    );
    assert_eq!(tree(&outside.0), ["victim.json"]);
    let mut refused: Vec<String> = v["refused_names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    refused.sort();
    let mut want: Vec<String> = hostile.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(refused, want, "each refused name is reported: {v}");
    assert_eq!(v["downloaded"], 1, "{v}");
    let liar = v["failed"]["bad_metadata"][0].as_str().unwrap();
    assert!(
        liar.starts_with("liar: ") && liar.contains("describes \"good\""),
        "{liar}"
    );
    assert_eq!(
        tree(&out),
        [
            ".fetch-task-0.lock",
            "Package_Metadata/pypi_packages/good.json",
            "packages/good-1.0.tar.gz",
        ]
    );
    // No request was made for a refused name.
    assert!(
        log.lock()
            .unwrap()
            .iter()
            .all(|p| !p.contains("escape") && !p.contains("victim") && !p.contains("a/b")),
        "{:?}",
        log.lock().unwrap()
    );

    // The same check as names typed on the command line.
    let o = pt!("fetch", &victim_str, "--out", &out, "--index-url", &idx).fails_with(2);
    crate::util::assert_stderr_has(&o, "give a package name");
}

#[test]
fn what_a_server_sends_is_bounded_in_memory_and_on_disk() {
    let small = b"an archive of a few bytes".to_vec();
    let routes = vec![
        // A metadata document that never ends.
        ("/pypi/endless/json".to_string(), vec![Reply::Endless(None)]),
        // An archive announced as 10 GiB, and sent until the client gives up.
        (
            "/pypi/huge/json".into(),
            vec![Reply::Ok(sized_doc(
                "huge",
                "huge-1.0.tar.gz",
                &small,
                None,
            ))],
        ),
        (
            "/files/huge-1.0.tar.gz".into(),
            vec![Reply::Endless(Some(10 << 30))],
        ),
        // An archive whose metadata says 25 bytes, sent without a length and without end.
        (
            "/pypi/sized/json".into(),
            vec![Reply::Ok(sized_doc(
                "sized",
                "sized-1.0.tar.gz",
                &small,
                Some(small.len() as u64),
            ))],
        ),
        ("/files/sized-1.0.tar.gz".into(), vec![Reply::Endless(None)]),
        // Metadata that gives a size beyond --max-archive-bytes: not even asked for.
        (
            "/pypi/claims/json".into(),
            vec![Reply::Ok(sized_doc(
                "claims",
                "claims-1.0.tar.gz",
                &small,
                Some(50 << 30),
            ))],
        ),
        // And one that is fine.
        (
            "/pypi/fine/json".into(),
            vec![Reply::Ok(sized_doc(
                "fine",
                "fine-1.0.tar.gz",
                &small,
                Some(small.len() as u64),
            ))],
        ),
        (
            "/files/fine-1.0.tar.gz".into(),
            vec![Reply::Ok(small.clone())],
        ),
        // A project listing without end.
        ("/simple/".into(), vec![Reply::Endless(None)]),
    ];
    let (idx, log) = serve_raw(routes);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dl");
    let started = std::time::Instant::now();
    let o = pt!(
        "fetch",
        "endless",
        "huge",
        "sized",
        "claims",
        "fine",
        "--out",
        &out,
        "--index-url",
        &idx,
        "--max-metadata-bytes",
        "1M",
        "--max-archive-bytes",
        "8M",
        "--retries",
        "2",
        "--json",
        "-q"
    )
    .fails_with(1);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "refused as the limits are reached, not at the timeout"
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["downloaded"], 1, "{v}");
    let too_large: Vec<&str> = v["failed"]["too_large"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert_eq!(too_large.len(), 4, "{too_large:?}");
    for (pkg, says) in [
        ("endless", "--max-metadata-bytes"),
        ("huge", "announces 10737418240 bytes"),
        ("sized", "more than the 25 bytes allowed"),
        ("claims", "more than --max-archive-bytes"),
    ] {
        assert!(
            too_large
                .iter()
                .any(|m| m.starts_with(&format!("{pkg}: ")) && m.contains(says)),
            "{pkg}: {too_large:?}"
        );
    }
    // Nothing but the good archive on disk, no temporary file; no metadata for the refused.
    assert_eq!(
        tree(&out),
        [
            ".fetch-task-0.lock",
            "Package_Metadata/pypi_packages/fine.json",
            "packages/fine-1.0.tar.gz",
        ]
    );
    // A refusal for size is final: not retried.
    let count = |p: &str| log.lock().unwrap().iter().filter(|x| *x == p).count();
    assert_eq!(count("/pypi/endless/json"), 1);
    assert_eq!(count("/files/huge-1.0.tar.gz"), 1);
    assert_eq!(count("/files/sized-1.0.tar.gz"), 1);
    assert_eq!(count("/files/claims-1.0.tar.gz"), 0);

    // The listing of --all is bounded the same way: a named error, exit 1.
    let o = pt!(
        "fetch",
        "--all",
        "--out",
        dir.path().join("all"),
        "--index-url",
        &idx,
        "--max-metadata-bytes",
        "1M"
    )
    .fails_with(1);
    crate::util::assert_stderr_has(&o, "raise --max-metadata-bytes");
}

#[test]
fn names_a_conda_channel_lists_never_leave_the_output_folder() {
    let outside = Outside::new("conda");
    let victim = outside.0.join("victim").to_str().unwrap().to_string();
    let pkg = |file: &'static str, name: &'static str| -> crate::conda::Pkg<'static> {
        (
            file,
            name,
            "1.0",
            "py_0",
            1_579_046_400_000,
            &["python >=3.6"],
            crate::conda::tar_bz2("greeter"),
        )
    };
    let hostile: &'static str = Box::leak(victim.clone().into_boxed_str());
    let routes = crate::conda::channel(
        "main",
        &[(
            "noarch",
            vec![
                pkg("greeter-1.0-py_0.tar.bz2", "greeter"),
                pkg("victim-1.0-py_0.tar.bz2", hostile),
                pkg("up-1.0-py_0.tar.bz2", "../../up"),
            ],
        )],
        false,
    );
    let (url, _) = serve(routes);
    let main = format!("{}/main", url.trim_end_matches("/simple"));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dl");
    let o = pt!(
        "fetch",
        "--all",
        "--channel",
        &main,
        "--subdir",
        "noarch",
        "--out",
        &out,
        "--json",
        "-q"
    )
    .env("HOME", dir.path())
    .env("CONDARC", dir.path().join("condarc.yml"))
    .ok();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["downloaded"], 1, "{v}");
    assert_eq!(
        v["refused_names"],
        serde_json::json!(["../../up", victim]),
        "{v}"
    );
    assert!(tree(&outside.0).is_empty(), "{:?}", tree(&outside.0));
    assert!(tree(&out)
        .iter()
        .all(|f| !f.contains("victim") && !f.contains("up")));

    // A subdir given on the command line names a folder too.
    let o = pt!(
        "fetch",
        "greeter",
        "--channel",
        &main,
        "--subdir",
        "../x",
        "--out",
        &out
    )
    .env("HOME", dir.path())
    .env("CONDARC", dir.path().join("condarc.yml"))
    .fails_with(2);
    crate::util::assert_stderr_has(&o, "--subdir \"../x\"");
}

/// A pipeline file of one cheap stage (extract of two sample packages), writing to `out`.
fn extract_pipeline(dir: &std::path::Path, out: &str) -> std::path::PathBuf {
    let pkgs = dir.join("packages");
    fs::create_dir_all(&pkgs).unwrap();
    for p in ["six-1.17.0.tar.gz", "idna-3.10.tar.gz"] {
        fs::copy(
            crate::util::root().join("data-samples/packages").join(p),
            pkgs.join(p),
        )
        .unwrap();
    }
    let file = dir.join("pipe.toml");
    fs::write(
        &file,
        format!(
            "[pipeline]\nout = \"{out}\"\n\n[extract]\ninputs = [\"packages\"]\nscenario = \"docstrings\"\n"
        ),
    )
    .unwrap();
    file
}

#[test]
fn run_replaces_only_what_it_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let file = extract_pipeline(dir.path(), "run");
    // An existing folder of the user's, given as the run folder: refused, untouched.
    let theirs = dir.path().join("theirs");
    fs::create_dir_all(theirs.join("corpus")).unwrap();
    fs::write(theirs.join("corpus/thesis.txt"), b"four years of work").unwrap();
    let o = pt!("run", &file, "--out", &theirs).fails_with(2);
    crate::util::assert_stderr_has(&o, "\"corpus\"");
    crate::util::assert_stderr_has(&o, "no `pytorrent run` made it");
    assert_eq!(tree(&theirs), ["corpus/thesis.txt"]);

    // A run folder it made: marked, and run again freely.
    let run = dir.path().join("run");
    pt!("run", &file, "-q").ok();
    assert!(run.join(".pytorrent-run").is_file());
    pt!("run", &file, "-q", "--force").ok();

    // A stage folder this pipeline has no record of writing, in its own run folder (the
    // user put it there, or removed the stamp): refused, not replaced.
    fs::remove_dir_all(run.join("corpus")).unwrap();
    fs::remove_file(run.join("stages/extract.json")).unwrap();
    fs::create_dir_all(run.join("corpus")).unwrap();
    fs::write(run.join("corpus/notes.txt"), b"mine").unwrap();
    let o = pt!("run", &file).fails_with(2);
    crate::util::assert_stderr_has(
        &o,
        "holds files this pipeline did not write (\"notes.txt\")",
    );
    assert_eq!(fs::read(run.join("corpus/notes.txt")).unwrap(), b"mine");

    // An empty folder is fine, and becomes a run folder.
    let empty = dir.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    pt!("run", &file, "--out", &empty, "-q").ok();
    assert!(empty.join(".pytorrent-run").is_file());
}

/// Records of every corpus file under `path` (a file, or a folder), sorted: what a reader gets.
fn records_under(path: &std::path::Path) -> Vec<String> {
    let files = if path.is_dir() {
        tree(path).into_iter().map(|f| path.join(f)).collect()
    } else {
        vec![path.to_path_buf()]
    };
    let mut lines: Vec<String> = files
        .iter()
        .flat_map(|f| {
            crate::util::read_text(f)
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    lines.sort();
    lines
}

/// Records of a sample chunk, with `partition` as written.
fn sample_chunk() -> std::path::PathBuf {
    crate::util::samples().join("docstrings/train/train_scenario_docstrings_chk_0.jsonl.gz")
}

#[test]
fn every_corpus_writer_writes_files_folders_and_standard_output_as_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = sample_chunk();
    let mut want = crate::util::read_text(&input)
        .lines()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    want.sort();
    let folder_in = crate::util::samples();
    let all = crate::util::sample_lines().len();

    // One file out, plain or compressed (the magic bytes match the name), for filter and
    // convert.
    for cmd in [&["corpus", "filter"][..], &["corpus", "convert"][..]] {
        for (name, magic) in [
            ("out.jsonl", &b"{"[..]),
            ("out.jsonl.gz", &[0x1f, 0x8b][..]),
            ("out.jsonl.zst", &[0x28, 0xb5, 0x2f, 0xfd][..]),
        ] {
            let out = d.join(format!("{}-{name}", cmd[1]));
            pt!()
                .args(cmd)
                .arg(&input)
                .arg("--out")
                .arg(&out)
                .arg("-q")
                .ok();
            assert!(out.is_file(), "{cmd:?} {name}: a file");
            assert!(fs::read(&out).unwrap().starts_with(magic), "{cmd:?} {name}");
            assert_eq!(records_under(&out), want, "{cmd:?} {name}");
        }
        // Standard output.
        let o = pt!().args(cmd).arg(&input).args(["--out", "-", "-q"]).ok();
        let mut got: Vec<String> = crate::util::stdout(&o).lines().map(str::to_owned).collect();
        got.sort();
        assert_eq!(got, want, "{cmd:?} to standard output");
    }

    // filter: one file into an existing folder keeps its name; a folder of inputs mirrors.
    let into = d.join("into");
    fs::create_dir_all(&into).unwrap();
    pt!("corpus", "filter", &input, "--out", &into, "-q").ok();
    assert_eq!(tree(&into), ["train_scenario_docstrings_chk_0.jsonl.gz"]);
    let mirror = d.join("mirror");
    pt!("corpus", "filter", &folder_in, "--out", &mirror, "-q").ok();
    assert_eq!(records_under(&mirror).len(), all);
    assert_eq!(tree(&mirror), tree(&folder_in));

    // convert: a chunked layout writes a folder; the flat one refuses a folder.
    let chunked = d.join("chunked");
    pt!(
        "corpus",
        "convert",
        &folder_in,
        "--layout",
        "pytorrent",
        "--out",
        &chunked,
        "-q"
    )
    .ok();
    assert_eq!(records_under(&chunked).len(), all);
    let o = pt!("corpus", "convert", &input, "--out", &into).fails_with(2);
    crate::util::assert_stderr_has(&o, "is a folder");

    // extract and dedup write folders.
    let pkgs = d.join("pkgs");
    fs::create_dir_all(&pkgs).unwrap();
    crate::util::copy_sample("six-1.17.0.tar.gz", &pkgs);
    crate::util::copy_sample("idna-3.10.tar.gz", &pkgs);
    let ex = d.join("ex");
    pt!("extract", &pkgs, "--out", &ex, "-q").ok();
    assert!(!records_under(&ex).is_empty());
    let tasks = d.join("tasks");
    for i in ["0", "1"] {
        pt!(
            "extract",
            &pkgs,
            "--out",
            &tasks,
            "--num-tasks",
            "2",
            "--task-index",
            i,
            "-q"
        )
        .ok();
    }
    let merged = d.join("merged");
    pt!("corpus", "dedup", &tasks, "--out", &merged, "-q").ok();
    assert_eq!(records_under(&merged), records_under(&ex));

    // A folder writer given a file name or standard output: a usage error, and no folder of
    // that name (a directory called out.jsonl was made before).
    let cases: Vec<Vec<std::ffi::OsString>> = vec![
        vec!["corpus".into(), "filter".into(), folder_in.clone().into()],
        vec![
            "corpus".into(),
            "convert".into(),
            input.clone().into(),
            "--layout".into(),
            "pytorrent".into(),
        ],
        vec!["corpus".into(), "dedup".into(), tasks.clone().into()],
        vec!["extract".into(), pkgs.clone().into()],
    ];
    for args in &cases {
        for name in [
            "as-file.jsonl",
            "as-file.jsonl.gz",
            "as-file.jsonl.zst",
            "-",
        ] {
            let out = if name == "-" {
                std::path::PathBuf::from("-")
            } else {
                d.join(name)
            };
            let o = pt!().args(args).arg("--out").arg(&out).fails_with(2);
            let err = crate::util::stderr(&o);
            assert!(err.contains("writes a folder"), "{args:?} {name}: {err}");
            assert!(
                !out.exists() || name == "-",
                "{args:?} {name}: nothing made"
            );
        }
    }
}

#[test]
fn a_command_replaces_only_its_own_earlier_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let folder_in = crate::util::samples();
    // A user's folder (holding a file) is not written into without --force.
    let theirs = d.join("theirs");
    fs::create_dir_all(&theirs).unwrap();
    fs::write(theirs.join("thesis.txt"), b"mine").unwrap();
    for args in [
        vec!["corpus", "convert", "--layout", "pytorrent"],
        vec!["corpus", "filter"],
    ] {
        let o = pt!()
            .args(&args)
            .arg(&folder_in)
            .arg("--out")
            .arg(&theirs)
            .fails_with(2);
        crate::util::assert_stderr_has(
            &o,
            "no pytorrent command made it (it holds \"thesis.txt\")",
        );
    }
    let pkgs = d.join("pkgs");
    fs::create_dir_all(&pkgs).unwrap();
    crate::util::copy_sample("six-1.17.0.tar.gz", &pkgs);
    let o = pt!("extract", &pkgs, "--out", &theirs).fails_with(2);
    crate::util::assert_stderr_has(&o, "--force");
    assert_eq!(tree(&theirs), ["thesis.txt"]);
    // With --force it writes there, removing nothing of theirs.
    pt!("extract", &pkgs, "--out", &theirs, "--force", "-q").ok();
    assert!(theirs.join("thesis.txt").is_file());

    // Another command's output is refused too.
    let converted = d.join("converted");
    pt!(
        "corpus",
        "convert",
        &folder_in,
        "--layout",
        "pytorrent",
        "--out",
        &converted,
        "-q"
    )
    .ok();
    let o = pt!("extract", &pkgs, "--out", &converted).fails_with(2);
    crate::util::assert_stderr_has(&o, "the output of `pytorrent corpus convert`");

    // Its own output is replaced whole: no chunk of the earlier, larger run is left over.
    let out = d.join("chunks");
    pt!(
        "corpus",
        "convert",
        &folder_in,
        "--layout",
        "pytorrent",
        "--chunk-records",
        "3",
        "--out",
        &out,
        "-q"
    )
    .ok();
    let many = tree(&out).len();
    fs::write(out.join("notes.txt"), b"mine").unwrap();
    pt!(
        "corpus",
        "convert",
        &folder_in,
        "--layout",
        "pytorrent",
        "--chunk-records",
        "1000",
        "--out",
        &out,
        "-q"
    )
    .ok();
    let files = tree(&out);
    assert!(files.len() < many, "{files:?}");
    assert!(
        files.contains(&"notes.txt".to_string()),
        "a file it did not make stays"
    );
    assert_eq!(
        records_under(&out).len(),
        crate::util::sample_lines().len() + 1,
        "the records once (and the user's one line)"
    );
    assert_eq!(
        fs::read_to_string(out.join(".pytorrent-output"))
            .unwrap()
            .lines()
            .next(),
        Some("pytorrent corpus convert")
    );
}

/// Runs the binary with `args` under a 1 GiB address-space limit (an allocation past it
/// fails: a command that allocates by what its input says aborts here).
fn under_1gib(args: &[&std::ffi::OsStr]) -> std::process::Output {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -v 1048576 && exec "$@""#)
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_pytorrent"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn a_vocabulary_beyond_the_ids_or_the_texts_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample_chunk();
    let out = dir.path().join("tok");
    let o = pt!(
        "tokenizer",
        "train",
        &input,
        "--out",
        &out,
        "--vocab-size",
        "4294967296"
    )
    .fails_with(2);
    crate::util::assert_stderr_has(&o, "32-bit");
    // Far more than the 0.1 MB of texts can give: refused, in little memory.
    let o = under_1gib(&[
        "tokenizer".as_ref(),
        "train".as_ref(),
        input.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
        "--vocab-size".as_ref(),
        "100000000".as_ref(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("can give at most"));
    assert!(!out.join("tokenizer.json").exists());
    // Up to 65,536 the texts give what they hold, with a warning.
    let o = pt!(
        "tokenizer",
        "train",
        &input,
        "--out",
        &out,
        "--vocab-size",
        "60000"
    )
    .ok();
    crate::util::assert_stderr_has(&o, "fewer than the 60000 asked for");

    // From a pipeline file: the same usage error, no abort.
    let file = extract_pipeline(dir.path(), "run");
    let mut text = fs::read_to_string(&file).unwrap();
    text.push_str("\n[tokenizer]\nvocab_size = 1099511627776\n");
    fs::write(&file, text).unwrap();
    let o = pt!("run", &file).fails_with(2);
    crate::util::assert_stderr_has(&o, "--vocab-size 1099511627776");
}

/// An npy file of `descr` whose header claims `shape` and that holds `data` after it.
fn npy_claiming(path: &std::path::Path, descr: &str, shape: &str, data: &[u8]) {
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let mut body = dict.into_bytes();
    body.resize(117, b' ');
    body.push(b'\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend_from_slice(&(body.len() as u16).to_le_bytes());
    b.extend_from_slice(&body);
    b.extend_from_slice(data);
    fs::write(path, b).unwrap();
}

#[test]
fn npy_headers_are_checked_against_the_file_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let huge = dir.path().join("huge.npy");
    npy_claiming(&huge, "<f4", "(2147483648, 8)", &[]);
    let fine = dir.path().join("fine.npy");
    npy_claiming(&fine, "<f4", "(1, 2)", &[0, 0, 128, 63, 0, 0, 128, 63]);
    let o = under_1gib(&[
        "eval".as_ref(),
        "retrieval".as_ref(),
        "--query-embeddings".as_ref(),
        huge.as_os_str(),
        "--candidate-embeddings".as_ref(),
        fine.as_os_str(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("huge.npy") && err.contains("needs 68719476864"),
        "{err}"
    );
    // A header whose shape overflows, and one with a row too many for its bytes.
    npy_claiming(&huge, "<f4", "(18446744073709551615, 4)", &[]);
    let o = pt!(
        "eval",
        "retrieval",
        "--query-embeddings",
        &huge,
        "--candidate-embeddings",
        &fine
    )
    .fails_with(1);
    crate::util::assert_stderr_has(&o, "more than 2^64");
    npy_claiming(&huge, "<f4", "(2, 2)", &[0; 8]);
    let o = pt!(
        "eval",
        "retrieval",
        "--query-embeddings",
        &huge,
        "--candidate-embeddings",
        &fine
    )
    .fails_with(1);
    crate::util::assert_stderr_has(&o, "truncated or damaged");
}

#[test]
fn pretrain_settings_that_cannot_train_are_refused_by_name_before_a_step() {
    let dir = tempfile::tempdir().unwrap();
    let tok = crate::util::tokenizer(dir.path());
    let shards = dir.path().join("shards");
    crate::util::pack(&tok, &shards)
        .args(["--seq-len", "64"])
        .ok();
    let spec = |extra: &str| {
        let p = dir.path().join("spec.toml");
        fs::write(
            &p,
            format!("layers = 1\nhidden = 32\nheads = 2\nintermediate = 64\nmax_positions = 64\n{extra}"),
        )
        .unwrap();
        p
    };
    let out = dir.path().join("run");
    for (extra, says) in [
        (
            "layer_norm_eps = 0.0\n",
            "layer_norm_eps must be a positive number, not 0",
        ),
        (
            "layer_norm_eps = -1e-5\n",
            "layer_norm_eps must be a positive number",
        ),
        (
            "initializer_range = -0.02\n",
            "initializer_range must be a positive number",
        ),
    ] {
        let o = pt!(
            "pretrain",
            &shards,
            "--out",
            &out,
            "--model-config",
            spec(extra)
        )
        .args(["--max-steps", "2"])
        .fails_with(1);
        crate::util::assert_stderr_has(&o, says);
        assert!(!out.join("model.safetensors").exists());
    }
    let good = spec("");
    for (flag, value, says) in [
        ("--weight-decay", "NaN", "--weight-decay NaN"),
        ("--weight-decay", "-0.1", "--weight-decay -0.1"),
        (
            "--beta1",
            "1",
            "--beta1 1: must be a finite number in [0, 1)",
        ),
        ("--beta2", "1.5", "--beta2 1.5"),
        ("--adam-eps", "0", "--adam-eps 0"),
        ("--max-grad-norm", "-1", "--max-grad-norm -1"),
    ] {
        let o = pt!("pretrain", &shards, "--out", &out, "--model-config", &good)
            .args(["--max-steps", "2", &format!("{flag}={value}")])
            .fails_with(2);
        crate::util::assert_stderr_has(&o, says);
        assert!(
            !out.exists() || crate::util::tree(&out).is_empty(),
            "{flag}"
        );
    }
    // A checkpoint whose config.json says the same, as --init: refused as its data.
    let init = dir.path().join("init");
    pt!(
        "pretrain",
        &shards,
        "--out",
        &init,
        "--model-config",
        &good,
        "--max-steps",
        "1",
        "-q"
    )
    .ok();
    let cfg = init.join("config.json");
    let mut v: serde_json::Value = serde_json::from_slice(&fs::read(&cfg).unwrap()).unwrap();
    v["layer_norm_eps"] = serde_json::json!(0.0);
    fs::write(&cfg, v.to_string()).unwrap();
    let o = pt!(
        "pretrain",
        &shards,
        "--out",
        dir.path().join("again"),
        "--init",
        &init
    )
    .args(["--max-steps", "2"])
    .fails_with(1);
    crate::util::assert_stderr_has(&o, "config.json: layer_norm_eps must be a positive number");
}

#[test]
fn pack_cloze_and_fill_mask_refuse_what_they_would_score_or_write_silently() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tok = crate::util::tokenizer(d);
    // A row length no encoder takes: a usage error, nothing written.
    let shards = d.join("shards");
    let o = crate::util::pack(&tok, &shards)
        .args(["--seq-len", "1000000000000"])
        .fails_with(2);
    crate::util::assert_stderr_has(&o, "--seq-len 1000000000000 is above 1048576");
    assert!(!shards.exists());
    // Longer than every record, the remainder dropped: no row at all is a data error, and no
    // manifest claims a finished output.
    let o = crate::util::pack(&tok, &shards)
        .args(["--seq-len", "1000000"])
        .fails_with(1);
    crate::util::assert_stderr_has(&o, "gave no row of --seq-len 1000000");
    assert!(
        !shards.exists()
            || crate::util::tree(&shards)
                .iter()
                .all(|f| !f.ends_with("manifest.json"))
    );

    // Cloze: an item with two masks, and an answer no candidate word can be.
    let fixture = crate::util::root().join("tests/fixtures/cloze");
    let mut items: serde_json::Value =
        serde_json::from_slice(&fs::read(fixture.join("clozeTest.json")).unwrap()).unwrap();
    let cloze = d.join("cloze");
    fs::create_dir_all(&cloze).unwrap();
    for f in ["cloze_test_words.txt", "answers.txt"] {
        fs::copy(fixture.join(f), cloze.join(f)).unwrap();
    }
    let second = items[1]["idx"].as_str().unwrap().to_string();
    items[1]["pl_tokens"]
        .as_array_mut()
        .unwrap()
        .push("<mask>".into());
    fs::write(cloze.join("clozeTest.json"), items.to_string()).unwrap();
    let model = fixture.join("model");
    let score = || {
        pt!(
            "eval",
            "cloze",
            "--model",
            &model,
            cloze.join("clozeTest.json")
        )
    };
    let o = score().fails_with(1);
    crate::util::assert_stderr_has(
        &o,
        &format!("clozeTest.json: item 2 (idx {second}): 2 <mask> in pl_tokens"),
    );
    fs::copy(fixture.join("clozeTest.json"), cloze.join("clozeTest.json")).unwrap();
    let answers = crate::util::read_text(&fixture.join("answers.txt"));
    let first = answers
        .lines()
        .next()
        .unwrap()
        .split("<CODESPLIT>")
        .next()
        .unwrap();
    fs::write(
        cloze.join("answers.txt"),
        answers.replacen(
            answers.lines().next().unwrap(),
            &format!("{first}<CODESPLIT>not_a_candidate"),
            1,
        ),
    )
    .unwrap();
    let o = score().fails_with(1);
    crate::util::assert_stderr_has(
        &o,
        &format!("answers.txt: idx {first}: the answer \"not_a_candidate\" is not one of"),
    );

    // Fill-mask: a prompt past the model's length names the suite file and the prompt, and
    // quotes only its start.
    let suite = d.join("suite.toml");
    let long = "x = 1\\n".repeat(3000);
    fs::write(
        &suite,
        format!(
            "name = \"long\"\n[[group]]\ncategory = \"c\"\nprompts = [\n  {{ text = \"y = <mask>\", answers = [\"i\"] }},\n  {{ text = \"{long}y = <mask>\", answers = [\"i\"] }},\n]\n"
        ),
    )
    .unwrap();
    let o = pt!(
        "eval",
        "fill-mask",
        "--model",
        crate::util::root().join("tests/fixtures/models/roberta-tied"),
        "--suite",
        &suite
    )
    .fails_with(1);
    let err = crate::util::stderr(&o);
    assert!(
        err.contains("suite.toml: prompt 2 (") && err.contains("0 of its 1 masks"),
        "{err}"
    );
    assert!(err.len() < 1000, "{} bytes of error", err.len());
}
