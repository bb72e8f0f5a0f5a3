#!/usr/bin/env bash
# The whole-index run's stages one after the other on this machine, exactly as the array
# jobs run them (every task of a stage in turn, the same flags, the same folders), for
# testing a run before queueing it and for runs that fit one machine:
#   scripts/scale-out/local_run.sh OUT (--from-file LIST | PACKAGES_DIR) [TASKS] [BUCKETS]
# fetch (when given a list) → extract as TASKS tasks → corpus dedup --stage buckets as
# BUCKETS tasks → clusters → write as TASKS tasks → corpus stats. Each step's wall time and
# peak RSS go to OUT/times.tsv (GNU time, when present).
set -euo pipefail
out=${1:?usage: local_run.sh OUT (--from-file LIST | PACKAGES_DIR) [TASKS] [BUCKETS]}
shift
if [ "${1:-}" = --from-file ]; then list=${2:?a list file}; shift 2; packages="$out/downloads/packages"
else list=; packages=${1:?a packages folder}; shift; fi
tasks=${1:-4}
buckets=${2:-8}
PYTORRENT=${PYTORRENT:-pytorrent}
mkdir -p "$out"
times="$out/times.tsv"
printf 'step\twall_s\tpeak_rss_kb\n' > "$times"
step() {  # step NAME COMMAND…
  local name=$1 status=0; shift
  if [ -x /usr/bin/time ]; then
    # GNU time puts "Command exited with non-zero status N" first when the command fails.
    /usr/bin/time -f "%e %M" -o "$out/.time" "$@" || status=$?
    read -r wall rss < <(tail -n 1 "$out/.time")
  else
    local t0=$SECONDS; "$@"; wall=$((SECONDS - t0)); rss=
  fi
  printf '%s\t%s\t%s\n' "$name" "$wall" "$rss" >> "$times"
  echo "$name: ${wall}s, ${rss:-?} KB peak" >&2
  return "$status"
}
if [ -n "$list" ]; then
  # Failures (packages gone from the index) are reported in fetch.json, not fatal.
  step fetch "$PYTORRENT" fetch --from-file "$list" --out "$out/downloads" --jobs 8 --json -q \
    > "$out/fetch.json" || true
fi
for ((i = 0; i < tasks; i++)); do
  # shellcheck disable=SC2086  # EXTRACT_ARGS is a list of flags
  step "extract $i/$tasks" "$PYTORRENT" extract "$packages" --out "$out/tasks" \
    --num-tasks "$tasks" --task-index "$i" --resume -q \
    ${EXTRACT_ARGS:---scenario docstrings,comments,both --on-error skip}
done
for ((j = 0; j < buckets; j++)); do
  step "buckets $j/$buckets" "$PYTORRENT" corpus dedup "$out/tasks" --out "$out/corpus" \
    --stage buckets --num-tasks "$buckets" --task-index "$j" -q
done
step clusters "$PYTORRENT" corpus dedup "$out/tasks" --out "$out/corpus" --stage clusters -q
for ((i = 0; i < tasks; i++)); do
  step "write $i/$tasks" "$PYTORRENT" corpus dedup "$out/tasks" --out "$out/corpus" \
    --stage write --num-tasks "$tasks" --task-index "$i" -q
done
step stats "$PYTORRENT" corpus stats "$out/corpus" > "$out/corpus-stats.txt"
echo "corpus: $out/corpus (statistics: $out/corpus-stats.txt, times: $times)" >&2
