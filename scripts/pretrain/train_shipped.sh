#!/usr/bin/env bash
# Trains the model shipped in data-samples/models/pytorrent-small-mlm, from packages to a
# checked model, with the commands a user would run:
#
#   scripts/pretrain/train_shipped.sh [WORK_DIR]     (STEPS=… THREADS=2)
#
# 1. fetch the packages of scripts/eval/packages-100.txt and scripts/pretrain/packages-extra.txt
#    from the index pip uses (archives are not committed);
# 2. extract them, keep the packages whose metadata names a permissive license;
# 3. train an 8k byte-level BPE tokenizer on the train partition, pack 128-token rows;
# 4. pretrain configs/models/small.toml on 2 CPU threads, save f16 weights;
# 5. check it: the fill-mask suite and cloze sets made from the test partition, beside a
#    random-initialised model of the same size (0 steps of training).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${1:-/tmp/pytorrent-shipped}
steps=${STEPS:-1400}
export RAYON_NUM_THREADS=${THREADS:-2}
(cd "$root" && cargo build --release --quiet)
bin=$root/target/release/pytorrent
mkdir -p "$work"
cat "$root/scripts/eval/packages-100.txt" "$here/packages-extra.txt" > "$work/packages.txt"
[ -d "$work/downloads/packages" ] || "$bin" fetch --from-file "$work/packages.txt" --out "$work/downloads" -q
[ -d "$work/extracted" ] || "$bin" extract "$work/downloads/packages" --out "$work/extracted" -q
[ -d "$work/corpus" ] || "$bin" corpus filter "$work/extracted" --metadata "$work/downloads/Package_Metadata" \
  --license permissive --out "$work/corpus" -q
"$bin" corpus stats "$work/corpus" --metadata "$work/downloads/Package_Metadata" --json > "$work/corpus-stats.json"
[ -f "$work/tok/tokenizer.json" ] || "$bin" tokenizer train "$work/corpus" --partition train \
  --field original_string --vocab-size 8000 --out "$work/tok" -q
[ -f "$work/shards/train/manifest.json" ] || "$bin" pack "$work/corpus" --tokenizer "$work/tok" \
  --field original_string --seq-len 128 --out "$work/shards" -q
"$bin" pretrain "$work/shards" --out "$work/model" --model-config "$root/configs/models/small.toml" \
  --max-steps "$steps" --batch-size 32 --lr 1e-3 --warmup-steps $((steps / 20)) \
  --eval-every $((steps / 20)) --eval-rows 512 --save-dtype f16 --seed 0 --resume --json > "$work/pretrain.json"
# The baseline: the same size, not trained (random weights), made afresh each time.
rm -rf "$work/random"
"$bin" pretrain "$work/shards" --out "$work/random" --model-config "$root/configs/models/small.toml" \
  --max-steps 1 --lr 1e-30 --eval-every 1 --save-dtype f16 --seed 0 --json > "$work/random.json"
for kind in maxmin all; do
  [ -f "$work/cloze-$kind/clozeTest.json" ] || {
    "$bin" eval cloze make "$work/corpus" --kind "$kind" --partition test --out "$work/cloze-$kind" -q
    # A 128-position model sees only the first 126 tokens of an item: keep the items whose mask
    # it sees (the ones it cannot are listed by a run without answers).
    mv "$work/cloze-$kind/answers.txt" "$work/cloze-$kind/all-answers.txt"
    "$bin" eval cloze "$work/cloze-$kind/clozeTest.json" --model "$work/model" --json -q > "$work/cloze-$kind/cut.json"
    python3 - "$work/cloze-$kind" <<'PY'
import json, sys
d = sys.argv[1]
cut = set(json.load(open(f"{d}/cut.json"))["masks_cut"])
items = [i for i in json.load(open(f"{d}/clozeTest.json")) if i["idx"] not in cut]
json.dump(items, open(f"{d}/clozeTest.json", "w"))
with open(f"{d}/answers.txt", "w") as f:
    for line in open(f"{d}/all-answers.txt"):
        if line.split("<CODESPLIT>")[0] not in cut:
            f.write(line)
print(f"{d}: {len(items)} items ({len(cut)} with the mask past 126 tokens left out)")
PY
  }
done
for m in model random; do
  "$bin" eval fill-mask --model "$work/$m" --json > "$work/$m-fill-mask.json"
  for kind in maxmin all; do
    "$bin" eval cloze "$work/cloze-$kind/clozeTest.json" --model "$work/$m" --json > "$work/$m-cloze-$kind.json"
  done
done
echo "figures: $work/{model,random}-{fill-mask,cloze-maxmin,cloze-all}.json"
