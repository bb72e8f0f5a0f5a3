#!/usr/bin/env bash
# Benchmarks `pytorrent tokenizer train` and `encode` against Python `tokenizers`.
#
#   scripts/bench/run_tokenizer_bench.sh [BENCH_DIR]
#
# Corpus: BENCH_DIR/stdlib-200.jsonl (made by run_corpus_bench.sh / make_bench_corpus.py).
# Python side: tokenizers (the version pinned for the interop checks) and numpy in a venv
# under BENCH_DIR. Both sides read the same JSONL (JSON parsing included on both sides).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dir=${1:-/tmp/pytorrent-bench}
f=$dir/stdlib-200.jsonl
[ -f "$f" ] || { echo "missing $f: run scripts/bench/run_corpus_bench.sh $dir first" >&2; exit 2; }
venv=$dir/tok-venv
[ -x "$venv/bin/python" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q -r "$root/scripts/interop/requirements.txt"; }
py=$venv/bin/python
(cd "$root" && cargo build --release --quiet)
bin=$root/target/release/pytorrent
vs=${VOCAB_SIZE:-50265}

echo "== train: vocab $vs, field code, every record of $(basename "$f")"
hyperfine -N --runs 3 --export-json "$dir/train.json" \
  -n "pytorrent tokenizer train (2 threads)" "env RAYON_NUM_THREADS=2 $bin tokenizer train $f --partition all --vocab-size $vs --out $dir/tok-rs -q" \
  -n "python ByteLevelBPETokenizer.train_from_iterator (2 threads)" "env RAYON_NUM_THREADS=2 $py $here/py_tokenizer_bench.py train $f --vocab-size $vs --out $dir/tok-py" > /dev/null
for cmd in "$bin tokenizer train $f --partition all --vocab-size $vs --out $dir/tok-rs -q" \
           "$py $here/py_tokenizer_bench.py train $f --vocab-size $vs --out $dir/tok-py"; do
  /usr/bin/time -f "  peak RSS %M KB  %e s  $(basename "${cmd%% *}")" $cmd
done

"$py" - "$dir" <<'PY'
import json, sys
d = sys.argv[1]
a, b = json.load(open(f"{d}/tok-rs/vocab.json")), json.load(open(f"{d}/tok-py/vocab.json"))
m1 = open(f"{d}/tok-rs/merges.txt").read().splitlines()[1:]
m2 = open(f"{d}/tok-py/merges.txt").read().splitlines()[1:]
print(f"  same vocabulary: {a == b} ({len(a)}), same merges: {m1 == m2} ({len(m1)})")
PY

echo "== encode: field code of every record, to npy"
mb=$(python3 -c "import json,sys; print(sum(len(json.loads(l)['code'].encode()) for l in open(sys.argv[1])) / 1e6)" "$f")
hyperfine -N --runs 3 --export-json "$dir/encode.json" \
  -n "pytorrent tokenizer encode (2 threads)" "env RAYON_NUM_THREADS=2 $bin tokenizer encode --tokenizer $dir/tok-rs $f --out $dir/ids-rs.npy -q" \
  -n "pytorrent tokenizer encode (1 thread)" "env RAYON_NUM_THREADS=1 $bin tokenizer encode --tokenizer $dir/tok-rs $f --out $dir/ids-rs.npy -q" \
  -n "python encode_batch (2 threads)" "env RAYON_NUM_THREADS=2 $py $here/py_tokenizer_bench.py encode $f --tokenizer $dir/tok-rs --out $dir/ids-py.npy" \
  -n "python encode_batch (1 thread)" "env RAYON_NUM_THREADS=1 $py $here/py_tokenizer_bench.py encode $f --tokenizer $dir/tok-rs --out $dir/ids-py.npy" > /dev/null
"$py" -c "import numpy as np,sys; a,b=np.load(sys.argv[1]),np.load(sys.argv[2]); print('  same ids:', a.shape == b.shape and bool((a == b).all()), a.shape[0], 'tokens')" "$dir/ids-rs.npy" "$dir/ids-py.npy"
for t in 1 2; do
  echo "  python encode_batch alone, $t thread(s): $(RAYON_NUM_THREADS=$t "$py" "$here/py_tokenizer_bench.py" encode "$f" --tokenizer "$dir/tok-rs" 2>&1 >/dev/null)"
done
for j in train encode; do
  python3 - "$dir/$j.json" "$mb" <<'PY'
import json, sys
runs = json.load(open(sys.argv[1]))["results"]
mb = float(sys.argv[2])
for r in runs:
    print(f"  {r['command']:<60} median {r['median']:7.2f} s  {mb / r['median']:6.2f} MB/s of code")
PY
done
