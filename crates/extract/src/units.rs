//! From a module's source to the per-function pieces records are made of: the function's
//! text, its docstring and comments, its tokens, and its code with the natural-language part
//! removed for each scenario.

use ruff_python_ast::token::TokenKind;
use ruff_python_ast::PySourceType;
use ruff_python_parser::parse_unchecked_source;
use ruff_text_size::Ranged;

use crate::python::{functions_in, LineIndex, PyFunction};

pytorrent_io::word_enum! {
    "scenario";
    /// Which natural language a record pairs with code (PyTorrent's three scenarios).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum Scenario {
        /// NL = the docstring; code = the function without its docstring statement.
        Docstrings = "docstrings" | "docstring",
        /// NL = the comments inside the function; code = the function without its comments.
        Comments = "comments" | "comment",
        /// NL = the docstring, then the comments; code = the function without either.
        Both = "both",
    }
}

impl Scenario {
    pub fn parse(s: &str) -> Option<Scenario> {
        s.parse().ok()
    }
}

/// One function with everything the scenarios need.
#[derive(Debug, Clone)]
pub struct Unit {
    pub function: PyFunction,
    /// The function's source from `def` to its last character.
    pub original: String,
    /// Comment texts inside the function and on its last line, `#` and one following space
    /// removed, in order; tool pragmas left out.
    pub comments: Vec<String>,
    /// Tool pragmas left out of `comments` (`noqa`, `type: ignore`, `pragma: no cover` …).
    pub pragmas: u64,
    /// Token texts of the function, comments and layout tokens left out; and the same with
    /// the docstring statement's tokens left out too.
    pub tokens: Vec<String>,
    pub tokens_without_docstring: Vec<String>,
    comment_ranges: Vec<(usize, usize)>,
}

/// The first syntax error of a module (1-based line, the parser's message) and how many the
/// parser recovered from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyntaxErrors {
    pub count: usize,
    pub first: Option<(usize, String)>,
}

/// The units of a module and the syntax errors the parser recovered from.
pub fn units(source: &str) -> (Vec<Unit>, SyntaxErrors) {
    let parsed = parse_unchecked_source(source, PySourceType::Python);
    let tokens: Vec<(TokenKind, usize, usize)> = parsed
        .tokens()
        .iter()
        .map(|t| {
            (
                t.kind(),
                t.range().start().to_usize(),
                t.range().end().to_usize(),
            )
        })
        .collect();
    let errors = SyntaxErrors {
        count: parsed.errors().len(),
        first: parsed.errors().first().map(|e| {
            let line = LineIndex::new(source).line_of(e.location.start().to_usize());
            (line, e.error.to_string())
        }),
    };
    let index = LineIndex::new(source);
    if let Some(at) = crate::python::too_deep(&parsed.syntax().body, &index) {
        let message = format!(
            "too many levels of indentation (Python allows {})",
            crate::python::MAX_INDENT_LEVELS
        );
        let errors = SyntaxErrors {
            count: errors.count + 1,
            first: Some((index.line_of(at), message)),
        };
        return (Vec::new(), errors);
    }
    let fns = functions_in(&parsed.syntax().body, source);
    let comment_text = |s: usize, e: usize| {
        let text = source[s..e].trim_start_matches('#');
        text.strip_prefix(' ')
            .unwrap_or(text)
            .trim_end()
            .to_string()
    };
    let units = fns
        .into_iter()
        .map(|f| {
            // Tokens are in source order: the function's are found by binary search, not by
            // a scan of the whole file for each function.
            let first = tokens.partition_point(|(_, s, _)| *s < f.start);
            let inside = tokens[first..]
                .iter()
                .take_while(|(_, s, _)| *s < f.end)
                .filter(|(_, _, e)| *e <= f.end);
            // The function's text ends with its last statement; a comment after it on the same
            // line (`return x  # why`) belongs to the function too.
            let line_end = source[f.end..]
                .find('\n')
                .map_or(source.len(), |i| f.end + i);
            let after = tokens.partition_point(|(_, s, _)| *s < f.end);
            let trailing = tokens[after..]
                .iter()
                .take_while(|(_, s, _)| *s <= line_end)
                .filter(|(k, _, e)| *k == TokenKind::Comment && *e <= line_end);
            let mut comments = Vec::new();
            let mut pragmas = 0u64;
            let mut comment_ranges = Vec::new();
            let mut all = Vec::new();
            let mut without_doc = Vec::new();
            for &(kind, s, e) in inside {
                match kind {
                    TokenKind::Comment => {
                        let text = comment_text(s, e);
                        if is_pragma(&text) {
                            pragmas += 1;
                        } else {
                            comments.push(text);
                        }
                        // Pragmas are comments still: the code without comments drops them.
                        comment_ranges.push((s, e));
                    }
                    TokenKind::Newline
                    | TokenKind::NonLogicalNewline
                    | TokenKind::Indent
                    | TokenKind::Dedent
                    | TokenKind::EndOfFile => {}
                    _ => {
                        let text = source[s..e].to_string();
                        let in_doc = f.docstring_range.is_some_and(|(ds, de)| s >= ds && e <= de);
                        if !in_doc {
                            without_doc.push(text.clone());
                        }
                        all.push(text);
                    }
                }
            }
            for &(_, s, e) in trailing {
                let text = comment_text(s, e);
                if is_pragma(&text) {
                    pragmas += 1;
                } else {
                    comments.push(text);
                }
            }
            Unit {
                original: source[f.start..f.end].to_string(),
                function: f,
                comments,
                pragmas,
                tokens: all,
                tokens_without_docstring: without_doc,
                comment_ranges,
            }
        })
        .collect();
    (units, errors)
}

