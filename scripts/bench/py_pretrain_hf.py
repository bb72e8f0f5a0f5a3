#!/usr/bin/env python3
"""HF `Trainer` (run_mlm-style) on `pytorrent pack` npy shards, for the pretraining benchmark.

    py_pretrain_hf.py train SHARDS MODEL_DIR OUT --steps N --batch-size B --lr X --warmup W --seed S
    py_pretrain_hf.py eval SHARDS MODEL_DIR [MODEL_DIR …] --rows R --seed S

`train` starts from MODEL_DIR's config.json (the architecture `pytorrent pretrain` wrote),
with transformers' own random initialisation, trains on SHARDS/train with
`DataCollatorForLanguageModeling` (15 %, 80/10/10), AdamW β = (0.9, 0.98), ε = 1e-6, weight
decay 0.01, linear warm-up and decay, clipping at 1.0, on the CPU, and writes the loss of every
step to OUT/log.csv (step,loss) and tokens/s (training alone) to OUT/result.json.
`eval` gives every model the same masked validation rows (the first R of SHARDS/valid, masks
drawn once with seed S) and prints their mean masked-token loss: one judge for both trainers.
"""
import argparse
import glob
import json
import os
import time

import numpy as np
import torch
from transformers import (AutoTokenizer, DataCollatorForLanguageModeling, RobertaConfig,
                          RobertaForMaskedLM, Trainer, TrainerCallback, TrainingArguments)


def rows(folder):
    arrays = [np.load(p, mmap_mode="r") for p in sorted(glob.glob(f"{folder}/shard-*.npy"))]
    return np.concatenate([np.asarray(a, dtype=np.int64) for a in arrays])


class Rows(torch.utils.data.Dataset):
    def __init__(self, ids):
        self.ids = ids

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": torch.tensor(self.ids[i])}


class Log(TrainerCallback):
    def __init__(self, path):
        self.f = open(path, "w")
        self.f.write("step,loss\n")

    def on_log(self, args, state, control, logs=None, **kw):
        if logs and "loss" in logs:
            self.f.write(f"{state.global_step},{logs['loss']}\n")
            self.f.flush()


def train(a):
    torch.manual_seed(a.seed)
    tok = AutoTokenizer.from_pretrained(a.model)
    config = RobertaConfig.from_pretrained(a.model)
    model = RobertaForMaskedLM(config)
    ids = rows(f"{a.shards}/train")
    os.makedirs(a.out, exist_ok=True)
    args = TrainingArguments(
        output_dir=a.out, max_steps=a.steps, per_device_train_batch_size=a.batch_size,
        learning_rate=a.lr, warmup_steps=a.warmup, weight_decay=0.01, adam_beta1=0.9,
        adam_beta2=0.98, adam_epsilon=1e-6, max_grad_norm=1.0, lr_scheduler_type="linear",
        logging_steps=1, save_strategy="no", report_to=[], seed=a.seed, use_cpu=True,
        dataloader_num_workers=0, disable_tqdm=True,
    )
    collator = DataCollatorForLanguageModeling(tok, mlm_probability=0.15)
    trainer = Trainer(model=model, args=args, train_dataset=Rows(ids), data_collator=collator,
                      callbacks=[Log(f"{a.out}/log.csv")])
    t = time.perf_counter()
    trainer.train()
    secs = time.perf_counter() - t
    tokens = a.steps * a.batch_size * ids.shape[1]
    model.save_pretrained(f"{a.out}/model")
    tok.save_pretrained(f"{a.out}/model")
    json.dump({"seconds": secs, "tokens": tokens, "tokens_per_s": tokens / secs,
               "threads": torch.get_num_threads()}, open(f"{a.out}/result.json", "w"))
    print(f"HF Trainer: {tokens} tokens in {secs:.1f} s = {tokens / secs:.0f} tokens/s "
          f"({torch.get_num_threads()} threads)")


@torch.no_grad()
def evaluate(a):
    tok = AutoTokenizer.from_pretrained(a.models[0])
    ids = rows(f"{a.shards}/valid")[: a.rows]
    collator = DataCollatorForLanguageModeling(tok, mlm_probability=0.15)
    torch.manual_seed(a.seed)
    batches = [collator([{"input_ids": torch.tensor(r)} for r in ids[i:i + 32]])
               for i in range(0, len(ids), 32)]
    out = {}
    for m in a.models:
        model = RobertaForMaskedLM.from_pretrained(m).eval()
        total, n = 0.0, 0
        for b in batches:
            logits = model(input_ids=b["input_ids"]).logits
            sel = b["labels"] != -100
            total += torch.nn.functional.cross_entropy(logits[sel], b["labels"][sel], reduction="sum").item()
            n += int(sel.sum())
        out[m] = total / n
        print(f"{m}: valid masked-token loss {total / n:.4f} over {n} tokens")
    print(json.dumps(out))


ap = argparse.ArgumentParser()
sub = ap.add_subparsers(dest="cmd", required=True)
t = sub.add_parser("train")
t.add_argument("shards")
t.add_argument("model")
t.add_argument("out")
t.add_argument("--steps", type=int, required=True)
t.add_argument("--batch-size", type=int, required=True)
t.add_argument("--lr", type=float, required=True)
t.add_argument("--warmup", type=int, required=True)
t.add_argument("--seed", type=int, default=0)
e = sub.add_parser("eval")
e.add_argument("shards")
e.add_argument("models", nargs="+")
e.add_argument("--rows", type=int, default=1000)
e.add_argument("--seed", type=int, default=0)
a = ap.parse_args()
train(a) if a.cmd == "train" else evaluate(a)
