#!/usr/bin/env python3
"""Helpers of scripts/gpu/device-check.sh: comparisons that need only the standard library,
and the transformers/torch references, which run only where torch is installed.

    check.py has-torch                         exit 0 when torch + transformers import
    check.py text N WORDS OUT.jsonl            N deterministic code-like {"text"} lines
    check.py npydiff A.npy B.npy               max |a - b| of two float32 arrays (JSON)
    check.py fillmaskdiff A.json B.json        top-1 agreement and max score difference
    check.py hf-fillmask MODEL TEXTS OUT.json DEVICE DTYPE
    check.py hf-embed MODEL TEXTS OUT.npy DEVICE DTYPE MAXLEN
    check.py hf-embed-bench MODEL BATCH SEQ RUNS DEVICE DTYPE
    check.py matmul-peak DEVICE DTYPE
    check.py hf-pretrain SHARDS MODEL BATCH STEPS WARMUP DEVICE DTYPE
    check.py make-bert OUT LAYERS HIDDEN HEADS INTER VOCAB   a random BERT (MiniLM's shape)
    check.py table OUT_DIR                     the summary table of results.jsonl

Every command prints one JSON object (results) or writes the file it names.
"""
import json
import math
import os
import struct
import sys
import time


def emit(obj):
    print(json.dumps(obj))


