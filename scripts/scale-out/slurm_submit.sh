#!/usr/bin/env bash
# Submits the pack array and a merge that runs once every array task succeeded.
#   CORPUS=… TOKENIZER=… OUT=… [PACK_ARGS="--seq-len 512 --seed 0"] scripts/scale-out/slurm_submit.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
job=$(sbatch --parsable --export=ALL "$here/slurm_pack.sbatch")
sbatch --dependency="afterok:${job%%;*}" --job-name=pytorrent-merge --export=ALL \
  --wrap "${PYTORRENT:-pytorrent} shards merge \"$OUT\" && ${PYTORRENT:-pytorrent} shards verify \"$OUT\""
echo "pack array $job queued, merge after it"
