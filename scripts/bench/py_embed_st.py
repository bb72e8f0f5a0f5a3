#!/usr/bin/env python3
"""The sentence-transformers side of run_embed_bench.sh: the whole process a user runs —
import, load, encode the `code` of every record of RECORDS (JSONL), save an npy — timed by the
caller. Threads: torch.set_num_threads(THREADS) (and OMP_NUM_THREADS from the caller). Prints
the time of the `encode` call alone to stderr, for the steady state.

    py_embed_st.py MODEL RECORDS.jsonl OUT.npy THREADS BATCH
"""
import sys
import time


def main():
    model_dir, records, out, threads, batch = sys.argv[1:6]
    import json

    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(int(threads))
    lines = [json.loads(l)["code"] for l in open(records, encoding="utf-8") if l.strip()]
    model = SentenceTransformer(model_dir, device="cpu")
    start = time.perf_counter()
    emb = model.encode(lines, batch_size=int(batch), convert_to_numpy=True)
    print(f"encode call {time.perf_counter() - start:.3f} s", file=sys.stderr)
    np.save(out, emb.astype(np.float32))


if __name__ == "__main__":
    main()
