#!/usr/bin/env bash
# Benchmarks `pytorrent corpus stats` / `validate` against Python line loops on the same file.
#
#   scripts/bench/run_corpus_bench.sh [BENCH_DIR]
#
# Needs: hyperfine and GNU time (Debian packages `hyperfine`, `time`), python3; orjson is
# installed into a throw-away venv under BENCH_DIR. Makes the corpora with
# make_bench_corpus.py if they are missing. Runs one tool after the other on the same machine.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dir=${1:-/tmp/pytorrent-bench}
mkdir -p "$dir"
big=$dir/corpus-large.jsonl
small=$dir/corpus-200.jsonl
[ -f "$big" ] || python3 "$here/make_bench_corpus.py" --target-mb 590 --out "$big"
[ -f "$small" ] || head -n 40000 "$big" > "$small"
[ -x "$dir/venv/bin/python" ] || { python3 -m venv "$dir/venv" && "$dir/venv/bin/pip" install -q orjson; }
py=$dir/venv/bin/python
(cd "$root" && cargo build --release --quiet)
bin=$root/target/release/pytorrent
ls -l "$small" "$big"

echo "== stats: pytorrent vs Python json.loads baseline (same statistics)"
hyperfine --warmup 1 --runs 7 --export-markdown "$dir/stats.md" \
  -n "pytorrent stats (2 threads)" "RAYON_NUM_THREADS=2 $bin corpus stats $small --json -q" \
  -n "pytorrent stats (1 thread)" "RAYON_NUM_THREADS=1 $bin corpus stats $small --json -q" \
  -n "python json.loads stats" "$py $here/py_stats.py $small" \
  -n "python orjson stats" "$py $here/py_stats.py --orjson $small"

echo "== parse only: pytorrent validate vs json.loads / orjson line loops"
hyperfine --warmup 1 --runs 7 --export-markdown "$dir/parse.md" \
  -n "pytorrent validate (2 threads)" "RAYON_NUM_THREADS=2 $bin corpus validate $small -q" \
  -n "pytorrent validate (1 thread)" "RAYON_NUM_THREADS=1 $bin corpus validate $small -q" \
  -n "python json.loads loop" "$py $here/py_stats.py --parse-only $small" \
  -n "python orjson loop" "$py $here/py_stats.py --orjson --parse-only $small"

echo "== peak RSS at two sizes (GNU time, max resident KB)"
for f in "$small" "$big"; do
  for cmd in "$bin corpus stats $f --json -q" "$py $here/py_stats.py $f"; do
    /usr/bin/time -f "%M KB  %e s  $(basename "$f")  ${cmd%% *}" $cmd > /dev/null
  done
done
