"""Fill-mask benchmark helpers (run in a venv with torch and transformers).

    py_fill_mask.py prompts CORPUS MODEL_DIR N MAX_TOKENS SEED OUT.jsonl
        The first N records' `code` (of a PyTorrent corpus), each cut to its first lines that
        fit MAX_TOKENS tokens of MODEL_DIR's tokenizer, with one identifier (drawn with SEED)
        replaced by the tokenizer's mask token: one JSON string a line, what both sides read.
    py_fill_mask.py pipeline MODEL_DIR PROMPTS.jsonl OUT.json THREADS BATCH TOP_K
        transformers' fill-mask pipeline over the prompts, as its users run it, writing the
        candidates as `pytorrent fill-mask --json` does (a list of {"masks": [[...]]}).
    py_fill_mask.py make-roberta-base TOKENIZER_DIR OUT_DIR
        A roberta-base-sized RobertaForMaskedLM (12 layers, hidden 768), random weights (seed
        0), with TOKENIZER_DIR's tokenizer (its vocabulary size) and 512-token inputs.
    py_fill_mask.py make-bert SENTENCE_MODEL_DIR OUT_DIR
        A BertForMaskedLM from a BERT encoder (e.g. all-MiniLM-L6-v2) and a random MLM head
        (seed 0), with its WordPiece tokenizer.
    py_fill_mask.py compare OURS.json THEIRS.json
        Top-1 agreement and the largest score difference of the top candidates.
"""
import glob
import gzip
import json
import os
import random
import re
import sys
import time

IDENT = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\b")


def records(corpus):
    for f in sorted(glob.glob(os.path.join(corpus, "**", "*.jsonl*"), recursive=True)):
        op = gzip.open if f.endswith(".gz") else open
        with op(f, "rt", encoding="utf-8") as fh:
            for line in fh:
                yield json.loads(line)


def prompts(corpus, model, n, max_tokens, seed, out):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model)
    rng = random.Random(seed)
    kept = []
    for rec in records(corpus):
        code = rec.get("code") or ""
        text = ""
        for line in code.splitlines(keepends=True):
            if len(tok(text + line)["input_ids"]) > max_tokens - 4:
                break
            text += line
        idents = list(IDENT.finditer(text))
        if len(idents) < 2:
            continue
        m = idents[rng.randrange(len(idents))]
        kept.append(text[: m.start()] + tok.mask_token + text[m.end():])
        if len(kept) == n:
            break
    with open(out, "w", encoding="utf-8") as fh:
        for p in kept:
            fh.write(json.dumps(p) + "\n")
    print(f"{len(kept)} prompts of up to {max_tokens} tokens")


def pipeline(model, prompts_path, out, threads, batch, top_k):
    import torch
    from transformers import pipeline as make

    torch.set_num_threads(int(threads))
    texts = [json.loads(l) for l in open(prompts_path, encoding="utf-8")]
    # f32 as ours computes: transformers 5 otherwise loads the checkpoint's stored dtype
    # (f16 for the shipped models), slower and less precise on a CPU.
    fill = make(
        "fill-mask", model=model, tokenizer=model, device=-1, top_k=int(top_k), dtype=torch.float32
    )
    warm = time.perf_counter()
    with torch.inference_mode():
        results = fill(texts, batch_size=int(batch))
    # The pipeline's own time (its load and start-up left out), for the steady state.
    print(f"pipeline call {time.perf_counter() - warm:.3f} s", file=sys.stderr)
    rows = []
    for r in results:
        cands = r if isinstance(r[0], dict) else r[0]
        rows.append({"masks": [[{"score": c["score"], "token": c["token"]} for c in cands]]})
    json.dump(rows, open(out, "w"))


def copy_tokenizer(src, out, max_len=None):
    import shutil

    for name in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                 "vocab.json", "merges.txt", "vocab.txt"]:
        if os.path.exists(os.path.join(src, name)):
            shutil.copy(os.path.join(src, name), os.path.join(out, name))
    if max_len:
        p = os.path.join(out, "tokenizer_config.json")
        cfg = json.load(open(p))
        cfg["model_max_length"] = max_len
        json.dump(cfg, open(p, "w"), indent=2)


def make_roberta_base(tokenizer, out):
    import torch
    from transformers import AutoTokenizer, RobertaConfig, RobertaForMaskedLM

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(tokenizer)
    cfg = RobertaConfig(vocab_size=len(tok), hidden_size=768, num_hidden_layers=12,
                        num_attention_heads=12, intermediate_size=3072,
                        max_position_embeddings=514, type_vocab_size=1,
                        pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                        eos_token_id=tok.eos_token_id)
    RobertaForMaskedLM(cfg).save_pretrained(out)
    copy_tokenizer(tokenizer, out, 512)


def make_bert(encoder, out):
    import torch
    from transformers import BertForMaskedLM

    torch.manual_seed(0)
    BertForMaskedLM.from_pretrained(encoder).save_pretrained(out)
    copy_tokenizer(encoder, out)


def compare(ours, theirs):
    a, b = json.load(open(ours)), json.load(open(theirs))
    assert len(a) == len(b), (len(a), len(b))
    same, worst = 0, 0.0
    for x, y in zip(a, b):
        cx, cy = x["masks"][0], y["masks"][0]
        same += cx[0]["token"] == cy[0]["token"]
        worst = max(worst, abs(cx[0]["score"] - cy[0]["score"]))
    print(f"top-1 agreement {same}/{len(a)}, largest top-1 score difference {worst:.1e}")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "prompts":
        prompts(args[0], args[1], int(args[2]), int(args[3]), int(args[4]), args[5])
    elif cmd == "pipeline":
        pipeline(*args)
    elif cmd == "make-roberta-base":
        make_roberta_base(*args)
    elif cmd == "make-bert":
        make_bert(*args)
    elif cmd == "compare":
        compare(*args)
    else:
        sys.exit(__doc__)
