#!/usr/bin/env python3
"""Interop check of `pytorrent pack` output with numpy, Python `tokenizers`, an independent
Megatron reader and the PyTorch Dataset example.

- numpy memory-maps every shard listed in each partition's manifest; shapes, dtypes, sha256
  and ids < vocabulary size must match the manifest;
- the blocks must equal `run_mlm.py`'s `group_texts` (without its per-1000-row remainder drop)
  over Python `tokenizers`' encodings of the same records (for `nl+code`, the tokenizer's own
  pair encoding `<s> NL </s></s> code </s>`);
- with --megatron, `scripts/readers/megatron_reader.py` reads the same sequences;
- with --masked, labels are -100 or the original id, special tokens are never selected, and
  about 15% of the tokens are;
- `scripts/examples/torch_dataset.py` serves the same rows (and labels).

Usage: check_pack.py --packed DIR --corpus DIR --tokenizer DIR --field code --seq-len N
                     [--megatron DIR] [--masked DIR]
"""
import argparse
import hashlib
import json
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
sys.path.insert(0, os.path.join(here, "..", "readers"))
sys.path.insert(0, os.path.join(here, "..", "examples"))
from check_tokenizer import records  # noqa: E402


def shard_rows(folder):
    import numpy as np

    manifest = json.load(open(os.path.join(folder, "manifest.json")))
    blocks, problems = [], []
    for s in manifest["shards"]:
        path = os.path.join(folder, s["file"])
        arr = np.load(path, mmap_mode="r")
        if not (arr.shape == (s["rows"], manifest["seq_len"]) and str(arr.dtype) == manifest["dtype"]
                and hashlib.sha256(open(path, "rb").read()).hexdigest() == s["sha256"]
                and (arr.size == 0 or int(arr.max()) < manifest["tokenizer"]["vocab_size"])):
            problems.append(f"{path}: shape {arr.shape} dtype {arr.dtype} vs manifest")
        blocks.append(np.asarray(arr))
    rows = np.concatenate(blocks) if blocks else np.zeros((0, manifest["seq_len"]), dtype=np.uint16)
    return manifest, rows.astype(np.int64), problems


def main():
    ap = argparse.ArgumentParser()
    for a in ["--packed", "--corpus", "--tokenizer", "--field"]:
        ap.add_argument(a, required=True)
    ap.add_argument("--seq-len", type=int, required=True)
    ap.add_argument("--megatron")
    ap.add_argument("--masked")
    a = ap.parse_args()
    import numpy as np
    from tokenizers import Tokenizer

    from megatron_reader import IndexedDataset
    from torch_dataset import PackedShards

    tok = Tokenizer.from_file(os.path.join(a.tokenizer, "tokenizer.json"))
    special = {tok.token_to_id(t) for t in ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]}
    by_part = {}
    for part, r in records(a.corpus):
        if a.field == "nl+code":
            x = (r["docstring"], r["code"]) if r["docstring"] else r["code"]
        else:
            x = r[a.field]
        by_part.setdefault(part, []).append(x)
    failures, checks = [], 0

    def check(ok, what):
        nonlocal checks
        checks += 1
        if not ok:
            failures.append(what)
        return ok

    for part in sorted(os.listdir(a.packed)):
        manifest, got, problems = shard_rows(os.path.join(a.packed, part))
        check(not problems, "; ".join(problems))
        # add_special_tokens: the post-processor wraps records (and pairs) as RoBERTa does.
        ids = [i for e in tok.encode_batch(by_part.get(part, [])) for i in e.ids]
        full = len(ids) // a.seq_len * a.seq_len
        want = np.array(ids[:full], dtype=np.int64).reshape(-1, a.seq_len)
        ok = check(np.array_equal(got, want), f"{part}: blocks differ from group_texts ({got.shape} vs {want.shape})")
        print(f"{'ok  ' if ok else 'FAIL'} {part}: {got.shape[0]} blocks of {a.seq_len}, numpy mmap, manifest and group_texts agree")

        ds = PackedShards(os.path.join(a.packed, part))
        same = len(ds) == len(got) and all(np.array_equal(np.asarray(ds[i]["input_ids"]), got[i]) for i in range(len(ds)))
        ok = check(same, f"{part}: the Dataset example serves other rows")
        print(f"{'ok  ' if ok else 'FAIL'} {part}: Dataset example serves the {len(ds)} rows")

        if a.megatron:
            mm = json.load(open(os.path.join(a.megatron, part, "manifest.json")))
            seqs = []
            for s in mm["shards"]:
                prefix = os.path.join(a.megatron, part, s["file"][: -len(".bin")])
                d = IndexedDataset(prefix)
                seqs.extend(np.asarray(d[i], dtype=np.int64) for i in range(len(d)))
            same = len(seqs) == len(got) and all(np.array_equal(x, y) for x, y in zip(seqs, got))
            ok = check(same, f"{part}: Megatron sequences differ from the npy rows")
            print(f"{'ok  ' if ok else 'FAIL'} {part}: independent Megatron reader reads the same {len(seqs)} sequences")

        if a.masked:
            folder = os.path.join(a.masked, part)
            mm, inputs, problems = shard_rows(folder)
            check(not problems, "; ".join(problems))
            labels = np.concatenate([np.load(os.path.join(folder, s["labels"]["file"]), mmap_mode="r")
                                     for s in mm["shards"]]).astype(np.int64) if mm["shards"] else np.zeros((0, a.seq_len))
            sel = labels != -100
            restored = np.where(sel, labels, inputs)
            spec = np.isin(got, list(special))
            rate = sel.sum() / max(1, (~spec).sum())
            ok = check(np.array_equal(restored, got) and not (sel & spec).any() and (len(got) < 20 or abs(rate - 0.15) < 0.03),
                       f"{part}: static masks break the MLM rules (rate {rate:.3f})")
            ds = PackedShards(folder)
            ok = check(all(np.array_equal(np.asarray(ds[i]["labels"]), labels[i]) for i in range(len(ds))),
                       f"{part}: the Dataset example serves other labels") and ok
            print(f"{'ok  ' if ok else 'FAIL'} {part}: static masks restore the blocks, spare special tokens, select {rate:.3f}")
    for f in failures:
        print("failed:", f)
    print(f"interop: {checks - len(failures)} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
