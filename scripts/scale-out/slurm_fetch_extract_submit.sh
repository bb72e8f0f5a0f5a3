#!/usr/bin/env bash
# Queues the whole-index run on Slurm: the fetch array, the extract array once every fetch
# task succeeded (extract tasks must all see the same package list), then the merge of the
# extract tasks into one corpus (`corpus dedup`: duplicates dropped across tasks, the same
# bytes one task alone would have written).
#   OUT=/shared/pytorrent [FETCH_ARGS=…] [EXTRACT_ARGS=…] scripts/scale-out/slurm_fetch_extract_submit.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${OUT:?set OUT to the run folder (shared file system)}"
fetch=$(STAGE=fetch sbatch --parsable --export=ALL,STAGE=fetch --job-name=pytorrent-fetch \
  "$here/slurm_fetch_extract.sbatch")
extract=$(sbatch --parsable --export=ALL,STAGE=extract --job-name=pytorrent-extract \
  --dependency="afterok:${fetch%%;*}" "$here/slurm_fetch_extract.sbatch")
sbatch --dependency="afterok:${extract%%;*}" --job-name=pytorrent-dedup --export=ALL \
  --wrap "${PYTORRENT:-pytorrent} corpus dedup \"$OUT/tasks\" --out \"$OUT/corpus\" --stats"
echo "fetch array $fetch, extract array $extract after it, then the merge into $OUT/corpus"
