#!/usr/bin/env bash
# Benchmarks `pytorrent pack` (JSONL → 512-token blocks) against the `run_mlm.py` data path
# (datasets.load_dataset("json") → map(tokenize, num_proc=2) → map(group_texts, num_proc=2)),
# same tokenizer, same corpus, same machine, one after the other: wall time (hyperfine),
# peak RSS of the whole process tree (tree_rss.py: the reference's num_proc workers are
# separate processes, which /usr/bin/time would not add up) and disk used by the output (du).
#
#   scripts/bench/run_pack_bench.sh [BENCH_DIR]
#
# Corpus: BENCH_DIR/stdlib-200.jsonl (scripts/bench/make_bench_corpus.py) and a 400 MB one
# made by concatenating it twice (for the memory-flatness check). Python side: datasets and
# the interop pins in a venv under BENCH_DIR.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dir=${1:-/tmp/pytorrent-bench}
f=$dir/stdlib-200.jsonl
[ -f "$f" ] || python3 "$here/make_bench_corpus.py" --target-mb 200 --out "$f"
[ -f "$dir/stdlib-400.jsonl" ] || cat "$f" "$f" > "$dir/stdlib-400.jsonl"
venv=$dir/mlm-venv
[ -x "$venv/bin/python" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q datasets -r "$root/scripts/interop/requirements.txt"; }
py=$venv/bin/python
(cd "$root" && cargo build --release --quiet)
bin=$root/target/release/pytorrent
tok=$dir/pack-tok
[ -f "$tok/tokenizer.json" ] || env RAYON_NUM_THREADS=2 "$bin" tokenizer train "$f" --partition all --vocab-size 50265 --out "$tok" -q
export RAYON_NUM_THREADS=2 TOKENIZERS_PARALLELISM=true HF_DATASETS_DISABLE_PROGRESS_BARS=1

ours() { echo "$bin pack $1 --tokenizer $tok --out $dir/packed --seq-len 512 --partition all -q"; }
theirs() { echo "$py $here/py_run_mlm_pack.py $1 --tokenizer $tok --cache $dir/hf-cache --seq-len 512 --num-proc 2"; }

echo "== wall time, $(du -h "$f" | cut -f1) corpus"
hyperfine -N --runs "${RUNS:-3}" --export-json "$dir/pack.json" \
  --prepare "rm -rf $dir/packed $dir/hf-cache" \
  -n "pytorrent pack (2 threads)" "$(ours "$f")" \
  -n "run_mlm.py path (num_proc=2)" "$(theirs "$f")"

for corpus in "$f" "$dir/stdlib-400.jsonl"; do
  echo "== peak RSS and disk, $(du -h "$corpus" | cut -f1) corpus"
  rm -rf "$dir/packed" "$dir/hf-cache"
  python3 "$here/tree_rss.py" "pytorrent pack" $(ours "$corpus")
  echo "  pytorrent pack: output $(du -sh "$dir/packed" | cut -f1)"
  python3 "$here/tree_rss.py" "run_mlm.py path" $(theirs "$corpus")
  echo "  run_mlm.py path: datasets cache $(du -sh "$dir/hf-cache" | cut -f1)"
done