/// Comments addressed to tools rather than readers: linters, type checkers, formatters and
/// coverage (`noqa: E501`, `type: ignore[attr-defined]`, `pragma: no cover`, `fmt: off`,
/// `pylint: disable=…`). They are not natural language about the function.
pub fn is_pragma(comment: &str) -> bool {
    let c = comment.trim_start().to_ascii_lowercase();
    const TOOLS: &[&str] = &[
        "noqa",
        "nosec",
        "type: ignore",
        "type:ignore",
        "pragma:",
        "fmt:",
        "pylint:",
        "isort:",
        "pyright:",
        "mypy:",
        "flake8:",
        "ruff:",
        "pyre-",
        "pytype:",
        "nocover",
        "lgtm",
    ];
    TOOLS.iter().any(|t| {
        c.strip_prefix(t).is_some_and(|rest| {
            rest.is_empty()
                || t.ends_with(':')
                || t.ends_with('-')
                || !rest.starts_with(|ch: char| ch.is_alphanumeric())
        })
    })
}

impl Unit {
    /// The natural-language part for `scenario`, or `None` when the function has none.
    pub fn nl(&self, scenario: Scenario) -> Option<String> {
        let doc = self
            .function
            .docstring
            .as_deref()
            .filter(|d| !d.trim().is_empty());
        let comments = self
            .comments
            .iter()
            .filter(|c| !c.trim().is_empty())
            .cloned()
            .collect::<Vec<_>>()
            .join("\n");
        let comments = (!comments.is_empty()).then_some(comments);
        match scenario {
            Scenario::Docstrings => doc.map(str::to_owned),
            Scenario::Comments => comments,
            Scenario::Both => match (doc, comments) {
                (Some(d), Some(c)) => Some(format!("{d}\n\n{c}")),
                (Some(d), None) => Some(d.to_owned()),
                (None, Some(c)) => Some(c),
                (None, None) => None,
            },
        }
    }

