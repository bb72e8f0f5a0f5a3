#!/usr/bin/env bash
# `pytorrent pretrain` against HF Trainer (run_mlm-style, torch on the CPU): the same shards,
# model shape, hyperparameters, seed and number of tokens, on THREADS threads each.
#
#   scripts/bench/run_pretrain_bench.sh CORPUS [BENCH_DIR]
#       (THREADS=2 STEPS=300 BATCH=16 SEQ=128 VOCAB=8000 LR=5e-4 MODEL=configs/models/small.toml
#        ROUNDS=3 TORCH_VENV=…)
#
# The two sides run ROUNDS times, alternating which goes first, and the medians are compared;
# BENCH_DIR/torch-info.txt records the torch build and its thread settings
# (torch.__config__.parallel_info()). TORCH_VENV names a venv with torch, transformers and
# accelerate to use instead of making one.
# CORPUS is a PyTorrent corpus (e.g. the one scripts/eval/run_retrieval.sh extracts from
# scripts/eval/packages-100.txt). Prints tokens/s of each (training alone: HF's from its own
# clock around trainer.train(), ours from its report, which leaves out start-up and the final
# save), the validation loss of both final models judged by the same Python code (the first
# 1000 valid rows, the same masks), and draws both loss curves into BENCH_DIR/curves.svg.
# torch + transformers go into a throw-away venv under BENCH_DIR.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
corpus=$1
dir=${2:-/tmp/pytorrent-bench/pretrain}
threads=${THREADS:-2}
steps=${STEPS:-300}
batch=${BATCH:-16}
seq=${SEQ:-128}
vocab=${VOCAB:-8000}
lr=${LR:-5e-4}
model=${MODEL:-$root/configs/models/small.toml}
warmup=$((steps / 10))
mkdir -p "$dir"
venv=${TORCH_VENV:-$dir/venv}
[ -x "$venv/bin/python" ] || {
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet torch transformers accelerate numpy
}
py=$venv/bin/python
rounds=${ROUNDS:-3}
(cd "$root" && cargo build --release --quiet && cargo build --release --quiet --example plot_curves -p pytorrent-pretrain)
bin=$root/target/release/pytorrent
export RAYON_NUM_THREADS=$threads OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads
[ -f "$dir/tok/tokenizer.json" ] || "$bin" tokenizer train "$corpus" --vocab-size "$vocab" --out "$dir/tok" -q
[ -f "$dir/shards/train/manifest.json" ] || "$bin" pack "$corpus" --tokenizer "$dir/tok" --seq-len "$seq" --out "$dir/shards" -q
"$py" -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__); print(torch.__config__.parallel_info())' > "$dir/torch-info.txt"
head -1 "$dir/torch-info.txt"
ours_round() {
  rm -rf "$dir/ours"
  "$bin" pretrain "$dir/shards" --out "$dir/ours" --model-config "$model" --max-steps "$steps" \
    --batch-size "$batch" --lr "$lr" --warmup-steps "$warmup" --eval-every "$steps" --seed 0 --json -q \
    > "$dir/ours.json"
  python3 -c "import json; print(round(json.load(open('$dir/ours.json'))['tokens_per_s']))" >> "$dir/ours-tps.txt"
  echo "pytorrent pretrain: $(tail -1 "$dir/ours-tps.txt") tokens/s"
}
hf_round() {
  rm -rf "$dir/hf"
  "$py" "$here/py_pretrain_hf.py" train "$dir/shards" "$dir/ours" "$dir/hf" --steps "$steps" \
    --batch-size "$batch" --lr "$lr" --warmup "$warmup" --seed 0 > /dev/null
  python3 -c "import json; print(round(json.load(open('$dir/hf/result.json'))['tokens_per_s']))" >> "$dir/hf-tps.txt"
  echo "HF Trainer: $(tail -1 "$dir/hf-tps.txt") tokens/s"
}
rm -f "$dir/ours-tps.txt" "$dir/hf-tps.txt"
# HF's tokenizer files come from our run folder: one run of ours first.
ours_round
for r in $(seq 2 "$rounds"); do
  if [ $((r % 2)) -eq 0 ]; then hf_round; ours_round; else ours_round; hf_round; fi
done
hf_round
echo "== the same judge for both final models"
"$py" "$here/py_pretrain_hf.py" eval "$dir/shards" "$dir/ours" "$dir/hf/model" --rows 1000 --seed 0 | tee "$dir/eval.txt"
"$root/target/release/examples/plot_curves" "$dir/curves.svg" "pytorrent pretrain vs HF Trainer ($threads threads)" \
  "pytorrent=$dir/ours/log.csv" "HF Trainer=$dir/hf/log.csv"
median() { sort -n "$1" | python3 -c 'import sys, statistics; print(round(statistics.median(float(l) for l in sys.stdin)))'; }
ours_tps=$(median "$dir/ours-tps.txt")
hf_tps=$(median "$dir/hf-tps.txt")
echo "tokens/s, median of $rounds alternating rounds: pytorrent $ours_tps ($(paste -sd' ' "$dir/ours-tps.txt")), HF Trainer $hf_tps ($(paste -sd' ' "$dir/hf-tps.txt")), ratio $(python3 -c "print(round($ours_tps / $hf_tps, 2))")"
