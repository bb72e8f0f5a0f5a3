#!/usr/bin/env bash
# Every command's outputs, byte for byte: two runs with RAYON_NUM_THREADS=2 and one with 1
# must give the same files.
#   scripts/faults/determinism.sh [NAME…]   (uses target/release/pytorrent; PYTORRENT=… to
#                                            choose another build; NAME: only the commands
#                                            whose names contain it)
# Prints one line per command and exits 1 on any difference.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${PYTORRENT:-$root/target/release/pytorrent}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
s=$root/data-samples
bert=$root/tests/fixtures/models/bert
minilm=$root/tests/fixtures/models/st-minilm
printf 'layers = 1\nhidden = 32\nheads = 2\nintermediate = 64\nmax_positions = 64\n' > "$work/tiny.toml"

# name | command with OUT where its output goes (a file or a folder); run in $work/inputs.
commands=(
  "extract|$bin extract $s/packages --out OUT --scenario docstrings,comments,both -q"
  "corpus convert parquet|$bin corpus convert $s/corpus --format parquet --out OUT -q"
  "corpus convert codesearchnet|$bin corpus convert $s/corpus --layout codesearchnet --out OUT -q"
  "corpus stats|$bin corpus stats $s/corpus --metadata $s/packages/Package_Metadata --json -q > OUT"
  "corpus filter|$bin corpus filter $s/corpus --license permissive --metadata $s/packages/Package_Metadata --out OUT -q"
  "tokenizer train|$bin tokenizer train $s/corpus --vocab-size 1200 --out OUT -q"
  "tokenizer encode|$bin tokenizer encode --tokenizer $work/inputs/tok $s/corpus --out OUT -q"
  "pack|$bin pack $s/corpus --tokenizer $work/inputs/tok --seq-len 64 --static-mask --whole-word-mask --out OUT -q"
  "pack megatron|$bin pack $s/corpus --tokenizer $work/inputs/tok --seq-len 64 --format megatron --out OUT -q"
  "pretrain|$bin pretrain $work/inputs/shards --out OUT --model-config $work/tiny.toml --max-steps 6 --batch-size 4 --eval-every 3 --eval-rows 8 --seed 5 -q"
  "embed|$bin embed --model $minilm $s/corpus --field docstring --out OUT -q"
  "fill-mask|$bin fill-mask --model $bert --text 'import <mask>' --json -q > OUT"
  "eval retrieval|$bin eval retrieval $s/corpus --model $minilm --protocol pool --json -q > OUT"
  "corpus dedup|$bin extract $s/packages --num-tasks 2 --task-index 0 --out OUT.tasks -q && $bin extract $s/packages --num-tasks 2 --task-index 1 --out OUT.tasks -q && $bin corpus dedup OUT.tasks --out OUT -q"
  "shards merge|$bin pack $s/corpus --tokenizer $work/inputs/tok --seq-len 64 --num-tasks 2 --task-index 0 --out OUT -q && $bin pack $s/corpus --tokenizer $work/inputs/tok --seq-len 64 --num-tasks 2 --task-index 1 --out OUT -q && $bin shards merge OUT -q"
  "tokenizer eval|$bin tokenizer eval --tokenizer $work/inputs/tok $s/corpus --json -q > OUT"
  "eval fill-mask|$bin eval fill-mask --model $s/models/pytorrent-small-mlm --json -q > OUT"
  "eval cloze|$bin eval cloze make $s/corpus --kind all --out OUT.set -q && $bin eval cloze OUT.set --model $s/models/pytorrent-small-mlm --json -q > OUT"
  "eval overlap|$bin eval overlap $s/corpus $s/corpus --json -q > OUT"
  "run (the sample pipeline)|sed 's|^out = .*|out = \"OUT\"|; s|\\.\\./|$root/|g; s|\"models/|\"$root/configs/models/|' $root/configs/sample.toml > $work/sample.toml && $bin run $work/sample.toml -q"
)
# Only the commands whose names contain one of the arguments, if any are given.
if [ $# -gt 0 ]; then
  chosen=()
  for entry in "${commands[@]}"; do
    for want in "$@"; do
      [[ ${entry%%|*} == *"$want"* ]] && { chosen+=("$entry"); break; }
    done
  done
  commands=("${chosen[@]}")
fi
mkdir -p "$work/inputs"
"$bin" tokenizer train "$s/corpus" --vocab-size 1200 --out "$work/inputs/tok" -q
"$bin" pack "$s/corpus" --tokenizer "$work/inputs/tok" --seq-len 64 --out "$work/inputs/shards" -q

# a file or a folder → sha256 of every file. Pretraining's wall-clock fields are left out:
# log.csv loses its two wall-clock columns, trainer_state.json loses `elapsed_s`, loss.svg is skipped.
digest() {
  if [ -d "$1" ]; then
    # A pipeline run: the stage stamps are compared as JSON without their timings, the
    # HTML report (timings throughout) is left out.
    (cd "$1" && find . -type f ! -name log.csv ! -name loss.svg ! -name trainer_state.json \
       ! -name report.html ! -path './stages/*' -print0 \
       | sort -z | xargs -0 sha256sum
     if [ -d stages ]; then
       for f in stages/*.json; do echo "$(digest_json "$f") $f"; done
     fi
     find . -name trainer_state.json | sort | while read -r f; do
       echo "$(grep -v elapsed_s "$f" | sha256sum) $f"; done
     find . -name log.csv | sort | while read -r f; do
       echo "$(cut -d, -f1-6,9- "$f" | sha256sum) $f"; done)
  else
    digest_json "$1"
  fi
}
# JSON reports: their timing fields (evaluation_time, elapsed, seconds …) are wall-clock.
digest_json() {
    python3 - "$1" <<'PY' | sha256sum
import json, re, sys
data = open(sys.argv[1], "rb").read()
try:
    doc = json.loads(data)
except ValueError:
    sys.stdout.buffer.write(data); sys.exit()
def strip(v):
    if isinstance(v, dict):
        return {k: strip(x) for k, x in v.items()
                if not re.search(r"time|elapsed|per_s$|seconds|finished|mtime", k)}
    if isinstance(v, list):
        return [strip(x) for x in v]
    return v
print(json.dumps(strip(doc), sort_keys=True))
PY
}
status=0
for entry in "${commands[@]}"; do
  name=${entry%%|*}
  cmd=${entry#*|}
  for run in a b c; do
    threads=2; [ $run = c ] && threads=1
    # The same path each time: manifests and stamps record absolute paths.
    out=$work/out
    rm -rf "$out" "$out".*
    (cd "$work/inputs" && RAYON_NUM_THREADS=$threads eval "${cmd//OUT/$out}")
    digest "$out" > "$work/$run.sum"
  done
  if cmp -s "$work/a.sum" "$work/b.sum" && cmp -s "$work/a.sum" "$work/c.sum"; then
    echo "$name: identical (2 runs on 2 threads, 1 on 1 thread)"
  else
    echo "$name: DIFFERS"
    diff "$work/a.sum" "$work/b.sum" | head -5 || true
    diff "$work/a.sum" "$work/c.sum" | head -5 || true
    status=1
  fi
done
exit $status
