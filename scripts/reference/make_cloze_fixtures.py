#!/usr/bin/env python3
"""CodeXGLUE's cloze scoring (Code-Code/ClozeTesting-*/code/run_cloze.py) run with
`transformers` on a fixture model, as the reference of `pytorrent eval cloze`.

    target/release/pytorrent eval cloze make data-samples/corpus --kind all --partition all \
        --words tests/fixtures/cloze/cloze_test_words.txt --out /tmp/cloze-src
    python scripts/reference/make_cloze_fixtures.py --src /tmp/cloze-src \
        --model tests/fixtures/models/roberta-tied --out tests/fixtures/cloze

The parity checkpoints' masked-token outputs hardly depend on the input (their random output
bias dominates), so every item would get the same word: the script makes its own small model
in <out>/model — the --model folder's config and tokenizer, weights drawn afresh (seed 7,
initializer_range 0.2, output bias of spread 0.01) — whose predictions vary with the input.

Keeps the items that fit the fixture model's 64-token inputs and whose best two candidates are
more than 1e-3 apart (at most --items of them), and
writes clozeTest.json, answers.txt and predictions.txt (run_cloze.py's steps: transformers'
ids of the text without special tokens, the cut, `<s> … </s>` around it, the
candidate-restricted argmax). Needs torch and transformers (a throw-away venv; CI does not).
"""
import argparse
import json
import os
import shutil

import torch
from transformers import RobertaConfig, RobertaForMaskedLM, RobertaTokenizer


def get_cloze_words(filename, tokenizer):
    with open(filename, "r", encoding="utf-8") as fp:
        words = fp.read().split("\n")
    # `tokenizer.encoder[w]` in run_cloze.py (transformers 4's slow tokenizer); the same
    # vocabulary lookup in transformers 5.
    vocab = tokenizer.get_vocab()
    return {vocab[w]: w for w in words}


def test_single(text, model, idx2word, tokenizer, cut, margins=None):
    # run_cloze.py cuts to 510; the fixture model takes 64 tokens in all.
    # convert_tokens_to_ids(tokenize(text)) in transformers 4; transformers 5's tokenize()
    # keeps the space an lstrip token absorbs (' <mask>', an unknown token), so ask for the
    # ids directly: the same ids v4 gave.
    tokenized_text = tokenizer.encode(text, add_special_tokens=False)[:cut]
    # build_inputs_with_special_tokens of one sequence (transformers 4): <s> ids </s>.
    inputs = [tokenizer.cls_token_id] + tokenized_text + [tokenizer.sep_token_id]
    index = inputs.index(tokenizer.mask_token_id)
    inputs = torch.tensor([inputs])
    with torch.no_grad():
        scores = model(inputs)[0]
        score_list = scores[0][index]
        word_index = torch.LongTensor(list(idx2word.keys()))
        word_index = torch.zeros(score_list.shape[0]).scatter(0, word_index, 1)
        score_list = score_list + (1 - word_index) * -1e6
        if margins is not None:
            top2 = torch.topk(score_list, 2).values
            margins.append(float(top2[0] - top2[1]))
        return torch.argmax(score_list).data.tolist()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--items", type=int, default=80)
    args = ap.parse_args()
    folder = os.path.join(args.out, "model")
    config = RobertaConfig.from_pretrained(args.model)
    config.initializer_range = 0.2
    torch.manual_seed(7)
    model = RobertaForMaskedLM(config).eval()
    with torch.no_grad():
        model.lm_head.bias.normal_(0, 0.01)
    model.save_pretrained(folder)
    for f in ["tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"]:
        shutil.copy(os.path.join(args.model, f), folder)
    tokenizer = RobertaTokenizer.from_pretrained(folder)
    # RoBERTa positions start after the padding index: 66 positions hold 64 tokens, 62 of text.
    cut = model.config.max_position_embeddings - 2 - 2
    idx2word = get_cloze_words(os.path.join(args.out, "cloze_test_words.txt"), tokenizer)
    items = json.load(open(os.path.join(args.src, "clozeTest.json")))
    answers = dict(l.strip().split("<CODESPLIT>") for l in open(os.path.join(args.src, "answers.txt")) if l.strip())
    kept = []
    for it in items:
        text = " ".join(it["nl_tokens"] + it["pl_tokens"])
        if len(tokenizer.encode(text, add_special_tokens=False)) > cut:
            continue
        # Leave out items whose best two candidates are within 1e-3 of each other, so float
        # rounding (torch against candle) cannot flip a prediction.
        margins = []
        test_single(text, model, idx2word, tokenizer, cut, margins)
        if margins[0] > 1e-3:
            kept.append(it)
        if len(kept) == args.items:
            break
    predictions = [(it["idx"], idx2word[test_single(" ".join(it["nl_tokens"] + it["pl_tokens"]), model, idx2word, tokenizer, cut)]) for it in kept]
    with open(os.path.join(args.out, "clozeTest.json"), "w") as f:
        json.dump(kept, f)
    with open(os.path.join(args.out, "answers.txt"), "w") as f:
        f.writelines(f"{it['idx']}<CODESPLIT>{answers[it['idx']]}\n" for it in kept)
    with open(os.path.join(args.out, "predictions.txt"), "w") as f:
        f.writelines(f"{i}<CODESPLIT>{w}\n" for i, w in predictions)
    correct = sum(answers[i] == w for i, w in predictions)
    print(f"{len(kept)} items, accuracy {correct / len(kept):.4f}")


if __name__ == "__main__":
    main()
