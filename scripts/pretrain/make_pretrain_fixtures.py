#!/usr/bin/env python3
"""Reference fixture for the trainer's exactness tests (tests/fixtures/pretrain/).

Builds a tiny `RobertaForMaskedLM` (dropout 0) in PyTorch + transformers, one fixed batch with
fixed masks and one padded row, and records:

- `init.safetensors`: every parameter, by transformers' names (the starting point);
- `expected.safetensors`: the loss, every parameter's gradient (`grad.NAME`), the logits of
  the batch, and every parameter after 3 AdamW steps (`step3.NAME`), done as HF `Trainer`
  does them: parameter groups without weight decay for biases and LayerNorm weights, linear
  warm-up then linear decay (`get_linear_schedule_with_warmup`, stepped after the optimiser),
  global-norm clipping (`clip_grad_norm_`);
- `batch.json`: the batch and the hyperparameters; `saved_keys.json`: the tensor names
  `save_pretrained` writes (what our checkpoints must hold).

Needs torch, transformers and safetensors (a throw-away venv); CI reads only the files.
Usage: make_pretrain_fixtures.py OUT_DIR
"""
import json
import os
import sys
import tempfile

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import RobertaConfig, RobertaForMaskedLM, get_linear_schedule_with_warmup

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)

config = RobertaConfig(
    vocab_size=64,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    max_position_embeddings=34,
    type_vocab_size=1,
    layer_norm_eps=1e-5,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
    pad_token_id=1,
    bos_token_id=0,
    eos_token_id=2,
)
model = RobertaForMaskedLM(config)
# Random LayerNorm and bias values, so that their gradients and updates are tested on more
# than ones and zeros.
with torch.no_grad():
    for name, p in model.named_parameters():
        if "LayerNorm" in name or "layer_norm" in name or name.endswith("bias"):
            p.add_(0.1 * torch.randn_like(p))
model.train()

B, S, MASK = 3, 12, 63
g = torch.Generator().manual_seed(1)
ids = torch.randint(3, 63, (B, S), generator=g)
ids[:, 0] = 0
ids[:, -1] = 2
attention = torch.ones(B, S, dtype=torch.long)
# Row 2 holds 8 real tokens, then padding.
ids[2, 7] = 2
ids[2, 8:] = 1
attention[2, 8:] = 0
labels = torch.full((B, S), -100)
for r, positions in enumerate([[1, 4, 5, 9], [2, 3, 10], [1, 6]]):
    for p in positions:
        labels[r, p] = ids[r, p]
        ids[r, p] = MASK if p % 2 else ids[r, p]  # some masked, some left as they are

params = dict(model.named_parameters())
save_file({n: p.detach().clone().contiguous() for n, p in params.items()}, f"{out}/init.safetensors")

hyper = dict(lr=5e-3, betas=[0.9, 0.98], eps=1e-6, weight_decay=0.01, warmup_steps=2,
             total_steps=10, max_grad_norm=0.5, steps=3)

expected = {}
outputs = model(input_ids=ids, attention_mask=attention, labels=labels)
expected["loss"] = outputs.loss.detach().reshape(1).clone()
expected["logits"] = outputs.logits.detach().clone()
outputs.loss.backward()
for n, p in params.items():
    expected[f"grad.{n}"] = p.grad.detach().clone()
model.zero_grad()

no_decay = [n for n in params if n.endswith("bias") or "LayerNorm" in n or "layer_norm" in n]
groups = [
    {"params": [p for n, p in params.items() if n not in no_decay], "weight_decay": hyper["weight_decay"]},
    {"params": [p for n, p in params.items() if n in no_decay], "weight_decay": 0.0},
]
opt = torch.optim.AdamW(groups, lr=hyper["lr"], betas=tuple(hyper["betas"]), eps=hyper["eps"])
sched = get_linear_schedule_with_warmup(opt, hyper["warmup_steps"], hyper["total_steps"])
losses, norms, lrs = [], [], []
for _ in range(hyper["steps"]):
    opt.zero_grad()
    loss = model(input_ids=ids, attention_mask=attention, labels=labels).loss
    loss.backward()
    lrs.append(sched.get_last_lr()[0])
    norms.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(), hyper["max_grad_norm"])))
    opt.step()
    sched.step()
    losses.append(float(loss))
assert all(n > hyper["max_grad_norm"] for n in norms), f"clipping must be exercised: {norms}"
for n, p in params.items():
    expected[f"step3.{n}"] = p.detach().clone()
save_file({k: v.contiguous() for k, v in expected.items()}, f"{out}/expected.safetensors")

with open(f"{out}/batch.json", "w") as f:
    json.dump(dict(input_ids=ids.tolist(), attention_mask=attention.tolist(), labels=labels.tolist(),
                   hyper=hyper, no_decay=sorted(no_decay), losses=losses, grad_norms=norms, lrs=lrs),
              f, indent=1)
config.to_json_file(f"{out}/config.json")

with tempfile.TemporaryDirectory() as d:
    model.save_pretrained(d)
    with safe_open(f"{d}/model.safetensors", "pt") as st:
        keys = sorted(st.keys())
with open(f"{out}/saved_keys.json", "w") as f:
    json.dump(keys, f, indent=1)
print(f"loss {float(expected['loss']):.6f}, losses {losses}, grad norms {norms}, lrs {lrs}")
