//! `pytorrent fetch` against a loopback index that misbehaves the way real networks and
//! mirrors do: connections dropped before an answer, bodies cut short, 500s, 429s with
//! `Retry-After`, archives whose bytes do not match the digest. Every package is either
//! fetched intact after retries or refused with its reason, and nothing corrupt or partial is
//! left under a final name.

use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use crate::fetch::{doc, fetch_json, sha, Log};
use crate::util::tree;

/// One scripted answer, written on a raw socket so that it can break HTTP mid-way.
#[derive(Clone)]
pub(crate) enum Reply {
    Ok(Vec<u8>),
    /// A status with extra headers and a short body.
    Status(u16, Vec<(&'static str, &'static str)>),
    /// The connection is closed as soon as the request is read.
    Drop,
    /// `Content-Length` announces the whole body; only the first `n` bytes come.
    Truncated(Vec<u8>, usize),
    /// No `Content-Length`: the body ends where the server closes the connection.
    CloseDelimited(Vec<u8>),
    /// A body that never ends, with `Content-Length` announcing this many bytes (or none):
    /// bytes come until the client hangs up.
    Endless(Option<u64>),
}

/// Serves each path's replies in order; the last one repeats for ever. Unknown paths: 404.
pub(crate) fn serve_raw(routes: Vec<(String, Vec<Reply>)>) -> (String, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/simple", listener.local_addr().unwrap());
    let routes: BTreeMap<String, VecDeque<Reply>> = routes
        .into_iter()
        .map(|(p, r)| (p, r.into_iter().collect()))
        .collect();
    let routes = Arc::new(Mutex::new(routes));
    let log: Log = Default::default();
    let seen = log.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let routes = routes.clone();
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut first = String::new();
                if reader.read_line(&mut first).is_err() {
                    return;
                }
                loop {
                    let mut line = String::new();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => return,
                        Ok(_) if line == "\r\n" => break,
                        Ok(_) => {}
                    }
                }
                let path = first.split(' ').nth(1).unwrap_or("").to_string();
                seen.lock().unwrap().push(path.clone());
                let reply = {
                    let mut routes = routes.lock().unwrap();
                    match routes.get_mut(&path) {
                        Some(q) if q.len() > 1 => q.pop_front().unwrap(),
                        Some(q) => q[0].clone(),
                        None => Reply::Status(404, vec![]),
                    }
                };
                let head = |status: &str, len: Option<u64>, extra: &[(&str, &str)]| {
                    let mut h = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
                    if let Some(n) = len {
                        h += &format!("Content-Length: {n}\r\n");
                    }
                    for (k, v) in extra {
                        h += &format!("{k}: {v}\r\n");
                    }
                    h + "\r\n"
                };
                let mut out = Vec::new();
                match reply {
                    Reply::Ok(b) => {
                        out.extend(head("200 OK", Some(b.len() as u64), &[]).into_bytes());
                        out.extend(b);
                    }
                    Reply::Status(code, extra) => {
                        let body = b"busy or broken";
                        out.extend(
                            head(&format!("{code} Status"), Some(body.len() as u64), &extra)
                                .into_bytes(),
                        );
                        out.extend(body);
                    }
                    Reply::Drop => {}
                    Reply::Truncated(b, n) => {
                        out.extend(head("200 OK", Some(b.len() as u64), &[]).into_bytes());
                        out.extend(&b[..n]);
                    }
                    Reply::CloseDelimited(b) => {
                        out.extend(head("200 OK", None, &[]).into_bytes());
                        out.extend(b);
                    }
                    Reply::Endless(announced) => {
                        let _ = stream.write_all(head("200 OK", announced, &[]).as_bytes());
                        let chunk = vec![b'x'; 64 * 1024];
                        // Until the client hangs up (a write fails), or 1 GiB at the most.
                        for _ in 0..16 * 1024 {
                            if stream.write_all(&chunk).is_err() {
                                return;
                            }
                        }
                    }
                }
                let _ = stream.write_all(&out);
                let _ = stream.flush();
                let _ = stream.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    (url, log)
}

/// An archive big enough that cutting it short is visible (the bytes need not be a real
/// archive: fetch checks digests, extract reads archives).
fn archive(name: &str) -> Vec<u8> {
    (0..64 * 1024u32)
        .flat_map(|i| format!("{name}{i}").into_bytes())
        .take(200_000)
        .collect()
}

fn document(name: &str, body: &[u8]) -> Vec<u8> {
    let f = format!("{name}-1.0.tar.gz");
    doc(
        name,
        "1.0",
        &[("1.0", vec![(&f, "sdist", "2020-01-01T00:00:00Z", body)])],
    )
    .into_bytes()
}

