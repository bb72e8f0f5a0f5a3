#!/usr/bin/env bash
# Queues the whole-index run on Slurm, each stage once every task of the one before
# succeeded (--dependency=afterok): the fetch array, the extract array (its tasks must all
# see the same package list), then de-duplication across the extract tasks in stages —
# BUCKETS tasks over the key space, one clusters task, one write task per extract task — and
# the statistics of the result. The output, $OUT/corpus/task-IIIII-of-NNNNN/, holds the same
# records one extract task alone would have written, whatever BUCKETS is.
#   OUT=/shared/pytorrent [TASKS=32] [BUCKETS=64] [FETCH_ARGS=…] [EXTRACT_ARGS=…] \
#     scripts/scale-out/slurm_fetch_extract_submit.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${OUT:?set OUT to the run folder (shared file system)}"
tasks=${TASKS:-32}
buckets=${BUCKETS:-64}
job="$here/slurm_fetch_extract.sbatch"
submit() { sbatch --parsable --export=ALL,STAGE="$1" --job-name="pytorrent-$1" "${@:2}" "$job"; }
fetch=$(submit fetch --array="0-$((tasks - 1))")
extract=$(submit extract --array="0-$((tasks - 1))" --dependency="afterok:${fetch%%;*}")
# Memory: a buckets task holds one band group and its sort buffers (< 1 GB measured at 20M
# records); clusters holds the ids of the dropped records (8 bytes each).
bucket=$(submit buckets --array="0-$((buckets - 1))" --mem=2G --dependency="afterok:${extract%%;*}")
clusters=$(submit clusters --mem=4G --dependency="afterok:${bucket%%;*}")
write=$(submit write --array="0-$((tasks - 1))" --mem=2G --dependency="afterok:${clusters%%;*}")
sbatch --parsable --dependency="afterok:${write%%;*}" --job-name=pytorrent-stats --export=ALL \
  --wrap "${PYTORRENT:-pytorrent} corpus stats \"$OUT/corpus\" > \"$OUT/corpus-stats.txt\""
echo "fetch $fetch → extract $extract → buckets $bucket → clusters $clusters → write $write → stats, into $OUT/corpus"
