//! One package → records: read the archive, decode each `.py` file (PEP 263 cookie or BOM),
//! find its functions, and make a record per function and scenario that has natural language.

use pytorrent_corpus::dedup::word_tokens;
use std::collections::BTreeMap;
use std::path::Path;

use pytorrent_corpus::metadata::normalize_name;
use pytorrent_corpus::{Partition, Record};
use sha2::{Digest, Sha256};

use crate::archive::{self, Limits};
use crate::python::LineIndex;
use crate::units::{units, Scenario};

/// The deterministic split: the first 8 bytes of sha256(PEP 503 name), big-endian, mod 100,
/// below `train` → train, below `train + valid` → valid, else test. One package never spans
/// two partitions, and the split matches `scripts/reference/ast_extract.py`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    pub train: u64,
    pub valid: u64,
}

impl Default for Split {
    fn default() -> Self {
        Split {
            train: 80,
            valid: 10,
        }
    }
}

impl std::str::FromStr for Split {
    type Err = String;
    fn from_str(s: &str) -> Result<Split, String> {
        let parts: Vec<u64> = s
            .split(',')
            .map(|x| {
                x.trim()
                    .parse::<u64>()
                    .map_err(|_| format!("--split: not a percentage: '{}'", x.trim()))
            })
            .collect::<Result<_, _>>()?;
        let [train, valid] = parts[..] else {
            return Err("--split takes two percentages: train,valid (test is the rest)".into());
        };
        if train + valid > 100 {
            return Err("--split: train + valid must be at most 100".into());
        }
        Ok(Split { train, valid })
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{},{}", self.train, self.valid)
    }
}

impl serde::Serialize for Split {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Split {
    /// `"80,10"`, or `[80, 10]`.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Split, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Form {
            Text(String),
            Pair([u64; 2]),
        }
        let text = match Form::deserialize(d)? {
            Form::Text(s) => s,
            Form::Pair([t, v]) => format!("{t},{v}"),
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Split {
    pub fn partition(&self, package: &str) -> Partition {
        let digest = Sha256::digest(normalize_name(package).as_bytes());
        let h = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes")) % 100;
        if h < self.train {
            Partition::Train
        } else if h < self.train + self.valid {
            Partition::Valid
        } else {
            Partition::Test
        }
    }
}

/// The package name an archive's file name gives: `more_itertools-10.7.0.tar.gz` →
/// `more-itertools`; a wheel's first field; a folder's own name.
pub fn package_name(path: &Path) -> String {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    if path.is_dir() {
        return normalize_name(&file);
    }
    let lower = file.to_ascii_lowercase();
    if lower.ends_with(".whl") {
        return normalize_name(file.split('-').next().unwrap_or(&file));
    }
    let stem = [".tar.gz", ".tgz", ".tar.bz2", ".zip", ".tar", ".conda"]
        .iter()
        .find_map(|ext| {
            lower
                .ends_with(ext)
                .then(|| &file[..file.len() - ext.len()])
        })
        .unwrap_or(&file);
    // A conda archive is NAME-VERSION-BUILD, and neither VERSION nor BUILD has a '-'
    // (builds such as `py38h7b6447c_0` or `0` end in their build number).
    let conda_build = |b: &str| {
        b.rsplit('_')
            .next()
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
            && b.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
    };
    let fields: Vec<&str> = stem.rsplitn(3, '-').collect();
    if fields.len() == 3
        && (lower.ends_with(".conda")
            || (lower.ends_with(".tar.bz2")
                && conda_build(fields[0])
                && fields[1].starts_with(|c: char| c.is_ascii_digit())))
    {
        return normalize_name(fields[2]);
    }
    // The version starts at the last '-' followed by a digit.
    let cut = stem
        .char_indices()
        .rev()
        .find(|(i, c)| *c == '-' && stem[i + 1..].starts_with(|d: char| d.is_ascii_digit()))
        .map(|(i, _)| i);
    normalize_name(cut.map_or(stem, |i| &stem[..i]))
}

/// Decodes Python source: UTF-8 BOM, else a PEP 263 coding cookie on line 1 or 2, else UTF-8;
/// then `\r\n` and lone `\r` become `\n`, as Python reads source before parsing it (so no
/// field of a record from a CRLF file carries a `\r`). Returns the text and whether
/// undecodable bytes had to be replaced.
pub fn decode_source(bytes: &[u8]) -> (String, bool) {
    let (text, bad) = if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        let (text, bad) = encoding_rs::UTF_8.decode_without_bom_handling(rest);
        (text.into_owned(), bad)
    } else {
        let encoding = cookie(bytes)
            .and_then(|label| encoding_for(&label))
            .unwrap_or(encoding_rs::UTF_8);
        let (text, bad) = encoding.decode_without_bom_handling(bytes);
        (text.into_owned(), bad)
    };
    (universal_newlines(text), bad)
}

fn universal_newlines(text: String) -> String {
    if !text.contains('\r') {
        return text;
    }
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// Python codec names → WHATWG encodings: labels as given, else with `-`/`_` removed
/// (`latin-1` → `latin1`), `utf-8-sig` as UTF-8.
fn encoding_for(label: &str) -> Option<&'static encoding_rs::Encoding> {
    let l = label.to_ascii_lowercase();
    if l.starts_with("utf-8") || l.starts_with("utf8") || l.starts_with("utf_8") {
        return Some(encoding_rs::UTF_8);
    }
    encoding_rs::Encoding::for_label(l.as_bytes())
        .or_else(|| encoding_rs::Encoding::for_label(l.replace(['-', '_'], "").as_bytes()))
        .or_else(|| encoding_rs::Encoding::for_label(l.replace('_', "-").as_bytes()))
}

fn cookie(bytes: &[u8]) -> Option<String> {
    for line in bytes.split(|b| *b == b'\n').take(2) {
        let line = String::from_utf8_lossy(line);
        let t = line.trim_start();
        if !t.starts_with('#') {
            continue;
        }
        if let Some(i) = t.find("coding") {
            let rest = &t[i + "coding".len()..];
            if let Some(rest) = rest.strip_prefix(':').or_else(|| rest.strip_prefix('=')) {
                let label: String = rest
                    .trim_start()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                    .collect();
                if !label.is_empty() {
                    return Some(label);
                }
            }
        }
    }
    None
}

/// A file with syntax errors: where the first one is, what the parser said, how many.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SyntaxErrorFile {
    pub path: String,
    pub line: usize,
    pub message: String,
    pub errors: usize,
}

