#!/usr/bin/env python3
"""Interop check of `pytorrent tokenizer` against Python `tokenizers` and `transformers`.

Given a folder written by `pytorrent tokenizer train`, the corpus it was trained on and the
ids `pytorrent tokenizer encode` produced (JSONL, and npy + offsets), checks that:
  1. Python `tokenizers` loads tokenizer.json and gives identical ids on every record;
  2. `transformers.AutoTokenizer` loads the folder and gives identical ids on every record;
  3. numpy reads our npy output and it equals the JSONL output;
  4. `ByteLevelBPETokenizer` trained with the same settings on the same texts has the same
     vocabulary and the same merges.
Exits 1 with a description of the first difference of each failed check.

Usage: check_tokenizer.py --tokenizer DIR --corpus DIR --ids ids.jsonl --npy ids.npy
       --field code --train-partition train --vocab-size N --min-frequency N
"""
import argparse
import gzip
import json
import os
import re
import sys


def natural_key(s):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def records(corpus):
    """(partition, record) in pytorrent's reading order: files by natural order of path."""
    paths = []
    for root, _, names in os.walk(corpus):
        for n in names:
            if not n.startswith(".") and re.search(r"\.jsonl(\.gz)?$", n):
                paths.append(os.path.relpath(os.path.join(root, n), corpus))
    for rel in sorted(paths, key=natural_key):
        folder = next((p for p in reversed(os.path.dirname(rel).split(os.sep)) if p in ("train", "valid", "test")), None)
        opener = gzip.open if rel.endswith(".gz") else open
        with opener(os.path.join(corpus, rel), "rt", encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    # The nl+code view: the docstring, a blank line, the code.
                    r["nl_plus_code"] = f"{r['docstring']}\n\n{r['code']}" if r["docstring"] else r["code"]
                    yield r.get("partition") or folder, r


def main():
    ap = argparse.ArgumentParser()
    for a in ["--tokenizer", "--corpus", "--ids", "--npy", "--field", "--train-partition"]:
        ap.add_argument(a, required=True)
    ap.add_argument("--vocab-size", type=int, required=True)
    ap.add_argument("--min-frequency", type=int, required=True)
    a = ap.parse_args()

    import numpy as np
    import tokenizers
    import transformers
    from tokenizers import ByteLevelBPETokenizer, Tokenizer

    print(f"python tokenizers {tokenizers.__version__}, transformers {transformers.__version__}, numpy {np.__version__}")
    all_recs = list(records(a.corpus))
    texts = [r[a.field] for _, r in all_recs]
    ours = [json.loads(l) for l in open(a.ids, encoding="utf-8")]
    failures = []
    checks = [0]

    def check(name, ok, detail=""):
        checks[0] += 1
        print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail and not ok else ''}")
        if not ok:
            failures.append(name)

    check("one id list per record", len(ours) == len(texts), f"{len(ours)} id lists for {len(texts)} records")

    def first_diff(got):
        for i, (x, y) in enumerate(zip(got, ours)):
            if x != y:
                return f"record {i}: python {x[:20]}… vs pytorrent {y[:20]}…"
        return "lengths differ"

    py = Tokenizer.from_file(os.path.join(a.tokenizer, "tokenizer.json"))
    got = [e.ids for e in py.encode_batch(texts)]
    check(f"tokenizers.Tokenizer ids equal on {len(texts)} records", got == ours, first_diff(got))

    hf = transformers.AutoTokenizer.from_pretrained(a.tokenizer)
    got = hf(texts)["input_ids"]
    check(f"transformers.AutoTokenizer ({type(hf).__name__}) ids equal", got == ours, first_diff(got))
    check("model_max_length is set", hf.model_max_length < 10**6, str(hf.model_max_length))
    check("mask token id is 4", hf.mask_token_id == 4 and hf.pad_token_id == 1, f"{hf.mask_token_id}, {hf.pad_token_id}")

    flat = np.load(a.npy, mmap_mode="r")
    offsets = np.load(a.npy[: -len(".npy")] + ".offsets.npy")
    from_npy = [flat[offsets[i]:offsets[i + 1]].tolist() for i in range(len(offsets) - 1)]
    check(f"numpy reads the npy output ({flat.dtype}, {flat.shape[0]} ids)", from_npy == ours, first_diff(from_npy))

    train_texts = [r[a.field] for p, r in all_recs if p == a.train_partition]
    ref = ByteLevelBPETokenizer(add_prefix_space=False)
    ref.train_from_iterator(
        train_texts, vocab_size=a.vocab_size, min_frequency=a.min_frequency, show_progress=False,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
    )
    ours_json = json.load(open(os.path.join(a.tokenizer, "tokenizer.json"), encoding="utf-8"))
    ref_json = json.loads(ref.to_str())
    v1, v2 = ours_json["model"]["vocab"], ref_json["model"]["vocab"]
    diff = sorted(set(v1.items()) ^ set(v2.items()))[:5]
    check(f"same vocabulary as ByteLevelBPETokenizer ({len(v1)} entries)", v1 == v2, f"differences: {diff}")
    m1, m2 = ours_json["model"]["merges"], ref_json["model"]["merges"]
    first = next((i for i, (x, y) in enumerate(zip(m1, m2)) if x != y), None)
    check(f"same merges as ByteLevelBPETokenizer ({len(m1)} merges)", m1 == m2,
          f"{len(m1)} vs {len(m2)} merges; first difference at {first}")

    if failures:
        print("failed: " + ", ".join(failures))
    print(f"interop: {checks[0] - len(failures)} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
