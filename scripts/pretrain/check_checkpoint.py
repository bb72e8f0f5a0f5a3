#!/usr/bin/env python3
"""Loads a `pytorrent pretrain` output folder with transformers and checks it.

- `RobertaForMaskedLM.from_pretrained(DIR)` reports no missing, unexpected or mismatched keys;
- `AutoTokenizer.from_pretrained(DIR)` loads the tokenizer shipped beside it;
- for each prompt, transformers' fill-mask top-k equals `pytorrent fill-mask --json` (same
  tokens, scores within 1e-4).

Needs torch + transformers (a throw-away venv). Usage:
  check_checkpoint.py DIR --bin target/release/pytorrent ["prompt with <mask>" ...]
"""
import argparse
import json
import subprocess
import sys

import torch
from transformers import AutoTokenizer, RobertaForMaskedLM, pipeline

ap = argparse.ArgumentParser()
ap.add_argument("dir")
ap.add_argument("--bin", required=True)
ap.add_argument("--top-k", type=int, default=5)
ap.add_argument("prompts", nargs="*", default=[
    "def <mask>(self):\n    return self.name",
    "import numpy as <mask>",
    "for i in <mask>(len(items)):",
])
args = ap.parse_args()

# f16 checkpoints are compared in f32, as `pytorrent fill-mask` runs them by default.
model, info = RobertaForMaskedLM.from_pretrained(args.dir, output_loading_info=True, dtype=torch.float32)
problems = {k: v for k, v in info.items() if v}
if problems:
    sys.exit(f"loading {args.dir}: {problems}")
tok = AutoTokenizer.from_pretrained(args.dir)
fill = pipeline("fill-mask", model=model, tokenizer=tok, top_k=args.top_k, device="cpu")
worst = 0.0
for prompt in args.prompts:
    theirs = fill(prompt)
    ours = json.loads(subprocess.run(
        [args.bin, "fill-mask", "--model", args.dir, "--top-k", str(args.top_k), "--json",
         "--text", prompt],
        capture_output=True, text=True, check=True,
    ).stdout)
    cands = ours[0]["masks"][0]
    assert [c["token"] for c in cands] == [t["token"] for t in theirs], (prompt, cands, theirs)
    for c, t in zip(cands, theirs):
        worst = max(worst, abs(c["score"] - t["score"]))
print(f"{args.dir}: loads with no missing or unexpected keys; fill-mask top-{args.top_k} "
      f"agrees on {len(args.prompts)} prompts (largest score difference {worst:.2e})")
assert worst < 1e-4, worst
