//! Functions and their docstrings from Python source, with `ruff_python_parser`.
//!
//! The parser recovers from syntax errors, so a file that is partly Python 2 still yields
//! the functions that parse. Nothing is ever executed.

use ruff_python_ast::PySourceType;
use ruff_python_ast::{ExceptHandler, Expr, Stmt};
use ruff_python_parser::parse_unchecked_source;
use ruff_text_size::Ranged;

/// One function or method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PyFunction {
    /// `outer.inner`, `Class.method`, `Class.Inner.method`.
    pub qualname: String,
    pub is_async: bool,
    /// Byte range of the function from its `def` (or `async def`) keyword, without decorators.
    pub start: usize,
    pub end: usize,
    /// 1-based lines of `start` and of the last character.
    pub start_line: usize,
    pub end_line: usize,
    /// The docstring, cleaned as `inspect.cleandoc` does (what `ast.get_docstring` returns).
    pub docstring: Option<String>,
    /// Byte range of the docstring statement.
    pub docstring_range: Option<(usize, usize)>,
    /// The body (docstring aside) is only `pass`, `...` and `raise` statements.
    pub trivial_body: bool,
}

/// The functions of a module, in source order, and the number of syntax errors met.
pub fn functions(source: &str) -> (Vec<PyFunction>, usize) {
    let parsed = parse_unchecked_source(source, PySourceType::Python);
    (
        functions_in(&parsed.syntax().body, source),
        parsed.errors().len(),
    )
}

/// The functions of an already parsed module body.
pub fn functions_in(body: &[Stmt], source: &str) -> Vec<PyFunction> {
    let lines = LineIndex::new(source);
    let mut out = Vec::new();
    walk(body, "", source, &lines, &mut out);
    out
}

fn walk(body: &[Stmt], prefix: &str, source: &str, lines: &LineIndex, out: &mut Vec<PyFunction>) {
    for stmt in body {
        match stmt {
            Stmt::FunctionDef(f) => {
                let qualname = format!("{prefix}{}", f.name.as_str());
                let name_start = f.name.range().start().to_usize();
                let start = def_keyword_start(source, name_start, f.is_async);
                let end = f.range().end().to_usize();
                let (docstring, docstring_range) = match docstring_of(&f.body) {
                    Some((text, range)) => (Some(cleandoc(text)), Some(range)),
                    None => (None, None),
                };
                out.push(PyFunction {
                    qualname: qualname.clone(),
                    is_async: f.is_async,
                    start,
                    end,
                    start_line: lines.line_of(start),
                    end_line: lines.line_of(end.saturating_sub(1).max(start)),
                    trivial_body: is_trivial(&f.body, docstring_range.is_some()),
                    docstring,
                    docstring_range,
                });
                walk(&f.body, &format!("{qualname}."), source, lines, out);
            }
            Stmt::ClassDef(c) => walk(
                &c.body,
                &format!("{prefix}{}.", c.name.as_str()),
                source,
                lines,
                out,
            ),
            Stmt::If(s) => {
                walk(&s.body, prefix, source, lines, out);
                for clause in &s.elif_else_clauses {
                    walk(&clause.body, prefix, source, lines, out);
                }
            }
            Stmt::For(s) => {
                walk(&s.body, prefix, source, lines, out);
                walk(&s.orelse, prefix, source, lines, out);
            }
            Stmt::While(s) => {
                walk(&s.body, prefix, source, lines, out);
                walk(&s.orelse, prefix, source, lines, out);
            }
            Stmt::With(s) => walk(&s.body, prefix, source, lines, out),
            Stmt::Try(s) => {
                walk(&s.body, prefix, source, lines, out);
                for h in &s.handlers {
                    let ExceptHandler::ExceptHandler(h) = h;
                    walk(&h.body, prefix, source, lines, out);
                }
                walk(&s.orelse, prefix, source, lines, out);
                walk(&s.finalbody, prefix, source, lines, out);
            }
            Stmt::Match(s) => {
                for case in &s.cases {
                    walk(&case.body, prefix, source, lines, out);
                }
            }
            _ => {}
        }
    }
}

/// CPython's tokenizer allows 99 levels of indentation (`MAXINDENT` is 100); a file with
/// more is an `IndentationError` there, and is refused here too. Besides matching Python, it
/// bounds the work: every nested function's text holds its inner ones, so a file of `n` nested
/// `def`s costs O(n^3) (11 GB at 3,000 levels).
pub const MAX_INDENT_LEVELS: usize = 99;

