#!/usr/bin/env python3
"""Python `tokenizers` baselines for the tokenizer benchmarks (run_tokenizer_bench.sh).

  train  FILE.jsonl --field code --vocab-size N --min-frequency N --out DIR
         json.loads each line, ByteLevelBPETokenizer.train_from_iterator over the field
         (the same settings as `pytorrent tokenizer train`), save vocab/merges.
  encode FILE.jsonl --field code --tokenizer DIR [--out ids.npy]
         end to end: json.loads each line, encode_batch (batches of 1024), ids to npy.
         Also prints the encode_batch time alone (texts already in memory) as JSON on stderr.
"""
import argparse
import json
import sys
import time


def texts(path, field):
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)[field]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["train", "encode"])
    ap.add_argument("file")
    ap.add_argument("--field", default="code")
    ap.add_argument("--vocab-size", type=int, default=50265)
    ap.add_argument("--min-frequency", type=int, default=2)
    ap.add_argument("--tokenizer")
    ap.add_argument("--out")
    a = ap.parse_args()
    if a.cmd == "train":
        from tokenizers import ByteLevelBPETokenizer
        tok = ByteLevelBPETokenizer(add_prefix_space=False)
        tok.train_from_iterator(texts(a.file, a.field), vocab_size=a.vocab_size, min_frequency=a.min_frequency,
                                show_progress=False, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
        import os
        os.makedirs(a.out, exist_ok=True)
        tok.save_model(a.out)
        return
    import numpy as np
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(f"{a.tokenizer}/tokenizer.json")
    ids, encode_s, nbytes = [], 0.0, 0
    batch = []

    def flush():
        nonlocal encode_s, nbytes
        t = time.perf_counter()
        enc = tok.encode_batch(batch)
        encode_s += time.perf_counter() - t
        nbytes += sum(len(s.encode()) for s in batch)
        ids.extend(e.ids for e in enc)
        batch.clear()

    for t in texts(a.file, a.field):
        batch.append(t)
        if len(batch) == 1024:
            flush()
    flush()
    flat = np.fromiter((i for row in ids for i in row), dtype=np.uint32)
    if a.out:
        np.save(a.out, flat)
    print(json.dumps({"encode_batch_seconds": round(encode_s, 3), "text_mb": round(nbytes / 1e6, 2),
                      "tokens": int(flat.shape[0]), "mb_per_s": round(nbytes / 1e6 / encode_s, 2),
                      "tokens_per_s": round(flat.shape[0] / encode_s)}), file=sys.stderr)


if __name__ == "__main__":
    main()
