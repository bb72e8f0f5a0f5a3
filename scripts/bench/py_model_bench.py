#!/usr/bin/env python3
"""Forward-pass throughput of `transformers` + `torch` on a model folder, the counterpart of
`cargo run --release -p pytorrent-model --example forward_bench`: the same random ids
(the same generator), a warm-up pass, then timed passes under `torch.inference_mode()`.

Also makes the benchmark model: `py_model_bench.py --make DIR` writes a randomly initialised
roberta-base-sized `RobertaModel` (12 layers, hidden 768, 12 heads, vocab 50265).

Usage: py_model_bench.py MODEL_DIR [batch] [seq] [runs]
"""
import json
import sys
import time


def main():
    import torch
    from transformers import RobertaConfig, RobertaModel, AutoModel

    if sys.argv[1] == "--make":
        torch.manual_seed(0)
        RobertaModel(RobertaConfig(vocab_size=50265, max_position_embeddings=514, type_vocab_size=1)).save_pretrained(sys.argv[2])
        return
    d = sys.argv[1]
    batch, seq, runs = [int(a) for a in (sys.argv[2:5] + ["8", "256", "5"][len(sys.argv[2:5]):])]
    model = AutoModel.from_pretrained(d).eval()
    vocab = model.config.vocab_size
    x, rows = 42, []
    for _ in range(batch):
        row = []
        for _ in range(seq):
            x = (x * 6364136223846793005 + 1442695040888963407) % (1 << 64)
            row.append(5 + (x >> 33) % (vocab - 5))
        rows.append(row)
    ids = torch.tensor(rows)
    mask = torch.ones_like(ids)
    times = []
    with torch.inference_mode():
        model(input_ids=ids, attention_mask=mask).last_hidden_state.sum().item()
        for _ in range(runs):
            t = time.perf_counter()
            model(input_ids=ids, attention_mask=mask).last_hidden_state.sum().item()
            times.append(time.perf_counter() - t)
    times.sort()
    median = times[len(times) // 2]
    c = model.config
    h, i, l, t = c.hidden_size, c.intermediate_size, c.num_hidden_layers, batch * seq
    flops = l * (2 * t * (4 * h * h + 2 * h * i) + 4 * batch * seq * seq * h)
    print(json.dumps({"impl": f"transformers {__import__('transformers').__version__} + torch {torch.__version__}",
                      "batch": batch, "seq": seq, "runs": runs, "median_s": median, "sequences_per_s": batch / median,
                      "tokens_per_s": t / median, "gflops": flops / median / 1e9, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
