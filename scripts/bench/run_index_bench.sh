#!/usr/bin/env bash
# Fetch + extract of real packages from the index pip uses, for the whole-index projection:
#   scripts/bench/run_index_bench.sh [WORKDIR] [LIST]
# LIST defaults to scripts/bench/packages-1000.txt (1,000 random projects). Prints the
# fetch outcome by reason, and for extract on 1 and 2 threads: wall time, CPU time, peak RSS,
# packages/s, MB/s of archives, records. Needs the network (the index) for the fetch only.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${1:-/tmp/pytorrent-bench/index}
list=${2:-$here/packages-1000.txt}
bin=${PYTORRENT:-$here/../../target/release/pytorrent}
mkdir -p "$work"
/usr/bin/time -v "$bin" fetch --from-file "$list" --out "$work/downloads" --jobs 8 --json -q \
  > "$work/fetch.json" 2> "$work/fetch.time" || true   # failures are data, not the end
python3 - "$work/fetch.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(f"fetch: {d['downloaded']} downloaded, {d['already_present']} present, "
      + ", ".join(f"{k}: {len(v)}" for k, v in d['failed'].items()))
PY
grep -E "Elapsed|Maximum resident" "$work/fetch.time"
mb=$(du -sm "$work/downloads/packages" | cut -f1)
n=$(ls "$work/downloads/packages" | wc -l)
for t in 1 2; do
  rm -rf "$work/corpus-$t"
  RAYON_NUM_THREADS=$t /usr/bin/time -v "$bin" extract "$work/downloads/packages" \
    --out "$work/corpus-$t" --scenario docstrings,comments,both --on-error skip --json -q \
    > "$work/extract-$t.json" 2> "$work/extract-$t.time"
  python3 - "$work/extract-$t.json" "$work/extract-$t.time" "$t" "$n" "$mb" <<'PY'
import json, re, sys
d = json.load(open(sys.argv[1])); t = open(sys.argv[2]).read()
def grab(label):
    return re.search(label + r".*?: (.*)", t).group(1).strip()
h, m, s = ([0] + [float(x) for x in grab("Elapsed").split(":")])[-3:]
wall = h * 3600 + m * 60 + s
cpu = float(grab("User time")) + float(grab("System time"))
rss = int(grab("Maximum resident")) / 1024
recs = sum(sum(v.values()) for v in d["records"].values())
n, mb = int(sys.argv[4]), int(sys.argv[5])
print(f"extract, {sys.argv[3]} thread(s): {wall:.1f} s wall, {cpu:.1f} s CPU, {rss:.0f} MB peak; "
      f"{n / wall:.1f} packages/s, {mb / wall:.1f} MB/s of archives; {d['functions']} functions, "
      f"{recs} records, {len(d['failed_packages'])} packages failed")
PY
done
