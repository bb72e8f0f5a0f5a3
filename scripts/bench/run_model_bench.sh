#!/usr/bin/env bash
# Embedding (encoder forward) throughput: pytorrent-model (candle) against transformers +
# torch on a randomly initialised roberta-base-sized model, batch 8 × 256 tokens, f32,
# 2 threads, one after the other on the same machine.
#
#   TORCH_VENV=/path/to/venv-with-torch-and-transformers scripts/bench/run_model_bench.sh [BENCH_DIR]
#
# torch is several GB: give a throw-away venv that has it (pip install torch transformers).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dir=${1:-/tmp/pytorrent-bench}
py=${TORCH_VENV:?set TORCH_VENV to a venv with torch and transformers}/bin/python
model=$dir/roberta-base-random
[ -f "$model/config.json" ] || "$py" "$here/py_model_bench.py" --make "$model"
(cd "$root" && cargo build --release --quiet -p pytorrent-model --example forward_bench)
threads=${THREADS:-2}
for round in 1 2 3; do
  echo "== round $round"
  RAYON_NUM_THREADS=$threads "$root/target/release/examples/forward_bench" "$model" 8 256 5
  OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads "$py" "$here/py_model_bench.py" "$model" 8 256 5
done
