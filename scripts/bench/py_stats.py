#!/usr/bin/env python3
"""Python baseline for `pytorrent corpus stats`: the same statistics, computed with a plain
`json.loads` (or `orjson.loads` with --orjson) line loop.

Used two ways: as the benchmark baseline (scripts/bench/run_corpus_bench.sh) and as the
independent reference that tests/fixtures/data-samples-stats.json was made with.

Definitions shared with the Rust implementation:
- partition: the record's `partition`, else the nearest enclosing folder named
  train/valid/test, else "none";
- lengths: characters (code points) of `code`; of the stripped `docstring` over records
  whose stripped docstring is non-empty; whitespace tokens = len(text.split());
- percentiles: nearest rank, the value at rank ceil(q * n) (1-based);
- exact duplicates: records whose whitespace-normalised code (" ".join(code.split())) was
  already seen in the same scenario (the record's `scenario` field, else the folder above its
  partition folder): the same function in two scenarios is no duplicate.

Inputs: JSONL (plain or .gz) and Parquet (`.parquet`, read with pyarrow a batch at a time,
only the columns the statistics use; rows become dicts as `json.loads` would give).

Usage: py_stats.py [--orjson] [--parse-only] FILE_OR_FOLDER...
"""
import gzip
import json
import math
import os
import sys


def files_of(paths):
    for p in paths:
        if os.path.isdir(p):
            found = []
            for root, _, names in os.walk(p):
                for n in names:
                    if not n.startswith(".") and n.endswith((".jsonl", ".jsonl.gz", ".parquet")):
                        found.append(os.path.join(root, n))
            yield from sorted(found)
        else:
            yield p


def folder_partition(path):
    for part in reversed(os.path.dirname(path).split(os.sep)):
        if part in ("train", "valid", "test"):
            return part
    return None


def folder_scenario(path):
    parts = os.path.dirname(path).split(os.sep)
    for i in range(len(parts) - 1, 0, -1):
        if parts[i] in ("train", "valid", "test"):
            return parts[i - 1]
    return None


COLUMNS = ["repo", "code", "docstring", "summary", "partition", "scenario"]


def rows(path, loads):
    """The records of one file: parsed JSON lines, or Parquet rows as dicts."""
    if path.endswith(".parquet"):
        import pyarrow.parquet as pq
        f = pq.ParquetFile(path)
        cols = [c for c in COLUMNS if c in f.schema_arrow.names]
        for batch in f.iter_batches(batch_size=8192, columns=cols):
            yield from batch.to_pylist()
        return
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        for line in f:
            if line.strip():
                yield loads(line)


def pct(values, q):
    if not values:
        return 0
    return values[max(1, math.ceil(q * len(values))) - 1]


def dist(values):
    values.sort()
    if not values:
        return {"count": 0}
    d = {"count": len(values), "min": values[0], "max": values[-1], "mean": round(sum(values) / len(values), 2)}
    for name, q in [("p10", .10), ("p25", .25), ("p50", .50), ("p75", .75), ("p90", .90), ("p99", .99)]:
        d[name] = pct(values, q)
    return d


def main():
    args = sys.argv[1:]
    loads = json.loads
    if "--orjson" in args:
        import orjson
        loads = orjson.loads
        args.remove("--orjson")
    parse_only = "--parse-only" in args
    if parse_only:
        args.remove("--parse-only")
    records = 0
    partitions, packages = {}, {}
    code_chars, code_tokens, doc_chars, doc_tokens = [], [], [], []
    with_doc = with_summary = dups = 0
    seen = set()
    for path in files_of(args):
        fallback = folder_partition(path)
        scenario_folder = folder_scenario(path)
        for r in rows(path, loads):
            records += 1
            if parse_only:
                continue
            p = r.get("partition") or fallback or "none"
            partitions[p] = partitions.get(p, 0) + 1
            packages[r["repo"]] = packages.get(r["repo"], 0) + 1
            code = r["code"]
            toks = code.split()
            code_chars.append(len(code))
            code_tokens.append(len(toks))
            doc = r["docstring"].strip()
            if doc:
                with_doc += 1
                doc_chars.append(len(doc))
                doc_tokens.append(len(doc.split()))
            if (r.get("summary") or "").strip():
                with_summary += 1
            h = (r.get("scenario") or scenario_folder, " ".join(toks))
            if h in seen:
                dups += 1
            else:
                seen.add(h)
    if parse_only:
        print(json.dumps({"records": records}))
        return
    top = sorted(packages.items(), key=lambda kv: (-kv[1], kv[0]))
    out = {
        "records": records,
        "distinct_packages": len(packages),
        "records_per_partition": dict(sorted(partitions.items())),
        "top_packages": [{"name": n, "records": c} for n, c in top[:20]],
        "code_chars": dist(code_chars),
        "code_whitespace_tokens": dist(code_tokens),
        "docstring_chars": dist(doc_chars),
        "docstring_whitespace_tokens": dist(doc_tokens),
        "with_docstring": with_doc,
        "with_summary": with_summary,
        "exact_duplicates": dups,
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
