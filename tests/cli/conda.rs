//! `pytorrent fetch` from conda channels served on loopback: repodata of two subdirs, channel
//! priority, `--as-of`, `.condarc`, digests, the Anaconda metadata layout, and `extract` over
//! what came down.

use std::fs;
use std::io::Write;

use crate::fetch::{ok, serve, sha, Answer};
use crate::util::{assert_stderr_has, stderr};

const SOURCE: &[u8] = b"def greet(name):\n    \"\"\"Return a friendly greeting for name.\"\"\"\n    text = 'hello ' + name\n    text = text.strip()\n    return text\n";

fn tar_of(path: &str, body: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_path(path).unwrap();
    h.set_size(body.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append(&h, body).unwrap();
    b.into_inner().unwrap()
}

/// A `.tar.bz2` conda package holding one module.
pub(crate) fn tar_bz2(module: &str) -> Vec<u8> {
    let tar = tar_of(&format!("site-packages/{module}.py"), SOURCE);
    let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    e.write_all(&tar).unwrap();
    e.finish().unwrap()
}

/// A `.conda` package: a zip of `metadata.json`, `info-*.tar.zst` and `pkg-*.tar.zst`.
fn dot_conda(stem: &str, module: &str) -> Vec<u8> {
    use zip::write::SimpleFileOptions;
    let inner = zstd::encode_all(
        &tar_of(&format!("site-packages/{module}.py"), SOURCE)[..],
        3,
    )
    .unwrap();
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let o = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    z.start_file("metadata.json", o).unwrap();
    z.write_all(b"{\"conda_pkg_format_version\": 2}").unwrap();
    z.start_file(format!("info-{stem}.tar.zst"), o).unwrap();
    z.write_all(&zstd::encode_all(&tar_of("info/index.json", b"{}")[..], 3).unwrap())
        .unwrap();
    z.start_file(format!("pkg-{stem}.tar.zst"), o).unwrap();
    z.write_all(&inner).unwrap();
    z.finish().unwrap().into_inner()
}

/// One repodata entry: file name, name, version, build, timestamp (ms), depends, bytes.
pub(crate) type Pkg<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    u64,
    &'a [&'a str],
    Vec<u8>,
);

/// Routes of one channel under `/<channel>/`: repodata per subdir, files, channeldata.
pub(crate) fn channel(
    name: &str,
    subdirs: &[(&str, Vec<Pkg>)],
    described: bool,
) -> Vec<(String, Answer)> {
    let mut routes = Vec::new();
    for (sd, pkgs) in subdirs {
        let (mut bz2, mut conda) = (serde_json::Map::new(), serde_json::Map::new());
        for (file, n, v, build, ts, deps, bytes) in pkgs {
            // `broken` is listed with a digest its bytes do not have.
            let digest = if *n == "broken" {
                sha(b"something else")
            } else {
                sha(bytes)
            };
            let entry = serde_json::json!({"name": n, "version": v, "build": build,
                "build_number": 0, "depends": deps, "license": "MIT", "sha256": digest,
                "md5": "00", "size": bytes.len(), "timestamp": ts, "subdir": sd});
            if file.ends_with(".conda") {
                conda.insert(file.to_string(), entry);
            } else {
                bz2.insert(file.to_string(), entry);
            }
            routes.push((format!("/{name}/{sd}/{file}"), ok(bytes.clone())));
        }
        let repodata = serde_json::json!({"info": {"subdir": sd}, "packages": bz2,
            "packages.conda": conda, "repodata_version": 1});
        routes.push((
            format!("/{name}/{sd}/repodata.json"),
            ok(repodata.to_string()),
        ));
    }
    if described {
        let cd = serde_json::json!({"channeldata_version": 1, "packages": {"greeter": {
            "summary": "Friendly greetings.", "home": "https://greeter.invalid",
            "license": "MIT"}}});
        routes.push((format!("/{name}/channeldata.json"), ok(cd.to_string())));
    }
    routes
}

// 2019-06-01, 2020-01-15 and 2022-03-01, in milliseconds.
const T2019: u64 = 1_559_347_200_000;
const T2020: u64 = 1_579_046_400_000;
const T2022: u64 = 1_646_092_800_000;

