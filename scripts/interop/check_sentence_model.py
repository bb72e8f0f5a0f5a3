#!/usr/bin/env python3
"""A `pytorrent finetune` output loads in sentence-transformers, and its embeddings equal
`pytorrent embed`'s: SentenceTransformer(DIR).encode(texts) against the npy file our embed
wrote for the same texts (one a line), to 1e-4 absolute (f32 compute on both sides, also for
f16 weights; the order of the sums differs). Also checks what the folder declares: mean pooling, cosine similarity,
max_seq_length within the model's positions.

    check_sentence_model.py DIR TEXTS_FILE EMBEDDINGS.npy
"""
import json
import sys

import numpy as np
import torch
from sentence_transformers import SentenceTransformer


def main():
    folder, texts_file, npy = sys.argv[1:4]
    texts = [line.rstrip("\n") for line in open(texts_file, encoding="utf-8")]
    ours = np.load(npy)
    # f32 compute, as pytorrent embeds: transformers would otherwise run f16 weights in f16.
    model = SentenceTransformer(folder, device="cpu", model_kwargs={"dtype": torch.float32})
    theirs = model.encode(texts, batch_size=8, convert_to_numpy=True)
    failures = []
    if ours.shape != theirs.shape:
        failures.append(f"shape {ours.shape} vs sentence-transformers {theirs.shape}")
    else:
        diff = float(np.abs(ours - theirs).max())
        if diff > 1e-4:
            failures.append(f"embeddings differ by {diff}")
    pooling = json.load(open(f"{folder}/1_Pooling/config.json"))
    if not pooling["pooling_mode_mean_tokens"]:
        failures.append("the folder does not declare mean pooling")
    if model.similarity_fn_name != "cosine":
        failures.append(f"similarity {model.similarity_fn_name}, not cosine")
    config = model[0].auto_model.config
    # RoBERTa numbers positions from padding_idx + 1; BERT from 0.
    limit = config.max_position_embeddings - (config.pad_token_id + 1 if config.model_type == "roberta" else 0)
    if model.max_seq_length > limit:
        failures.append(f"max_seq_length {model.max_seq_length} above the model's {limit} positions")
    if failures:
        print("\n".join(f"{folder}: {f}" for f in failures), file=sys.stderr)
        sys.exit(1)
    print(f"{folder}: loads in sentence-transformers; {len(texts)} embeddings equal pytorrent embed's "
          f"(max difference {float(np.abs(ours - theirs).max()):.2e}); max_seq_length {model.max_seq_length}")


if __name__ == "__main__":
    main()
