#!/usr/bin/env python3
"""Model folders pytorrent writes (pretrain output, the shipped model) load in transformers
and take what its tokenizer gives them: AutoConfig and AutoTokenizer load; a text far longer
than the model, tokenized with truncation=True, fits the position table (RoBERTa numbers
positions from padding_idx + 1, so at most max_position_embeddings - padding_idx - 1
tokens). With torch installed, a forward pass of AutoModelForMaskedLM runs on it too (the
interop venv has no torch; the check says so, or fails with --require-torch).

    check_model_folders.py [--require-torch] DIR...
"""
import json
import sys

from transformers import AutoConfig, AutoTokenizer


def main():
    failures = []
    args = sys.argv[1:]
    require_torch = "--require-torch" in args
    folders = [a for a in args if a != "--require-torch"]
    for folder in folders:
        config = AutoConfig.from_pretrained(folder)
        tok = AutoTokenizer.from_pretrained(folder)
        limit = config.max_position_embeddings - config.pad_token_id - 1
        text = "def f(x):\n    return x + 1\n" * 400
        ids = tok(text, truncation=True)["input_ids"]
        if len(ids) > limit:
            failures.append(f"{folder}: {len(ids)} tokens after truncation, the model takes {limit}")
        if tok.model_max_length != limit:
            failures.append(f"{folder}: tokenizer model_max_length {tok.model_max_length}, the model takes {limit}")
        try:
            import torch
            from transformers import AutoModelForMaskedLM
        except ImportError:
            if require_torch:
                sys.exit("--require-torch: torch or transformers' models do not import here")
            print(f"{folder}: config and tokenizer load; {len(ids)} tokens after truncation "
                  f"(the model takes {limit}); no torch here, so no forward pass")
            continue
        model = AutoModelForMaskedLM.from_pretrained(folder)
        with torch.no_grad():
            out = model(**tok(text, truncation=True, return_tensors="pt"))
        print(f"{folder}: forward pass of {len(ids)} tokens gives logits {tuple(out.logits.shape)}")
    if failures:
        print("\n".join(failures), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
