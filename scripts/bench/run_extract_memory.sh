#!/usr/bin/env bash
# Peak memory of extract as packages are added: the first N archives (name order) of a
# folder for each N, one parsing thread, all three scenarios; peak RSS by GNU time.
#   scripts/bench/run_extract_memory.sh PACKAGES_DIR [N...]      (default N: 100 200 400)
# Prints packages, functions, records and peak RSS per N, and the records' growth per record.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:?a folder of package archives}
shift
sizes=${*:-100 200 400}
bin=${PYTORRENT:-$here/../../target/release/pytorrent}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ls "$dir" | sort > "$work/all"
echo "| packages | functions | records | peak RSS |"
echo "| ---: | ---: | ---: | ---: |"
for n in $sizes; do
  rm -rf "$work/in" "$work/out"
  mkdir "$work/in"
  head -n "$n" "$work/all" | while read -r f; do ln -s "$dir/$f" "$work/in/$f"; done
  RAYON_NUM_THREADS=1 /usr/bin/time -v "$bin" extract "$work/in" --out "$work/out" \
    --scenario docstrings,comments,both --on-error skip --json -q \
    > "$work/x.json" 2> "$work/x.time"
  python3 - "$work/x.json" "$work/x.time" "$n" <<'PY'
import json, re, sys
d = json.load(open(sys.argv[1])); t = open(sys.argv[2]).read()
rss = int(re.search(r"Maximum resident.*?: (\d+)", t).group(1)) / 1024
recs = sum(sum(v.values()) for v in d["records"].values())
print(f"| {sys.argv[3]} | {d['functions']:,} | {recs:,} | {rss:.0f} MB |")
PY
done
