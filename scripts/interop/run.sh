#!/usr/bin/env bash
# Interop checks against the Python ecosystem, on data-samples/.
#
# Makes (once) a throw-away venv with the pinned packages of requirements.txt from the
# package index pip is configured with (PYTORRENT_INTEROP_VENV, default target/interop-venv),
# then checks that what `pytorrent tokenizer` writes loads and behaves identically in Python.
#
# The checks that need torch (a forward pass of every model folder we write in transformers,
# sentence-transformers loading fine-tuned models) run when PYTORRENT_TORCH_VENV names a venv
# holding torch, transformers and sentence-transformers (scripts/interop/make_torch_venv.sh
# makes one, ~6 GB, too heavy for CI); without it they say they were skipped.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv=${PYTORRENT_INTEROP_VENV:-$root/target/interop-venv}
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$here/requirements.txt" "$venv/requirements.txt"; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$venv/requirements.txt"
fi
(cd "$root" && cargo build --quiet --locked)
bin=$root/target/debug/pytorrent
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
corpus=$root/data-samples/corpus
vocab=3000
minf=2
for field in code nl+code; do
  echo "== tokenizer interop, field $field"
  "$bin" tokenizer train "$corpus" --field "$field" --vocab-size $vocab --min-frequency $minf --out "$work/tok" --quiet
  "$bin" tokenizer encode --tokenizer "$work/tok" "$corpus" --field "$field" --out "$work/ids.jsonl" --quiet
  "$bin" tokenizer encode --tokenizer "$work/tok" "$corpus" --field "$field" --out "$work/ids.npy" --quiet
  pyfield=$field
  if [ "$field" = "nl+code" ]; then
    # The Python side builds the same view: docstring, a blank line, then code.
    pyfield=nl_plus_code
  fi
  HF_HUB_OFFLINE=1 TRANSFORMERS_NO_ADVISORY_WARNINGS=1 "$venv/bin/python" "$here/check_tokenizer.py" \
    --tokenizer "$work/tok" --corpus "$corpus" --ids "$work/ids.jsonl" --npy "$work/ids.npy" \
    --field "$pyfield" --train-partition train --vocab-size $vocab --min-frequency $minf
  echo "== pack interop (numpy, group_texts, Megatron reader, static masks, Dataset example), field $field"
  common=(--field "$field" --seq-len 128 --shard-rows 100 --no-shuffle --quiet)
  "$bin" pack "$corpus" --tokenizer "$work/tok" --out "$work/packed" "${common[@]}"
  "$bin" pack "$corpus" --tokenizer "$work/tok" --out "$work/megatron" --format megatron "${common[@]}"
  "$bin" pack "$corpus" --tokenizer "$work/tok" --out "$work/masked" --static-mask --seed 3 "${common[@]}"
  "$venv/bin/python" "$here/check_pack.py" --packed "$work/packed" --corpus "$corpus" --tokenizer "$work/tok" \
    --field "$field" --seq-len 128 --megatron "$work/megatron" --masked "$work/masked"
  rm -rf "$work/packed" "$work/megatron" "$work/masked"
  rm -rf "$work/tok"
