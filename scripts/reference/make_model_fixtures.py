#!/usr/bin/env python3
"""Builds tiny random checkpoints with `transformers` + `torch` and what `transformers`
computes on them, as fixtures for the parity tests of `pytorrent-model`.

Needs torch and transformers (several GB): install them in a throw-away venv, not in CI.

    target/release/pytorrent tokenizer train data-samples/corpus --vocab-size 512 --out /tmp/tok512
    python scripts/reference/make_model_fixtures.py --tokenizer /tmp/tok512 --out tests/fixtures/models

Checkpoints (hidden 48, 4 heads of width 12, 2 layers, 66 positions, vocab of the tokenizer;
weights drawn with a larger spread than transformers' init so that scores are well apart):
- roberta-tied: RobertaForMaskedLM, decoder tied to the word embeddings, random lm_head.bias,
  layer_norm_eps 1e-5, model.safetensors (transformers 5.x config);
- roberta-untied: RobertaForMaskedLM with its own decoder, layer_norm_eps 1e-12,
  pytorch_model.bin, config rewritten as transformers 4.x writes it;
- roberta-bare: RobertaModel (no MLM head, with a pooler), as the published PyTorrent model;
- bert: BertForMaskedLM ("bert." prefix, cls.predictions head, positions from 0).

reference.json per checkpoint: inputs, ids, last hidden states of a padded batch, logits at
the mask positions, the fill-mask pipeline's top-5 (and with targets), and pooled embeddings
(mean, cls, pooler where present; raw and L2-normalised) with truncation at 64 tokens.
"""
import argparse
import json
import os
import shutil

TEXTS = [
    "def add(a, b):\n    return a <mask> b",
    "import <mask>\n\ndef main():\n    <mask>.run()",
    "class Foo(object):\n    def __init__(self):\n        self.<mask> = None",
]
LONG = "def long_function(argument):\n" + "".join(f"    value_{i} = argument + {i}\n" for i in range(40)) + "    return <mask>"
TOKENIZER_FILES = ["tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"]


def floats(t):
    return [round(float(x), 7) for x in t.reshape(-1).tolist()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    import torch
    import transformers
    from transformers import (AutoTokenizer, BertConfig, BertForMaskedLM, RobertaConfig, RobertaForMaskedLM,
                              RobertaModel, pipeline)

    vocab = len(json.load(open(os.path.join(a.tokenizer, "vocab.json"))))
    common = dict(vocab_size=vocab, hidden_size=48, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=96, max_position_embeddings=66, pad_token_id=1, bos_token_id=0,
                  eos_token_id=2)
    specs = [
        ("roberta-tied", lambda: RobertaForMaskedLM(RobertaConfig(**common, type_vocab_size=1, layer_norm_eps=1e-5,
                                                                   tie_word_embeddings=True)), "safetensors"),
        ("roberta-untied", lambda: RobertaForMaskedLM(RobertaConfig(**common, type_vocab_size=1, layer_norm_eps=1e-12,
                                                                     tie_word_embeddings=False)), "bin"),
        ("roberta-bare", lambda: RobertaModel(RobertaConfig(**common, type_vocab_size=1, layer_norm_eps=1e-12)),
         "safetensors"),
        ("bert", lambda: BertForMaskedLM(BertConfig(**{**common, "max_position_embeddings": 64}, type_vocab_size=2,
                                                     layer_norm_eps=1e-12)), "safetensors"),
    ]
    for i, (name, make, fmt) in enumerate(specs):
        torch.manual_seed(1000 + i)
        model = make().eval()
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(0.0, 0.3)
        folder = os.path.join(a.out, name)
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        if fmt == "safetensors":
            model.save_pretrained(folder)
        else:
            model.config.save_pretrained(folder)
            torch.save(model.state_dict(), os.path.join(folder, "pytorch_model.bin"))
            cfg = json.load(open(os.path.join(folder, "config.json")))
            cfg.pop("dtype", None)
            cfg.update({"position_embedding_type": "absolute", "torch_dtype": "float32",
                        "transformers_version": "4.46.3", "use_cache": True})
            json.dump(cfg, open(os.path.join(folder, "config.json"), "w"), indent=2, sort_keys=True)
        for f in TOKENIZER_FILES:
            shutil.copy(os.path.join(a.tokenizer, f), folder)
        tok = AutoTokenizer.from_pretrained(folder)
        base = getattr(model, "roberta", None) or getattr(model, "bert", None) or model
        max_len = model.config.max_position_embeddings - (2 if name.startswith("roberta") else 0)
        ref = {"transformers": transformers.__version__, "torch": torch.__version__, "texts": TEXTS, "long": LONG,
               "max_tokens": max_len}
        with torch.no_grad():
            enc = tok(TEXTS, padding=True, return_tensors="pt")
            hidden = base(**enc).last_hidden_state
            ref["ids"] = [ids[: int(m.sum())] for ids, m in zip(enc["input_ids"].tolist(), enc["attention_mask"])]
            ref["hidden"] = [floats(hidden[j, : len(ref["ids"][j])]) for j in range(len(TEXTS))]
            if name != "roberta-bare":
                logits = model(**enc).logits
                where = (enc["input_ids"] == tok.mask_token_id).nonzero().tolist()
                ref["mask_logits"] = [{"row": r, "position": p, "logits": floats(logits[r, p])} for r, p in where]
                pipe = pipeline("fill-mask", model=model, tokenizer=tok, device="cpu")
                ref["fill_mask"] = [pipe(t, top_k=5) for t in TEXTS]
                ref["targets"] = [" +", " -", "*", "return"]
                ref["fill_mask_targets"] = pipe(TEXTS[0], targets=ref["targets"])
            everything = TEXTS + [LONG]
            enc = tok(everything, padding=True, truncation=True, max_length=max_len, return_tensors="pt")
            out = base(**enc)
            h, m = out.last_hidden_state, enc["attention_mask"].unsqueeze(-1).float()
            pooled = {"mean": (h * m).sum(1) / m.sum(1).clamp(min=1e-9), "cls": h[:, 0]}
            if getattr(out, "pooler_output", None) is not None:
                pooled["pooler"] = out.pooler_output
            ref["embeddings"] = {}
            for k, v in pooled.items():
                ref["embeddings"][k] = [floats(r) for r in v]
                ref["embeddings"][k + "+normalize"] = [floats(r) for r in torch.nn.functional.normalize(v, dim=-1)]
            ref["long_ids"] = enc["input_ids"][-1].tolist()
        json.dump(ref, open(os.path.join(folder, "reference.json"), "w"))
        print(f"{name}: {sum(p.numel() for p in model.parameters())} parameters, "
              f"{sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder)) // 1024} KiB")


if __name__ == "__main__":
    main()
