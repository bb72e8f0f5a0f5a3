#!/usr/bin/env python3
"""Reference extractor: CPython `ast` + `tokenize` over Python package archives.

Emits one PyTorrent record (JSON line) per function or method that has a docstring (the
"docstrings" scenario): the reference that `pytorrent extract` is compared against, and the
maker of the sample corpus in data-samples/. Reads archives in memory; never executes or
unpacks package code.

Usage: ast_extract.py ARCHIVE... [--out FILE.jsonl.gz]
"""
import argparse
import ast
import gzip
import hashlib
import io
import json
import os
import re
import sys
import tarfile
import tokenize
import zipfile


def normalize_name(name):
    """PEP 503."""
    return re.sub(r"[-_.]+", "-", name).lower()


def partition_of(package):
    """Deterministic 80/10/10 split by package: first 8 bytes of sha256(PEP 503 name) mod 100."""
    h = int.from_bytes(hashlib.sha256(normalize_name(package).encode()).digest()[:8], "big") % 100
    return "train" if h < 80 else "valid" if h < 90 else "test"


def members(path):
    """(inner path, bytes) of every .py file; strip_top() later removes the top folder."""
    if os.path.isdir(path):
        top = os.path.basename(os.path.normpath(path))
        for root, dirs, names in os.walk(path):
            dirs.sort()
            for n in sorted(names):
                if n.endswith(".py"):
                    full = os.path.join(root, n)
                    with open(full, "rb") as f:
                        yield top + "/" + os.path.relpath(full, path).replace(os.sep, "/"), f.read()
    elif path.endswith(".zip") or path.endswith(".whl"):
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if info.filename.endswith(".py") and not info.is_dir():
                    yield info.filename, z.read(info)
    else:
        with tarfile.open(path) as t:
            for m in t.getmembers():
                if m.isfile() and m.name.endswith(".py"):
                    yield m.name, t.extractfile(m).read()


def strip_top(name, strip):
    parts = name.split("/", 1)
    return parts[1] if strip and len(parts) == 2 else name


def code_tokens(source):
    """Lexer tokens without comments and layout tokens."""
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
            tokenize.ENDMARKER, tokenize.ENCODING}
    try:
        toks = tokenize.generate_tokens(io.StringIO(source).readline)
        return [t.string for t in toks if t.type not in skip]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return source.split()


ESCAPES = {"\a": "\\a", "\b": "\\b", "\v": "\\v", "\f": "\\f", "\r": "\\r"}


def escape_controls(text):
    """Control characters (C0 but newline and tab, and DEL) as the escapes that most likely
    made them: a non-raw docstring turns \\ref into CR + "ef"; the NL fields get \\r back."""
    return re.sub(r"[\x00-\x08\x0b-\x1f\x7f]",
                  lambda m: ESCAPES.get(m.group(), "\\x%02x" % ord(m.group())), text)


def summary_of(doc):
    para = doc.strip().split("\n\n")[0]
    return " ".join(para.split())


def word_tokens(text):
    return re.findall(r"\w+|[^\w\s]", text)


def functions(tree):
    """(qualified name, node) for every function, method and nested function."""
    out = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                q = prefix + child.name
                out.append((q, child))
                visit(child, q + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return out


# Lines as CPython's parser splits them (`ast._splitlines_no_ff`: at \r\n, \r or \n only,
# form feeds and other separators stay inside a line), found by a regular expression rather
# than a character loop.
LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


def split_lines(source):
    return LINE.findall(source)


def source_segment(lines, node):
    """`ast.get_source_segment(source, node)` from the file's lines split once: the stdlib
    call splits the whole file again for every node (a character loop in Python), which
    made this reference quadratic in the functions of a file."""
    if getattr(node, "end_lineno", None) is None or getattr(node, "end_col_offset", None) is None:
        return None
    lineno, end_lineno = node.lineno - 1, node.end_lineno - 1
    if end_lineno == lineno:
        return lines[lineno].encode()[node.col_offset:node.end_col_offset].decode()
    first = lines[lineno].encode()[node.col_offset:].decode()
    last = lines[end_lineno].encode()[:node.end_col_offset].decode()
    return first + "".join(lines[lineno + 1:end_lineno]) + last


def without_lines(segment, first_line, drop_from, drop_to):
    """The segment less the source lines drop_from..drop_to (1-based, file numbering)."""
    lines = segment.split("\n")
    keep = [l for i, l in enumerate(lines) if not (drop_from <= first_line + i <= drop_to)]
    return "\n".join(keep)


def extract(path, package, sha, strip=True):
    for name, data in members(path):
        inner = strip_top(name, strip)
        try:
            source = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            continue
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError):
            continue
        lines = split_lines(source)
        for qual, node in functions(tree):
            doc = ast.get_docstring(node, clean=True)
            if not doc:
                continue
            doc = escape_controls(doc)
            original = source_segment(lines, node)
            if original is None:
                continue
            ds = node.body[0]
            code = without_lines(original, node.lineno, ds.lineno, ds.end_lineno)
            summary = summary_of(doc)
            yield {
                "repo": package,
                "path": inner,
                "func_name": qual,
                "original_string": original,
                "language": "python",
                "code": code,
                "code_tokens": code_tokens(code),
                "docstring": doc,
                "docstring_tokens": word_tokens(summary),
                "sha": sha,
                "url": f"{inner}#L{node.lineno}-L{node.end_lineno}",
                "partition": partition_of(package),
                "code_tokens_ast": code_tokens(original),
                "code_with_docstrings": original,
                "summary": summary,
            }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("archives", nargs="+")
    ap.add_argument("--package", help="package name (default: from the archive name)")
    ap.add_argument("--out", help="output .jsonl or .jsonl.gz (default: stdout)")
    args = ap.parse_args()
    out = sys.stdout
    if args.out:
        out = gzip.open(args.out, "wt", encoding="utf-8") if args.out.endswith(".gz") else open(args.out, "w", encoding="utf-8")
    for path in args.archives:
        base = path.rsplit("/", 1)[-1]
        package = args.package or re.sub(r"-\d.*$", "", base)
        sha = None if os.path.isdir(path) else hashlib.sha256(open(path, "rb").read()).hexdigest()
        for rec in extract(path, package, sha):
            out.write(json.dumps(rec, ensure_ascii=False) + "\n")
    if out is not sys.stdout:
        out.close()


if __name__ == "__main__":
    main()
