#!/usr/bin/env python3
"""RoBERTa MLM pretraining with HF `Trainer` on `pytorrent pack` shards, on one or many GPUs.

The same objective and optimiser as `pytorrent pretrain` (dynamic masking 15 % 80/10/10, or
the shards' static labels; AdamW β = (0.9, 0.98), ε = 1e-6, weight decay 0.01 without biases
and LayerNorm weights; linear warm-up and decay; clipping at 1.0), for runs larger than one
machine. Under `accelerate launch` or `torchrun` the Trainer runs DDP: each process reads
its share of the rows.

    # one machine, 8 GPUs
    accelerate launch --multi_gpu --num_processes 8 scripts/train/hf_mlm.py SHARDS \\
        --model-config configs/models/base.toml --out runs/base --max-steps 100000 \\
        --batch-size 32 --lr 5e-4 --warmup-steps 6000 --bf16
    # a few steps on the CPU (a check that the recipe runs)
    python scripts/train/hf_mlm.py SHARDS --model-config configs/models/tiny.toml \\
        --out /tmp/hf-run --max-steps 3 --batch-size 4 --cpu

SHARDS is a pack output folder: train/ (and valid/) holding npy shards (shard-*.npy, with
labels-*.npy / attention_mask-*.npy when present) or Parquet shards (shard-*.parquet, read
with `datasets`). The tokenizer is the one named by train/manifest.json (or --tokenizer). The
model config is one of configs/models/*.toml, or --init DIR continues a checkpoint (ours or
any RoBERTa). The result is a transformers checkpoint in --out.
"""
import argparse
import glob
import json
import os
import tomllib

import numpy as np
import torch
from transformers import (AutoTokenizer, DataCollatorForLanguageModeling, RobertaConfig,
                          RobertaForMaskedLM, Trainer, TrainingArguments)


class NpyRows(torch.utils.data.Dataset):
    """Rows of a partition's npy shards, memory-mapped (nothing is loaded up front)."""

    def __init__(self, folder):
        self.ids = [np.load(p, mmap_mode="r") for p in sorted(glob.glob(f"{folder}/shard-*.npy"))]
        self.labels = [np.load(p, mmap_mode="r") for p in sorted(glob.glob(f"{folder}/labels-*.npy"))]
        self.mask = [np.load(p, mmap_mode="r") for p in sorted(glob.glob(f"{folder}/attention_mask-*.npy"))]
        self.starts = np.cumsum([0] + [len(a) for a in self.ids])

    def __len__(self):
        return int(self.starts[-1])

    def __getitem__(self, i):
        s = int(np.searchsorted(self.starts, i, side="right") - 1)
        r = i - int(self.starts[s])
        item = {"input_ids": torch.tensor(np.asarray(self.ids[s][r], dtype=np.int64))}
        if self.labels:
            item["labels"] = torch.tensor(np.asarray(self.labels[s][r], dtype=np.int64))
        if self.mask:
            item["attention_mask"] = torch.tensor(np.asarray(self.mask[s][r], dtype=np.int64))
        return item


def partition(folder):
    if glob.glob(f"{folder}/shard-*.parquet"):
        import datasets
        return datasets.load_dataset("parquet", data_files=sorted(glob.glob(f"{folder}/shard-*.parquet")),
                                     split="train").with_format("torch")
    return NpyRows(folder)


def model_config(path, tok):
    spec = tomllib.load(open(path, "rb"))
    return RobertaConfig(
        vocab_size=len(tok), hidden_size=spec["hidden"], num_hidden_layers=spec["layers"],
        num_attention_heads=spec["heads"], intermediate_size=spec["intermediate"],
        max_position_embeddings=spec["max_positions"] + tok.pad_token_id + 1, type_vocab_size=1,
        hidden_dropout_prob=spec.get("hidden_dropout", 0.1),
        attention_probs_dropout_prob=spec.get("attention_dropout", 0.1),
        layer_norm_eps=spec.get("layer_norm_eps", 1e-5), initializer_range=spec.get("initializer_range", 0.02),
        pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("shards")
    ap.add_argument("--out", required=True)
    ap.add_argument("--model-config")
    ap.add_argument("--init")
    ap.add_argument("--tokenizer")
    ap.add_argument("--max-steps", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=32, help="rows per device per micro-batch")
    ap.add_argument("--grad-accum", type=int, default=1)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--warmup-steps", type=int)
    ap.add_argument("--eval-every", type=int)
    ap.add_argument("--eval-rows", type=int, default=1000, help="validation rows (the first of valid/)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--cpu", action="store_true")
    a = ap.parse_args()
    manifest = json.load(open(f"{a.shards}/train/manifest.json"))
    tok_spec = a.tokenizer or os.path.dirname(manifest["tokenizer"].get("file") or manifest["tokenizer"]["vocab"])
    tok = AutoTokenizer.from_pretrained(tok_spec)
    if a.init:
        model = RobertaForMaskedLM.from_pretrained(a.init)
    elif a.model_config:
        torch.manual_seed(a.seed)
        model = RobertaForMaskedLM(model_config(a.model_config, tok))
    else:
        ap.error("give --model-config or --init")
    train = partition(f"{a.shards}/train")
    valid = partition(f"{a.shards}/valid") if os.path.exists(f"{a.shards}/valid/manifest.json") else None
    if valid is not None:
        valid = torch.utils.data.Subset(valid, range(min(a.eval_rows, len(valid))))
    static = bool(manifest.get("static_mask"))
    eval_every = a.eval_every or max(1, a.max_steps // 10)
    args = TrainingArguments(
        output_dir=a.out, max_steps=a.max_steps, per_device_train_batch_size=a.batch_size,
        per_device_eval_batch_size=a.batch_size, gradient_accumulation_steps=a.grad_accum,
        learning_rate=a.lr, warmup_steps=a.warmup_steps if a.warmup_steps is not None else a.max_steps // 10,
        weight_decay=0.01, adam_beta1=0.9, adam_beta2=0.98, adam_epsilon=1e-6, max_grad_norm=1.0,
        lr_scheduler_type="linear", logging_steps=max(1, eval_every // 10),
        eval_strategy="steps" if valid is not None else "no", eval_steps=eval_every,
        save_strategy="steps", save_steps=eval_every, save_total_limit=2, seed=a.seed,
        bf16=a.bf16, use_cpu=a.cpu, report_to=[], dataloader_num_workers=0 if a.cpu else 4,
    )
    collator = None if static else DataCollatorForLanguageModeling(tok, mlm_probability=0.15)
    trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=valid, data_collator=collator)
    trainer.train()
    trainer.save_model(a.out)
    tok.save_pretrained(a.out)
    print(f"saved {a.out}")


if __name__ == "__main__":
    main()
