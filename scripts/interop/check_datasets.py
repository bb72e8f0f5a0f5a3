#!/usr/bin/env python3
"""Interop with Hugging Face `datasets`: what `pytorrent` writes as Parquet loads there as
users load hub datasets.

1. `corpus convert --format parquet` and `extract --format parquet` folders load with
   `datasets.load_dataset(FOLDER)` (configs and splits from the dataset card); every split
   has the records of the JSONL corpus it came from, field for field.
2. `pack --format parquet` shards load with `load_dataset("parquet", data_files=…)`, in
   memory and streaming, and hold the rows `pack --format npy` writes with the same settings.
3. `scripts/examples/torch_dataset.py` says what to do with a pack output folder, a Megatron
   or Parquet one.
"""
import argparse
import gzip
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))


def jsonl_records(folder):
    """Records of a PyTorrent layout by (scenario, partition)."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in sorted(files):
            if not name.endswith(".jsonl.gz"):
                continue
            scenario, partition = root.split(os.sep)[-2:]
            with gzip.open(os.path.join(root, name), "rt", encoding="utf-8") as f:
                out.setdefault((scenario, partition), []).extend(json.loads(line) for line in f)
    return out


def npy_rows(folder, column="file"):
    import numpy as np
    with open(os.path.join(folder, "manifest.json")) as f:
        m = json.load(f)
    rows = []
    for s in m["shards"]:
        name = s["file"] if column == "file" else s[column]["file"]
        rows.extend(np.load(os.path.join(folder, name)).tolist())
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jsonl", required=True, help="an extract output in PyTorrent's layout")
    ap.add_argument("--parquet", required=True, help="the same packages extracted as Parquet")
    ap.add_argument("--converted", required=True, help="the JSONL corpus converted to Parquet")
    ap.add_argument("--npy", required=True, help="a pack output (npy)")
    ap.add_argument("--packed-parquet", required=True, help="the same pack as Parquet")
    ap.add_argument("--megatron", required=True, help="a pack output (megatron)")
    ap.add_argument("--empty-split", required=True,
                    help="a pack output as Parquet of a corpus without test records")
    a = ap.parse_args()
    import datasets
    datasets.disable_progress_bars()
    split_of = {"train": "train", "valid": "validation", "test": "test"}
    failures, checks = [], 0

    def check(ok, what):
        nonlocal checks
        checks += 1
        print(("ok   " if ok else "FAIL ") + what)
        if not ok:
            failures.append(what)

    want = jsonl_records(a.jsonl)
    scenarios = sorted({s for s, _ in want})
    for folder, configs in [(a.parquet, scenarios), (a.converted, [None])]:
        for config in configs:
            d = datasets.load_dataset(folder, config)
            for (scenario, partition), records in want.items():
                if config is not None and scenario != config:
                    continue
                if config is None and scenario != "docstrings":
                    continue
                got = d[split_of[partition]]
                same = len(got) == len(records) and all(
                    got[i][k] == r.get(k) for i, r in enumerate(records)
                    for k in ["repo", "path", "func_name", "code", "code_tokens", "docstring", "docstring_tokens"])
                check(same, f"load_dataset({os.path.basename(folder)!r}, {config!r})[{split_of[partition]!r}]: "
                            f"{len(got)} records equal the JSONL's {len(records)}")

    for part in ["train", "valid", "test"]:
        files = os.path.join(a.packed_parquet, part, "*.parquet")
        mem = datasets.load_dataset("parquet", data_files={part: files})[part]
        want_ids, want_labels = npy_rows(os.path.join(a.npy, part)), npy_rows(os.path.join(a.npy, part), "labels")
        check(mem["input_ids"] == want_ids and mem["labels"] == want_labels,
              f"pack parquet {part}: {len(mem)} rows equal the npy shards' ids and labels")
        stream = datasets.load_dataset("parquet", data_files={part: files}, streaming=True)[part]
        streamed = [r["input_ids"] for r in stream]
        check(streamed == want_ids, f"pack parquet {part}: streaming gives the same {len(streamed)} rows")

    # A pack folder with an empty partition loads whole (its card lists the splits that have
    # rows); the empty one is not a split.
    d = datasets.load_dataset(a.empty_split)
    check("test" not in d and len(d["train"]) > 0 and len(d["validation"]) > 0,
          f"load_dataset(pack output with no test records): splits {dict(d.num_rows)}")
    whole = datasets.load_dataset(a.packed_parquet)
    check(sorted(whole) == ["test", "train", "validation"],
          f"load_dataset(pack output): splits {dict(whole.num_rows)}")

    from torch_dataset import PackedShards
    for args, expect in [((a.npy,), "partition='train'"), ((a.megatron, "train"), "megatron shards"),
                         ((a.packed_parquet, "train"), "load_dataset('parquet'"),
                         ((os.path.join(a.npy, "nope"),), "no such folder")]:
        try:
            PackedShards(*args)
            check(False, f"PackedShards{args} refuses")
        except (ValueError, FileNotFoundError) as e:
            check(expect in str(e), f"PackedShards{tuple(os.path.basename(x) for x in args)} says: {e}")
    n = len(PackedShards(a.npy, partition="train"))
    check(n == len(npy_rows(os.path.join(a.npy, "train"))), f"PackedShards(out, partition='train') serves {n} rows")
    print(f"interop: {checks - len(failures)} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
