#!/usr/bin/env bash
# BERT-style MLM pretraining with Megatron-LM over `pytorrent pack --format megatron` shards,
# for runs across many nodes. An example to adapt (not run by the test suite): Megatron-LM
# and its GPU stack are not part of this project.
#
#   scripts/train/megatron_bert.sh MEGATRON_LM_DIR SHARDS OUT [GPUS_PER_NODE]
#
# SHARDS is a pack output made with --format megatron (train/shard-NNNNN.bin + .idx); every
# shard prefix goes into --data-path with an equal weight. The tokenizer is ours, through
# Megatron's HuggingFaceTokenizer type. Megatron's BERT adds a sentence-order head and
# samples spans itself; `--bert-no-binary-head` keeps the objective MLM-only, as RoBERTa's.
# Checkpoints are Megatron's own: convert them with Megatron-LM's tools to load elsewhere.
set -euo pipefail
megatron=$1
shards=$2
out=$3
gpus=${4:-8}
tok=$(python3 -c "import json,os,sys; t=json.load(open('$shards/train/manifest.json'))['tokenizer']; print(os.path.dirname(t.get('file') or t['vocab']))")
seq=$(python3 -c "import json; print(json.load(open('$shards/train/manifest.json'))['seq_len'])")
paths=()
for bin in "$shards"/train/shard-*.bin; do paths+=(1 "${bin%.bin}"); done
torchrun --nproc_per_node "$gpus" "$megatron/pretrain_bert.py" \
  --num-layers 12 --hidden-size 768 --num-attention-heads 12 \
  --seq-length "$seq" --max-position-embeddings "$seq" \
  --micro-batch-size 32 --global-batch-size 2048 \
  --lr 5e-4 --min-lr 0 --lr-decay-style linear --lr-warmup-fraction 0.06 \
  --train-iters 100000 --weight-decay 0.01 --adam-beta1 0.9 --adam-beta2 0.98 --adam-eps 1e-6 \
  --clip-grad 1.0 --bf16 --bert-no-binary-head \
  --tokenizer-type HuggingFaceTokenizer --tokenizer-model "$tok" \
  --data-path "${paths[@]}" --split 100,0,0 \
  --save "$out" --load "$out" --save-interval 5000 --log-interval 100
