#!/usr/bin/env python3
"""Makes a large, real corpus for benchmarks: every documented function of a Python source
tree (default: this interpreter's standard library, PSF-licensed) through the reference
extractor, repeated under numbered package names until the file reaches --target-mb.

With --from-corpus DIR, the records of an existing corpus (e.g. data-samples/corpus, whose
records are the size of PyTorrent's) are repeated instead.

Usage: make_bench_corpus.py --target-mb 200 --out /tmp/bench/corpus-200.jsonl [--src DIR | --from-corpus DIR]
"""
import argparse
import json
import os
import sys
import sysconfig

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import ast_extract  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", default=sysconfig.get_paths()["stdlib"])
    ap.add_argument("--from-corpus")
    ap.add_argument("--target-mb", type=float, required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    lines = []
    if a.from_corpus:
        import gzip
        for root, _, names in sorted(os.walk(a.from_corpus)):
            for n in sorted(names):
                if n.endswith(".jsonl.gz"):
                    with gzip.open(os.path.join(root, n), "rt", encoding="utf-8") as f:
                        lines.extend(json.loads(l) for l in f if l.strip())
    else:
        lines.extend(ast_extract.extract(a.src, "stdlib", None))
    target = int(a.target_mb * 1e6)
    written = copies = 0
    with open(a.out, "w", encoding="utf-8") as f:
        while written < target:
            for rec in lines:
                repo = f"{rec['repo']}-{copies}"
                rec = dict(rec, repo=repo, partition=ast_extract.partition_of(repo))
                s = json.dumps(rec, ensure_ascii=False) + "\n"
                f.write(s)
                written += len(s.encode())
            copies += 1
    print(f"{a.out}: {written / 1e6:.1f} MB, {copies} copies of {len(lines)} records", file=sys.stderr)


if __name__ == "__main__":
    main()
