//! `pytorrent fetch` end to end against a package index served on loopback, then `extract`
//! over what it downloaded.

use std::fs;
use std::io::Write;

use sha2::{Digest, Sha256};

use crate::util::{assert_stderr_has, stdout};

fn sdist() -> Vec<u8> {
    let src = b"def greet(name):\n    \"\"\"Return a friendly greeting for name.\"\"\"\n    text = 'hello ' + name\n    text = text.strip()\n    return text\n";
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_path("greeter-1.0/greeter.py").unwrap();
    h.set_size(src.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append(&h, &src[..]).unwrap();
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(&b.into_inner().unwrap()).unwrap();
    e.finish().unwrap()
}

/// A minimal index: /pypi/<name>/json and /files/<file>; returns its simple-index URL.
fn index() -> String {
    let archive = sdist();
    let digest: String = Sha256::digest(&archive)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let files = serde_json::json!([{"filename": "greeter-1.0.tar.gz", "url": "/files/greeter-1.0.tar.gz",
        "packagetype": "sdist", "digests": {"sha256": digest}}]);
    let doc = serde_json::json!({"info": {"name": "greeter", "version": "1.0", "license": "MIT", "classifiers": []},
        "last_serial": 7, "releases": {"1.0": files.clone()}, "urls": files}).to_string();
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let url = format!("http://{}/simple", server.server_addr().to_ip().unwrap());
    std::thread::spawn(move || {
        for req in server.incoming_requests() {
            let body = match req.url() {
                "/pypi/greeter/json" | "/pypi/optedpkg/json" => Some(doc.clone().into_bytes()),
                "/files/greeter-1.0.tar.gz" => Some(archive.clone()),
                _ => None,
            };
            let resp = match body {
                Some(b) => tiny_http::Response::from_data(b),
                None => tiny_http::Response::from_data(b"no".to_vec()).with_status_code(404),
            };
            let _ = req.respond(resp);
        }
    });
    url
}

#[test]
fn fetch_then_extract_gives_a_valid_corpus() {
    let idx = index();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dl");
    let optout = dir.path().join("optout.txt");
    fs::write(&optout, "optedpkg\n").unwrap();
    let env = [
        ("PYTORRENT_INDEX_URL", idx.as_str()),
        ("PIP_INDEX_URL", "http://index.invalid/simple"),
    ];
    let o = pt!(
        "fetch",
        "Greeter",
        "optedpkg",
        "--out",
        out,
        "--opt-out",
        optout,
        "--json",
        "-q"
    )
    .envs(&env)
    .ok();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["index_source"], "PYTORRENT_INDEX_URL",
        "our variable wins over pip's"
    );
    assert!(
        v["json_api"].as_str().unwrap().ends_with("/pypi"),
        "JSON API derived from /simple"
    );
    assert_eq!(
        (v["downloaded"].as_u64(), v["opted_out"].clone()),
        (Some(1), serde_json::json!(["optedpkg"]))
    );
    assert!(out.join("packages/greeter-1.0.tar.gz").is_file());
    assert!(out
        .join("Package_Metadata/pypi_packages/greeter.json")
        .is_file());

    // Resumed: nothing downloaded again.
    let o = pt!("fetch", "greeter", "--out", out, "--json", "-q")
        .envs(&env)
        .run();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["downloaded"].as_u64(), v["already_present"].as_u64()),
        (Some(0), Some(1))
    );

    // pip's `name==version` names one release; other specifiers are refused as usage.
    let o = pt!("fetch", "greeter==1.0", "--out", out, "--json", "-q")
        .envs(&env)
        .ok();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["already_present"], 1, "{v}");
    let o = pt!("fetch", "greeter==9.9", "--out", out, "--json", "-q")
        .envs(&env)
        .fails_with(1);
    assert!(stdout(&o).contains("9.9"), "{}", stdout(&o));
    for spec in ["greeter>=1", "greeter[extra]", "greeter==1.*"] {
        let o = pt!("fetch", spec, "--out", out).envs(&env).fails_with(2);
        assert_stderr_has(&o, "give a package name, or name==version");
    }

    // A missing package: reported by reason, exit 1; the flag overrides the environment.
    let o = pt!(
        "fetch",
        "nope",
        "--out",
        out,
        "--index-url",
        &idx,
        "--json",
        "-q"
    )
    .env("PYTORRENT_INDEX_URL", "http://index.invalid/simple")
    .fails_with(1);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["index_source"], "--index-url");
    assert!(v["failed"]["not_found"][0]
        .as_str()
        .unwrap()
        .starts_with("nope:"));

    let corpus = dir.path().join("corpus");
    let o = pt!(
        "extract",
        out.join("packages"),
        "--out",
        corpus,
        "--json",
        "-q"
    )
    .ok();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["packages"], 1);
    let o = pt!("corpus", "validate", corpus, "--json", "-q").ok();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["summary"]["records"], 1);
}

