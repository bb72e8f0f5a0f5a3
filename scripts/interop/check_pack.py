#!/usr/bin/env python3
"""Interop check of `pytorrent pack` shards with numpy and Python `tokenizers`.

numpy memory-maps every shard listed in each partition's manifest; shapes, dtypes, sha256
and ids < vocabulary size must match the manifest; and the blocks must equal `run_mlm.py`'s
`group_texts` (without its per-1000-row remainder drop) over Python `tokenizers`' encodings
of the same records.

Usage: check_pack.py --packed DIR --corpus DIR --tokenizer DIR --field code --seq-len N
"""
import argparse
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_tokenizer import records  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    for a in ["--packed", "--corpus", "--tokenizer", "--field"]:
        ap.add_argument(a, required=True)
    ap.add_argument("--seq-len", type=int, required=True)
    a = ap.parse_args()
    import numpy as np
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(os.path.join(a.tokenizer, "tokenizer.json"))
    by_part = {}
    for part, r in records(a.corpus):
        by_part.setdefault(part, []).append(r[a.field])
    failures, checks = [], 0
    for part in sorted(os.listdir(a.packed)):
        manifest = json.load(open(os.path.join(a.packed, part, "manifest.json")))
        blocks = []
        for s in manifest["shards"]:
            path = os.path.join(a.packed, part, s["file"])
            arr = np.load(path, mmap_mode="r")
            checks += 1
            ok = (arr.shape == (s["rows"], manifest["seq_len"]) and str(arr.dtype) == manifest["dtype"]
                  and hashlib.sha256(open(path, "rb").read()).hexdigest() == s["sha256"]
                  and int(arr.max()) < manifest["tokenizer"]["vocab_size"])
            if not ok:
                failures.append(f"{part}/{s['file']}: shape {arr.shape} dtype {arr.dtype} vs manifest")
            blocks.append(np.asarray(arr))
        got = np.concatenate(blocks) if blocks else np.zeros((0, a.seq_len), dtype=np.uint16)
        ids = [i for e in tok.encode_batch(by_part.get(part, [])) for i in e.ids]
        full = len(ids) // a.seq_len * a.seq_len
        want = np.array(ids[:full], dtype=np.int64).reshape(-1, a.seq_len)
        checks += 1
        if not np.array_equal(got.astype(np.int64), want):
            failures.append(f"{part}: blocks differ from group_texts ({got.shape} vs {want.shape})")
        print(f"{'ok  ' if not failures else 'FAIL'} {part}: {got.shape[0]} blocks of {a.seq_len}, numpy mmap, manifest and group_texts agree")
    for f in failures:
        print("failed:", f)
    print(f"interop: {checks - len(failures)} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
