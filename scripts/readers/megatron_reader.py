#!/usr/bin/env python3
"""Independent reader of Megatron-LM / NeMo indexed datasets (`<prefix>.bin` + `<prefix>.idx`).

Written from the format as Megatron-Core's `indexed_dataset.py` reads it, with numpy only:
the `.idx` starts with the magic b"MMIDIDX\\x00\\x00", a little-endian u64 version (1), a u8
dtype code, u64 sequence count and u64 document-index count; then int32 sequence lengths,
int64 byte pointers into `.bin`, and int64 document indices.

    python scripts/readers/megatron_reader.py out/train/shard-00000   # prints a summary
"""
import struct
import sys

import numpy as np

MAGIC = b"MMIDIDX\x00\x00"
DTYPES = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.int64, 6: np.float64, 7: np.float32, 8: np.uint16}


class IndexedDataset:
    """Sequences of a `.bin`/`.idx` pair, memory-mapped; `ds[i]` is a numpy array."""

    def __init__(self, prefix):
        with open(prefix + ".idx", "rb") as f:
            head = f.read(34)
        if head[:9] != MAGIC:
            raise ValueError(f"{prefix}.idx: not an MMIDIDX index")
        (version,) = struct.unpack("<Q", head[9:17])
        if version != 1:
            raise ValueError(f"{prefix}.idx: version {version}")
        self.dtype = DTYPES[head[17]]
        count, doc_count = struct.unpack("<QQ", head[18:34])
        idx = np.memmap(prefix + ".idx", mode="r", dtype=np.uint8)
        off = 34
        self.lengths = np.frombuffer(idx, dtype=np.int32, count=count, offset=off)
        off += 4 * count
        self.pointers = np.frombuffer(idx, dtype=np.int64, count=count, offset=off)
        off += 8 * count
        self.document_indices = np.frombuffer(idx, dtype=np.int64, count=doc_count, offset=off)
        if off + 8 * doc_count != len(idx):
            raise ValueError(f"{prefix}.idx: {len(idx) - off - 8 * doc_count} trailing bytes")
        self.bin = np.memmap(prefix + ".bin", mode="r", dtype=np.uint8)

    def __len__(self):
        return len(self.lengths)

    def __getitem__(self, i):
        return np.frombuffer(self.bin, dtype=self.dtype, count=int(self.lengths[i]), offset=int(self.pointers[i]))


if __name__ == "__main__":
    ds = IndexedDataset(sys.argv[1])
    print(f"{len(ds)} sequences, {int(ds.lengths.sum())} tokens, dtype {np.dtype(ds.dtype).name}, "
          f"{len(ds.document_indices) - 1} documents")
