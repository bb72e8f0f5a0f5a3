#!/usr/bin/env bash
# `pytorrent pretrain` against HF Trainer (run_mlm-style, torch on the CPU): the same shards,
# model shape, hyperparameters, seed and number of tokens, on THREADS threads each.
#
#   scripts/bench/run_pretrain_bench.sh CORPUS [BENCH_DIR]
#       (THREADS=2 STEPS=300 BATCH=16 SEQ=128 VOCAB=8000 LR=5e-4 MODEL=configs/models/small.toml)
#
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
[ -x "$dir/venv/bin/python" ] || {
  python3 -m venv "$dir/venv"
  "$dir/venv/bin/pip" install --quiet torch transformers accelerate numpy
}
py=$dir/venv/bin/python
(cd "$root" && cargo build --release --quiet && cargo build --release --quiet --example plot_curves -p pytorrent-pretrain)
bin=$root/target/release/pytorrent
export RAYON_NUM_THREADS=$threads OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads
[ -f "$dir/tok/tokenizer.json" ] || "$bin" tokenizer train "$corpus" --vocab-size "$vocab" --out "$dir/tok" -q
[ -f "$dir/shards/train/manifest.json" ] || "$bin" pack "$corpus" --tokenizer "$dir/tok" --seq-len "$seq" --out "$dir/shards" -q
rm -rf "$dir/ours" "$dir/hf"
echo "== pytorrent pretrain"
"$bin" pretrain "$dir/shards" --out "$dir/ours" --model-config "$model" --max-steps "$steps" \
  --batch-size "$batch" --lr "$lr" --warmup-steps "$warmup" --eval-every "$steps" --seed 0 --json \
  > "$dir/ours.json"
echo "== HF Trainer"
"$py" "$here/py_pretrain_hf.py" train "$dir/shards" "$dir/ours" "$dir/hf" --steps "$steps" \
  --batch-size "$batch" --lr "$lr" --warmup "$warmup" --seed 0
echo "== the same judge for both final models"
"$py" "$here/py_pretrain_hf.py" eval "$dir/shards" "$dir/ours" "$dir/hf/model" --rows 1000 --seed 0 | tee "$dir/eval.txt"
"$root/target/release/examples/plot_curves" "$dir/curves.svg" "pytorrent pretrain vs HF Trainer ($threads threads)" \
  "pytorrent=$dir/ours/log.csv" "HF Trainer=$dir/hf/log.csv"
ours_tps=$(python3 -c "import json; print(round(json.load(open('$dir/ours.json'))['tokens_per_s']))")
hf_tps=$(python3 -c "import json; print(round(json.load(open('$dir/hf/result.json'))['tokens_per_s']))")
echo "tokens/s: pytorrent $ours_tps, HF Trainer $hf_tps, ratio $(python3 -c "print(round($ours_tps / $hf_tps, 2))")"
