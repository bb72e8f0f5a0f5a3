#!/usr/bin/env bash
# SIGKILL at random points, then resume: the output must equal an uninterrupted run's.
#   scripts/faults/kill_resume.sh [-n KILLS] [-s SEED] [extract|pack|pretrain|run]...
# (default: 20 kills each, all four). Each command runs once uninterrupted (the reference,
# timed); then the command (fresh the first time, --resume after) is killed with SIGKILL
# after a random fraction of the reference time, until KILLS kills have landed mid-run. A run
# that finishes first, and the last resume, are compared with the reference byte for byte
# (pretrain and run: every file, hidden ones too, but the pipeline's report and stamps and
# pretraining's wall-clock columns and fields). Prints the
# kills landed and the verdict per command; exit 1 on any difference. The test suite runs
# smaller loops of the same (tests/cli/resume.rs, extract.rs, run.rs).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${PYTORRENT:-$root/target/release/pytorrent}
kills=20
seed=1
while getopts "n:s:" o; do
  case $o in
    n) kills=$OPTARG ;;
    s) seed=$OPTARG ;;
    *) exit 2 ;;
  esac
done
shift $((OPTIND - 1))
commands=("$@")
[ ${#commands[@]} -gt 0 ] || commands=(extract pack pretrain run)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
RANDOM=$seed
samples=$root/data-samples

# Shared inputs: a tokenizer and shards for pack and pretrain.
"$bin" tokenizer train "$samples/corpus" --vocab-size 1200 --out "$work/tok" -q
"$bin" pack "$samples/corpus" --tokenizer "$work/tok" --seq-len 64 --out "$work/shards" -q
printf 'layers = 1\nhidden = 32\nheads = 2\nintermediate = 64\nmax_positions = 64\n' > "$work/tiny.toml"
sed "s|^out = .*|out = \"$work/run-OUT\"|; s|\.\./|$root/|g; s|\"models/|\"$root/configs/models/|" "$root/configs/sample.toml" > "$work/sample.toml"

command_of() { # $1 command, $2 output folder
  case $1 in
    extract) echo "$bin extract $samples/packages --out $2 --scenario docstrings,comments,both -q" ;;
    pack) echo "$bin pack $samples/corpus --tokenizer $work/tok --seq-len 64 --shard-rows 8 --static-mask --out $2 -q" ;;
    pretrain) echo "$bin pretrain $work/shards --out $2 --model-config $work/tiny.toml --max-steps 40 --batch-size 4 --save-every 5 --eval-every 20 --eval-rows 8 --seed 5 -q" ;;
    run) sed "s|run-OUT|$(basename "$2")|" "$work/sample.toml" > "$2.toml"; echo "$bin run $2.toml -q" ;;
  esac
}
resume_flag() { case $1 in run) echo "" ;; *) echo "--resume" ;; esac; }

# What must be equal: a listing of files with their sha256 (log.csv without its wall-clock columns).
digest() { # $1 command, $2 output folder
  case $1 in
    pretrain | run)
      # Pretraining's wall-clock fields left out, as for pretrain: log.csv loses its two wall-clock
      # columns, trainer_state.json loses `elapsed_s`, loss.svg (drawn from them) is skipped.
      (cd "$2" && find . -type f ! -name 'report.html' ! -path './stages/*' ! -name '*.log' \
         ! -name log.csv ! -name loss.svg ! -name trainer_state.json -print0 \
        | sort -z | xargs -0 sha256sum
       find . -name trainer_state.json | sort | while read -r f; do
         echo "$(grep -v elapsed_s "$f" | sha256sum) $f"; done
       find . -name log.csv | sort | while read -r f; do
         echo "$(cut -d, -f1-6,9- "$f" | sha256sum) $f"; done) ;;
    *)
      (cd "$2" && find . -type f -print0 | sort -z | xargs -0 sha256sum) ;;
  esac
}

status=0
for c in "${commands[@]}"; do
  ref=$work/$c-ref
  # Outputs record absolute paths (manifests, stamps): the reference runs where the killed
  # runs will, and is moved aside.
  out=$work/$c-out
  start=$(date +%s.%N)
  eval "$(command_of "$c" "$out")"
  full=$(echo "$(date +%s.%N) - $start" | bc)
  mv "$out" "$ref"
  rm -rf "$out"
  landed=0
  chains=1
  bad=0
  # Kill until KILLS have landed mid-run. A run that finished before its kill is compared
  # with the reference there and then, and the next attempt starts afresh, so that kills keep
  # landing instead of hitting a finished output.
  for ((i = 0; i < 4 * kills && landed < kills; i++)); do
    extra=""
    [ -e "$out" ] && extra=$(resume_flag "$c")
    frac=$(echo "scale=3; $((RANDOM % 1000)) / 1000" | bc)
    # exec: the background job is pytorrent itself, so the SIGKILL reaches it.
    cmd="$(command_of "$c" "$out") $extra"
    (eval "exec $cmd") & pid=$!
    sleep "$(echo "$full * $frac" | bc)"
    kill -9 "$pid" 2>/dev/null || true
    rc=0
    wait "$pid" 2>/dev/null || rc=$?
    # 137: killed by the signal (it had not finished).
    if [ "$rc" -eq 137 ]; then
      landed=$((landed + 1))
    else
      if ! diff <(digest "$c" "$ref") <(digest "$c" "$out") > "$work/$c.diff"; then
        echo "$c: chain $chains finished DIFFERENT:"; head -20 "$work/$c.diff"; bad=1
      fi
      chains=$((chains + 1))
      rm -rf "$out" "$out.toml"
    fi
  done
  extra=""
  [ -e "$out" ] && extra=$(resume_flag "$c")
  eval "$(command_of "$c" "$out") $extra"
  if diff <(digest "$c" "$ref") <(digest "$c" "$out") > "$work/$c.diff" && [ $bad -eq 0 ]; then
    echo "$c: $landed kills landed mid-run over $chains runs resumed to the end (reference ${full}s); every resumed output identical"
  else
    echo "$c: $landed kills landed; OUTPUT DIFFERS:"; head -20 "$work/$c.diff"; status=1
  fi
done
exit $status
