#!/usr/bin/env bash
# Exact top-k search and BM25 of `pytorrent eval` against what users would otherwise run.
#
#   scripts/bench/run_eval_bench.sh [BENCH_DIR]       (RUNS=3 ROWS=100000 DIM=384 K=10 THREADS=2)
#
# 1. Top-k: ROWS queries × ROWS candidates, DIM-d unit vectors (float32), k = K: our blocked
#    search (crates/eval/examples/topk_bench.rs) against NumPy (blocked matmul + argpartition)
#    and FAISS IndexFlatIP, on THREADS threads each; search time alone (loading excluded), then
#    peak RSS of each whole process; the top-k ids are compared (they must agree but for ties).
# 2. BM25: the docstring → code pool of stdlib-200.jsonl (made by make_bench_corpus.py),
#    end to end (read, tokenise, index, retrieve 100 per query, MRR@100): `pytorrent eval
#    retrieval --protocol pool` (BM25 alone) against bm25s with the same tokens.
#
# Needs: hyperfine-free (timings are printed by the programs; medians of RUNS), GNU time,
# python3; numpy, faiss-cpu and bm25s are installed into a throw-away venv under BENCH_DIR.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dir=${1:-/tmp/pytorrent-bench}
runs=${RUNS:-3}
rows=${ROWS:-100000}
dim=${DIM:-384}
k=${K:-10}
threads=${THREADS:-2}
mkdir -p "$dir"
[ -x "$dir/eval-venv/bin/python" ] || {
  python3 -m venv "$dir/eval-venv"
  "$dir/eval-venv/bin/pip" install --quiet numpy faiss-cpu bm25s
}
py=$dir/eval-venv/bin/python
(cd "$root" && cargo build --release --quiet --example topk_bench -p pytorrent-eval && cargo build --release --quiet)
ours=$root/target/release/examples/topk_bench
bin=$root/target/release/pytorrent
export RAYON_NUM_THREADS=$threads OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads MKL_NUM_THREADS=$threads

q=$dir/topk-q-$rows-$dim.npy
c=$dir/topk-c-$rows-$dim.npy
[ -f "$q" ] || "$py" "$here/py_eval_bench.py" make "$q" "$c" --rows "$rows" --dim "$dim"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "== 1. top-$k of $rows × $rows, $dim-d, $threads threads (search seconds, median of $runs)"
for tool in ours numpy faiss; do
  for i in $(seq "$runs"); do
    if [ $tool = ours ]; then "$ours" "$q" "$c" "$k"; else "$py" "$here/py_eval_bench.py" $tool "$q" "$c" "$k"; fi
  done | median | sed "s/^/  $tool /"
done
echo "== same results (top-$k ids; ties may differ in order)"
"$ours" "$q" "$c" "$k" "$dir/ids-ours.npy" > /dev/null
"$py" "$here/py_eval_bench.py" faiss "$q" "$c" "$k" "$dir/ids-faiss.npy" > /dev/null
"$py" - "$dir/ids-ours.npy" "$dir/ids-faiss.npy" <<'PY'
import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
same = np.mean([set(x) == set(y) for x, y in zip(a, b)])
print(f"  queries with the same top-k set as faiss: {same:.4%}; same first: {np.mean(a[:, 0] == b[:, 0]):.4%}")
PY
echo "== peak RSS (GNU time, whole process)"
/usr/bin/time -f "  ours  %M KB  %e s" "$ours" "$q" "$c" "$k" > /dev/null
/usr/bin/time -f "  numpy %M KB  %e s" "$py" "$here/py_eval_bench.py" numpy "$q" "$c" "$k" > /dev/null
/usr/bin/time -f "  faiss %M KB  %e s" "$py" "$here/py_eval_bench.py" faiss "$q" "$c" "$k" > /dev/null

corpus=$dir/stdlib-200.jsonl
[ -f "$corpus" ] || python3 "$here/make_bench_corpus.py" --out "$corpus" --target-mb 200
echo "== 2. BM25 pool over $(basename "$corpus"), end to end (seconds, median of $runs)"
for i in $(seq "$runs"); do
  /usr/bin/time -f "%e" "$bin" eval retrieval "$corpus" --partition all --protocol pool --json -q 2>&1 >/dev/null | tail -1
done | median | sed "s/^/  pytorrent eval retrieval (BM25) /"
for i in $(seq "$runs"); do
  "$py" "$here/py_eval_bench.py" bm25 "$corpus" | "$py" -c "import json,sys; print(json.load(sys.stdin)['seconds'])"
done | median | sed "s/^/  bm25s /"
"$bin" eval retrieval "$corpus" --partition all --protocol pool --json -q \
  | "$py" -c "import json,sys; d=json.load(sys.stdin); print('  ours: pairs', d['pytorrent']['queries'], 'MRR@100', d['scores']['all'][0]['mrr_at_100'])"
"$py" "$here/py_eval_bench.py" bm25 "$corpus" | sed "s/^/  bm25s: /"
/usr/bin/time -f "  peak RSS: pytorrent %M KB" "$bin" eval retrieval "$corpus" --partition all --protocol pool --json -q > /dev/null
/usr/bin/time -f "  peak RSS: bm25s %M KB" "$py" "$here/py_eval_bench.py" bm25 "$corpus" > /dev/null
