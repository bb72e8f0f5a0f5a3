//! What a retrieval run searches: <text, code> pairs from a corpus partition, or a BEIR
//! folder (`corpus.jsonl`, `queries.jsonl`, `qrels/<split>.tsv`, as BEIR and CoIR ship them).

use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use pytorrent_corpus::read::{read_records, Item};
use pytorrent_corpus::schema::{Any, PyTorrentFields};
use pytorrent_corpus::{AnyRecord, InputConfig, Partitions, ReadSummary};
use pytorrent_io::{Reporter, Unit};

use crate::{Error, Result};

pytorrent_io::word_enum! {
    "query text";
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum QueryText {
        /// The whole docstring.
        Docstring = "docstring",
        /// The record's `summary` (the docstring's first paragraph).
        Summary = "summary",
        /// The docstring's first non-blank line.
        FirstLine = "first-line" | "first_line",
    }
}

impl QueryText {
    fn of<'a>(self, docstring: &'a str, summary: Option<&'a str>) -> &'a str {
        match self {
            QueryText::Docstring => docstring.trim(),
            QueryText::Summary => summary.unwrap_or("").trim(),
            QueryText::FirstLine => docstring
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or(""),
        }
    }
}

/// The evaluation set, whichever the source: texts, codes and which codes answer which text.
#[derive(Debug, Clone, Default)]
pub struct Set {
    /// Natural-language side, one per text.
    pub texts: Vec<String>,
    /// Code side, one per code.
    pub codes: Vec<String>,
    /// Ids of the codes (tie order: ascending id, compared as strings).
    pub code_ids: Vec<String>,
    /// Ids of the texts.
    pub text_ids: Vec<String>,
    /// For each text, the codes that answer it. For pairs, text `i` ↔ code `i`.
    pub relevant: Vec<Vec<u32>>,
    /// Text `i` and code `i` are a pair (one answer each way).
    pub paired: bool,
    pub read: Option<ReadSummary>,
    /// Records left out because their query text is empty.
    pub without_query: u64,
    /// Records of a corpus left out by their partition (none when every one was taken).
    pub skipped: Option<pytorrent_corpus::texts::TextCounts>,
}

/// Which records of a corpus become pairs, and how.
pub struct Selection<'a> {
    pub partitions: &'a Partitions,
    pub rule: &'a pytorrent_corpus::PartitionRule,
    pub query: QueryText,
    /// Two string fields of records of any shape, instead of PyTorrent records.
    pub fields: Option<(&'a str, &'a str)>,
}

/// Text i answers code i; codes are numbered with zero-padded positions, so their string order
/// (the tie order) is input order.
fn paired(mut set: Set) -> Set {
    let width = set.codes.len().to_string().len();
    set.code_ids = (0..set.codes.len())
        .map(|i| format!("{i:0width$}"))
        .collect();
    set.relevant = (0..set.texts.len() as u32).map(|i| vec![i]).collect();
    set
}

/// Fields a pair reader needs.
const PAIR_FIELDS: &[&str] = &["repo", "path", "func_name", "code", "docstring", "summary"];