/// The byte offset of the first statement indented more than [`MAX_INDENT_LEVELS`] levels,
/// if any. A block on its header's line (`def f(): pass`) adds no level, as in Python.
pub fn too_deep(body: &[Stmt], lines: &LineIndex) -> Option<usize> {
    fn deep(body: &[Stmt], level: usize, lines: &LineIndex) -> Option<usize> {
        for stmt in body {
            let header = lines.line_of(stmt.range().start().to_usize());
            for inner in blocks(stmt) {
                let Some(first) = inner.first() else { continue };
                let start = first.range().start().to_usize();
                let level = level + usize::from(lines.line_of(start) > header);
                if level > MAX_INDENT_LEVELS {
                    return Some(start);
                }
                if let Some(at) = deep(inner, level, lines) {
                    return Some(at);
                }
            }
        }
        None
    }
    deep(body, 0, lines)
}

/// The statement blocks a compound statement holds.
fn blocks(stmt: &Stmt) -> Vec<&[Stmt]> {
    match stmt {
        Stmt::FunctionDef(f) => vec![&f.body],
        Stmt::ClassDef(c) => vec![&c.body],
        Stmt::If(s) => std::iter::once(&s.body[..])
            .chain(s.elif_else_clauses.iter().map(|c| &c.body[..]))
            .collect(),
        Stmt::For(s) => vec![&s.body, &s.orelse],
        Stmt::While(s) => vec![&s.body, &s.orelse],
        Stmt::With(s) => vec![&s.body],
        Stmt::Try(s) => std::iter::once(&s.body[..])
            .chain(s.handlers.iter().map(|h| {
                let ExceptHandler::ExceptHandler(h) = h;
                &h.body[..]
            }))
            .chain([&s.orelse[..], &s.finalbody[..]])
            .collect(),
        Stmt::Match(s) => s.cases.iter().map(|c| &c.body[..]).collect(),
        _ => Vec::new(),
    }
}

fn is_trivial(body: &[Stmt], has_docstring: bool) -> bool {
    body.iter().skip(has_docstring as usize).all(|s| match s {
        Stmt::Pass(_) | Stmt::Raise(_) => true,
        Stmt::Expr(e) => matches!(e.value.as_ref(), Expr::EllipsisLiteral(_)),
        _ => false,
    })
}

/// `def` (or `async`) keyword position: the last `def` before the name.
fn def_keyword_start(source: &str, name_start: usize, is_async: bool) -> usize {
    let head = &source[..name_start];
    let def = head.rfind("def").unwrap_or(name_start);
    if is_async {
        source[..def].rfind("async").unwrap_or(def)
    } else {
        def
    }
}

/// The first statement's string, if it is a plain string literal (not an f-string or bytes).
fn docstring_of(body: &[Stmt]) -> Option<(&str, (usize, usize))> {
    let Stmt::Expr(e) = body.first()? else {
        return None;
    };
    let Expr::StringLiteral(s) = e.value.as_ref() else {
        return None;
    };
    let r = e.range();
    Some((s.value.to_str(), (r.start().to_usize(), r.end().to_usize())))
}

/// `inspect.cleandoc`: tabs expanded to 8, the first line's leading whitespace and the
/// common indentation of the others removed, blank lines at either end dropped.
pub fn cleandoc(doc: &str) -> String {
    let expanded = expand_tabs(doc);
    let mut lines: Vec<&str> = expanded.split('\n').collect();
    let margin = lines
        .iter()
        .skip(1)
        .filter_map(|l| {
            let content = l.trim_start();
            (!content.is_empty()).then(|| l.chars().count() - content.chars().count())
        })
        .min();
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    if let Some(first) = lines.first_mut() {
        out.push(first.trim_start().to_string());
    }
    for l in lines.iter().skip(1) {
        let m = margin.unwrap_or(0);
        out.push(l.chars().skip(m).collect());
    }
    while out.first().is_some_and(|l| l.is_empty()) {
        out.remove(0);
    }
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    out.join("\n")
}

/// `str.expandtabs(8)`: columns restart after `\n` and `\r`.
fn expand_tabs(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut col = 0usize;
    for c in s.chars() {
        match c {
            '\t' => {
                let n = 8 - col % 8;
                out.extend(std::iter::repeat_n(' ', n));
                col += n;
            }
            '\n' | '\r' => {
                out.push(c);
                col = 0;
            }
            _ => {
                out.push(c);
                col += 1;
            }
        }
    }
    out
}

