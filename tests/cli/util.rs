//! Helpers for end-to-end tests of the `pytorrent` binary: the [`Cmd`] builder and fixtures
//! built from data-samples.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub use pytorrent_testkit::{root, samples};

pub fn metadata() -> PathBuf {
    root().join("data-samples/packages/Package_Metadata")
}

/// A command line of the `pytorrent` binary being built up (after ripgrep's `TestCommand`):
/// arguments, environment, working folder and standard input, then run with an expectation.
pub struct Cmd {
    cmd: Command,
    stdin: Option<Vec<u8>>,
}

/// `pt!("corpus", "stats", &dir)`: the binary with these arguments (anything `AsRef<OsStr>`:
/// strings, paths, `&String`).
#[macro_export]
macro_rules! pt {
    ($($a:expr),* $(,)?) => {
        $crate::util::Cmd::new()$(.arg(&$a))*
    };
}

impl Cmd {
    pub fn new() -> Cmd {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pytorrent"));
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Cmd { cmd, stdin: None }
    }

    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Cmd {
        self.cmd.arg(a);
        self
    }

    pub fn args<S: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Cmd {
        self.cmd.args(args);
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Cmd {
        self.cmd.env(key, value);
        self
    }

    /// Every variable of `vars`.
    pub fn envs(mut self, vars: &[(&str, &str)]) -> Cmd {
        self.cmd.envs(vars.iter().copied());
        self
    }

    /// Runs in `dir` instead of the test's working folder.
    pub fn current_dir(mut self, dir: &Path) -> Cmd {
        self.cmd.current_dir(dir);
        self
    }

    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(bytes.into());
        self
    }

    /// The command as a shell would show it, for failure messages.
    fn shown(&self) -> String {
        let args: Vec<String> = self
            .cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        format!("pytorrent {}", args.join(" "))
    }

    /// Starts it in the background, output discarded (for tests that kill it).
    pub fn spawn(mut self) -> std::process::Child {
        self.cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the binary runs")
    }

    /// Runs it, whatever the outcome.
    pub fn run(mut self) -> Output {
        let mut child = self.cmd.spawn().expect("the binary runs");
        {
            let mut sin = child.stdin.take().expect("piped");
            if let Some(bytes) = &self.stdin {
                // A command that stops reading early closes the pipe; that is its business.
                let _ = sin.write_all(bytes);
            }
        }
        child.wait_with_output().expect("the binary ends")
    }

    /// Runs it, reads `n` bytes of its stdout and closes the pipe, as `| head -c n` does.
    pub fn read_then_close(mut self, n: usize) -> Output {
        let mut child = self
            .cmd
            .stdin(Stdio::null())
            .spawn()
            .expect("the binary runs");
        let mut head = vec![0; n];
        let mut out = child.stdout.take().expect("piped");
        out.read_exact(&mut head)
            .expect("enough output to close early");
        drop(out);
        let mut err = Vec::new();
        child
            .stderr
            .take()
            .expect("piped")
            .read_to_end(&mut err)
            .unwrap();
        let status = child.wait().expect("the binary ends");
        Output {
            status,
            stdout: head,
            stderr: err,
        }
    }

    /// Runs it and expects success.
    pub fn ok(self) -> Output {
        self.fails_with(0)
    }

    /// Runs it and expects exit code `expected` (0 for success).
    pub fn fails_with(self, expected: i32) -> Output {
        let shown = self.shown();
        let o = self.run();
        assert_eq!(
            code(&o),
            expected,
            "{shown}\nstdout:\n{}\nstderr:\n{}",
            stdout(&o),
            stderr(&o)
        );
        o
    }

    /// Runs it with `--json`, expects success and returns the document it printed.
    pub fn json(self) -> serde_json::Value {
        let o = self.arg("--json").ok();
        serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", stdout(&o)))
    }
}

impl Default for Cmd {
    fn default() -> Self {
        Cmd::new()
    }
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

/// Every file under `dir`, relative, sorted; the owner file of a claimed output folder
/// (which names the command that made it, see tests/cli/trust.rs) left out.
pub fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, d: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else if p.file_name() != Some(pytorrent_io::owner::OWNER_FILE.as_ref()) {
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

/// `pytorrent pack` over the sample corpus with tokenizer `tok` into `out`, quiet.
pub fn pack(tok: &str, out: &Path) -> Cmd {
    pt!("pack", samples(), "--tokenizer", tok, "--out", out, "-q")
}

/// Trains a small tokenizer on the samples into `dir/tok`; returns its folder.
pub fn tokenizer(dir: &Path) -> String {
    let t = dir.join("tok");
    pt!(
        "tokenizer",
        "train",
        samples(),
        "--out",
        &t,
        "--vocab-size",
        "1200",
        "-q"
    )
    .ok();
    t.to_str().unwrap().to_string()
}

/// Asserts that the command's stderr holds `needle`, showing it when not.
#[track_caller]
pub fn assert_stderr_has(o: &Output, needle: &str) {
    let err = stderr(o);
    assert!(err.contains(needle), "no {needle:?} in stderr:\n{err}");
}

/// Copies the sample package archive `name` into `dir`.
pub fn copy_sample(name: &str, dir: &Path) {
    std::fs::copy(
        root().join("data-samples/packages").join(name),
        dir.join(name),
    )
    .unwrap();
}

/// A pseudo-random fraction in [lo, hi) from the clock, for where a kill lands (tests print it
/// for reproduction).
pub fn random_fraction(lo: f64, hi: f64) -> f64 {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    lo + (hi - lo) * ((n.wrapping_mul(2654435761) >> 8) % 10_000) as f64 / 10_000.0
}