/// Pairs of (query text, code) from the records of the selected partitions: PyTorrent
/// records (`sel.query` of the docstring, and `code`), or two fields of records of any shape;
/// records whose query text is empty are counted and left out.
pub fn from_corpus(input: &InputConfig, sel: &Selection, reporter: &dyn Reporter) -> Result<Set> {
    let files = input.discover()?;
    let mut set = Set {
        paired: true,
        ..Set::default()
    };
    let mut skipped = pytorrent_corpus::texts::TextCounts::default();
    reporter.begin("read pairs", Unit::Bytes, None);
    type Pair = std::result::Result<(String, String, String), pytorrent_corpus::Excluded>;
    let mut sink = |item: Item<Option<Pair>>| -> Result<()> {
        match item {
            Item::Record {
                value: Some(Err(why)),
                ..
            } => skipped.exclude(why),
            Item::Record {
                value: Some(Ok((text, code, id))),
                ..
            } => {
                if text.is_empty() {
                    set.without_query += 1;
                } else {
                    set.texts.push(text);
                    set.codes.push(code);
                    set.text_ids.push(id.clone());
                    set.code_ids.push(id);
                }
            }
            Item::Rejected { problem } => reporter.problem(&problem.to_string()),
            _ => {}
        }
        Ok(())
    };
    let read = match sel.fields {
        Some((q, c)) => {
            let schema = pytorrent_corpus::schema::FieldPair {
                first: q.to_string(),
                second: c.to_string(),
            };
            read_records(
                &files,
                &input.options(None),
                &schema,
                reporter,
                |file, line, r| -> Option<Pair> {
                    // Records of any shape split by a hash of their text, as text records do.
                    let p = sel.rule.resolve_with(r.partition.or(file.partition), || {
                        pytorrent_corpus::schema::text_split_hash(&r.first)
                    });
                    if let Err(why) = sel.partitions.admit(p) {
                        return Some(Err(why));
                    }
                    let id = format!("{}:{}", file.display(), line.line_no);
                    Some(Ok((r.first.trim().to_string(), r.second.into_owned(), id)))
                },
                &mut sink,
            )
        }
        None => read_records(
            &files,
            &input.options(None),
            &Any::PyTorrent(Some(PyTorrentFields(PAIR_FIELDS))),
            reporter,
            |file, _, rec| -> Option<Pair> {
                let p = sel.rule.resolve(&rec, file);
                let AnyRecord::PyTorrent(r) = rec else {
                    return None;
                };
                if let Err(why) = sel.partitions.admit(p) {
                    return Some(Err(why));
                }
                let text = sel.query.of(&r.docstring, r.summary.as_deref()).to_string();
                let id = format!("{}/{}:{}", r.repo, r.path, r.func_name);
                Some(Ok((text, r.code.to_string(), id)))
            },
            &mut sink,
        ),
    };
    reporter.end();
    set.read = Some(read?);
    set.skipped = Some(skipped);
    Ok(paired(set))
}

/// One JSON object a line, each with a string `_id` and `text` (and optional `title`).
fn read_beir_docs(path: &Path, with_title: bool) -> Result<(Vec<String>, Vec<String>)> {
    let file = std::fs::File::open(path).map_err(|e| pytorrent_io::Error::io(path, e))?;
    let (mut ids, mut texts) = (Vec::new(), Vec::new());
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let at = |m: &str| Error::data(path, format!("line {}: {m}", i + 1));
        let line = line.map_err(|e| pytorrent_io::Error::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| at(&format!("not JSON ({e})")))?;
        let field = |name: &str| v.get(name).and_then(serde_json::Value::as_str);
        let id = match v.get("_id") {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => return Err(at("no \"_id\" string")),
        };
        let text = field("text").ok_or_else(|| at("no \"text\" string"))?;
        let text = match field("title").filter(|t| with_title && !t.is_empty()) {
            // As sentence-transformers and MTEB join them.
            Some(title) => format!("{title} {text}"),
            None => text.to_string(),
        };
        ids.push(id);
        texts.push(text);
    }
    Ok((ids, texts))
}

/// A BEIR folder: `corpus.jsonl` (codes), `queries.jsonl` (texts) and `qrels/<split>.tsv`
/// (`query-id`, `corpus-id`, `score`; a score above 0 marks an answer). Queries without
/// answers are left out, as sentence-transformers and MTEB leave them out.
pub fn from_beir(folder: &Path, split: &str) -> Result<Set> {
    let (code_ids, codes) = read_beir_docs(&folder.join("corpus.jsonl"), true)?;
    let (query_ids, queries) = read_beir_docs(&folder.join("queries.jsonl"), false)?;
    let qrels: PathBuf = folder.join("qrels").join(format!("{split}.tsv"));
    let doc_at: HashMap<&str, u32> = code_ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i as u32))
        .collect();
    let query_at: HashMap<&str, usize> = query_ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let mut relevant: Vec<Vec<u32>> = vec![Vec::new(); queries.len()];
    let file = std::fs::File::open(&qrels).map_err(|e| pytorrent_io::Error::io(&qrels, e))?;
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| pytorrent_io::Error::io(&qrels, e))?;
        let cols: Vec<&str> = line.split('\t').map(str::trim).collect();
        if line.trim().is_empty() || (i == 0 && cols.first() == Some(&"query-id")) {
            continue;
        }
        let at = |m: String| Error::data(&qrels, format!("line {}: {m}", i + 1));
        let [q, d, score] = cols[..] else {
            return Err(at(
                "expected query-id, corpus-id and score, tab-separated".into()
            ));
        };
        let score: f64 = score
            .parse()
            .map_err(|_| at(format!("score {score:?} is not a number")))?;
        let q = *query_at
            .get(q)
            .ok_or_else(|| at(format!("query {q:?} is not in queries.jsonl")))?;
        let d = *doc_at
            .get(d)
            .ok_or_else(|| at(format!("document {d:?} is not in corpus.jsonl")))?;
        if score > 0.0 && !relevant[q].contains(&d) {
            relevant[q].push(d);
        }
    }
    let keep: Vec<usize> = (0..queries.len())
        .filter(|&q| !relevant[q].is_empty())
        .collect();
    Ok(Set {
        texts: keep.iter().map(|&q| queries[q].clone()).collect(),
        text_ids: keep.iter().map(|&q| query_ids[q].clone()).collect(),
        relevant: keep.iter().map(|&q| relevant[q].clone()).collect(),
        codes,
        code_ids,
        paired: false,
        read: None,
        without_query: (queries.len() - keep.len()) as u64,
        skipped: None,
    })
}