def read_npy_f32(path):
    """A float32 .npy file as (shape, flat list), without numpy."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:6] != b"\x93NUMPY":
        raise SystemExit(f"{path}: not an npy file")
    major = data[6]
    if major == 1:
        hlen = struct.unpack("<H", data[8:10])[0]
        start = 10
    else:
        hlen = struct.unpack("<I", data[8:12])[0]
        start = 12
    header = data[start:start + hlen].decode("latin1")
    if "'<f4'" not in header:
        raise SystemExit(f"{path}: not float32 ({header.strip()})")
    shape_text = header.split("'shape':")[1].split("(")[1].split(")")[0]
    shape = tuple(int(x) for x in shape_text.split(",") if x.strip())
    body = data[start + hlen:]
    n = len(body) // 4
    return shape, struct.unpack(f"<{n}f", body)


def write_npy_f32(path, rows):
    dim = len(rows[0]) if rows else 0
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % (len(rows), dim)
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + " " * pad + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1"))
        for r in rows:
            f.write(struct.pack(f"<{dim}f", *r))


def cmd_text(n, words, out):
    """Deterministic code-like texts (a linear congruential generator), `words` words each."""
    vocab = ["def", "return", "self", "value", "items", "for", "in", "if", "else", "None",
             "import", "class", "data", "result", "index", "(", ")", ":", "=", "+", "1", "0",
             "path", "name", "len", "range", "append", "key", "dict", "list"]
    x = 12345
    with open(out, "w") as f:
        for _ in range(int(n)):
            toks = []
            for _ in range(int(words)):
                x = (x * 6364136223846793005 + 1442695040888963407) % (1 << 64)
                toks.append(vocab[(x >> 33) % len(vocab)])
            f.write(json.dumps({"text": " ".join(toks)}) + "\n")


def cmd_npydiff(a, b):
    sa, va = read_npy_f32(a)
    sb, vb = read_npy_f32(b)
    if sa != sb:
        emit({"ok": False, "why": f"shapes {sa} and {sb}"})
        return
    diff = max((abs(x - y) for x, y in zip(va, vb)), default=0.0)
    finite = all(math.isfinite(v) for v in va) and all(math.isfinite(v) for v in vb)
    emit({"max_abs_diff": diff, "shape": list(sa), "finite": finite})


def cmd_fillmaskdiff(a, b):
    ja, jb = json.load(open(a)), json.load(open(b))
    same, total, diff = 0, 0, 0.0
    for ia, ib in zip(ja, jb):
        for ma, mb in zip(ia["masks"], ib["masks"]):
            total += 1
            same += ma[0]["token"] == mb[0]["token"]
            by_token = {c["token"]: c["score"] for c in mb}
            for c in ma:
                if c["token"] in by_token:
                    diff = max(diff, abs(c["score"] - by_token[c["token"]]))
    emit({"masks": total, "top1_equal": same, "max_score_diff": diff})


def torch_dtype(torch, name):
    return {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}[name]


def lines(path):
    with open(path) as f:
        return [l.rstrip("\n") for l in f if l.strip()]


def cmd_hf_fillmask(model, texts, out, device, dtype):
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(model)
    m = AutoModelForMaskedLM.from_pretrained(model, dtype=torch_dtype(torch, dtype)).to(device).eval()
    result = []
    with torch.inference_mode():
        for t in lines(texts):
            t = t.replace("<mask>", tok.mask_token)
            enc = tok(t, return_tensors="pt").to(device)
            logits = m(**enc).logits[0].float()
            masks = []
            for pos in (enc["input_ids"][0] == tok.mask_token_id).nonzero().flatten().tolist():
                probs = logits[pos].softmax(-1)
                top = probs.topk(5)
                masks.append([{"token": int(i), "score": float(s)} for s, i in zip(top.values, top.indices)])
            result.append({"text": t, "masks": masks})
    json.dump(result, open(out, "w"))


def cmd_hf_embed(model, texts, out, device, dtype, maxlen):
    import torch
    from transformers import AutoModel, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(model)
    m = AutoModel.from_pretrained(model, dtype=torch_dtype(torch, dtype)).to(device).eval()
    rows = []
    with torch.inference_mode():
        for t in lines(texts):
            enc = tok(t, return_tensors="pt", truncation=True, max_length=int(maxlen)).to(device)
            h = m(**enc).last_hidden_state[0].float()
            rows.append((h.sum(0) / h.shape[0]).tolist())
    write_npy_f32(out, rows)


def random_ids(batch, seq, vocab):
    x, rows = 42, []
    for _ in range(batch):
        row = []
        for _ in range(seq):
            x = (x * 6364136223846793005 + 1442695040888963407) % (1 << 64)
            row.append(5 + (x >> 33) % (vocab - 5))
        rows.append(row)
    return rows


def sync(torch, device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def cmd_hf_embed_bench(model, batch, seq, runs, device, dtype):
    import torch
    import transformers
    from transformers import AutoModel
    batch, seq, runs = int(batch), int(seq), int(runs)
    m = AutoModel.from_pretrained(model, dtype=torch_dtype(torch, dtype), attn_implementation="sdpa").to(device).eval()
    ids = torch.tensor(random_ids(batch, seq, m.config.vocab_size), device=device)
    mask = torch.ones_like(ids)
    times = []
    with torch.inference_mode():
        for i in range(runs + 2):
            sync(torch, device)
            t = time.perf_counter()
            h = m(input_ids=ids, attention_mask=mask).last_hidden_state
            pooled = (h * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)
            pooled.float().cpu()
            sync(torch, device)
            if i >= 2:
                times.append(time.perf_counter() - t)
    times.sort()
    med = times[len(times) // 2]
    emit({"impl": f"transformers {transformers.__version__} + torch {torch.__version__} (sdpa)",
          "batch": batch, "seq": seq, "sequences_per_s": batch / med, "median_s": med})


def cmd_matmul_peak(device, dtype):
    import torch
    n = 8192 if device.startswith("cuda") else 256
    dt = torch_dtype(torch, dtype)
    a = torch.randn(n, n, device=device, dtype=dt)
    b = torch.randn(n, n, device=device, dtype=dt)
    for _ in range(3):
        a @ b
    sync(torch, device)
    reps = 20 if device.startswith("cuda") else 3
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(torch, device)
    el = time.perf_counter() - t
    emit({"n": n, "tflops": 2 * n ** 3 * reps / el / 1e12})


def cmd_hf_pretrain(shards, model, batch, steps, warmup, device, dtype):
    import glob
    import numpy as np
    import torch
    import transformers
    from transformers import (DataCollatorForLanguageModeling, RobertaConfig, RobertaForMaskedLM,
                              AutoTokenizer, Trainer, TrainerCallback, TrainingArguments)
    batch, steps, warmup = int(batch), int(steps), int(warmup)
    arrays = [np.load(p) for p in sorted(glob.glob(f"{shards}/train/shard-*.npy"))]
    ids = np.concatenate([a.astype(np.int64) for a in arrays])

    class Rows(torch.utils.data.Dataset):
        def __len__(self):
            return len(ids)

        def __getitem__(self, i):
            return {"input_ids": torch.tensor(ids[i % len(ids)])}

    class Clock(TrainerCallback):
        def __init__(self):
            self.marks = {}

        def on_step_end(self, args, state, control, **kw):
            sync(torch, device)
            self.marks[state.global_step] = time.perf_counter()

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(model)
    m = RobertaForMaskedLM(RobertaConfig.from_pretrained(model))
    clock = Clock()
    args = TrainingArguments(
        output_dir=os.path.join(os.path.dirname(shards), "hf-trainer"), per_device_train_batch_size=batch,
        max_steps=steps, learning_rate=1e-4, warmup_steps=0, weight_decay=0.01, adam_beta2=0.98,
        adam_epsilon=1e-6, max_grad_norm=1.0, logging_steps=10 ** 9, save_strategy="no", report_to=[],
        bf16=dtype == "bf16", use_cpu=not device.startswith("cuda"), dataloader_num_workers=0,
        seed=0, data_seed=0)
    Trainer(model=m, args=args, train_dataset=Rows(),
            data_collator=DataCollatorForLanguageModeling(tok, mlm_probability=0.15),
            callbacks=[clock]).train()
    seq = ids.shape[1]
    el = clock.marks[steps] - clock.marks[warmup]
    emit({"impl": f"HF Trainer, transformers {transformers.__version__} + torch {torch.__version__}",
          "tokens_per_s": (steps - warmup) * batch * seq / el,
          "parameters": sum(p.numel() for p in m.parameters())})


def cmd_make_bert(out, layers, hidden, heads, inter, vocab):
    import torch
    from transformers import BertConfig, BertModel
    torch.manual_seed(0)
    BertModel(BertConfig(num_hidden_layers=int(layers), hidden_size=int(hidden),
                         num_attention_heads=int(heads), intermediate_size=int(inter),
                         vocab_size=int(vocab), max_position_embeddings=512)).save_pretrained(out)


def cmd_table(out):
    rows = [json.loads(l) for l in open(os.path.join(out, "results.jsonl")) if l.strip()]
    width = max([len(r["check"]) for r in rows] + [5])
    print(f"{'check':<{width}}  {'result':<8}  value")
    failed = 0
    for r in rows:
        failed += r["status"] == "FAIL"
        print(f"{r['check']:<{width}}  {r['status']:<8}  {r.get('value', '')}")
    print(f"{len(rows)} checks, {failed} failed")


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "has-torch":
        try:
            import torch  # noqa: F401
            import transformers  # noqa: F401
        except Exception:
            sys.exit(1)
        return
    {
        "text": cmd_text, "npydiff": cmd_npydiff, "fillmaskdiff": cmd_fillmaskdiff,
        "hf-fillmask": cmd_hf_fillmask, "hf-embed": cmd_hf_embed,
        "hf-embed-bench": cmd_hf_embed_bench, "matmul-peak": cmd_matmul_peak,
        "hf-pretrain": cmd_hf_pretrain, "make-bert": cmd_make_bert, "table": cmd_table,
    }[cmd](*args)


if __name__ == "__main__":
    main()
