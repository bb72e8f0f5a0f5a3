#!/usr/bin/env python3
"""A PyTorch `Dataset` over `pytorrent pack` npy shards (one partition).

    from torch_dataset import PackedShards
    ds = PackedShards("out/train")             # a partition folder
    ds = PackedShards("out", partition="train")  # or the pack output and a partition
    loader = torch.utils.data.DataLoader(ds, batch_size=8, shuffle=True)

Each item is a dict with `input_ids` (int64), plus `attention_mask` and `labels` when the
folder has them (record mode / padded remainders, and --static-mask). Shards are memory-mapped
and opened lazily in each worker, so DataLoader workers share the page cache instead of copies.
Without --static-mask, mask at training time (e.g. DataCollatorForLanguageModeling).

Runs without torch too (items are then numpy arrays), which is how the interop check runs it
where torch is not installed.
"""
import bisect
import json
import os
import sys

import numpy as np

try:
    import torch
    from torch.utils.data import Dataset
except ImportError:  # numpy-only use (interop check without torch)
    torch = None
    Dataset = object


OTHER_READERS = {
    "megatron": "Megatron-LM's / NeMo's indexed dataset (give the shard prefixes, e.g. "
                "{folder}/shard-00000, to the trainer's data path), or "
                "scripts/readers/megatron_reader.py",
    "parquet": "datasets.load_dataset('parquet', data_files='{folder}/*.parquet')",
}


def partition_folder(folder, partition=None):
    """The partition folder to read: `folder` itself when it holds a manifest, else its
    `partition` subfolder; a clear error otherwise."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{folder}: no such folder (give a `pytorrent pack` output or a partition folder of it)")
    if partition is None and os.path.isfile(os.path.join(folder, "manifest.json")):
        return folder
    found = sorted(d for d in os.listdir(folder) if os.path.isfile(os.path.join(folder, d, "manifest.json")))
    if partition is None:
        if not found:
            raise FileNotFoundError(f"{folder}: no manifest.json here or in a partition folder: not a `pytorrent pack` output")
        example = "train" if "train" in found else found[0]
        raise ValueError(f"{folder} is a pack output with partitions {', '.join(found)}: "
                         f"give one, e.g. PackedShards({folder!r}, partition={example!r})")
    if partition not in found:
        raise FileNotFoundError(f"{folder}: no partition {partition!r} (it has {', '.join(found) or 'none'})")
    return os.path.join(folder, partition)


class PackedShards(Dataset):
    def __init__(self, folder, partition=None):
        folder = partition_folder(folder, partition)
        self.folder = folder
        with open(os.path.join(folder, "manifest.json")) as f:
            self.manifest = json.load(f)
        fmt = self.manifest.get("format", "npy")
        if fmt != "npy":
            use = OTHER_READERS.get(fmt, "a reader of that format").format(folder=folder)
            raise ValueError(f"{folder}: {fmt} shards, which this Dataset does not read; use {use}")
        self.shards = self.manifest["shards"]
        self.starts = [0]
        for s in self.shards:
            self.starts.append(self.starts[-1] + s["rows"])
        self._open = {}

    def __len__(self):
        return self.starts[-1]

    def _array(self, name):
        if name not in self._open:
            self._open[name] = np.load(os.path.join(self.folder, name), mmap_mode="r")
        return self._open[name]

    def __getitem__(self, i):
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        k = bisect.bisect_right(self.starts, i) - 1
        s, row = self.shards[k], i - self.starts[k]
        item = {"input_ids": np.asarray(self._array(s["file"])[row], dtype=np.int64)}
        if "attention_mask" in s:
            item["attention_mask"] = np.asarray(self._array(s["attention_mask"]["file"])[row], dtype=np.int64)
        if "labels" in s:
            item["labels"] = np.asarray(self._array(s["labels"]["file"])[row], dtype=np.int64)
        if torch is not None:
            item = {key: torch.from_numpy(v) for key, v in item.items()}
        return item


if __name__ == "__main__":
    ds = PackedShards(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
    first = ds[0]
    print(f"{len(ds)} rows; item keys {sorted(first)}; input_ids shape {tuple(first['input_ids'].shape)}"
          f"; torch {'yes' if torch is not None else 'not installed'}")