/// What one package gave, for the summary.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct PackageReport {
    pub package: String,
    pub path: String,
    pub python_files: u64,
    pub files_with_syntax_errors: u64,
    pub files_decoded_with_replacement: u64,
    pub functions: u64,
    pub records: BTreeMap<String, u64>,
    /// Files the parser found syntax errors in (their functions are still read where the
    /// parser recovered), each with its first error.
    pub syntax_errors: Vec<SyntaxErrorFile>,
    /// Secrets and e-mail addresses replaced in function sources, by kind.
    pub scrubbed: BTreeMap<String, u64>,
    /// Tool pragmas (`noqa`, `type: ignore` …) left out of the comments scenarios' text.
    pub pragma_comments: u64,
    /// Records whose natural language held control characters, written as escapes.
    #[serde(default)]
    pub nl_control_chars: u64,
    /// The whole package is on the opt-out list (nothing was read).
    pub opted_out: bool,
    /// Files left out because the opt-out list names them.
    pub opted_out_files: u64,
    /// Files of vendored third-party code left out, by rule (see [`crate::vendored`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vendored: BTreeMap<String, u64>,
    /// The same files by the vendored project the path names (`site-packages/<name>/`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vendored_projects: BTreeMap<String, u64>,
    /// Files and functions (per scenario) left out by a filter, by reason.
    pub filtered: BTreeMap<String, u64>,
    /// What became of every function, by scenario: `record`, or why not (`no_nl`, `short_code`,
    /// `short_nl`, `dunder`, `trivial_body`). Each scenario's counts add up to `functions`.
    pub outcomes: BTreeMap<String, BTreeMap<String, u64>>,
    /// Members not read, by reason.
    pub refused: BTreeMap<String, Vec<String>>,
    /// Why reading stopped early, if it did.
    pub error: Option<String>,
}

impl PackageReport {
    pub fn has_problems(&self) -> bool {
        self.error.is_some() || !self.refused.is_empty() || !self.syntax_errors.is_empty()
    }

    /// Reading the package stopped: it is corrupt, truncated, unreadable or too large.
    pub fn failed(&self) -> bool {
        self.error.is_some()
    }