/// Two channels: `main` (greeter 1.0 and 2.0 in noarch, 1.5 in linux-64, a C library, a
/// package whose digest is wrong) and `extra` (greeter 9.0, which `main`'s priority hides).
fn channels() -> (String, crate::fetch::Log) {
    let py: &[&str] = &["python >=3.6"];
    let mut routes = channel(
        "main",
        &[
            (
                "noarch",
                vec![
                    (
                        "greeter-1.0-py_0.tar.bz2",
                        "greeter",
                        "1.0",
                        "py_0",
                        T2019,
                        py,
                        tar_bz2("greeter"),
                    ),
                    (
                        "greeter-2.0-pyhd_0.conda",
                        "greeter",
                        "2.0",
                        "pyhd_0",
                        T2022,
                        py,
                        dot_conda("greeter-2.0-pyhd_0", "greeter"),
                    ),
                    (
                        "broken-1.0-py_0.tar.bz2",
                        "broken",
                        "1.0",
                        "py_0",
                        T2019,
                        py,
                        tar_bz2("broken"),
                    ),
                ],
            ),
            (
                "linux-64",
                vec![
                    (
                        "greeter-1.5-py38_0.tar.bz2",
                        "greeter",
                        "1.5",
                        "py38_0",
                        T2020,
                        &["python >=3.8,<3.9.0a0", "libc"][..],
                        tar_bz2("greeter"),
                    ),
                    (
                        "libfoo-1.0-0.tar.bz2",
                        "libfoo",
                        "1.0",
                        "0",
                        T2020,
                        &["libc"][..],
                        b"not python".to_vec(),
                    ),
                ],
            ),
        ],
        true,
    );
    routes.extend(channel(
        "extra",
        &[(
            "noarch",
            vec![(
                "greeter-9.0-py_0.tar.bz2",
                "greeter",
                "9.0",
                "py_0",
                T2022,
                py,
                tar_bz2("greeter"),
            )],
        )],
        false,
    ));
    let (url, log) = serve(routes);
    (url.trim_end_matches("/simple").to_string(), log)
}

fn fetch(
    args: &[&str],
    out: &std::path::Path,
    home: &std::path::Path,
) -> (i32, serde_json::Value, String) {
    let o = pt!(
        "fetch",
        "--out",
        out,
        "--json",
        "-q",
        "--retries",
        "0",
        "--subdir",
        "noarch",
        "--subdir",
        "linux-64"
    )
    .args(args)
    .env("HOME", home)
    .env("CONDARC", home.join("condarc.yml"))
    .env("CONDA_PREFIX", "")
    .env("XDG_CONFIG_HOME", home)
    .run();
    let v = serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
    (crate::util::code(&o), v, stderr(&o))
}

