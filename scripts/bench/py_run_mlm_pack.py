#!/usr/bin/env python3
"""The `transformers` `run_mlm.py` data path, as a benchmark reference for `pytorrent pack`.

Exactly the steps of `examples/pytorch/language-modeling/run_mlm.py` without `--line_by_line`:
`datasets.load_dataset("json")` → `.map(tokenize_function, batched=True, num_proc=N)` with
`return_special_tokens_mask=True` → `.map(group_texts, batched=True, num_proc=N)` (blocks of
--seq-len, remainder dropped per 1000-row batch). The result lives in the datasets cache
(Arrow files), which is what a training run then reads.

Usage: py_run_mlm_pack.py CORPUS.jsonl --tokenizer DIR --cache DIR [--seq-len 512] [--num-proc 2]
"""
import argparse
import os
import sys
from itertools import chain


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus")
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--field", default="code")
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--num-proc", type=int, default=2)
    a = ap.parse_args()
    from datasets import load_dataset
    from transformers import AutoTokenizer

    raw = load_dataset("json", data_files={"train": a.corpus}, cache_dir=a.cache)
    tokenizer = AutoTokenizer.from_pretrained(a.tokenizer)
    column_names = list(raw["train"].features)

    def tokenize_function(examples):
        return tokenizer(examples[a.field], return_special_tokens_mask=True)

    tokenized = raw.map(tokenize_function, batched=True, num_proc=a.num_proc, remove_columns=column_names,
                        load_from_cache_file=False, desc="Running tokenizer on every text in dataset")
    max_seq_length = a.seq_len

    def group_texts(examples):
        concatenated = {k: list(chain(*examples[k])) for k in examples.keys()}
        total_length = len(concatenated[list(examples.keys())[0]])
        total_length = (total_length // max_seq_length) * max_seq_length
        return {k: [t[i: i + max_seq_length] for i in range(0, total_length, max_seq_length)]
                for k, t in concatenated.items()}

    grouped = tokenized.map(group_texts, batched=True, num_proc=a.num_proc, load_from_cache_file=False,
                            desc=f"Grouping texts in chunks of {max_seq_length}")
    print(f"{len(grouped['train'])} blocks of {max_seq_length}", file=sys.stderr)


if __name__ == "__main__":
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    main()