done
echo "== datasets interop (Parquet corpora and shards, the Dataset example)"
"$bin" extract "$root/data-samples/packages" --out "$work/x-jsonl" --scenario docstrings,both --quiet
"$bin" extract "$root/data-samples/packages" --out "$work/x-parquet" --scenario docstrings,both --format parquet --quiet
"$bin" corpus convert "$work/x-jsonl/docstrings" --format parquet --out "$work/x-converted" --quiet
"$bin" tokenizer train "$corpus" --vocab-size $vocab --out "$work/tok" --quiet
common=(--seq-len 64 --mode record --static-mask --seed 5 --quiet)
"$bin" pack "$corpus" --tokenizer "$work/tok" --out "$work/p-npy" "${common[@]}"
"$bin" pack "$corpus" --tokenizer "$work/tok" --out "$work/p-parquet" --format parquet "${common[@]}"
"$bin" pack "$corpus" --tokenizer "$work/tok" --out "$work/p-megatron" --format megatron --seq-len 64 --quiet
# A corpus without test records: its test partition is empty.
mkdir -p "$work/no-test/docstrings"
cp -r "$corpus/docstrings/train" "$corpus/docstrings/valid" "$work/no-test/docstrings/"
"$bin" pack "$work/no-test" --tokenizer "$work/tok" --out "$work/p-empty" --format parquet "${common[@]}"
HF_DATASETS_CACHE="$work/hf-cache" HF_HUB_OFFLINE=1 "$venv/bin/python" "$here/check_datasets.py" \
  --jsonl "$work/x-jsonl" --parquet "$work/x-parquet" --converted "$work/x-converted" \
  --npy "$work/p-npy" --packed-parquet "$work/p-parquet" --megatron "$work/p-megatron" \
  --empty-split "$work/p-empty"
echo "== model folders in transformers (the shipped model, a fresh pretrain output)"
"$bin" pack "$corpus" --tokenizer "$work/tok" --out "$work/p-model" --seq-len 64 --quiet
printf 'layers = 1\nhidden = 32\nheads = 2\nintermediate = 64\nmax_positions = 64\n' > "$work/tiny.toml"
"$bin" pretrain "$work/p-model" --out "$work/model" --model-config "$work/tiny.toml" \
  --max-steps 2 --batch-size 2 --eval-rows 2 --quiet
HF_HUB_OFFLINE=1 TRANSFORMERS_NO_ADVISORY_WARNINGS=1 "$venv/bin/python" "$here/check_model_folders.py" \
  "$root/data-samples/models/pytorrent-small-mlm" "$work/model"
torch_venv=${PYTORRENT_TORCH_VENV:-}
if [ -n "$torch_venv" ]; then
  echo "== model folders: forward passes in transformers + torch ($torch_venv)"
  HF_HUB_OFFLINE=1 TRANSFORMERS_NO_ADVISORY_WARNINGS=1 "$torch_venv/bin/python" "$here/check_model_folders.py" \
    --require-torch "$root/data-samples/models/pytorrent-small-mlm" "$work/model"
  echo "== finetune output in sentence-transformers (loads; embeddings equal pytorrent embed's)"
  "$bin" finetune "$corpus" --init "$root/data-samples/models/pytorrent-small-mlm" --out "$work/ft" \
    --max-steps 3 --batch-size 8 --eval-pairs 16 --quiet
  {
    printf 'Return the sum of two numbers.\n'
    printf 'def add(a, b): return a + b\n'
    # Longer than max_seq_length: both sides cut it the same way.
    for _ in $(seq 60); do printf 'counts[key] = counts.get(key, 0) + 1; '; done; printf '\n'
    printf 'import os\n'
  } > "$work/texts.txt"
  # From a BERT sentence-transformers model too.
  "$bin" finetune "$corpus" --init "$root/tests/fixtures/models/st-minilm" --out "$work/ft-bert" \
    --max-steps 3 --batch-size 8 --eval-pairs 16 --quiet
  # And the shipped retrieval model (f16 weights).
  cp -r "$root/data-samples/models/pytorrent-small-retrieval" "$work/shipped-retrieval"
  for ft in ft ft-bert shipped-retrieval; do
    "$bin" embed "$work/texts.txt" --model "$work/$ft" --out "$work/$ft-emb.npy" --quiet
    HF_HUB_OFFLINE=1 TRANSFORMERS_NO_ADVISORY_WARNINGS=1 "$torch_venv/bin/python" "$here/check_sentence_model.py" \
      "$work/$ft" "$work/texts.txt" "$work/$ft-emb.npy"
  done
else
  echo "== skipped: forward passes in torch and sentence-transformers loading (set PYTORRENT_TORCH_VENV; scripts/interop/make_torch_venv.sh)"
fi