/// One answer of the loopback index: status, body, headers; `times` answers of this kind
/// before the next route for the same path takes over (0: for ever).
pub(crate) struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
    pub times: usize,
}

pub(crate) fn ok(body: impl Into<Vec<u8>>) -> Answer {
    Answer {
        status: 200,
        body: body.into(),
        headers: Vec::new(),
        times: 0,
    }
}

pub(crate) type Log = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// A loopback index answering each path from `routes` (in order, for the `times` given);
/// every request path is logged. Returns the simple-index URL and the log.
pub(crate) fn serve(mut routes: Vec<(String, Answer)>) -> (String, Log) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let url = format!("http://{}/simple", server.server_addr().to_ip().unwrap());
    let log: Log = Default::default();
    let seen = log.clone();
    std::thread::spawn(move || {
        for req in server.incoming_requests() {
            let path = req.url().to_string();
            seen.lock().unwrap().push(path.clone());
            let i = routes.iter().position(|(p, _)| *p == path);
            let resp = match i {
                Some(i) => {
                    let a = &mut routes[i].1;
                    let mut r =
                        tiny_http::Response::from_data(a.body.clone()).with_status_code(a.status);
                    for (k, v) in &a.headers {
                        r = r.with_header(
                            tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).unwrap(),
                        );
                    }
                    if a.times > 0 {
                        a.times -= 1;
                        if a.times == 0 {
                            routes.remove(i);
                        }
                    }
                    r
                }
                None => tiny_http::Response::from_data(b"no".to_vec()).with_status_code(404),
            };
            let _ = req.respond(resp);
        }
    });
    (url, log)
}

pub(crate) fn sha(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// A release file: filename, packagetype, upload time, bytes.
pub(crate) type File<'a> = (&'a str, &'a str, &'a str, &'a [u8]);

/// A JSON metadata document with the given releases (version, files).
pub(crate) fn doc(name: &str, latest: &str, releases: &[(&str, Vec<File>)]) -> String {
    let mut rel = serde_json::Map::new();
    for (v, files) in releases {
        let list: Vec<serde_json::Value> = files
            .iter()
            .map(|(f, kind, t, bytes)| {
                serde_json::json!({"filename": f, "url": format!("/files/{f}"),
                    "packagetype": kind, "upload_time_iso_8601": t,
                    "digests": {"sha256": sha(bytes)}})
            })
            .collect();
        rel.insert(v.to_string(), serde_json::Value::Array(list));
    }
    serde_json::json!({"info": {"name": name, "version": latest, "license": "MIT",
        "classifiers": []}, "releases": rel})
    .to_string()
}

/// The document and sdist of release 1.0 of each package.
fn one_release_each(names: &[&str]) -> Vec<(String, Answer)> {
    let mut routes = Vec::new();
    for n in names {
        let body = format!("{n} archive").into_bytes();
        let f = format!("{n}-1.0.tar.gz");
        let release = vec![(f.as_str(), "sdist", "2020-01-01T00:00:00Z", body.as_slice())];
        routes.push((
            format!("/pypi/{n}/json"),
            ok(doc(n, "1.0", &[("1.0", release)])),
        ));
        routes.push((format!("/files/{f}"), ok(body)));
    }
    routes
}

pub(crate) fn fetch_json(
    idx: &str,
    args: &[&str],
    out: &std::path::Path,
) -> (i32, serde_json::Value) {
    let o = pt!(
        "fetch",
        "--out",
        out,
        "--index-url",
        idx,
        "--json",
        "-q",
        "--retries",
        "2"
    )
    .args(args)
    .run();
    let v = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)));
    (crate::util::code(&o), v)
}

