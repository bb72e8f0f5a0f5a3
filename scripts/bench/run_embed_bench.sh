#!/usr/bin/env bash
# `pytorrent embed` against sentence-transformers on the retrieval-eval workload: a
# sentence-transformers model, real code lines of a corpus, whole processes (start-up, load,
# tokenise, encode, write the npy), on 1 and 2 threads, ROUNDS rounds alternating which side
# goes first; medians, and the largest difference between the two outputs. The steady state:
# sentence-transformers' encode call alone against our whole process.
#
#   scripts/bench/run_embed_bench.sh CORPUS MODEL_DIR [BENCH_DIR]
#       (TORCH_VENV=… LINES=600 BATCH=32 ROUNDS=3 THREADS="1 2")
#
# MODEL_DIR: e.g. all-MiniLM-L6-v2 from scripts/models/fetch_minilm.py. The texts are the
# `code` of the first LINES records of CORPUS (each side cuts to the model's max_seq_length).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
corpus=$1
model=$2
dir=${3:-/tmp/pytorrent-bench/embed}
lines=${LINES:-600}
batch=${BATCH:-32}
rounds=${ROUNDS:-3}
venv=${TORCH_VENV:?TORCH_VENV names a venv with torch and sentence-transformers}
mkdir -p "$dir"
(cd "$root" && cargo build --release --quiet)
bin=$root/target/release/pytorrent
# The first records, as one JSONL file both sides read.
python3 - "$corpus" "$lines" "$dir/records.jsonl" <<'PY'
import glob, gzip, os, sys
corpus, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
files = sorted(glob.glob(os.path.join(corpus, "**", "*.jsonl*"), recursive=True))
kept = []
for f in files:
    op = gzip.open if f.endswith(".gz") else open
    for line in op(f, "rt", encoding="utf-8"):
        kept.append(line.rstrip("\n"))
        if len(kept) == n:
            break
    if len(kept) == n:
        break
open(out, "w", encoding="utf-8").write("\n".join(kept) + "\n")
print(f"{len(kept)} records from {corpus}")
PY
"$venv/bin/python" -c 'import torch, transformers, sentence_transformers as s; print("torch", torch.__version__, "transformers", transformers.__version__, "sentence-transformers", s.__version__)' > "$dir/versions.txt"
cat "$dir/versions.txt"
secs() { python3 -c "import sys; print(f'{float(sys.argv[1]):.2f}')" "$1"; }
for t in ${THREADS:-1 2}; do
  : > "$dir/ours-$t.txt"; : > "$dir/st-$t.txt"; : > "$dir/st-call-$t.txt"
  ours() {
    local s e
    s=$(date +%s.%N)
    RAYON_NUM_THREADS=$t "$bin" embed "$dir/records.jsonl" --field code --model "$model" --batch-size "$batch" --out "$dir/ours.npy" -q
    e=$(date +%s.%N)
    python3 -c "print($e - $s)" >> "$dir/ours-$t.txt"
  }
  st() {
    local s e
    s=$(date +%s.%N)
    OMP_NUM_THREADS=$t MKL_NUM_THREADS=$t HF_HUB_OFFLINE=1 "$venv/bin/python" "$here/py_embed_st.py" \
      "$model" "$dir/records.jsonl" "$dir/st.npy" "$t" "$batch" 2>"$dir/st.err"
    grep -o '[0-9.]* s$' "$dir/st.err" | cut -d' ' -f1 >> "$dir/st-call-$t.txt"
    e=$(date +%s.%N)
    python3 -c "print($e - $s)" >> "$dir/st-$t.txt"
  }
  for r in $(seq "$rounds"); do
    if [ $((r % 2)) -eq 1 ]; then ours; st; else st; ours; fi
  done
  med() { python3 -c "import statistics,sys; print(round(statistics.median(float(l) for l in open(sys.argv[1])), 2))" "$1"; }
  o=$(med "$dir/ours-$t.txt"); p=$(med "$dir/st-$t.txt")
  diff=$("$venv/bin/python" -c "import numpy as np; print(f'{np.abs(np.load(\"$dir/ours.npy\") - np.load(\"$dir/st.npy\")).max():.1e}')")
  c=$(med "$dir/st-call-$t.txt")
  echo "$t thread(s): pytorrent embed $o s ($(paste -sd' ' "$dir/ours-$t.txt")), sentence-transformers $p s ($(paste -sd' ' "$dir/st-$t.txt")), ratio $(python3 -c "print(round($p / $o, 2))")x, max difference $diff; the encode call alone $c s ($(paste -sd' ' "$dir/st-call-$t.txt")), ratio to our whole process $(python3 -c "print(round($c / $o, 2))")x"
done