    fn outcome(&mut self, scenario: Scenario, what: &str) {
        *self
            .outcomes
            .entry(scenario.name().to_string())
            .or_default()
            .entry(what.to_string())
            .or_default() += 1;
    }
}

/// Which functions are left out, each counted in the summary by reason.
#[derive(Debug, Clone)]
pub struct Filters {
    /// Vendored third-party code: virtualenvs, `site-packages`, `node_modules`, `_vendor/`
    /// and the like ([`crate::vendored`]).
    pub vendored: bool,
    /// Files under `test`/`tests`/`testing` folders, `test_*.py`, `*_test.py`, `conftest.py`.
    pub test_paths: bool,
    /// `__dunder__` methods.
    pub dunder: bool,
    /// Bodies that are only `pass`, `...` and `raise`.
    pub trivial_bodies: bool,
    /// Fewest non-blank lines of `code`.
    pub min_code_lines: usize,
    /// Fewest whitespace-separated words of natural language.
    pub min_nl_words: usize,
}

impl Default for Filters {
    fn default() -> Self {
        Filters {
            vendored: true,
            test_paths: true,
            dunder: true,
            trivial_bodies: true,
            min_code_lines: 3,
            min_nl_words: 3,
        }
    }
}

impl Filters {
    /// Keeps everything (what the reference extractor does).
    pub fn none() -> Self {
        Filters {
            vendored: false,
            test_paths: false,
            dunder: false,
            trivial_bodies: false,
            min_code_lines: 0,
            min_nl_words: 0,
        }
    }
}

/// True for paths of test code.
pub fn is_test_path(path: &str) -> bool {
    let mut parts = path.split('/').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            let stem = part.trim_end_matches(".py");
            return stem.starts_with("test_")
                || stem.ends_with("_test")
                || stem == "conftest"
                || stem == "tests";
        }
        if matches!(part, "test" | "tests" | "testing") {
            return true;
        }
    }
    false
}

/// Options of an extraction run.
#[derive(Debug, Clone)]
pub struct ExtractOptions {
    pub scenarios: Vec<Scenario>,
    pub split: Split,
    pub limits: Limits,
    pub filters: Filters,
    /// Packages and files removed on request.
    pub opt_out: Option<std::sync::Arc<pytorrent_corpus::optout::OptOut>>,
    /// Replace secrets and e-mail addresses (see [`crate::scrub`]).
    pub scrub: bool,
}

/// One record with where it goes.
pub struct Output {
    pub scenario: Scenario,
    pub partition: Partition,
    pub record: Record,
}

