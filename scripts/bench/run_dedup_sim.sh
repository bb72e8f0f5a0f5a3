#!/usr/bin/env bash
# The staged `corpus dedup` at whole-index scale, on simulated extract key files:
#   scripts/bench/run_dedup_sim.sh WORKDIR [RECORDS=20000000] [EXTRACT_TASKS=16] [BUCKETS=64]
# Shares of exact copies, near variants, far variants and records too short for a signature
# come from EXACT, NEAR, FAR, SHORT. The defaults reproduce the docstrings scenario of the
# 1,000-package run (scripts/bench/README.md): 2.9 % exact and 2.0 % near duplicates dropped,
# about 1.1 signature comparisons per record (FAR calibrated on a 200,000-record run), no
# record without a signature (the 3-line minimum leaves none). Writes the keys with the dedup_keys_sim example, then runs
# every buckets task and the clusters task one after the other under GNU time, and prints
# each stage's wall time and peak RSS (median and max over its tasks) and the disk used.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${1:?usage: run_dedup_sim.sh WORKDIR [RECORDS] [EXTRACT_TASKS] [BUCKETS]}
records=${2:-20000000}
tasks=${3:-16}
buckets=${4:-64}
bin=${PYTORRENT:-$root/target/release/pytorrent}
cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p pytorrent-extract --example dedup_keys_sim
rm -rf "$work" && mkdir -p "$work"
/usr/bin/time -f "%e %M" -o "$work/gen.time" "$root/target/release/examples/dedup_keys_sim" \
  "$work/tasks" "$records" "$tasks" "${EXACT:-0.029}" "${NEAR:-0.013}" "${FAR:-0.5}" "${SHORT:-0}"
echo "generate: $(cat "$work/gen.time") (s, KB); keys on disk: $(du -sh "$work/tasks" | cut -f1)"
: > "$work/stages.tsv"
for ((j = 0; j < buckets; j++)); do
  /usr/bin/time -f "%e %M" -o "$work/t" "$bin" corpus dedup "$work/tasks" --out "$work/corpus" \
    --stage buckets --num-tasks "$buckets" --task-index "$j" --json -q > "$work/buckets-$j.json"
  echo "buckets $(cat "$work/t")" >> "$work/stages.tsv"
done
/usr/bin/time -f "%e %M" -o "$work/t" "$bin" corpus dedup "$work/tasks" --out "$work/corpus" \
  --stage clusters --json -q > "$work/clusters.json"
echo "clusters $(cat "$work/t")" >> "$work/stages.tsv"
python3 - "$work" <<'PY'
import json, statistics, sys
work = sys.argv[1]
rows = {}
for line in open(f"{work}/stages.tsv"):
    stage, wall, rss = line.split()
    rows.setdefault(stage, []).append((float(wall), int(rss) / 1024))
for stage, v in rows.items():
    walls, rss = [w for w, _ in v], [r for _, r in v]
    print(f"{stage}: {len(v)} task(s); wall median {statistics.median(walls):.1f} s, "
          f"max {max(walls):.1f} s, total {sum(walls):.1f} s; peak RSS median "
          f"{statistics.median(rss):.0f} MB, max {max(rss):.0f} MB")
c = json.load(open(f"{work}/clusters.json"))
for name, s in c["scenarios"].items():
    print(f"{name}: {s['exact']} exact and {s['near']} near duplicates go ({s['pairs']} near pairs)")
PY
du -sh "$work/corpus/.dedup-work"