#[test]
fn a_faulty_index_gives_intact_archives_or_named_refusals_and_nothing_corrupt() {
    let names = [
        "dropped",
        "cut",
        "busy",
        "wrongdigest",
        "alwayscut",
        "shortclose",
    ];
    let bodies: BTreeMap<&str, Vec<u8>> = names.iter().map(|n| (*n, archive(n))).collect();
    let doc_of = |n: &str| Reply::Ok(document(n, &bodies[n]));
    let file = |n: &str| format!("/files/{n}-1.0.tar.gz");
    let json = |n: &str| format!("/pypi/{n}/json");
    let b = |n: &str| bodies[n].clone();
    let half = |n: &str| bodies[n].len() / 2;
    let routes = vec![
        // The document's connection is dropped once, then answered.
        (json("dropped"), vec![Reply::Drop, doc_of("dropped")]),
        (file("dropped"), vec![Reply::Ok(b("dropped"))]),
        // The archive's body is cut short twice (the length says more), then whole.
        (json("cut"), vec![doc_of("cut")]),
        (
            file("cut"),
            vec![
                Reply::Truncated(b("cut"), half("cut")),
                Reply::Truncated(b("cut"), 10),
                Reply::Ok(b("cut")),
            ],
        ),
        // 500 twice for the document; 429 with Retry-After for the archive.
        (
            json("busy"),
            vec![
                Reply::Status(500, vec![]),
                Reply::Status(503, vec![]),
                doc_of("busy"),
            ],
        ),
        (
            file("busy"),
            vec![
                Reply::Status(429, vec![("Retry-After", "1")]),
                Reply::Ok(b("busy")),
            ],
        ),
        // Bytes that do not match the digest, every time: refused.
        (json("wrongdigest"), vec![doc_of("wrongdigest")]),
        (
            file("wrongdigest"),
            vec![Reply::Ok(b"not the archive".repeat(999))],
        ),
        // Cut short every time: given up after the retries.
        (json("alwayscut"), vec![doc_of("alwayscut")]),
        (
            file("alwayscut"),
            vec![Reply::Truncated(b("alwayscut"), half("alwayscut"))],
        ),
        // No length and the connection closed early: only the digest can tell.
        (json("shortclose"), vec![doc_of("shortclose")]),
        (
            file("shortclose"),
            vec![Reply::CloseDelimited(
                b("shortclose")[..half("shortclose")].to_vec(),
            )],
        ),
    ];
    let (idx, log) = serve_raw(routes);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dl");
    let (code, v) = fetch_json(&idx, &names, &out);
    assert_eq!(code, 1, "three packages fail: {v}");
    assert_eq!(v["downloaded"], 3, "{v}");
    let failed = &v["failed"];
    let named = |reason: &str, pkg: &str| {
        failed[reason]
            .as_array()
            .unwrap_or_else(|| panic!("no {reason} failures: {v}"))
            .iter()
            .any(|m| m.as_str().unwrap().starts_with(&format!("{pkg}: ")))
    };
    assert!(named("digest_mismatch", "wrongdigest"), "{v}");
    assert!(named("digest_mismatch", "shortclose"), "{v}");
    assert!(named("network", "alwayscut"), "{v}");

    // Exactly the intact archives sit under final names, byte for byte; no temporary files.
    assert_eq!(
        tree(&out.join("packages")),
        ["busy-1.0.tar.gz", "cut-1.0.tar.gz", "dropped-1.0.tar.gz"],
        "nothing partial, corrupt or temporary is left"
    );
    for n in ["busy", "cut", "dropped"] {
        let got = fs::read(out.join("packages").join(format!("{n}-1.0.tar.gz"))).unwrap();
        assert_eq!(sha(&got), sha(&bodies[n]), "{n} arrived intact");
    }
    // Metadata only for what was fetched.
    assert_eq!(
        tree(&out.join("Package_Metadata/pypi_packages")),
        ["busy.json", "cut.json", "dropped.json"]
    );

    // Every fault was retried, and given-up requests stopped at the retry limit (2).
    let count = |p: &str| log.lock().unwrap().iter().filter(|x| **x == p).count();
    assert_eq!(count(&json("dropped")), 2);
    assert_eq!(count(&file("cut")), 3);
    assert_eq!(count(&json("busy")), 3);
    assert_eq!(count(&file("busy")), 2);
    assert_eq!(count(&file("alwayscut")), 3, "1 try + 2 retries");
    assert_eq!(
        count(&file("wrongdigest")),
        1,
        "a wrong digest is refused, not retried"
    );
}
