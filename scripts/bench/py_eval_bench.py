#!/usr/bin/env python3
"""The Python side of scripts/bench/run_eval_bench.sh.

    py_eval_bench.py make Q.npy C.npy --rows N --dim D      random unit vectors (float32)
    py_eval_bench.py numpy Q.npy C.npy K [OUT.npy]          blocked matmul + argpartition
    py_eval_bench.py faiss Q.npy C.npy K [OUT.npy]          faiss IndexFlatIP
    py_eval_bench.py bm25 CORPUS.jsonl [--partition P]      bm25s over the code, docstring queries

Search commands print the seconds of the search alone (loading excluded). Threads: set
OMP_NUM_THREADS / OPENBLAS_NUM_THREADS (numpy, faiss) as the Rust side's RAYON_NUM_THREADS.
"""
import json
import re
import sys
import time

import numpy as np

BLOCK = 256


def make(args):
    q_path, c_path = args[0], args[1]
    rows = int(args[args.index("--rows") + 1])
    dim = int(args[args.index("--dim") + 1])
    rng = np.random.default_rng(20261130)
    for path in (q_path, c_path):
        x = rng.standard_normal((rows, dim), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        np.save(path, x)


def numpy_topk(q, c, k):
    out = np.empty((len(q), k), dtype=np.int64)
    ct = np.ascontiguousarray(c.T)
    for s in range(0, len(q), BLOCK):
        scores = q[s:s + BLOCK] @ ct
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        top = np.take_along_axis(scores, part, axis=1)
        order = np.argsort(-top, axis=1, kind="stable")
        out[s:s + BLOCK] = np.take_along_axis(part, order, axis=1)
    return out


def faiss_topk(q, c, k):
    import faiss
    index = faiss.IndexFlatIP(c.shape[1])
    index.add(c)
    _, ids = index.search(q, k)
    return ids


def search(kind, args):
    q, c, k = np.load(args[0]), np.load(args[1]), int(args[2])
    started = time.perf_counter()
    ids = numpy_topk(q, c, k) if kind == "numpy" else faiss_topk(q, c, k)
    print(f"{time.perf_counter() - started:.3f}")
    if len(args) > 3:
        np.save(args[3], ids.astype(np.int64))


# pytorrent's BM25 tokens (crates/eval/src/bm25.rs), for an equal comparison.
RUN = re.compile(r"[^\W_]+")
EDGE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def tokens(text):
    return [w.lower() for run in RUN.findall(text) for w in EDGE.split(run) if w]


def bm25(args):
    import bm25s
    path = args[0]
    partition = args[args.index("--partition") + 1] if "--partition" in args else None
    started = time.perf_counter()
    codes, queries = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if partition and r.get("partition") != partition:
                continue
            if r["docstring"].strip():
                codes.append(r["code"])
                queries.append(r["docstring"].strip())
    retriever = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
    retriever.index([tokens(c) for c in codes], show_progress=False)
    ids, _ = retriever.retrieve([tokens(q) for q in queries], k=100, show_progress=False,
                                n_threads=int(__import__("os").environ.get("OMP_NUM_THREADS", "1")))
    rr = [1.0 / (list(row).index(i) + 1) if i in row else 0.0 for i, row in enumerate(ids.tolist())]
    print(json.dumps({"pairs": len(codes), "mrr_at_100": float(np.mean(rr)),
                      "seconds": time.perf_counter() - started}))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "make":
        make(args)
    elif cmd in ("numpy", "faiss"):
        search(cmd, args)
    elif cmd == "bm25":
        bm25(args)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
