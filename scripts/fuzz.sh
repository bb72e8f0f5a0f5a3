#!/usr/bin/env bash
# Runs every fuzz target (or those named) for a time budget each, with cargo-fuzz (nightly):
#   scripts/fuzz.sh [-t SECONDS] [-j PARALLEL] [TARGET...]     (default: 600 s, 1 at a time)
# Inputs start from fuzz/seeds/<target>/ (real data, scripts/fuzz/make_seeds.sh) plus the
# corpus a former run grew in fuzz/corpus/<target>/. A crash is saved under
# fuzz/artifacts/<target>/; once fixed, copy it to fuzz/regressions/<target>/, which
# tests/cli/fuzz_replay.rs replays in every test run. Prints executions and crashes per target
# and writes the table to fuzz/last-run.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
budget=600
jobs=1
while getopts "t:j:" o; do
  case $o in
    t) budget=$OPTARG ;;
    j) jobs=$OPTARG ;;
    *) exit 2 ;;
  esac
done
shift $((OPTIND - 1))
cd "$root"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

cargo +nightly fuzz build -O
# The targets run from the binaries built here, so editing the sources during a long campaign
# cannot rebuild (and change) what is being fuzzed halfway through.
bin_dir="$root/fuzz/target/$(rustc +nightly -vV | sed -n 's/^host: //p')/release"
# Largest input per target: archives and safetensors files need room, text less.
max_len() {
  case $1 in
    archive|parquet|model_files) echo 262144 ;;
    tokenizer_json|vocab_merges|python_source) echo 65536 ;;
    *) echo 16384 ;;
  esac
}
logs=$(mktemp -d)
run_one() {
  local t=$1
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  local start=$SECONDS
  "$bin_dir/$t" "fuzz/corpus/$t" "fuzz/seeds/$t" \
    -max_total_time="$budget" -max_len="$(max_len "$t")" -rss_limit_mb=2048 -timeout=20 -detect_leaks=0 \
    -artifact_prefix="fuzz/artifacts/$t/" -print_final_stats=1 > "$logs/$t.log" 2>&1 || true
  # How long it ran: the budget, or less when it stopped at a crash.
  echo $((SECONDS - start)) > "$logs/$t.secs"
}
export -f run_one max_len
export budget logs bin_dir
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one {}'
{
  echo "| target | seconds | executions | crashes kept in fuzz/artifacts |"
  echo "| --- | ---: | ---: | ---: |"
  for t in "${targets[@]}"; do
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$logs/$t.log" | grep -o '[0-9]*$' | tail -1)
    crashes=$(find "fuzz/artifacts/$t" -type f | wc -l)
    echo "| $t | $(cat "$logs/$t.secs") | ${execs:-?} | $crashes |"
  done
} | tee fuzz/last-run.md
echo "logs: $logs"
