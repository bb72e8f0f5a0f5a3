#!/usr/bin/env bash
# Writes the data outputs of every stage on data-samples/ with one pytorrent binary, so that
# two builds (before and after a refactor) can be compared byte for byte with compare.sh.
#
#   scripts/golden/outputs.sh target/release/pytorrent /tmp/golden-before
#   ...change the code, rebuild...
#   scripts/golden/outputs.sh target/release/pytorrent /tmp/golden-after
#   scripts/golden/compare.sh /tmp/golden-before /tmp/golden-after
set -euo pipefail
bin=$(realpath "$1")
out=$2
root=$(cd "$(dirname "$0")/../.." && pwd)
samples=$root/data-samples
models=$root/tests/fixtures/models
dest=$out
# Manifests and id files record absolute paths (inputs, tokenizer), which enter pack's
# fingerprint: every build writes at the same place, and the tree is moved to DEST after.
out=${TMPDIR:-/tmp}/pytorrent-golden-work
rm -rf "$out" "$dest"
mkdir -p "$out"
run() { "$bin" "$@" -q; }
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-2}

# extract: all three scenarios.
run extract "$samples/packages" --out "$out/extract" --scenario docstrings,comments,both
# corpus convert / filter.
run corpus convert "$samples/corpus" --out "$out/convert/flat.jsonl"
run corpus convert "$samples/corpus" --out "$out/convert/flat.jsonl.zst"
run corpus convert "$out/convert/flat.jsonl" --layout codesearchnet --chunk-records 50 --out "$out/convert/csn"
run corpus convert "$out/convert/flat.jsonl" --layout pytorrent --scenario both --compression zstd --out "$out/convert/pt"
run corpus filter "$samples/corpus" --metadata "$samples/packages/Package_Metadata" --license permissive --partition train,valid --out "$out/filter/permissive"
run corpus filter "$out/convert/flat.jsonl" --min-code-chars 200 --exclude-packages six --out "$out/filter/flat.jsonl"
# tokenizer train / encode.
run tokenizer train "$samples/corpus" --out "$out/tok" --vocab-size 1200
run tokenizer train "$samples/corpus" --out "$out/tok-nl" --field nl+code --vocab-size 900 --partition all
run tokenizer encode --tokenizer "$out/tok" "$samples/corpus" --out "$out/encode/ids.jsonl"
run tokenizer encode --tokenizer "$out/tok" "$samples/corpus" --field docstring --out "$out/encode/ids.npy"
"$bin" tokenizer encode --tokenizer "$out/tok" --text "def f(x):\n    return x" --no-special-tokens -q > "$out/encode/text.jsonl"
# pack: the formats and options.
run pack "$samples/corpus" --tokenizer "$out/tok" --out "$out/pack/concat" --seq-len 64 --shard-rows 100
run pack "$samples/corpus" --tokenizer "$out/tok" --out "$out/pack/record" --seq-len 128 --mode record --no-shuffle
run pack "$samples/corpus" --tokenizer "$out/tok" --out "$out/pack/pad" --seq-len 64 --remainder pad --segment-lines 40
run pack "$samples/corpus" --tokenizer "$out/tok" --out "$out/pack/mask" --seq-len 64 --static-mask --dupe-factor 2 --seed 7
run pack "$samples/corpus" --tokenizer "$out/tok" --out "$out/pack/wwm" --seq-len 64 --static-mask --whole-word-mask
run pack "$samples/corpus" --tokenizer "$out/tok" --out "$out/pack/megatron" --seq-len 64 --format megatron --shard-bytes 8K
run pack "$samples/corpus" --tokenizer "$out/tok-nl" --out "$out/pack/nlcode" --seq-len 96 --field nl+code
for i in 0 1 2; do
  run pack "$samples/corpus" --tokenizer "$out/tok" --out "$out/pack/tasks" --seq-len 64 --segment-lines 30 --num-tasks 3 --task-index $i
done
run shards merge "$out/pack/tasks"
# model: embeddings and fill-mask.
mkdir -p "$out/model"
printf '%s\n' 'def add(a, b):' '    return a + b' 'Return the sum of two numbers.' > "$out/model/lines.txt"
run embed --model "$models/roberta-tied" "$out/model/lines.txt" --out "$out/model/lines.npy"
run embed --model "$models/bert" "$samples/corpus" --field docstring --pooling cls --normalize --partition valid --out "$out/model/doc.npy"
"$bin" fill-mask --model "$models/roberta-tied" --text "def add(a, b):\n    return a <mask> b" --json -q > "$out/model/fill.json"
"$bin" corpus stats "$samples/corpus" --metadata "$samples/packages/Package_Metadata" --json -q > "$out/stats.json"
mkdir -p "$(dirname "$dest")"
mv "$out" "$dest"
echo "outputs in $dest"
