#!/usr/bin/env bash
# Fine-tunes the model shipped in data-samples/models/pytorrent-small-retrieval from the
# shipped MLM, on the train partition of the packages the MLM was pretrained on, and checks
# it on their test partition (packages neither model trained on), with the commands a user
# would run:
#
#   scripts/finetune/train_shipped.sh [WORK_DIR]     (THREADS=2)
#
# 1. fetch the packages of scripts/eval/packages-100.txt and scripts/pretrain/packages-extra.txt
#    as the index was on 2026-11-30 (the MLM's data), extract them, keep the permissive ones;
# 2. finetune one epoch (batch 32, lr 2e-4, MultipleNegativesRankingLoss), f16 weights;
# 3. eval retrieval on the test partition, pool and CodeSearchNet protocols, the fine-tuned
#    model beside the MLM it started from, BM25 and random.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${1:-/tmp/pytorrent-shipped-retrieval}
export RAYON_NUM_THREADS=${THREADS:-2}
(cd "$root" && cargo build --release --quiet)
bin=$root/target/release/pytorrent
mlm=$root/data-samples/models/pytorrent-small-mlm
mkdir -p "$work"
cat "$root/scripts/eval/packages-100.txt" "$root/scripts/pretrain/packages-extra.txt" > "$work/packages.txt"
[ -d "$work/downloads/packages" ] || "$bin" fetch --from-file "$work/packages.txt" --as-of 2026-11-30 \
  --out "$work/downloads" -q
[ -d "$work/extracted" ] || "$bin" extract "$work/downloads/packages" --out "$work/extracted" -q
[ -d "$work/corpus" ] || "$bin" corpus filter "$work/extracted" --metadata "$work/downloads/Package_Metadata" \
  --license permissive --out "$work/corpus" -q
/usr/bin/time -v "$bin" finetune "$work/corpus" --init "$mlm" --out "$work/retrieval" \
  --epochs 1 --batch-size 32 --lr 2e-4 --eval-every 50 --eval-pairs 1000 --save-dtype f16 --seed 0 \
  --resume --json > "$work/finetune.json" 2> "$work/finetune.log"
for protocol in pool csn; do
  batch=()
  if [ "$protocol" = csn ]; then
    # CodeSearchNet's batches of 1,000 (1 positive + 999 distractors) need 1,000 test pairs;
    # a smaller test partition is one batch of all of them.
    n=$("$bin" corpus stats "$work/corpus" --partition test --json -q | python3 -c 'import json,sys; print(json.load(sys.stdin)["records"])')
    batch=(--csn-batch "$(( n < 1000 ? n : 1000 ))")
  fi
  "$bin" eval retrieval "$work/corpus" --model "$work/retrieval" --baseline-model "$mlm" \
    --protocol "$protocol" "${batch[@]}" --no-cache --json -q > "$work/retrieval-$protocol.json"
done
echo "figures: $work/finetune.json $work/retrieval-{pool,csn}.json"