#[test]
fn conda_channels_give_archives_metadata_and_a_corpus() {
    let (base, log) = channels();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let out = dir.path().join("dl");
    let (main, extra) = (format!("{base}/main"), format!("{base}/extra"));

    // The first channel that has a package wins; in it, the highest version of any subdir.
    let (code, v, err) = fetch(
        &["--channel", &main, "--channel", &extra, "greeter", "broken"],
        &out,
        home,
    );
    assert_eq!(code, 1, "broken's digest is wrong: {err}");
    assert_eq!(v["downloaded"], 1, "{v}");
    assert_eq!(v["channels"], serde_json::json!([main, extra]));
    let failed = v["failed"]["digest_mismatch"].as_array().unwrap();
    assert!(
        failed[0]
            .as_str()
            .unwrap()
            .starts_with("broken: broken-1.0-py_0.tar.bz2: sha256"),
        "{failed:?}"
    );
    let mut got: Vec<String> = fs::read_dir(out.join("packages"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    got.sort();
    assert_eq!(
        got,
        ["greeter-2.0-pyhd_0.conda"],
        "nothing of broken is kept, not even a temporary file"
    );
    assert!(!out
        .join("Package_Metadata/anaconda_packages/broken.json")
        .exists());

    // The metadata document is in PyTorrent's Anaconda layout and loads as such.
    let doc_path = out.join("Package_Metadata/anaconda_packages/greeter.json");
    let doc: serde_json::Value = serde_json::from_slice(&fs::read(&doc_path).unwrap()).unwrap();
    assert_eq!(doc["title"], "greeter");
    assert_eq!(doc["summary"], "Friendly greetings.");
    assert_eq!(doc["detail"]["meta"]["license"], "MIT");
    assert_eq!(doc["detail"]["meta"]["home"], "https://greeter.invalid");
    assert_eq!(
        doc["detail"]["platform_versions"],
        serde_json::json!([["linux-64", "v1.5"], ["noarch", "v2.0"]])
    );
    assert_eq!(doc["detail"]["files"].as_array().unwrap().len(), 3);
    assert_eq!(doc["updated"], "2022-03-01");
    assert_eq!(doc["conda"]["filename"], "greeter-2.0-pyhd_0.conda");

    // extract reads the .conda archive and joins the metadata: name, licence.
    let corpus = dir.path().join("corpus");
    let o = pt!(
        "extract",
        out.join("packages"),
        "--metadata",
        out.join("Package_Metadata"),
        "--out",
        &corpus,
        "--json",
        "-q"
    )
    .ok();
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["functions"], 1, "{s}");
    let stats = pt!(
        "corpus",
        "stats",
        &corpus,
        "--metadata",
        out.join("Package_Metadata"),
        "--json",
        "-q"
    )
    .ok();
    let st: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(
        st["licenses"]["packages_by_license"]["MIT"],
        serde_json::json!(["greeter"]),
        "{}",
        st["licenses"]
    );

    // A second run keeps the repodata and the archive: nothing but nothing is downloaded.
    let before = log.lock().unwrap().len();
    let (code, v, err) = fetch(&["--channel", &main, "greeter"], &out, home);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["already_present"], 1);
    assert_eq!(
        log.lock().unwrap().len(),
        before,
        "{:?}",
        &log.lock().unwrap()[before..]
    );

    // --as-of: the newest file uploaded by then, whichever subdir.
    let old = dir.path().join("old");
    let (code, v, err) = fetch(
        &["--channel", &main, "--as-of", "2020-12-31", "greeter"],
        &old,
        home,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["downloaded"], 1);
    assert!(old.join("packages/greeter-1.5-py38_0.tar.bz2").is_file());
    let (_, v, _) = fetch(
        &["--channel", &main, "--as-of", "2018-01-01", "greeter"],
        &old,
        home,
    );
    assert_eq!(v["not_yet_released"], serde_json::json!(["greeter"]));
}

#[test]
fn condarc_channels_and_all_python_packages() {
    let (base, _) = channels();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let out = dir.path().join("dl");
    // A bare name without channel_alias is refused: no host is ever assumed.
    fs::write(home.join("condarc.yml"), "channels:\n  - main\n").unwrap();
    let (code, _, err) = fetch(&["--conda", "--all"], &out, home);
    assert_eq!(code, 2);
    assert!(
        err.contains("channel \"main\" is a name, not a URL"),
        "{err}"
    );
    fs::write(home.join("condarc.yml"), "channels:\n  - defaults\n").unwrap();
    let (code, _, err) = fetch(&["--conda", "--all"], &out, home);
    assert_eq!(code, 2);
    assert!(err.contains("default_channels"), "{err}");

    // Names resolve through channel_alias; --all takes the Python packages only.
    fs::write(
        home.join("condarc.yml"),
        format!("channels:\n  - main\nchannel_alias: {base}\n"),
    )
    .unwrap();
    let (code, v, err) = fetch(&["--conda", "--all"], &out, home);
    assert_eq!(code, 1, "{err}");
    assert_eq!(v["listed"], 2, "greeter and broken, not libfoo: {v}");
    assert_eq!(v["downloaded"], 1);
    assert_eq!(v["channels"], serde_json::json!([format!("{base}/main")]));

    // A URL that is not a channel is named.
    let o = pt!(
        "fetch",
        "--channel",
        format!("{base}/nothing"),
        "--subdir",
        "noarch",
        "x",
        "--out",
        &out,
        "--retries",
        "0"
    )
    .env("HOME", home)
    .run();
    assert_eq!(crate::util::code(&o), 1);
    assert_stderr_has(
        &o,
        &format!("{base}/nothing: no repodata.json for any of noarch"),
    );
}
