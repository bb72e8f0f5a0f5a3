#!/usr/bin/env bash
# Benchmarks `pytorrent extract` against the CPython-ast reference extractor
# (scripts/reference/ast_extract.py) on the same archives, one thread each.
#
#   scripts/bench/run_extract_bench.sh [ARCHIVE…]      (default: data-samples/packages/*.tar.gz)
#
# Both produce the docstrings scenario with nothing filtered, de-duplicated or scrubbed (the
# reference does none of that), written as gzipped JSONL. Needs hyperfine.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
(cd "$root" && cargo build --release --quiet)
bin=$root/target/release/pytorrent
if [ $# -gt 0 ]; then archives=("$@"); else archives=("$root"/data-samples/packages/*.tar.gz); fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/in"
for a in "${archives[@]}"; do ln -s "$(readlink -f "$a")" "$work/in/$(basename "$a")"; done
mb=$(python3 - "${archives[@]}" <<'PY'
import sys, tarfile, zipfile
n = 0
for a in sys.argv[1:]:
    if a.endswith((".zip", ".whl")):
        n += sum(i.file_size for i in zipfile.ZipFile(a).infolist() if i.filename.endswith(".py"))
    else:
        n += sum(m.size for m in tarfile.open(a) if m.isfile() and m.name.endswith(".py"))
print(n / 1e6)
PY
)
keep="--keep-tests --keep-dunder --keep-trivial --min-code-lines 0 --min-nl-words 0 --keep-duplicates --keep-near-duplicates --keep-secrets"
hyperfine -N --warmup 1 --runs 5 --export-json "$work/extract.json" \
  -n "pytorrent extract (1 thread)" "env RAYON_NUM_THREADS=1 $bin extract $work/in --out $work/rs $keep -q" \
  -n "pytorrent extract (2 threads)" "env RAYON_NUM_THREADS=2 $bin extract $work/in --out $work/rs $keep -q" \
  -n "python ast_extract.py (1 thread)" "python3 $root/scripts/reference/ast_extract.py ${archives[*]} --out $work/ref.jsonl.gz" > /dev/null
functions=$(python3 -c "import gzip,sys; print(sum(1 for _ in gzip.open(sys.argv[1])))" "$work/ref.jsonl.gz")
python3 - "$work/extract.json" "$mb" "$functions" <<'PY'
import json, sys
runs = json.load(open(sys.argv[1]))["results"]
mb, fns = float(sys.argv[2]), int(sys.argv[3])
ref = next(r["median"] for r in runs if r["command"].startswith("python"))
print(f"{mb:.2f} MB of .py source, {fns} documented functions")
for r in runs:
    m = r["median"]
    print(f"  {r['command']:<34} median {m * 1000:7.0f} ms  {mb / m:6.2f} MB/s  {fns / m:8.0f} functions/s  {ref / m:5.1f}x")
PY
