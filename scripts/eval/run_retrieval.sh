#!/usr/bin/env bash
# The retrieval figures of README.md: all-MiniLM-L6-v2 beside BM25 and random on
# data-samples' test partition and on a corpus extracted from the packages of
# scripts/eval/packages-100.txt (fetched from the index pip uses; nothing is committed).
#
#   scripts/eval/run_retrieval.sh [WORK_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${1:-/tmp/pytorrent-real100}
(cd "$root" && cargo build --release --quiet)
bin=$root/target/release/pytorrent
model=$(python3 "$root/scripts/models/fetch_minilm.py")
[ -d "$work/downloads/packages" ] || "$bin" fetch --from-file "$here/packages-100.txt" --out "$work/downloads" -q
[ -d "$work/corpus" ] || "$bin" extract "$work/downloads/packages" --out "$work/corpus" -q
run() { echo "## $*"; "$bin" eval retrieval "$@" --model "$model" 2>&1 | grep -v '^ties'; }
run "$root/data-samples/corpus" --protocol pool
run "$work/corpus" --partition test --protocol pool
run "$work/corpus" --partition test --csn-batch 500
run "$work/corpus" --partition all --protocol csn
run "$work/corpus" --partition all --protocol pool
