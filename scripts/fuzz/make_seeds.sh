#!/usr/bin/env bash
# Seed inputs of the fuzz targets, from real data: the sample corpus and packages, the model
# fixtures, the shipped tokenizer, shards packed from the samples, the pipeline configs.
#   scripts/fuzz/make_seeds.sh          (rewrites fuzz/seeds/; needs a built pytorrent and
#                                        python3 with torch, transformers and safetensors for
#                                        the model seed: PYTHON=/path/to/venv/python)
# The first byte of a seed picks the variant where a target has several (see fuzz/harness.rs).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${PYTORRENT:-$root/target/release/pytorrent}
py=${PYTHON:-python3}
seeds=$root/fuzz/seeds
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -rf "$seeds"
mkdir -p "$seeds"/{jsonl_record,parquet,archive,python_source,tokenizer_json,vocab_merges,fast_encoder,shards,model_files,pipeline_toml}
prefixed() { { printf "\\x$(printf %02x "$1")"; cat "$2"; } > "$3"; }

# Corpus records: five lines plain, the same gzipped, and as Parquet.
chunk=$root/data-samples/corpus/docstrings/train/train_scenario_docstrings_chk_0.jsonl.gz
gzip -dc "$chunk" > "$work/all.jsonl"
head -n 5 "$work/all.jsonl" > "$work/five.jsonl"
prefixed 0 "$work/five.jsonl" "$seeds/jsonl_record/five-lines"
gzip -n -c "$work/five.jsonl" > "$work/five.jsonl.gz"
prefixed 1 "$work/five.jsonl.gz" "$seeds/jsonl_record/five-lines-gz"
"$bin" corpus convert "$work/five.jsonl" --format parquet --out "$work/pq" -q
cp "$work/pq/data/train-00000-of-00001.parquet" "$seeds/parquet/five-records"

# Archives: the two smallest sample sdists; a wheel (zip) made of one of them.
for p in jsonpointer-3.0.0 jsonpatch-1.33; do
  prefixed 0 "$root/data-samples/packages/$p.tar.gz" "$seeds/archive/$p-tar-gz"
done
mkdir -p "$work/whl/jsonpointer"
tar -xzf "$root/data-samples/packages/jsonpointer-3.0.0.tar.gz" -C "$work" jsonpointer-3.0.0/jsonpointer.py
cp "$work/jsonpointer-3.0.0/jsonpointer.py" "$work/whl/jsonpointer/__init__.py"
(cd "$work/whl" && "$py" -c "import zipfile,sys; z=zipfile.ZipFile('w.zip','w'); z.write('jsonpointer/__init__.py'); z.close()")
prefixed 4 "$work/whl/w.zip" "$seeds/archive/jsonpointer-whl"

# Python sources: small real modules.
cp "$work/jsonpointer-3.0.0/jsonpointer.py" "$seeds/python_source/jsonpointer.py"
tar -xzf "$root/data-samples/packages/six-1.17.0.tar.gz" -C "$work" six-1.17.0/six.py
head -c 20000 "$work/six-1.17.0/six.py" > "$seeds/python_source/six-head.py"

# Tokenizers: the fixtures' and the shipped one.
for m in roberta-tied bert; do
  cp "$root/tests/fixtures/models/$m/tokenizer.json" "$seeds/tokenizer_json/$m"
done
{ cat "$root/tests/fixtures/models/roberta-tied/vocab.json"; printf '\xff'; cat "$root/tests/fixtures/models/roberta-tied/merges.txt"; } > "$seeds/vocab_merges/roberta-tied"
head -n 3 "$work/all.jsonl" | "$py" -c "
import json, sys
for i, line in enumerate(sys.stdin):
    open(sys.argv[1] + f'/code-{i}', 'w').write(json.loads(line)['original_string'])
" "$seeds/fast_encoder"
printf 'caf\xc3\xa9 = "<mask>"  # \xe2\x9c\x93\n' > "$seeds/fast_encoder/non-ascii-and-mask"

# Shards: npy, Megatron index, manifest, packed from the five records.
"$bin" pack "$work/five.jsonl" --tokenizer "$root/tests/fixtures/models/roberta-tied" --seq-len 32 \
  --default-partition train --out "$work/npy" -q
"$bin" pack "$work/five.jsonl" --tokenizer "$root/tests/fixtures/models/roberta-tied" --seq-len 32 \
  --default-partition train --format megatron --out "$work/meg" -q
prefixed 0 "$work/npy/train/shard-00000.npy" "$seeds/shards/npy"
prefixed 1 "$work/meg/train/shard-00000.idx" "$seeds/shards/megatron-idx"
prefixed 2 "$work/npy/train/manifest.json" "$seeds/shards/manifest"
# The manifest of the harness's own 1 × 4 shard (fuzz/harness.rs small_npy), for pretrain's
# reader and inspect (3) and for merge (4).
python3 - "$work/npy/train/manifest.json" "$work/small-manifest.json" <<'PY'
import hashlib, json, struct, sys
header = "{'descr': '<u2', 'fortran_order': False, 'shape': (1, 4), }"
while (10 + len(header) + 1) % 64:
    header += " "
header += "\n"
npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + struct.pack("<4H", 0, 1, 2, 3)
m = json.load(open(sys.argv[1]))
m.update(seq_len=4, rows=1, tokens=4, records=1, dropped_tokens=0)
m["shards"] = [{"file": "shard-00000.npy", "rows": 1, "tokens": 4,
                "sha256": hashlib.sha256(npy).hexdigest()}]
json.dump(m, open(sys.argv[2], "w"), indent=2)
PY
prefixed 3 "$work/small-manifest.json" "$seeds/shards/manifest-pretrain"
prefixed 4 "$work/small-manifest.json" "$seeds/shards/manifest-merge"

# Model files: a fixture's config.json, and a safetensors file of the harness's tiny config.
prefixed 0 "$root/tests/fixtures/models/roberta-tied/config.json" "$seeds/model_files/config"
"$py" - "$work/tiny.safetensors" <<'PY'
import sys, torch
from transformers import RobertaConfig, RobertaForMaskedLM
cfg = RobertaConfig(vocab_size=16, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                    intermediate_size=16, max_position_embeddings=20, type_vocab_size=1,
                    layer_norm_eps=1e-5, pad_token_id=1)
torch.manual_seed(0)
from safetensors.torch import save_model
save_model(RobertaForMaskedLM(cfg), sys.argv[1])
PY
prefixed 1 "$work/tiny.safetensors" "$seeds/model_files/tiny-safetensors"

# Pipeline files.
cp "$root/configs/sample.toml" "$seeds/pipeline_toml/sample.toml"
cp "$root/configs/pytorrent.toml" "$seeds/pipeline_toml/pytorrent.toml"
du -sh "$seeds"