    /// The function's code with the scenario's natural-language part removed: the source
    /// lines of the docstring statement, and/or each comment (with the whitespace before
    /// it; a line left empty is dropped).
    pub fn code(&self, scenario: Scenario, lines: &LineIndex) -> String {
        let f = &self.function;
        let drop_doc = matches!(scenario, Scenario::Docstrings | Scenario::Both);
        let drop_comments = matches!(scenario, Scenario::Comments | Scenario::Both);
        let doc_lines = f
            .docstring_range
            .filter(|_| drop_doc)
            .map(|(s, e)| (lines.line_of(s), lines.line_of(e.saturating_sub(1).max(s))));
        let mut text = self.original.clone();
        if drop_comments {
            // From the last comment back, so earlier offsets stay valid.
            for &(s, e) in self.comment_ranges.iter().rev() {
                let (s, e) = (s - f.start, e - f.start);
                let line_start = text[..s].rfind('\n').map_or(0, |i| i + 1);
                let before = text[line_start..s].trim_end();
                let cut_from = line_start + before.len();
                text.replace_range(cut_from..e, "");
            }
        }
        let mut out = Vec::new();
        for (i, line) in text.split('\n').enumerate() {
            let n = f.start_line + i;
            if doc_lines.is_some_and(|(a, b)| n >= a && n <= b) {
                continue;
            }
            out.push(line);
        }
        let mut code: Vec<&str> = out;
        if drop_comments {
            // Lines that held only a comment are gone entirely, not left blank.
            let original_lines: Vec<&str> = self.original.split('\n').collect();
            let mut kept = Vec::with_capacity(code.len());
            let mut j = 0;
            for (i, orig) in original_lines.iter().enumerate() {
                let n = f.start_line + i;
                if doc_lines.is_some_and(|(a, b)| n >= a && n <= b) {
                    continue;
                }
                let now = code[j];
                j += 1;
                let was_comment_only = orig.trim_start().starts_with('#');
                if !(was_comment_only && now.trim().is_empty()) {
                    kept.push(now);
                }
            }
            code = kept;
        }
        code.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_comment_on_the_last_line_belongs_to_the_function_and_pragmas_do_not_count() {
        let src = "def f(n):\n    # scale it  # noqa: E501\n    y = n * 2  # type: ignore[attr-defined]\n    # pragma: no cover\n    return y  # enable chunked, no need to deal with length\n\nx = 1  # module level\n";
        let (us, _) = units(src);
        assert_eq!(us.len(), 1);
        let u = &us[0];
        assert_eq!(
            u.comments,
            [
                "scale it  # noqa: E501",
                "enable chunked, no need to deal with length"
            ]
        );
        assert_eq!(u.pragmas, 2);
        // The code without comments loses the pragmas too, and the function text is unchanged.
        let code = u.code(Scenario::Comments, &crate::python::LineIndex::new(src));
        assert_eq!(code, "def f(n):\n    y = n * 2\n    return y");
        assert!(u.original.ends_with("return y"));
    }

    #[test]
    fn the_first_syntax_error_is_named_by_line() {
        let (us, errors) = units("def ok():\n    return 1\n\ndef bad(:\n    pass\n");
        assert!(errors.count >= 1);
        let (line, message) = errors.first.unwrap();
        assert_eq!(line, 4, "{message}");
        assert!(!message.is_empty());
        assert!(us.iter().any(|u| u.function.qualname == "ok"));
    }

    #[test]
    fn pragmas_are_tool_comments_only() {
        for p in [
            "noqa",
            "noqa: E501",
            "type: ignore",
            "type: ignore[attr-defined]",
            "pragma: no cover",
            "fmt: off",
            "pylint: disable=invalid-name",
            "isort: skip",
            "nosec",
            "pyright: ignore",
        ] {
            assert!(is_pragma(p), "{p}");
        }
        for c in [
            "noqalike words",
            "type of the result",
            "format the output",
            "pragmatic choice",
            "TODO: fix",
        ] {
            assert!(!is_pragma(c), "{c}");
        }
    }

    #[test]
    fn comment_rules_one_test_each() {
        let src = "def f(a,  # the first input\n      b):  # the second\n    ## Section: heavy lifting\n    #######\n    #\n    #tight\n    #   indented on\n    # pyre-fixme[6]: wrong type\n    # pytype: disable=attribute-error\n    return a + b  # done\n";
        let (us, _) = units(src);
        let u = &us[0];
        // Comments between `def` and `:` belong to the function, in order; the leading run of
        // `#` and one space go (`## Section` reads `Section`, `#tight` reads `tight`, more
        // spaces stay); lines of `#` alone carry no words and are dropped from the NL; tool
        // pragmas are left out and counted; a comment after the last statement belongs too.
        assert_eq!(
            u.nl(Scenario::Comments).unwrap(),
            "the first input\nthe second\nSection: heavy lifting\ntight\n  indented on\ndone"
        );
        assert_eq!(u.pragmas, 2);
    }

    const SRC: &str = "class K:\n    def m(self, x):\n        \"\"\"Scale x.\n\n        Twice.\n        \"\"\"\n        # double it\n        y = x * 2  # really\n        return y\n";

    #[test]
    fn scenarios_remove_their_natural_language() {
        let (us, errors) = units(SRC);
        assert_eq!(errors, SyntaxErrors::default());
        let u = &us[0];
        let lines = LineIndex::new(SRC);
        assert_eq!(u.function.qualname, "K.m");
        assert_eq!(u.comments, ["double it", "really"]);
        assert_eq!(u.nl(Scenario::Docstrings).unwrap(), "Scale x.\n\nTwice.");
        assert_eq!(u.nl(Scenario::Comments).unwrap(), "double it\nreally");
        assert_eq!(
            u.nl(Scenario::Both).unwrap(),
            "Scale x.\n\nTwice.\n\ndouble it\nreally"
        );
        assert_eq!(
            u.code(Scenario::Docstrings, &lines),
            "def m(self, x):\n        # double it\n        y = x * 2  # really\n        return y"
        );
        assert_eq!(
            u.code(Scenario::Comments, &lines),
            "def m(self, x):\n        \"\"\"Scale x.\n\n        Twice.\n        \"\"\"\n        y = x * 2\n        return y"
        );
        assert_eq!(
            u.code(Scenario::Both, &lines),
            "def m(self, x):\n        y = x * 2\n        return y"
        );
        assert_eq!(
            u.tokens_without_docstring,
            ["def", "m", "(", "self", ",", "x", ")", ":", "y", "=", "x", "*", "2", "return", "y"]
        );
        assert!(u.tokens.iter().any(|t| t.starts_with("\"\"\"Scale")));
    }

    #[test]
    fn functions_without_the_scenarios_nl_have_none() {
        let (us, _) = units("def f():\n    return 1\n");
        for s in [Scenario::Docstrings, Scenario::Comments, Scenario::Both] {
            assert_eq!(us[0].nl(s), None);
        }
    }
}

#[cfg(test)]
mod nesting_tests {
    /// `n` functions, each nested in the one before, the last with a docstring.
    fn nested(n: usize) -> String {
        let mut s: String = (0..n)
            .map(|i| format!("{}def f{i}():\n", " ".repeat(i)))
            .collect();
        s.push_str(&format!("{}\"\"\"Deepest.\"\"\"\n", " ".repeat(n)));
        s
    }

    #[test]
    fn indentation_deeper_than_python_allows_is_a_syntax_error() {
        // As CPython: 99 levels parse, 100 are an IndentationError on the first line so deep.
        let (units, errors) = super::units(&nested(99));
        assert_eq!((units.len(), errors.count), (99, 0));
        let (units, errors) = super::units(&nested(100));
        assert!(units.is_empty());
        let (line, message) = errors.first.unwrap();
        assert_eq!(line, 101);
        assert!(
            message.contains("too many levels of indentation"),
            "{message}"
        );
        // Blocks on their header's line add no level.
        let flat = format!("{}{}def g(): return 1\n", nested(99), " ".repeat(99));
        assert_eq!(super::units(&flat).1.count, 0);
    }

    #[test]
    fn thousands_of_nested_defs_stay_small_on_a_worker_stack() {
        // 3,000 levels took 11 GB when every function's text was made; now the file is refused
        // after parsing, on a 2 MiB stack like extract's workers.
        let src = nested(3000);
        let (units, errors) = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || super::units(&src))
            .unwrap()
            .join()
            .expect("no stack overflow");
        assert!(units.is_empty());
        assert_eq!(errors.first.unwrap().0, 101);
    }
}
