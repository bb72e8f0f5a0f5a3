//! Helpers for end-to-end tests of the `pytorrent` binary.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn samples() -> PathBuf {
    root().join("data-samples/corpus")
}

pub fn metadata() -> PathBuf {
    root().join("data-samples/packages/Package_Metadata")
}

/// Runs the binary with `args` (and `stdin` when given), in `cwd` when given.
pub fn run_in(
    cwd: Option<&Path>,
    env: &[(&str, &str)],
    args: &[&str],
    stdin: Option<&[u8]>,
) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pytorrent"));
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("binary runs");
    {
        let mut sin = child.stdin.take().unwrap();
        if let Some(bytes) = stdin {
            sin.write_all(bytes).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

pub fn run(args: &[&str]) -> Output {
    run_in(None, &[], args, None)
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn code(o: &Output) -> i32 {
    o.status.code().expect("exited, not killed by a signal")
}

/// Decompressed content of a corpus file.
pub fn read_text(path: &Path) -> String {
    let mut s = String::new();
    pytorrent_io::open_input(path, None)
        .unwrap()
        .reader
        .read_to_string(&mut s)
        .unwrap();
    s
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Every file under `dir`, relative, sorted.
pub fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, d: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, dir, &mut v);
    v.sort();
    v
}

/// All sample records, as JSON lines in input order.
pub fn sample_lines() -> Vec<String> {
    let mut lines = Vec::new();
    for part in ["train", "valid", "test"] {
        let p = samples().join(format!(
            "docstrings/{part}/{part}_scenario_docstrings_chk_0.jsonl.gz"
        ));
        lines.extend(read_text(&p).lines().map(str::to_owned));
    }
    lines
}

/// A valid record with the given repo and code.
pub fn record(repo: &str, code: &str) -> String {
    serde_json::json!({
        "repo": repo, "path": "m.py", "func_name": "f", "original_string": code,
        "language": "python", "code": code, "code_tokens": code.split_whitespace().collect::<Vec<_>>(),
        "docstring": "Does f.", "docstring_tokens": ["Does", "f", "."], "sha": null,
        "url": "m.py#L1-L2", "partition": "train"
    })
    .to_string()
}

/// Reads a 2-D little-endian .npy written by pack: (rows, cols, values).
pub fn read_npy(path: &Path) -> (usize, usize, Vec<u32>) {
    let (r, c, v) = read_npy_i64(path);
    (r, c, v.into_iter().map(|x| x as u32).collect())
}

/// The header text, shape and data of a .npy file written by us (version 1 header).
pub fn npy_parts(b: &[u8]) -> (String, Vec<usize>, &[u8]) {
    assert_eq!(&b[..6], b"\x93NUMPY");
    let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
    let header = String::from_utf8_lossy(&b[10..10 + hlen]).to_string();
    let shape = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap()
        .to_string();
    let dims: Vec<usize> = shape
        .split(',')
        .map(|x| x.trim())
        .filter(|x| !x.is_empty())
        .map(|x| x.parse().unwrap())
        .collect();
    (header, dims, &b[10 + hlen..])
}

/// Like [`read_npy`], values sign-extended (labels hold -100).
pub fn read_npy_i64(path: &Path) -> (usize, usize, Vec<i64>) {
    let b = std::fs::read(path).unwrap();
    let (header, dims, data) = npy_parts(&b);
    let values = if header.contains("<u2") {
        data.chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]) as i64)
            .collect()
    } else if header.contains("<i4") {
        data.chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
            .collect()
    } else {
        assert!(header.contains("|u1"), "{header}");
        data.iter().map(|v| *v as i64).collect()
    };
    (dims[0], dims[1], values)
}

/// A 2-D float32 .npy: (rows, cols, values).
pub fn read_npy_f32(path: &Path) -> (usize, usize, Vec<f32>) {
    let b = std::fs::read(path).unwrap();
    let (header, dims, data) = npy_parts(&b);
    assert!(header.contains("'<f4'"), "{header}");
    let values = data
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    (dims[0], dims[1], values)
}

/// Arguments of `pytorrent pack` over the sample corpus, quiet, plus `extra`.
pub fn pack_args(tok: &str, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "pack",
        samples().to_str().unwrap(),
        "--tokenizer",
        tok,
        "--out",
        out.to_str().unwrap(),
        "-q",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// Trains a small tokenizer on the samples into `dir/tok`; returns its folder.
pub fn tokenizer(dir: &Path) -> String {
    let t = dir.join("tok");
    let o = run(&[
        "tokenizer",
        "train",
        samples().to_str().unwrap(),
        "--out",
        t.to_str().unwrap(),
        "--vocab-size",
        "1200",
        "-q",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    t.to_str().unwrap().to_string()
}
