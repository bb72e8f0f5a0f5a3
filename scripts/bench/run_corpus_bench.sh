#!/usr/bin/env bash
# Benchmarks `pytorrent corpus stats` / `validate` against Python line loops on the same files.
#
#   scripts/bench/run_corpus_bench.sh [BENCH_DIR]
#
# Needs: hyperfine and GNU time (Debian packages `hyperfine`, `time`), python3; orjson is
# installed into a throw-away venv under BENCH_DIR. Makes the corpora with
# make_bench_corpus.py when missing:
#   samples-200.jsonl  data-samples records repeated to 200 MB (PyTorrent-sized records)
#   stdlib-200.jsonl   documented functions of the CPython standard library (larger records)
#   stdlib-590.jsonl   the same, 590 MB (for peak RSS at a second size)
# Each tool runs after the other on the same machine; medians are printed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dir=${1:-/tmp/pytorrent-bench}
mkdir -p "$dir"
[ -f "$dir/samples-200.jsonl" ] ||
  python3 "$here/make_bench_corpus.py" --from-corpus "$root/data-samples/corpus" --target-mb 200 --out "$dir/samples-200.jsonl"
[ -f "$dir/stdlib-590.jsonl" ] || python3 "$here/make_bench_corpus.py" --target-mb 590 --out "$dir/stdlib-590.jsonl"
[ -f "$dir/stdlib-200.jsonl" ] || head -n 40000 "$dir/stdlib-590.jsonl" > "$dir/stdlib-200.jsonl"
[ -x "$dir/venv/bin/python" ] || { python3 -m venv "$dir/venv" && "$dir/venv/bin/pip" install -q orjson; }
py=$dir/venv/bin/python
(cd "$root" && cargo build --release --quiet)
bin=$root/target/release/pytorrent

for name in samples-200 stdlib-200; do
  f=$dir/$name.jsonl
  echo "== $name: $(du -h "$f" | cut -f1)"
  hyperfine -N --warmup 1 --runs 7 --export-json "$dir/$name.json" \
    -n "pytorrent stats (2 threads)" "env RAYON_NUM_THREADS=2 $bin corpus stats $f --json -q" \
    -n "pytorrent stats (1 thread)" "env RAYON_NUM_THREADS=1 $bin corpus stats $f --json -q" \
    -n "python json.loads stats" "$py $here/py_stats.py $f" \
    -n "python orjson stats" "$py $here/py_stats.py --orjson $f" \
    -n "pytorrent validate (2 threads)" "env RAYON_NUM_THREADS=2 $bin corpus validate $f -q" \
    -n "pytorrent validate (1 thread)" "env RAYON_NUM_THREADS=1 $bin corpus validate $f -q" \
    -n "python json.loads loop" "$py $here/py_stats.py --parse-only $f" \
    -n "python orjson loop" "$py $here/py_stats.py --orjson --parse-only $f" > /dev/null
  python3 - "$dir/$name.json" "$f" <<'PY'
import json, os, sys
runs = {r["command"]: r["median"] for r in json.load(open(sys.argv[1]))["results"]}
mb = os.path.getsize(sys.argv[2]) / 1e6
for cmd, t in runs.items():
    print(f"  {cmd:<32} median {t * 1000:6.0f} ms  {mb / t:6.0f} MB/s")
s = runs["python json.loads stats"]
print(f"  stats ratio vs json.loads baseline: {s / runs['pytorrent stats (2 threads)']:.2f}x (2 threads), "
      f"{s / runs['pytorrent stats (1 thread)']:.2f}x (1 thread)")
print(f"  parse ratio vs orjson loop: {runs['python orjson loop'] / runs['pytorrent validate (2 threads)']:.2f}x (2 threads), "
      f"{runs['python orjson loop'] / runs['pytorrent validate (1 thread)']:.2f}x (1 thread)")
PY
done

echo "== peak RSS at two sizes (GNU time: max resident set, wall time)"
for f in "$dir/stdlib-200.jsonl" "$dir/stdlib-590.jsonl"; do
  for cmd in "$bin corpus stats $f --json -q" "$py $here/py_stats.py $f"; do
    /usr/bin/time -f "  %M KB  %e s  $(basename "$f")  $(basename "${cmd%% *}")" $cmd > /dev/null
  done
done