/// CodeXGLUE's AdvTest (and any CodeSearchNet-style JSONL with `url`, `code_tokens` and
/// `docstring_tokens`): the query is the docstring tokens joined by spaces, the candidate the
/// code tokens joined by spaces (AdvTest's normalised code), as its `run.py` reads them;
/// pairs match by line.
pub fn from_advtest(path: &Path) -> Result<Set> {
    #[derive(serde::Deserialize)]
    struct Line {
        #[serde(default)]
        url: Option<String>,
        code_tokens: Vec<String>,
        docstring_tokens: Vec<String>,
    }
    let file = std::fs::File::open(path).map_err(|e| pytorrent_io::Error::io(path, e))?;
    let mut set = Set {
        paired: true,
        ..Set::default()
    };
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| pytorrent_io::Error::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let l: Line = serde_json::from_str(&line).map_err(|e| {
            Error::data(path, format!("line {}: not an AdvTest record ({e})", i + 1))
        })?;
        let id = l
            .url
            .unwrap_or_else(|| format!("{}:{}", path.display(), i + 1));
        set.texts.push(l.docstring_tokens.join(" "));
        set.codes.push(l.code_tokens.join(" "));
        set.text_ids.push(id);
    }
    Ok(paired(set))
}

/// CoSQA's retrieval files as CoCLR and CodeXGLUE ship them: `cosqa-retrieval-test-500.json`
/// (a JSON array of queries, each with its text in `doc` and its answer's `retrieval_idx`) and
/// the code base `code_idx_map.txt` (a JSON object, code → idx). Every query ranks the whole
/// code base.
pub fn from_cosqa(queries: &Path, codebase: &Path) -> Result<Set> {
    #[derive(serde::Deserialize)]
    struct Query {
        doc: String,
        retrieval_idx: u64,
        #[serde(default)]
        idx: Option<serde_json::Value>,
    }
    let read = |p: &Path| std::fs::read(p).map_err(|e| Error::Io(pytorrent_io::Error::io(p, e)));
    let qs: Vec<Query> = serde_json::from_slice(&read(queries)?).map_err(|e| {
        Error::data(
            queries,
            format!("not CoSQA queries (a JSON array of {{doc, retrieval_idx}}): {e}"),
        )
    })?;
    let map: HashMap<String, u64> = serde_json::from_slice(&read(codebase)?).map_err(|e| {
        Error::data(
            codebase,
            format!("not a CoSQA code base (a JSON object, code → idx): {e}"),
        )
    })?;
    let mut codes: Vec<(u64, String)> = map.into_iter().map(|(c, i)| (i, c)).collect();
    codes.sort();
    let at: HashMap<u64, u32> = codes
        .iter()
        .enumerate()
        .map(|(n, (i, _))| (*i, n as u32))
        .collect();
    let mut set = Set::default();
    for (n, q) in qs.into_iter().enumerate() {
        let answer = *at.get(&q.retrieval_idx).ok_or_else(|| {
            Error::data(
                queries,
                format!(
                    "query {}: retrieval_idx {} is not in {}",
                    n + 1,
                    q.retrieval_idx,
                    codebase.display()
                ),
            )
        })?;
        set.texts.push(q.doc);
        set.text_ids
            .push(q.idx.map_or_else(|| (n + 1).to_string(), |v| v.to_string()));
        set.relevant.push(vec![answer]);
    }
    let width = codes.last().map_or(1, |(i, _)| i.to_string().len());
    set.code_ids = codes.iter().map(|(i, _)| format!("{i:0width$}")).collect();
    set.codes = codes.into_iter().map(|(_, c)| c).collect();
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advtest_lines_join_their_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("test.jsonl");
        std::fs::write(
            &p,
            "{\"url\": \"u1\", \"code_tokens\": [\"def\", \"f\", \"(\", \")\"], \"docstring_tokens\": [\"Do\", \"it\"]}\n{\"url\": \"u2\"}\n",
        )
        .unwrap();
        let e = from_advtest(&p).unwrap_err().to_string();
        assert!(
            e.contains("test.jsonl: line 2: not an AdvTest record"),
            "{e}"
        );
        std::fs::write(
            &p,
            "{\"url\": \"u1\", \"code_tokens\": [\"def\", \"f\", \"(\", \")\"], \"docstring_tokens\": [\"Do\", \"it\"]}\n",
        )
        .unwrap();
        let s = from_advtest(&p).unwrap();
        assert_eq!(
            (s.texts[0].as_str(), s.codes[0].as_str()),
            ("Do it", "def f ( )")
        );
    }

    #[test]
    fn cosqa_queries_rank_the_code_base_by_retrieval_idx() {
        let dir = tempfile::tempdir().unwrap();
        let (q, c) = (
            dir.path().join("test.json"),
            dir.path().join("code_idx_map.txt"),
        );
        std::fs::write(&c, r#"{"def b(): pass": 7, "def a(): pass": 3}"#).unwrap();
        std::fs::write(&q, r#"[{"idx": "cosqa-test-1", "doc": "python b", "code": "def b(): pass", "retrieval_idx": 7}]"#).unwrap();
        let s = from_cosqa(&q, &c).unwrap();
        assert_eq!(s.codes, ["def a(): pass", "def b(): pass"]);
        assert_eq!(s.relevant, [vec![1]]);
        assert!(!s.paired);
        std::fs::write(&q, r#"[{"doc": "x", "retrieval_idx": 9}]"#).unwrap();
        let e = from_cosqa(&q, &c).unwrap_err().to_string();
        assert!(e.contains("query 1: retrieval_idx 9 is not in"), "{e}");
    }

    #[test]
    fn query_texts() {
        let doc = "\n  Parse a date.\n\n  Longer text.";
        assert_eq!(QueryText::FirstLine.of(doc, None), "Parse a date.");
        assert_eq!(
            QueryText::Summary.of(doc, Some("Parse a date.")),
            "Parse a date."
        );
        assert_eq!(QueryText::Summary.of(doc, None), "");
        assert_eq!(
            QueryText::Docstring.of(doc, None),
            "Parse a date.\n\n  Longer text."
        );
    }

    #[test]
    fn beir_folders_read_as_beir_defines_them() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(
            p.join("corpus.jsonl"),
            "{\"_id\": \"d1\", \"title\": \"\", \"text\": \"def a(): pass\"}\n\
             {\"_id\": \"d2\", \"title\": \"T\", \"text\": \"def b(): pass\"}\n",
        )
        .unwrap();
        std::fs::write(
            p.join("queries.jsonl"),
            "{\"_id\": \"q1\", \"text\": \"a\"}\n{\"_id\": \"q2\", \"text\": \"none\"}\n",
        )
        .unwrap();
        std::fs::create_dir(p.join("qrels")).unwrap();
        std::fs::write(
            p.join("qrels/test.tsv"),
            "query-id\tcorpus-id\tscore\nq1\td2\t1\nq1\td1\t0\n",
        )
        .unwrap();
        let s = from_beir(p, "test").unwrap();
        assert_eq!(s.texts, ["a"]);
        assert_eq!(s.codes, ["def a(): pass", "T def b(): pass"]);
        assert_eq!(s.relevant, [vec![1]]);
        assert_eq!(s.without_query, 1);
        std::fs::write(p.join("qrels/test.tsv"), "q1\td9\t1\n").unwrap();
        let e = from_beir(p, "test").unwrap_err().to_string();
        assert!(
            e.contains("test.tsv: line 1: document \"d9\" is not in corpus.jsonl"),
            "{e}"
        );
    }
}
