//! `fetch` against a real HTTP server on loopback serving fixture documents and files.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pytorrent_fetch::{agent, fetch, FailReason, FetchOptions, Outcome};
use sha2::{Digest, Sha256};

struct Server {
    base: String,
    hits: Arc<Mutex<HashMap<String, u32>>>,
}

fn sha(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn doc(name: &str, files: serde_json::Value) -> Vec<u8> {
    serde_json::json!({
        "info": {"name": name, "version": "1.0", "license": "MIT", "classifiers": []},
        "last_serial": 1, "releases": {"1.0": files.clone()}, "urls": files,
    })
    .to_string()
    .into_bytes()
}

fn file_entry(filename: &str, url: &str, kind: &str, digest: &str) -> serde_json::Value {
    serde_json::json!({"filename": filename, "url": url, "packagetype": kind, "digests": {"sha256": digest}})
}

/// Serves /pypi/<name>/json and /files/<file>; "flaky" files fail with 503 on the first try.
fn serve() -> Server {
    let sdist = b"sdist bytes".to_vec();
    let wheel = b"wheel bytes".to_vec();
    let mut routes: HashMap<String, Vec<u8>> = HashMap::new();
    routes.insert("/files/good-1.0.tar.gz".into(), sdist.clone());
    routes.insert("/files/good-1.0-py3-none-any.whl".into(), wheel.clone());
    routes.insert(
        "/files/wheelonly-1.0-py3-none-any.whl".into(),
        wheel.clone(),
    );
    routes.insert("/files/flaky-1.0.tar.gz".into(), sdist.clone());
    routes.insert("/files/badsha-1.0.tar.gz".into(), sdist.clone());
    routes.insert(
        "/pypi/good/json".into(),
        doc(
            "good",
            serde_json::json!([
                file_entry(
                    "good-1.0-py3-none-any.whl",
                    "/files/good-1.0-py3-none-any.whl",
                    "bdist_wheel",
                    &sha(&wheel)
                ),
                // Relative to the document, as some mirrors write it.
                file_entry(
                    "good-1.0.tar.gz",
                    "../../files/good-1.0.tar.gz",
                    "sdist",
                    &sha(&sdist)
                ),
            ]),
        ),
    );
    routes.insert(
        "/pypi/wheelonly/json".into(),
        doc(
            "wheelonly",
            serde_json::json!([file_entry(
                "wheelonly-1.0-py3-none-any.whl",
                "/files/wheelonly-1.0-py3-none-any.whl",
                "bdist_wheel",
                &sha(&wheel)
            )]),
        ),
    );
    routes.insert(
        "/pypi/flaky/json".into(),
        doc(
            "flaky",
            serde_json::json!([file_entry(
                "flaky-1.0.tar.gz",
                "/files/flaky-1.0.tar.gz",
                "sdist",
                &sha(&sdist)
            )]),
        ),
    );
    routes.insert(
        "/pypi/badsha/json".into(),
        doc(
            "badsha",
            serde_json::json!([file_entry(
                "badsha-1.0.tar.gz",
                "/files/badsha-1.0.tar.gz",
                "sdist",
                &"0".repeat(64)
            )]),
        ),
    );
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let base = format!("http://{}", server.server_addr().to_ip().unwrap());
    let hits: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let h = hits.clone();
    std::thread::spawn(move || {
        for req in server.incoming_requests() {
            let path = req.url().to_string();
            let n = {
                let mut m = h.lock().unwrap();
                let e = m.entry(path.clone()).or_default();
                *e += 1;
                *e
            };
            let resp = if path.contains("flaky") && path.starts_with("/files/") && n == 1 {
                tiny_http::Response::from_data(Vec::new()).with_status_code(503)
            } else {
                match routes.get(&path) {
                    Some(body) => tiny_http::Response::from_data(body.clone()),
                    None => {
                        tiny_http::Response::from_data(b"not found".to_vec()).with_status_code(404)
                    }
                }
            };
            let _ = req.respond(resp);
        }
    });
    Server { base, hits }
}

fn opts(server: &Server, out: &Path) -> FetchOptions {
    FetchOptions {
        json_api: format!("{}/pypi", server.base),
        out: out.to_path_buf(),
        version: None,
        retries: 2,
        backoff: Duration::from_millis(10),
        timeout: Duration::from_secs(10),
        as_of: None,
        refresh_metadata: false,
        limiter: None,
        max_metadata_bytes: 1 << 20,
        max_archive_bytes: 1 << 20,
        max_repodata_bytes: 1 << 20,
    }
}

#[test]
fn downloads_verify_resume_retry_and_report_failures() {
    let server = serve();
    let dir = tempfile::tempdir().unwrap();
    let o = opts(&server, dir.path());
    let a = agent(o.timeout);

    // The sdist is preferred over the wheel; the metadata is saved in PyTorrent's layout.
    let got = fetch(&a, "Good", &o);
    let file = dir.path().join("packages/good-1.0.tar.gz");
    assert_eq!(
        got,
        Outcome::Downloaded {
            file: file.clone(),
            bytes: 11
        }
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"sdist bytes");
    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("Package_Metadata/pypi_packages/good.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(meta["info"]["name"], "good");

    // Resumable: present with the right digest, not downloaded again.
    assert_eq!(fetch(&a, "good", &o), Outcome::AlreadyPresent { file });
    assert_eq!(server.hits.lock().unwrap()["/files/good-1.0.tar.gz"], 1);

    // Wheel when there is no sdist.
    assert!(matches!(
        fetch(&a, "wheelonly", &o),
        Outcome::Downloaded { .. }
    ));

    // A 503 is retried.
    assert!(matches!(fetch(&a, "flaky", &o), Outcome::Downloaded { .. }));
    assert_eq!(server.hits.lock().unwrap()["/files/flaky-1.0.tar.gz"], 2);

    // A digest mismatch leaves nothing under the final name (nor a temporary file).
    match fetch(&a, "badsha", &o) {
        Outcome::Failed {
            reason: FailReason::DigestMismatch,
            ..
        } => {}
        other => panic!("{other:?}"),
    }
    let left: Vec<_> = std::fs::read_dir(dir.path().join("packages"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        !left.iter().any(|n| n.to_string_lossy().contains("badsha")),
        "{left:?}"
    );

    // Unknown package, unknown version.
    assert!(matches!(
        fetch(&a, "missing", &o),
        Outcome::Failed {
            reason: FailReason::NotFound,
            ..
        }
    ));
    let v2 = FetchOptions {
        version: Some("9.9".into()),
        ..o.clone()
    };
    assert!(matches!(
        fetch(&a, "good", &v2),
        Outcome::Failed {
            reason: FailReason::NoSuchVersion,
            ..
        }
    ));
}

#[test]
fn an_unreachable_index_is_a_network_failure_after_retries() {
    let dir = tempfile::tempdir().unwrap();
    // A closed port on loopback.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = FetchOptions {
        json_api: format!("http://127.0.0.1:{port}/pypi"),
        out: dir.path().to_path_buf(),
        version: None,
        retries: 1,
        backoff: Duration::from_millis(5),
        timeout: Duration::from_secs(5),
        as_of: None,
        refresh_metadata: false,
        limiter: None,
        max_metadata_bytes: 1 << 20,
        max_archive_bytes: 1 << 20,
        max_repodata_bytes: 1 << 20,
    };
    assert!(matches!(
        fetch(&agent(o.timeout), "six", &o),
        Outcome::Failed {
            reason: FailReason::Network,
            ..
        }
    ));
}

#[test]
fn the_fetch_stage_reads_its_list_and_sorts_outcomes_by_reason() {
    let server = serve();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("names.txt");
    std::fs::write(&list, "good  # the sdist\nwheelonly\n\nmissing\n").unwrap();
    let opt_out = dir.path().join("opt-out.txt");
    std::fs::write(&opt_out, "flaky\n").unwrap();
    let mut cfg = pytorrent_fetch::FetchConfig::new(vec!["flaky".into()], dir.path().join("out"));
    cfg.from_file = Some(list);
    cfg.opt_out = Some(opt_out);
    cfg.json_api_url = Some(format!("{}/pypi", server.base));
    cfg.retries = 0;
    let rec = pytorrent_io::reporter::Recorder::default();
    let report = pytorrent_fetch::run(&cfg, &rec).unwrap();
    assert_eq!(report.downloaded, 2);
    assert_eq!(report.opted_out, ["flaky"]);
    assert_eq!(report.failures(), 1);
    assert_eq!(report.failed["not_found"].len(), 1);
    assert!(
        report.failed["not_found"][0].starts_with("missing"),
        "{:?}",
        report.failed
    );
    assert!(rec.logs()[0].contains("JSON API"), "{:?}", rec.logs());
    assert_eq!(report.packages.len(), 4, "every name has an outcome");
}
