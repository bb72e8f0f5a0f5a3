#!/usr/bin/env python3
"""Baseline for `pytorrent corpus convert --format parquet`: a JSONL corpus to one Parquet
file with pyarrow, the way a user would without pytorrent.

Default: `pyarrow.json.read_json` (pyarrow's multi-threaded C++ reader; the whole table in
memory) then `pyarrow.parquet.write_table` with zstd. `--streaming`: `json.loads` lines in
batches of `--batch-rows`, each batch `Table.from_pylist` and written through one
`ParquetWriter` (bounded memory, the schema taken from the first batch).

Usage: py_parquet_write.py [--streaming] [--batch-rows N] IN.jsonl OUT.parquet
"""
import argparse
import json

import pyarrow as pa
import pyarrow.json as pj
import pyarrow.parquet as pq


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--streaming", action="store_true")
    ap.add_argument("--batch-rows", type=int, default=20000)
    a = ap.parse_args()
    if not a.streaming:
        table = pj.read_json(a.input)
        pq.write_table(table, a.output, compression="zstd")
        print(json.dumps({"rows": table.num_rows}))
        return
    writer = None
    rows = 0
    batch = []

    def flush():
        nonlocal writer
        t = pa.Table.from_pylist(batch, schema=writer.schema if writer else None)
        if writer is None:
            writer = pq.ParquetWriter(a.output, t.schema, compression="zstd")
        writer.write_table(t)
        batch.clear()

    with open(a.input, "rb") as f:
        for line in f:
            if line.strip():
                batch.append(json.loads(line))
                rows += 1
                if len(batch) == a.batch_rows:
                    flush()
    if batch:
        flush()
    if writer:
        writer.close()
    print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    main()
