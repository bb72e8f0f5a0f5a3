#!/usr/bin/env python3
"""Reference embeddings of the shipped retrieval model by sentence-transformers itself
(tests/fixtures/finetune/st-reference.json): the folder `pytorrent finetune` wrote, loaded
with SentenceTransformer(DIR) at f32 compute, encoding a few texts (one cut at
max_seq_length). A CI test compares `pytorrent embed` with them, so the check that our
output loads in sentence-transformers with equal embeddings runs without torch.

Needs torch and sentence-transformers (scripts/interop/make_torch_venv.sh).
Usage: make_st_reference.py MODEL_DIR OUT.json
"""
import json
import sys

import torch
from sentence_transformers import SentenceTransformer

model_dir, out = sys.argv[1:3]
texts = [
    "Return the sum of two numbers.",
    "def add(a, b):\n    return a + b",
    "Parse a config file and return a dict of its sections.",
    "counts[key] = counts.get(key, 0) + 1\n" * 60,
]
model = SentenceTransformer(model_dir, device="cpu", model_kwargs={"dtype": torch.float32})
emb = model.encode(texts, convert_to_numpy=True)
json.dump({"texts": texts, "max_seq_length": model.max_seq_length,
           "embeddings": [[float(x) for x in row] for row in emb]}, open(out, "w"))
print(f"{len(texts)} embeddings of width {emb.shape[1]} into {out}")
