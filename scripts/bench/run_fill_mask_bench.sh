#!/usr/bin/env bash
# `pytorrent fill-mask` against transformers' fill-mask pipeline: the same masked-model
# folder, the same prompts (real code, one identifier masked), top-5, whole processes
# (start-up, load, tokenise, forward, write), on 1 and 2 threads, ROUNDS rounds alternating
# which side goes first; medians, and how far the two sides' candidates agree. The steady
# state: the pipeline call alone (its imports and model load left out) against our whole
# process, which still counts our start-up and load.
#
#   scripts/bench/run_fill_mask_bench.sh CORPUS MODEL_DIR [BENCH_DIR]
#       (TORCH_VENV=… PROMPTS=400 TOKENS=128 BATCH=16 ROUNDS=3 THREADS="1 2" SEED=0)
#
# TOKENS bounds each prompt's length in the model's tokens (at most its position table).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
corpus=$1
model=$2
dir=${3:-/tmp/pytorrent-bench/fill-mask}
n=${PROMPTS:-400}
tokens=${TOKENS:-128}
batch=${BATCH:-16}
rounds=${ROUNDS:-3}
venv=${TORCH_VENV:?TORCH_VENV names a venv with torch and transformers}
py=$venv/bin/python
mkdir -p "$dir"
(cd "$root" && cargo build --release --quiet)
bin=$root/target/release/pytorrent
HF_HUB_OFFLINE=1 "$py" "$here/py_fill_mask.py" prompts "$corpus" "$model" "$n" "$tokens" "${SEED:-0}" "$dir/prompts.jsonl"
"$py" -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)' > "$dir/versions.txt"
cat "$dir/versions.txt"
for t in ${THREADS:-1 2}; do
  : > "$dir/ours-$t.txt"; : > "$dir/hf-$t.txt"; : > "$dir/hf-call-$t.txt"
  ours() {
    local s e
    s=$(date +%s.%N)
    RAYON_NUM_THREADS=$t "$bin" fill-mask "$dir/prompts.jsonl" --model "$model" --batch-size "$batch" \
      --top-k 5 --json -q > "$dir/ours.json"
    e=$(date +%s.%N)
    python3 -c "print($e - $s)" >> "$dir/ours-$t.txt"
  }
  hf() {
    local s e
    s=$(date +%s.%N)
    OMP_NUM_THREADS=$t MKL_NUM_THREADS=$t HF_HUB_OFFLINE=1 "$py" "$here/py_fill_mask.py" pipeline \
      "$model" "$dir/prompts.jsonl" "$dir/hf.json" "$t" "$batch" 5 2>"$dir/hf.err"
    grep -o '[0-9.]* s$' "$dir/hf.err" | cut -d' ' -f1 >> "$dir/hf-call-$t.txt"
    e=$(date +%s.%N)
    python3 -c "print($e - $s)" >> "$dir/hf-$t.txt"
  }
  for r in $(seq "$rounds"); do
    if [ $((r % 2)) -eq 1 ]; then ours; hf; else hf; ours; fi
  done
  med() { python3 -c "import statistics,sys; print(round(statistics.median(float(l) for l in open(sys.argv[1])), 2))" "$1"; }
  o=$(med "$dir/ours-$t.txt"); p=$(med "$dir/hf-$t.txt")
  c=$(med "$dir/hf-call-$t.txt")
  echo "$t thread(s): pytorrent fill-mask $o s ($(paste -sd' ' "$dir/ours-$t.txt")), transformers pipeline $p s ($(paste -sd' ' "$dir/hf-$t.txt")), ratio $(python3 -c "print(round($p / $o, 2))")x; the pipeline call alone $c s ($(paste -sd' ' "$dir/hf-call-$t.txt")), ratio to our whole process $(python3 -c "print(round($c / $o, 2))")x"
  "$py" "$here/py_fill_mask.py" compare "$dir/ours.json" "$dir/hf.json"
done
