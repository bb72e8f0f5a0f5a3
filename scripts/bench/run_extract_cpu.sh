#!/usr/bin/env bash
# CPU time of `pytorrent extract` (one parsing thread) against the linear CPython reference
# (scripts/reference/ast_extract.py: `ast` + one `tokenize` per function, segments from the
# file's lines split once) on the same archives, alternating, median of RUNS (default 3):
#
#   scripts/bench/run_extract_cpu.sh ARCHIVE…
#
# Both write the docstrings scenario with nothing filtered, de-duplicated or scrubbed, as
# gzipped JSONL, and their record counts are printed side by side. CPU time is user + system
# of the whole process (start-up, decompression, parsing, writing), by GNU time. Set
# REFERENCE=path/to/another/ast_extract.py to time another version of the reference.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${PYTORRENT:-$root/target/release/pytorrent}
ref=${REFERENCE:-$root/scripts/reference/ast_extract.py}
runs=${RUNS:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/in"
for a in "$@"; do ln -s "$(readlink -f "$a")" "$work/in/$(basename "$a")"; done
keep="--keep-tests --keep-dunder --keep-trivial --min-code-lines 0 --min-nl-words 0 --keep-duplicates --keep-near-duplicates --keep-secrets --keep-vendored"
cpu() {  # cpu NAME COMMAND… → appends "NAME seconds" to $work/cpu.txt
  local name=$1; shift
  /usr/bin/time -f "%U %S" -o "$work/t" "$@" > /dev/null 2>&1
  echo "$name $(tail -n 1 "$work/t" | awk '{print $1 + $2}')" >> "$work/cpu.txt"
}
for ((r = 0; r < runs; r++)); do
  rm -rf "$work/rs"
  cpu pytorrent env RAYON_NUM_THREADS=1 "$bin" extract "$work/in" --out "$work/rs" $keep -q
  cpu reference python3 "$ref" "$@" --out "$work/ref.jsonl.gz"
done
ours=$(python3 -c "import gzip,glob,sys; print(sum(1 for f in glob.glob(sys.argv[1]+'/**/*.jsonl.gz', recursive=True) for _ in gzip.open(f)))" "$work/rs")
theirs=$(python3 -c "import gzip,sys; print(sum(1 for _ in gzip.open(sys.argv[1])))" "$work/ref.jsonl.gz")
python3 - "$work/cpu.txt" "$ours" "$theirs" "$#" <<'PY'
import statistics, sys
t = {}
for line in open(sys.argv[1]):
    name, s = line.split()
    t.setdefault(name, []).append(float(s))
ours, ref = statistics.median(t["pytorrent"]), statistics.median(t["reference"])
print(f"{sys.argv[4]} archives; records: pytorrent {sys.argv[2]}, reference {sys.argv[3]}")
print(f"pytorrent extract (1 thread): {ours:.2f} CPU-s (runs {t['pytorrent']})")
print(f"reference ast_extract.py:     {ref:.2f} CPU-s (runs {t['reference']})")
print(f"ratio per CPU-second: {ref / ours:.1f}x")
PY
