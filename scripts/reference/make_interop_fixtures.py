#!/usr/bin/env python3
"""Builds the small fixtures the tests compare pytorrent with, from data-samples/:

- tests/fixtures/models/st-minilm/: a sentence-transformers folder shaped like
  all-MiniLM-L6-v2 (a BERT encoder with a WordPiece tokenizer, mean pooling, Normalize,
  `max_seq_length` below the position table), random weights; reference.json holds what
  `SentenceTransformer.encode` gives for short and long inputs, and the tokenizer's
  single and pair encodings of a few sample records (the pair as `[CLS] NL [SEP] code [SEP]`).
- tests/fixtures/parquet/: corpora written by pyarrow: the sample test partition with every
  PyTorrent column (snappy, as `datasets` writes), a Hugging Face hub-style code dataset
  (`data/{train,validation}-00000-of-00001.parquet`, a `content` column) and a
  datatrove-style file (`text`, `id`, a `metadata` struct); expected.json lists what each
  file holds, for the Rust tests to compare with.

Needs torch, transformers, sentence-transformers, tokenizers and pyarrow (several GB):
install them in a throw-away venv, not in CI.

    python scripts/reference/make_interop_fixtures.py --out tests/fixtures
"""
import argparse
import gzip
import json
import os
import shutil

SAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "data-samples", "corpus", "docstrings")
ST_TEXTS = [
    "Return the sum of two numbers.",
    "def add(a, b):\n    return a + b",
    "Parse a string against a format specification and return the values it holds.",
    "import os\n" + "".join(f"value_{i} = os.path.join('a', 'b{i}')\n" for i in range(30)),
]


def records(partition):
    path = os.path.join(SAMPLES, partition, f"{partition}_scenario_docstrings_chk_0.jsonl.gz")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def wordpiece(out_dir, train):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    trainer = trainers.WordPieceTrainer(vocab_size=600, special_tokens=specials)
    tok.train_from_iterator([r["docstring"] + "\n" + r["code"] for r in train], trainer)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    from tokenizers import decoders

    tok.decoder = decoders.WordPiece()
    tok.save(os.path.join(out_dir, "tokenizer.json"))
    return tok


def st_model(out, tok):
    import torch
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=48, num_hidden_layers=2,
                     num_attention_heads=4, intermediate_size=96, max_position_embeddings=64,
                     pad_token_id=tok.token_to_id("[PAD]"))
    model = BertModel(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.2)
    model.save_pretrained(out)
    fast = PreTrainedTokenizerFast(tokenizer_file=os.path.join(out, "tokenizer.json"),
                                   unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]",
                                   cls_token="[CLS]", mask_token="[MASK]", model_max_length=64,
                                   do_lower_case=True)
    fast.save_pretrained(out)
    with open(os.path.join(out, "modules.json"), "w") as f:
        json.dump([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ], f, indent=2)
    with open(os.path.join(out, "sentence_bert_config.json"), "w") as f:
        json.dump({"max_seq_length": 24, "do_lower_case": False}, f, indent=2)
    os.makedirs(os.path.join(out, "1_Pooling"), exist_ok=True)
    with open(os.path.join(out, "1_Pooling", "config.json"), "w") as f:
        json.dump({"word_embedding_dimension": 48, "pooling_mode_cls_token": False,
                   "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
                   "pooling_mode_mean_sqrt_len_tokens": False}, f, indent=2)
    os.makedirs(os.path.join(out, "2_Normalize"), exist_ok=True)


def st_reference(out, tok, test):
    import sentence_transformers
    import torch

    st = sentence_transformers.SentenceTransformer(out, device="cpu")
    emb = st.encode(ST_TEXTS, convert_to_numpy=True, normalize_embeddings=False)
    lengths = [len(tok.encode(t).ids) for t in ST_TEXTS]
    pairs = [{"nl": r["docstring"], "code": r["code"], "ids": tok.encode(r["docstring"], r["code"]).ids}
             for r in test[:5]]
    singles = [{"code": r["code"], "ids": tok.encode(r["code"]).ids} for r in test[:5]]
    ref = {
        "sentence_transformers": sentence_transformers.__version__,
        "torch": torch.__version__,
        "texts": ST_TEXTS,
        "token_counts": lengths,
        "max_seq_length": st.max_seq_length,
        "embeddings": [[round(float(x), 7) for x in row] for row in emb],
        "pairs": pairs,
        "singles": singles,
    }
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1)


def parquet_fixtures(out, test, train):
    import pyarrow as pa
    import pyarrow.parquet as pq

    os.makedirs(out, exist_ok=True)
    cols = ["repo", "path", "func_name", "original_string", "language", "code", "code_tokens",
            "docstring", "docstring_tokens", "sha", "url", "partition", "summary"]
    table = pa.Table.from_pylist([{c: r.get(c) for c in cols} for r in test])
    pq.write_table(table, os.path.join(out, "pytorrent-test.parquet"), compression="snappy")
    hub = os.path.join(out, "hub", "data")
    os.makedirs(hub, exist_ok=True)
    for split, rows in [("train", train[:30]), ("validation", test[:10])]:
        t = pa.Table.from_pylist([{"repo_name": r["repo"], "path": r["path"], "content": r["code"],
                                   "license": "mit", "size": len(r["code"])} for r in rows])
        pq.write_table(t, os.path.join(hub, f"{split}-00000-of-00001.parquet"), compression="zstd",
                       row_group_size=8)
    dt = pa.Table.from_pylist([{"text": r["docstring"] + "\n" + r["code"], "id": f"{r['repo']}/{i}",
                                "metadata": {"repo": r["repo"], "stars": i}} for i, r in enumerate(test[:12])])
    pq.write_table(dt, os.path.join(out, "datatrove.parquet"))
    expected = {
        "pytorrent-test.parquet": {"rows": len(test), "codes": [r["code"] for r in test]},
        "hub/data/train-00000-of-00001.parquet": {"rows": 30, "contents": [r["code"] for r in train[:30]]},
        "hub/data/validation-00000-of-00001.parquet": {"rows": 10, "contents": [r["code"] for r in test[:10]]},
        "datatrove.parquet": {"rows": 12, "texts": [r["docstring"] + "\n" + r["code"] for r in test[:12]]},
    }
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, help="the tests/fixtures folder")
    a = ap.parse_args()
    train, test = records("train"), records("test")
    st = os.path.join(a.out, "models", "st-minilm")
    shutil.rmtree(st, ignore_errors=True)
    os.makedirs(st)
    tok = wordpiece(st, train)
    st_model(st, tok)
    st_reference(st, tok, test)
    parquet_fixtures(os.path.join(a.out, "parquet"), test, train)


if __name__ == "__main__":
    main()
