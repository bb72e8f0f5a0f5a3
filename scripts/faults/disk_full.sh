#!/usr/bin/env bash
# A full disk for each writing command: the output goes to a small tmpfs (needs root, for
# `mount`), too small for it. Each command must exit 1 with an error that names the path and
# says the disk is full, and leave nothing under a final name that passes for finished
# output. The test suite checks the same with a file-size limit instead (tests/cli/faults.rs),
# which needs no root.
#   sudo scripts/faults/disk_full.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${PYTORRENT:-$root/target/release/pytorrent}
samples=$root/data-samples
work=$(mktemp -d)
disk=$work/disk
mkdir -p "$disk"
cleanup() { umount "$disk" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# Inputs, on the normal disk.
"$bin" tokenizer train "$samples/corpus" --vocab-size 1200 --out "$work/tok" -q
"$bin" pack "$samples/corpus" --tokenizer "$work/tok" --seq-len 64 --out "$work/shards" -q

status=0
printf '| command | tmpfs | exit | error names the path, "No space left" | left under the final name |\n'
printf '| --- | ---: | ---: | --- | --- |\n'
check() { # $1 label, $2 tmpfs size, $3 final path, $4 finished-test, then the command
  local label=$1 size=$2 final=$3 finished=$4
  shift 4
  mount -t tmpfs -o "size=$size" tmpfs "$disk"
  local rc=0
  "$@" > "$work/out" 2> "$work/err" || rc=$?
  local named=no left
  if grep -q "$disk" "$work/err" && grep -q "No space left" "$work/err"; then named=yes; fi
  if eval "$finished"; then left="FINISHED-LOOKING OUTPUT"; else left="nothing that passes for finished"; fi
  printf '| %s | %s | %s | %s | %s |\n' "$label" "$size" "$rc" "$named" "$left"
  if [ "$rc" -ne 1 ] || [ "$named" != yes ] || [ "$left" != "nothing that passes for finished" ]; then
    status=1
    sed 's/^/    /' "$work/err" | head -5
  fi
  umount "$disk"
}

check "extract" 256k "$disk/corpus" \
  '"$bin" corpus validate "$disk/corpus" -q 2>/dev/null' \
  "$bin" extract "$samples/packages" --out "$disk/corpus" -q
check "corpus convert --layout pytorrent" 48k "$disk/conv" \
  '"$bin" corpus validate "$disk/conv" -q 2>/dev/null' \
  "$bin" corpus convert "$samples/corpus" --layout pytorrent --chunk-records 20 --out "$disk/conv" -q
check "corpus convert (one file)" 64k "$disk/all.jsonl" \
  '[ -e "$disk/all.jsonl" ]' \
  "$bin" corpus convert "$samples/corpus" --out "$disk/all.jsonl" -q
check "tokenizer train" 64k "$disk/tok" \
  '[ -e "$disk/tok/tokenizer.json" ]' \
  "$bin" tokenizer train "$samples/corpus" --vocab-size 1200 --out "$disk/tok" -q
check "pack" 32k "$disk/shards" \
  'ls "$disk"/shards/*/manifest.json > /dev/null 2>&1' \
  "$bin" pack "$samples/corpus" --tokenizer "$work/tok" --seq-len 64 --shard-rows 16 --out "$disk/shards" -q
check "pretrain" 64k "$disk/model" \
  '[ -e "$disk/model/model.safetensors" ]' \
  "$bin" pretrain "$work/shards" --out "$disk/model" --model-config "$root/configs/models/tiny.toml" \
  --max-steps 4 --batch-size 2 --save-every 2 -q
check "embed" 16k "$disk/vectors.npy" \
  '[ -e "$disk/vectors.npy" ]' \
  "$bin" embed "$samples/corpus" --model "$samples/models/pytorrent-small-mlm" --field code \
  --out "$disk/vectors.npy" -q
exit $status