/// Byte offset → 1-based line number.
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(source: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(
            source
                .bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex { starts }
    }

    pub fn line_of(&self, offset: usize) -> usize {
        match self.starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualified_names_async_and_nesting() {
        let src = "import os\n\n@dec\ndef top(a):\n    \"\"\"Top.\"\"\"\n    def inner():\n        pass\n    return inner\n\nclass C:\n    async def m(self):\n        '''Method\n\n        more.\n        '''\n    class D:\n        def n(self): pass\n\nif True:\n    def cond(): 'x'\n";
        let (fs, errors) = functions(src);
        assert_eq!(errors, 0);
        let names: Vec<&str> = fs.iter().map(|f| f.qualname.as_str()).collect();
        assert_eq!(names, ["top", "top.inner", "C.m", "C.D.n", "cond"]);
        let top = &fs[0];
        assert_eq!(
            (top.start_line, top.end_line),
            (4, 8),
            "from `def`, decorators left out"
        );
        assert!(src[top.start..].starts_with("def top"));
        assert_eq!(top.docstring.as_deref(), Some("Top."));
        assert!(fs[2].is_async);
        assert!(src[fs[2].start..].starts_with("async def m"));
        assert_eq!(fs[2].docstring.as_deref(), Some("Method\n\nmore."));
        assert_eq!(fs[4].docstring.as_deref(), Some("x"));
        assert_eq!(fs[3].docstring, None);
        assert!(fs[1].trivial_body && fs[3].trivial_body, "pass-only bodies");
        assert!(!fs[0].trivial_body);
        let (fs, _) = functions("def a():\n    '''Doc.'''\n    ...\ndef b():\n    raise NotImplementedError\ndef c():\n    return 1\n");
        assert_eq!(
            fs.iter().map(|f| f.trivial_body).collect::<Vec<_>>(),
            [true, true, false]
        );
    }

    #[test]
    fn python2_files_yield_what_parses() {
        let src = "def ok():\n    \"\"\"Fine.\"\"\"\n    return 1\n\nprint 'hello'\n\ndef also_ok(x):\n    \"\"\"Also.\"\"\"\n    return x\n";
        let (fs, errors) = functions(src);
        assert!(errors > 0);
        let names: Vec<&str> = fs.iter().map(|f| f.qualname.as_str()).collect();
        assert_eq!(names, ["ok", "also_ok"]);
    }

    #[test]
    fn cleandoc_matches_inspect() {
        assert_eq!(
            cleandoc("  Summary.\n\n    Body\n      indented\n  "),
            "Summary.\n\nBody\n  indented"
        );
        assert_eq!(cleandoc("\n\tTabbed\n\tbody\n"), "Tabbed\nbody");
        assert_eq!(cleandoc("one line"), "one line");
    }

    #[test]
    fn fstrings_and_bytes_are_not_docstrings() {
        let (fs, _) =
            functions("def f():\n    f'no {x}'\ndef g():\n    b'no'\ndef h():\n    'yes' 'and'\n");
        assert_eq!(fs[0].docstring, None);
        assert_eq!(fs[1].docstring, None);
        assert_eq!(fs[2].docstring.as_deref(), Some("yesand"));
    }
}

#[cfg(test)]
mod deep_tests {
    #[test]
    fn deep_nesting_and_giant_lines_do_not_crash_on_a_small_stack() {
        // 2 MiB: a spawned thread's default stack, and rayon's.
        let run = |src: String| {
            std::thread::Builder::new()
                .stack_size(2 << 20)
                .spawn(move || super::functions(&src))
                .unwrap()
                .join()
        };
        let deep = format!(
            "def f():\n    return {}1{}\n",
            "(".repeat(100_000),
            ")".repeat(100_000)
        );
        let (fs, _) = run(deep).expect("no stack overflow");
        assert_eq!(fs.len(), 1);
        let giant = format!(
            "def g():\n    \"\"\"Doc.\"\"\"\n    return [{}]\n",
            "1, ".repeat(1_000_000)
        );
        let (fs, errors) = run(giant).expect("no crash");
        assert_eq!((fs.len(), errors), (1, 0));
        assert_eq!(fs[0].docstring.as_deref(), Some("Doc."));
    }
}
