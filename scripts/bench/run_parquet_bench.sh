#!/usr/bin/env bash
# Parquet benchmarks, each tool after the other on the same machine:
#   1. `pytorrent corpus stats` on a Parquet file of >= 200 MB against py_stats.py reading the
#      same file with pyarrow (a batch at a time, only the needed columns) and computing the
#      same statistics;
#   2. writing Parquet from the same JSONL: `pytorrent corpus convert --format parquet`
#      against py_parquet_write.py (pyarrow.json.read_json + pyarrow.parquet.write_table, and
#      its streaming variant).
# Wall times by hyperfine (medians), peak RSS by GNU time.
#
#   scripts/bench/run_parquet_bench.sh [BENCH_DIR]
#
# Needs: hyperfine and GNU time (Debian packages `hyperfine`, `time`), python3; pyarrow is
# installed into a throw-away venv under BENCH_DIR (pinned in scripts/interop/requirements.txt).
# Makes stdlib-590.jsonl with make_bench_corpus.py when missing, and the Parquet input from it
# and its first 40,000 lines (790 MB of JSONL → about 250 MB of Parquet with pyarrow's
# defaults: snappy, one file, as hub datasets are written).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dir=${1:-/tmp/pytorrent-bench}
runs=${RUNS:-5}
mkdir -p "$dir"
[ -f "$dir/stdlib-590.jsonl" ] || python3 "$here/make_bench_corpus.py" --target-mb 590 --out "$dir/stdlib-590.jsonl"
[ -f "$dir/stdlib-200.jsonl" ] || head -n 40000 "$dir/stdlib-590.jsonl" > "$dir/stdlib-200.jsonl"
if [ ! -x "$dir/pq-venv/bin/python" ]; then
  python3 -m venv "$dir/pq-venv"
  "$dir/pq-venv/bin/pip" install -q "$(grep '^pyarrow==' "$root/scripts/interop/requirements.txt")"
fi
py=$dir/pq-venv/bin/python
(cd "$root" && cargo build --release --quiet)
bin=$root/target/release/pytorrent

pq_in=$dir/stdlib-790.parquet
[ -f "$pq_in" ] || "$py" - "$dir/stdlib-590.jsonl" "$dir/stdlib-200.jsonl" "$pq_in" <<'PY'
import sys, pyarrow as pa, pyarrow.json as pj, pyarrow.parquet as pq
t = pa.concat_tables([pj.read_json(sys.argv[1]), pj.read_json(sys.argv[2])])
pq.write_table(t, sys.argv[3])
PY
echo "== 1. corpus stats on $(basename "$pq_in"): $(du -m "$pq_in" | cut -f1) MB"
hyperfine -N --warmup 1 --runs "$runs" --export-json "$dir/parquet-stats.json" \
  -n "pytorrent stats (2 threads)" "env RAYON_NUM_THREADS=2 $bin corpus stats $pq_in --json -q" \
  -n "pytorrent stats (1 thread)" "env RAYON_NUM_THREADS=1 $bin corpus stats $pq_in --json -q" \
  -n "pyarrow + py_stats.py" "$py $here/py_stats.py $pq_in" > /dev/null
# Both sides must agree before their times mean anything.
"$bin" corpus stats "$pq_in" --json -q > "$dir/ours.json"
"$py" "$here/py_stats.py" "$pq_in" > "$dir/theirs.json"
python3 - "$dir/ours.json" "$dir/theirs.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
assert a["records"] == b["records"], (a["records"], b["records"])
assert a["records_per_partition"] == b["records_per_partition"]
assert a["exact_duplicates"]["count"] == b["exact_duplicates"]
for k in ("code_chars", "docstring_chars"):
    assert all(a[k][q] == b[k][q] for q in ("min", "p50", "p90", "max")), k
print(f"  same statistics: {a['records']} records, {b['exact_duplicates']} duplicates")
PY

echo "== 2. JSONL → Parquet from stdlib-200.jsonl ($(du -m "$dir/stdlib-200.jsonl" | cut -f1) MB)"
out=$dir/pq-out
hyperfine -N --warmup 1 --runs "$runs" --export-json "$dir/parquet-write.json" \
  --prepare "rm -rf $out $out.parquet" \
  -n "pytorrent convert --format parquet (2 threads)" \
  "env RAYON_NUM_THREADS=2 $bin corpus convert $dir/stdlib-200.jsonl --out $out --format parquet -q" \
  -n "pyarrow read_json + write_table" "$py $here/py_parquet_write.py $dir/stdlib-200.jsonl $out.parquet" \
  -n "json.loads + ParquetWriter (streaming)" \
  "$py $here/py_parquet_write.py --streaming $dir/stdlib-200.jsonl $out.parquet" > /dev/null

python3 - "$dir/parquet-stats.json" "$dir/parquet-write.json" <<'PY'
import json, sys
for path, base in zip(sys.argv[1:], ["pyarrow + py_stats.py", "pyarrow read_json + write_table"]):
    runs = {r["command"]: r["median"] for r in json.load(open(path))["results"]}
    for cmd, t in runs.items():
        print(f"  {cmd:<48} median {t:7.2f} s  {runs[base] / t:5.2f}x")
PY

echo "== peak RSS (GNU time: max resident set, wall time)"
rss() { /usr/bin/time -f "  %M KB  %e s  $1" "${@:2}" > /dev/null; }
rss "pytorrent stats" "$bin" corpus stats "$pq_in" --json -q
rss "pyarrow + py_stats.py" "$py" "$here/py_stats.py" "$pq_in"
rm -rf "$out" "$out.parquet"
rss "pytorrent convert --format parquet" "$bin" corpus convert "$dir/stdlib-200.jsonl" --out "$out" --format parquet -q
rss "pyarrow read_json + write_table" "$py" "$here/py_parquet_write.py" "$dir/stdlib-200.jsonl" "$out.parquet"
rm -f "$out.parquet"
rss "json.loads + ParquetWriter" "$py" "$here/py_parquet_write.py" --streaming "$dir/stdlib-200.jsonl" "$out.parquet"
echo "== output sizes"
du -sm "$out" "$out.parquet"
