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