#[test]
fn as_of_takes_the_newest_release_uploaded_by_then() {
    let old = sdist();
    let new = b"not the 2021 one".to_vec();
    let d = doc(
        "greeter",
        "2.0",
        &[
            (
                "1.0",
                vec![(
                    "greeter-1.0.tar.gz",
                    "sdist",
                    "2019-05-01T10:00:00.000000Z",
                    &old,
                )],
            ),
            (
                "2.0",
                vec![(
                    "greeter-2.0.tar.gz",
                    "sdist",
                    "2021-03-01T10:00:00.000000Z",
                    &new,
                )],
            ),
        ],
    );
    let late = doc(
        "latecomer",
        "0.1",
        &[(
            "0.1",
            vec![(
                "latecomer-0.1.tar.gz",
                "sdist",
                "2022-01-01T00:00:00Z",
                &new,
            )],
        )],
    );
    let (idx, _) = serve(vec![
        ("/pypi/greeter/json".into(), ok(d)),
        ("/pypi/latecomer/json".into(), ok(late)),
        ("/files/greeter-1.0.tar.gz".into(), ok(old.clone())),
        ("/files/greeter-2.0.tar.gz".into(), ok(new.clone())),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dl");
    let (code, v) = fetch_json(
        &idx,
        &["greeter", "latecomer", "--as-of", "2020-12-31"],
        &out,
    );
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["downloaded"], 1);
    assert_eq!(v["not_yet_released"], serde_json::json!(["latecomer"]));
    assert_eq!(v["as_of"], "2020-12-31T23:59:59");
    assert!(out.join("packages/greeter-1.0.tar.gz").is_file());
    assert!(!out.join("packages/greeter-2.0.tar.gz").exists());
    // No release by then: no metadata document either.
    assert!(!out
        .join("Package_Metadata/pypi_packages/latecomer.json")
        .exists());
    // Without --as-of: the latest.
    let (_, v) = fetch_json(&idx, &["greeter", "--refresh-metadata"], &out);
    assert_eq!(v["downloaded"], 1, "{v}");
    assert!(out.join("packages/greeter-2.0.tar.gz").is_file());
    let o = pt!(
        "fetch",
        "greeter",
        "--out",
        &out,
        "--index-url",
        &idx,
        "--as-of",
        "Dec 2020"
    )
    .fails_with(2);
    assert!(crate::util::stderr(&o).contains("YYYY-MM-DD"));
}

#[test]
fn all_lists_the_index_and_tasks_split_it_by_name() {
    let names = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"];
    let mut routes = vec![(
        "/simple/".to_string(),
        Answer {
            headers: vec![(
                "Content-Type",
                "application/vnd.pypi.simple.v1+json".to_string(),
            )],
            ..ok(serde_json::json!({"meta": {"api-version": "1.1"},
                "projects": names.iter().map(|n| serde_json::json!({"name": n})).collect::<Vec<_>>()})
            .to_string())
        },
    )];
    routes.extend(one_release_each(&names));
    let (idx, _) = serve(routes);
    let dir = tempfile::tempdir().unwrap();
    let mut taken = Vec::new();
    for i in 0..2 {
        let out = dir.path().join(format!("task{i}"));
        let (code, v) = fetch_json(
            &idx,
            &["--all", "--num-tasks", "2", "--task-index", &i.to_string()],
            &out,
        );
        assert_eq!(code, 0, "{v}");
        assert_eq!(v["listed"], 6);
        for (name, outcome) in v["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].clone(), p[1].clone()))
        {
            assert_eq!(outcome["outcome"], "downloaded");
            taken.push(name.as_str().unwrap().to_string());
        }
    }
    taken.sort();
    let mut all: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    all.sort();
    assert_eq!(taken, all, "the two tasks share the list without overlap");
    let o = pt!(
        "fetch",
        "six",
        "--all",
        "--out",
        dir.path(),
        "--index-url",
        &idx
    )
    .fails_with(2);
    assert!(crate::util::stderr(&o).contains("give no names"));

    // An index that only speaks HTML (PEP 503).
    let html = "<!DOCTYPE html><html><body><a href=\"/simple/alpha/\">alpha</a>\n<a href=\"/simple/beta/\">beta</a></body></html>";
    let mut routes = vec![("/simple/".to_string(), ok(html))];
    routes.extend(one_release_each(&["alpha", "beta"]));
    let (idx, _) = serve(routes);
    let (_, v) = fetch_json(&idx, &["--all"], &dir.path().join("html"));
    assert_eq!(v["downloaded"], 2, "{v}");
}

#[test]
fn resume_keeps_metadata_and_honours_retry_after_and_cleans_temporary_files() {
    let archive = sdist();
    let d = doc(
        "greeter",
        "1.0",
        &[(
            "1.0",
            vec![(
                "greeter-1.0.tar.gz",
                "sdist",
                "2020-01-01T00:00:00Z",
                &archive,
            )],
        )],
    );
    let broken = doc(
        "broken",
        "1.0",
        &[(
            "1.0",
            vec![("broken-1.0.tar.gz", "sdist", "2020-01-01T00:00:00Z", b"x")],
        )],
    );
    let (idx, log) = serve(vec![
        // Busy first: 429 with Retry-After, then the document.
        (
            "/pypi/greeter/json".into(),
            Answer {
                status: 429,
                body: b"slow down".to_vec(),
                headers: vec![("Retry-After", "1".into())],
                times: 1,
            },
        ),
        ("/pypi/greeter/json".into(), ok(d)),
        ("/files/greeter-1.0.tar.gz".into(), ok(archive)),
        ("/pypi/broken/json".into(), ok(broken)),
        // broken's archive: 404.
    ]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dl");
    // A temporary file of a killed run.
    fs::create_dir_all(out.join("packages")).unwrap();
    fs::write(out.join("packages/.greeter-1.0.tar.gz.Ab12Cd.tmp"), b"half").unwrap();
    let (code, v) = fetch_json(&idx, &["greeter", "broken"], &out);
    assert_eq!(code, 1, "broken fails: {v}");
    assert_eq!(v["downloaded"], 1, "the 429 was waited out: {v}");
    assert_eq!(v["stale_temp_files_removed"], 1);
    assert!(!out.join("packages/.greeter-1.0.tar.gz.Ab12Cd.tmp").exists());
    // The failure is named once, and leaves no metadata claiming success.
    let msg = v["failed"]["http"][0].as_str().unwrap();
    assert!(msg.starts_with("broken: "), "{msg}");
    assert!(!msg["broken: ".len()..].contains("broken: "), "{msg}");
    assert!(!out
        .join("Package_Metadata/pypi_packages/broken.json")
        .exists());
    assert!(out
        .join("Package_Metadata/pypi_packages/greeter.json")
        .is_file());
    let requests =
        |log: &Log, path: &str| log.lock().unwrap().iter().filter(|p| *p == path).count();
    assert_eq!(
        requests(&log, "/pypi/greeter/json"),
        2,
        "one 429, one answer"
    );

    // Resumed: the kept document is used, nothing is requested for greeter.
    let (_, v) = fetch_json(&idx, &["greeter"], &out);
    assert_eq!(v["already_present"], 1, "{v}");
    assert_eq!(requests(&log, "/pypi/greeter/json"), 2);
    assert_eq!(requests(&log, "/files/greeter-1.0.tar.gz"), 1);
    // --refresh-metadata asks again.
    let (_, v) = fetch_json(&idx, &["greeter", "--refresh-metadata"], &out);
    assert_eq!(v["already_present"], 1, "{v}");
    assert_eq!(requests(&log, "/pypi/greeter/json"), 3);
}

#[test]
fn wheels_for_this_platform_are_chosen_over_foreign_ones() {
    let (os, arch) = (std::env::consts::OS, std::env::consts::ARCH);
    let here = match (os, arch) {
        ("linux", "x86_64") => "manylinux_2_17_x86_64.manylinux2014_x86_64",
        ("linux", "aarch64") => "manylinux_2_17_aarch64.manylinux2014_aarch64",
        _ => return, // the fixture names Linux wheels only
    };
    let foreign = if arch == "x86_64" {
        "manylinux_2_17_aarch64.manylinux2014_aarch64"
    } else {
        "manylinux_2_17_x86_64.manylinux2014_x86_64"
    };
    let a = b"foreign wheel".to_vec();
    let b = b"our wheel".to_vec();
    let c = b"windows wheel".to_vec();
    let fa = format!("fastpkg-1.0-cp311-cp311-{foreign}.whl");
    let fb = format!("fastpkg-1.0-cp311-cp311-{here}.whl");
    let fc = "fastpkg-1.0-cp311-cp311-win_amd64.whl".to_string();
    let d = doc(
        "fastpkg",
        "1.0",
        &[(
            "1.0",
            vec![
                (fa.as_str(), "bdist_wheel", "2020-01-01T00:00:00Z", &a),
                (fc.as_str(), "bdist_wheel", "2020-01-01T00:00:00Z", &c),
                (fb.as_str(), "bdist_wheel", "2020-01-01T00:00:00Z", &b),
            ],
        )],
    );
    let (idx, _) = serve(vec![
        ("/pypi/fastpkg/json".into(), ok(d)),
        (format!("/files/{fa}"), ok(a)),
        (format!("/files/{fb}"), ok(b)),
        (format!("/files/{fc}"), ok(c)),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let (code, v) = fetch_json(&idx, &["fastpkg"], dir.path());
    assert_eq!(code, 0, "{v}");
    assert!(dir.path().join("packages").join(&fb).is_file(), "{v}");
}
