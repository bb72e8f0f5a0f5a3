#!/usr/bin/env python3
"""Reference fixture for the contrastive fine-tuning exactness test (tests/fixtures/finetune/).

Builds a tiny RoBERTa encoder (dropout 0) as a sentence-transformers model (Transformer +
mean Pooling) and records, for two fixed batches of token ids with padding:

- `init.safetensors`: the encoder's parameters under `RobertaModel`'s names (the starting point);
- `expected.safetensors`:
  - `a.loss`, `a.grad.NAME`: `MultipleNegativesRankingLoss` (scale 20, cosine) on batch A,
    (anchor, positive) pairs, from the initial weights;
  - `a_sym.loss`, `a_sym.grad.NAME`: the symmetric form (directions query_to_doc and
    doc_to_query, per-direction softmax) on batch A, from the initial weights;
  - `b.loss`, `b.grad.NAME`: the plain loss on batch B, (anchor, positive, negative) triplets,
    after one AdamW step on batch A, done as HF `Trainer` does it (no decay for biases and
    LayerNorm weights, linear warm-up/decay, global-norm clipping);
  - `step2.NAME`: every parameter after a second step, on batch B;
- `batches.json`: the batches and the hyperparameters.

Needs torch, transformers, sentence-transformers, tokenizers, safetensors (the venv of
scripts/interop/make_torch_venv.sh); CI reads only the files.
Usage: make_finetune_fixtures.py OUT_DIR
"""
import json
import os
import sys
import tempfile

import torch
from safetensors.torch import save_file
from sentence_transformers import SentenceTransformer, models
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from transformers import PreTrainedTokenizerFast, RobertaConfig, RobertaModel, get_linear_schedule_with_warmup

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)

V = 64
config = RobertaConfig(
    vocab_size=V, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
    max_position_embeddings=34, type_vocab_size=1, layer_norm_eps=1e-5, hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0, pad_token_id=1, bos_token_id=0, eos_token_id=2,
)
encoder = RobertaModel(config)
with torch.no_grad():
    for name, p in encoder.named_parameters():
        if "LayerNorm" in name or name.endswith("bias"):
            p.add_(0.1 * torch.randn_like(p))

# A word-level tokenizer of V tokens: the Transformer module needs one to load, the batches
# below are ids already.
vocab = {t: i for i, t in enumerate(["<s>", "<pad>", "</s>", "<unk>"] + [f"w{i}" for i in range(4, V - 1)] + ["<mask>"])}
tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(WordLevel(vocab, unk_token="<unk>")),
                              bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
                              mask_token="<mask>")
g = torch.Generator().manual_seed(1)


def column(lengths, S):
    """Rows of <s> w… </s> of the given lengths, padded to S."""
    ids = torch.full((len(lengths), S), 1)
    att = torch.zeros((len(lengths), S), dtype=torch.long)
    for r, n in enumerate(lengths):
        ids[r, :n] = torch.randint(4, V - 1, (n,), generator=g)
        ids[r, 0], ids[r, n - 1] = 0, 2
        att[r, :n] = 1
    return {"input_ids": ids, "attention_mask": att}


batch_a = [column([7, 5, 9, 4], 9), column([12, 16, 10, 13], 16)]
batch_b = [column([6, 8, 5], 8), column([11, 9, 14], 14), column([10, 13, 12], 13)]
hyper = dict(lr=1e-2, betas=[0.9, 0.999], eps=1e-6, weight_decay=0.01, warmup_steps=0, total_steps=4,
             max_grad_norm=1.0, scale=20.0)

with tempfile.TemporaryDirectory() as d:
    encoder.save_pretrained(d)
    tok.save_pretrained(d)
    transformer = models.Transformer(d, max_seq_length=32)
model = SentenceTransformer(modules=[transformer, models.Pooling(32, "mean")])
model.train()
params = {n.removeprefix("0.auto_model.").removeprefix("0.model."): p for n, p in model.named_parameters()}
trained = {n: p for n, p in params.items() if not n.startswith("pooler.")}
save_file({n: p.detach().clone().contiguous() for n, p in params.items()}, f"{out}/init.safetensors")

mnrl = MultipleNegativesRankingLoss(model, scale=hyper["scale"])
sym = MultipleNegativesRankingLoss(model, scale=hyper["scale"], directions=("query_to_doc", "doc_to_query"),
                                   partition_mode="per_direction")
labels = None
expected = {}


def record(prefix, loss_fn, batch):
    model.zero_grad()
    loss = loss_fn(batch, labels)
    loss.backward()
    expected[f"{prefix}.loss"] = loss.detach().reshape(1).clone()
    for n, p in trained.items():
        if p.grad is None:
            raise SystemExit(f"no gradient for {n}")
        expected[f"{prefix}.grad.{n}"] = p.grad.detach().clone()
    return loss


record("a_sym", sym, batch_a)
no_decay = [n for n in trained if n.endswith("bias") or "LayerNorm" in n]
groups = [
    {"params": [p for n, p in trained.items() if n not in no_decay], "weight_decay": hyper["weight_decay"]},
    {"params": [p for n, p in trained.items() if n in no_decay], "weight_decay": 0.0},
]
opt = torch.optim.AdamW(groups, lr=hyper["lr"], betas=tuple(hyper["betas"]), eps=hyper["eps"])
sched = get_linear_schedule_with_warmup(opt, hyper["warmup_steps"], hyper["total_steps"])
norms, lrs = [], []
for prefix, batch in [("a", batch_a), ("b", batch_b)]:
    record(prefix, mnrl, batch)
    lrs.append(sched.get_last_lr()[0])
    norms.append(float(torch.nn.utils.clip_grad_norm_(list(trained.values()), hyper["max_grad_norm"])))
    opt.step()
    sched.step()
for n, p in trained.items():
    expected[f"step2.{n}"] = p.detach().clone()
save_file({k: v.contiguous() for k, v in expected.items()}, f"{out}/expected.safetensors")
config.to_json_file(f"{out}/config.json")


def plain(batch):
    return [{k: col[k].tolist() for k in ("input_ids", "attention_mask")} for col in batch]


with open(f"{out}/batches.json", "w") as f:
    json.dump(dict(a=plain(batch_a), b=plain(batch_b), hyper=hyper, no_decay=sorted(no_decay),
                   grad_norms=norms, lrs=lrs), f)
print(f"losses a {float(expected['a.loss']):.6f} a_sym {float(expected['a_sym.loss']):.6f} "
      f"b {float(expected['b.loss']):.6f}; grad norms {norms}; lrs {lrs}")