/// The natural language with its control characters (C0 but newline and tab, and DEL)
/// written as the escapes that most likely made them. A docstring in a non-raw string turns
/// `\ref` into a carriage return and "ef", `\beta` into a backspace and "eta", as CPython's
/// `ast` reads it; writing the escape back gives the text its author wrote, and keeps
/// terminal and tokenizer control codes out of NL fields. The code fields stay exact.
pub fn escape_controls(nl: &str) -> std::borrow::Cow<'_, str> {
    let is_control = |c: char| c.is_ascii_control() && c != '\n' && c != '\t';
    if !nl.contains(is_control) {
        return std::borrow::Cow::Borrowed(nl);
    }
    let mut out = String::with_capacity(nl.len() + 8);
    for c in nl.chars() {
        match c {
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{b}' => out.push_str("\\v"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if is_control(c) => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The first paragraph, whitespace collapsed.
pub fn summary_of(nl: &str) -> String {
    let para = nl.trim().split("\n\n").next().unwrap_or("");
    para.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Extracts one package (archive or folder).
pub fn extract_package(path: &Path, opts: &ExtractOptions) -> (Vec<Output>, PackageReport) {
    let mut out = Vec::new();
    let report = extract_package_each(path, opts, &mut |o| out.push(o));
    (out, report)
}

/// [`extract_package`] handing each record to `emit` as soon as it is made, so a caller that
/// turns records into something smaller never holds a whole package of them.
pub fn extract_package_each(
    path: &Path,
    opts: &ExtractOptions,
    emit: &mut dyn FnMut(Output),
) -> PackageReport {
    let package = package_name(path);
    let mut report = PackageReport {
        package: package.clone(),
        path: path.display().to_string(),
        ..Default::default()
    };
    if opts.opt_out.as_ref().is_some_and(|o| o.package(&package)) {
        report.opted_out = true;
        return report;
    }
    let sha = if path.is_file() {
        pytorrent_io::sha256_file(path).ok()
    } else {
        None
    };
    let mut contents = archive::read(path, &opts.limits);
    if let Some(e) = &contents.error {
        report.error = Some(e.to_string());
    }
    for (member, why) in &contents.refused {
        report
            .refused
            .entry(why.name().to_string())
            .or_default()
            .push(member.clone());
    }
    let lower = path.to_string_lossy().to_ascii_lowercase();
    if path.is_file() && !lower.ends_with(".whl") {
        if let Some(prefix) = archive::strip_top_folder(&mut contents.members) {
            for m in &mut contents.venv_markers {
                if let Some(rest) = m.strip_prefix(&prefix) {
                    *m = rest.to_string();
                }
            }
        }
    }
    let venvs = crate::vendored::venv_roots(contents.venv_markers.iter().map(String::as_str));
    let partition = opts.split.partition(&package);
    let filters = &opts.filters;
    // Each member's bytes are freed once its records are made.
    for m in std::mem::take(&mut contents.members) {
        if opts
            .opt_out
            .as_ref()
            .is_some_and(|o| o.file(&package, &m.path))
        {
            report.opted_out_files += 1;
            continue;
        }
        report.python_files += 1;
        if filters.vendored {
            if let Some(v) = crate::vendored::vendored(&m.path, &venvs) {
                *report.vendored.entry(v.rule.into()).or_default() += 1;
                if let Some(p) = v.project {
                    *report.vendored_projects.entry(p).or_default() += 1;
                }
                continue;
            }
        }
        if filters.test_paths && is_test_path(&m.path) {
            *report.filtered.entry("test_path".into()).or_default() += 1;
            continue;
        }
        let (source, replaced) = decode_source(&m.bytes);
        report.files_decoded_with_replacement += replaced as u64;
        let (us, errors) = units(&source);
        if let Some((line, message)) = errors.first {
            report.files_with_syntax_errors += 1;
            report.syntax_errors.push(SyntaxErrorFile {
                path: m.path.clone(),
                line,
                message,
                errors: errors.count,
            });
        }
        report.functions += us.len() as u64;
        report.pragma_comments += us.iter().map(|u| u.pragmas).sum::<u64>();
        let lines = LineIndex::new(&source);
        for u in &us {
            let name = u.function.qualname.rsplit('.').next().unwrap_or_default();
            let reason = if filters.dunder
                && name.len() > 4
                && name.starts_with("__")
                && name.ends_with("__")
            {
                Some("dunder")
            } else if filters.trivial_bodies && u.function.trivial_body {
                Some("trivial_body")
            } else {
                None
            };
            if let Some(reason) = reason {
                *report.filtered.entry(reason.into()).or_default() += 1;
                for &scenario in &opts.scenarios {
                    report.outcome(scenario, reason);
                }
                continue;
            }
            for &scenario in &opts.scenarios {
                let Some(nl) = u.nl(scenario) else {
                    report.outcome(scenario, "no_nl");
                    continue;
                };
                let nl = match escape_controls(&nl) {
                    std::borrow::Cow::Borrowed(_) => nl,
                    std::borrow::Cow::Owned(clean) => {
                        report.nl_control_chars += 1;
                        clean
                    }
                };
                let code = u.code(scenario, &lines);
                if code.lines().filter(|l| !l.trim().is_empty()).count() < filters.min_code_lines {
                    *report.filtered.entry("short_code".into()).or_default() += 1;
                    report.outcome(scenario, "short_code");
                    continue;
                }
                if nl.split_whitespace().count() < filters.min_nl_words {
                    *report.filtered.entry("short_nl".into()).or_default() += 1;
                    report.outcome(scenario, "short_nl");
                    continue;
                }
                report.outcome(scenario, "record");
                let summary = summary_of(&nl);
                let code_tokens = match scenario {
                    Scenario::Comments => u.tokens.clone(),
                    _ => u.tokens_without_docstring.clone(),
                };
                let f = &u.function;
                let mut record = Record {
                    repo: package.clone(),
                    path: m.path.clone(),
                    func_name: f.qualname.clone(),
                    original_string: u.original.clone(),
                    language: "python".into(),
                    code,
                    code_tokens,
                    docstring: nl.clone(),
                    docstring_tokens: word_tokens(&summary),
                    sha: Some(sha.clone()),
                    url: format!("{}#L{}-L{}", m.path, f.start_line, f.end_line),
                    partition: Some(Some(partition)),
                    code_tokens_ast: Some(Some(u.tokens.clone())),
                    code_with_docstrings: Some(Some(u.original.clone())),
                    summary: Some(Some(summary)),
                    extra: Default::default(),
                };
                if opts.scrub {
                    scrub_record(&mut record, &mut report.scrubbed);
                }
                *report
                    .records
                    .entry(scenario.name().to_string())
                    .or_default() += 1;
                emit(Output {
                    scenario,
                    partition,
                    record,
                });
            }
        }
    }
    report
}

/// Scrubs every text field and token of a record; counts what the function's source held
/// (the other fields are views of it).
fn scrub_record(r: &mut Record, counts: &mut BTreeMap<String, u64>) {
    use crate::scrub::scrub;
    let fix = |s: &mut String| *s = scrub(s, None);
    r.original_string = scrub(&r.original_string, Some(counts));
    fix(&mut r.code);
    fix(&mut r.docstring);
    for t in r
        .code_tokens
        .iter_mut()
        .chain(r.docstring_tokens.iter_mut())
    {
        fix(t);
    }
    for field in [&mut r.code_with_docstrings, &mut r.summary] {
        if let Some(Some(s)) = field {
            fix(s);
        }
    }
    if let Some(Some(tokens)) = &mut r.code_tokens_ast {
        tokens.iter_mut().for_each(fix);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_paths() {
        for p in [
            "tests/test_x.py",
            "pkg/tests/helpers.py",
            "test_mod.py",
            "pkg/mod_test.py",
            "conftest.py",
            "pkg/testing/u.py",
        ] {
            assert!(is_test_path(p), "{p}");
        }
        for p in [
            "pkg/mod.py",
            "pkg/testament.py",
            "contest.py",
            "pkg/latest/mod.py",
        ] {
            assert!(!is_test_path(p), "{p}");
        }
    }

    #[test]
    fn names_from_file_names() {
        assert_eq!(
            package_name(Path::new("more_itertools-10.7.0.tar.gz")),
            "more-itertools"
        );
        assert_eq!(
            package_name(Path::new("zope.interface-5.4.0.zip")),
            "zope-interface"
        );
        assert_eq!(
            package_name(Path::new("pkg_name-1.0-py3-none-any.whl")),
            "pkg-name"
        );
        assert_eq!(
            package_name(Path::new("python-dateutil-2.9.0.post0.tar.gz")),
            "python-dateutil"
        );
        // Conda archives: NAME-VERSION-BUILD, whatever the build starts with.
        for (file, name) in [
            ("openssl-1.1.1-0.tar.bz2", "openssl"),
            ("python-dateutil-2.8.1-py_0.tar.bz2", "python-dateutil"),
            (
                "typing_extensions-4.1.1-pyh06a4308_0.conda",
                "typing-extensions",
            ),
            ("ruamel.yaml-0.17.21-py39h5eee18b_0.conda", "ruamel-yaml"),
            ("my-pkg-2.tar.bz2", "my-pkg"),
            ("foo-bar-1.0.tar.bz2", "foo-bar"),
        ] {
            assert_eq!(package_name(Path::new(file)), name, "{file}");
        }
    }

    #[test]
    fn split_matches_the_reference_rule() {
        // Values from scripts/reference/ast_extract.py's partition_of.
        let s = Split::default();
        assert_eq!(s.partition("six"), Partition::Train);
        assert_eq!(s.partition("parse"), Partition::Valid);
        assert_eq!(s.partition("jsonpointer"), Partition::Test);
        assert_eq!(
            s.partition("Json_Pointer".replace('_', "").as_str()),
            Partition::Test
        );
    }

    #[test]
    fn pep263_cookies_and_boms() {
        let latin1 = b"# -*- coding: latin-1 -*-\ns = '\xe9t\xe9'\n";
        let (t, bad) = decode_source(latin1);
        assert!(t.contains("'été'") && !bad);
        let (t, bad) = decode_source(b"\xEF\xBB\xBFx = 1\n");
        assert_eq!((t.as_str(), bad), ("x = 1\n", false));
        let (t, bad) = decode_source(b"x = '\xff'\n");
        assert!(
            bad && t.contains('\u{fffd}'),
            "undecodable bytes are replaced and counted"
        );
    }
}
