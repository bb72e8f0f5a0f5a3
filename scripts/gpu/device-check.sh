#!/usr/bin/env bash
# The GPU checks of pytorrent in one run (a lent GPU machine has minutes, not hours):
#   1. parity: fill-mask and embed with --device cuda against the CPU (f32 ≤ 1e-4; bf16: the
#      same top-1, embeddings ≤ 2e-2) and against transformers on the same GPU;
#   2. throughput: `embed` of a roberta-base-shaped model, batch 64 × 512 in bf16, against
#      transformers with SDPA in bf16, one after the other;
#   3. pretraining: roberta-base shape, seq 512, bf16, 30 timed steps after 5 warm-up ones:
#      tokens/s and MFU (6 × parameters × tokens/s over the measured bf16 matmul peak),
#      against HF Trainer on the same GPU and shards;
#   4. cores: `extract` and `tokenizer encode` on 1, 4, 8 and 16 threads;
# then prints one table. Everything it measures or writes goes under --out (default: $OUT,
# else target/device-check), one JSON line per check in results.jsonl.
#
#   scripts/gpu/device-check.sh [--dry-run] [--bin PYTORRENT] [--out DIR]
#
# The binary is a `--features cuda` build (scripts/gpu/build-cuda.sh leaves it in
# target/gpu/); the machine's python3 gives torch + transformers and the NVIDIA libraries.
# --dry-run runs every step on the CPU with tiny sizes (the transformers references only
# where torch is installed), so that the script is tested before the run it exists for.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dry=0
bin=""
out=${OUT:-$root/target/device-check}
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry=1 ;;
    --bin) bin=$2; shift ;;
    --out) out=$2; shift ;;
    -h|--help) sed -n 2,21p "$0"; exit 0 ;;
    *) echo "device-check: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$bin" ]; then
  for b in target/gpu/pytorrent target/release/pytorrent target/debug/pytorrent; do
    if [ -x "$root/$b" ]; then bin=$root/$b; break; fi
  done
fi
if [ ! -x "$bin" ]; then
  echo "device-check: no pytorrent binary (give --bin, or run scripts/gpu/build-cuda.sh)" >&2
  exit 2
fi
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
mkdir -p "$out"
out=$(cd "$out" && pwd)
# What an earlier run of this script left there (and only that) goes.
rm -rf "$out"/{logs,shards,model,pretrain,packages,minilm-shaped,hf-trainer,cores-extract} \
  "$out"/*.npy "$out"/*.json "$out"/*.jsonl "$out"/*.txt
mkdir -p "$out/logs"
py=${PYTHON:-python3}
check_py=$root/scripts/gpu/check.py
results=$out/results.jsonl
: > "$results"
started=$(date +%s)

if [ $dry = 1 ]; then
  device=cpu; low=f32; spec=$root/configs/models/tiny.toml
  batch=4; seq=64; runs=2; steps=4; warmup=1; threads="1 2"; copies=1; lines=2000
else
  device=cuda; low=bf16; spec=$root/configs/models/base.toml
  batch=64; seq=512; runs=10; steps=35; warmup=5; threads="1 4 8 16"; copies=16; lines=60000
fi

# One JSON line per check: name, PASS/FAIL/INFO/SKIP, and what was measured.
record() {
  "$py" -c 'import json,sys; print(json.dumps({"check": sys.argv[1], "status": sys.argv[2], "value": sys.argv[3]}))' \
    "$1" "$2" "$3" >> "$results"
  echo "[$2] $1: $3"
}
# Runs a command with its output in logs/NAME.log (stderr in NAME.err); fails after 5 minutes.
step() {
  local name=$1; shift
  timeout 300 "$@" > "$out/logs/$name.log" 2> "$out/logs/$name.err"
}
# PASS or FAIL against a goal of the GPU run; a dry run (a debug build, tiny sizes, the CPU)
# only reports.
goal() {
  if [ $dry = 1 ]; then echo INFO; return; fi
  "$py" -c 'import sys; print("PASS" if float(sys.argv[1]) >= float(sys.argv[2]) else "FAIL")' "$1" "$2"
}
field() { "$py" -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
now() { "$py" -c 'import time; print(time.perf_counter())'; }
elapsed() { "$py" -c 'import sys; print(float(sys.argv[2]) - float(sys.argv[1]))' "$1" "$2"; }

# The NVIDIA libraries of python3's packages (cuBLAS, cuRAND, the runtime) for the binary.
if [ $dry = 0 ]; then
  libs=$("$py" - <<'EOF'
import glob, os, site
dirs = []
for base in site.getsitepackages() + [site.getusersitepackages()]:
    dirs += sorted(d for d in glob.glob(os.path.join(base, "nvidia", "**", "lib"), recursive=True) if os.path.isdir(d))
print(":".join(dirs))
EOF
)
  export LD_LIBRARY_PATH=${libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  nvidia-smi > "$out/nvidia-smi.txt" 2>&1
  ldd "$bin" > "$out/ldd.txt" 2>&1
  if grep -q "not found" "$out/ldd.txt"; then
    record "libraries" FAIL "$(grep 'not found' "$out/ldd.txt" | tr -s ' \t' ' ' | tr '\n' ';')"
  else
    record "libraries" PASS "every library the binary needs resolves (ldd.txt)"
  fi
fi
"$bin" --version > "$out/version.txt" 2>&1
record "binary" INFO "$(head -1 "$out/version.txt"); device $device"
torch=0
if "$py" "$check_py" has-torch 2>/dev/null; then torch=1; fi
[ $torch = 1 ] || record "transformers" SKIP "no torch/transformers in $py: reference checks left out"

# ---- 1. parity -------------------------------------------------------------------------
fx=$root/tests/fixtures/models
printf '%s\n' 'def add(a, b): return a <mask> b' 'for item in <mask>:' 'import <mask>' \
  'if x is <mask>:' > "$out/prompts.txt"
printf '%s\n' 'def add(a, b): return a + b' 'Return the sum of two numbers.' \
  'for i in range(10): print(i)' 'class Point: pass' > "$out/lines.txt"

fill() { # MODEL DEVICE DTYPE OUT
  step "fill-$(basename "$1")-$2-$3" "$bin" fill-mask --model "$1" "$out/prompts.txt" --top-k 5 \
    --device "$2" --dtype "$3" --json -q && cp "$out/logs/fill-$(basename "$1")-$2-$3.log" "$4"
}
embed() { # MODEL DEVICE DTYPE OUT [flags]
  local m=$1 d=$2 t=$3 o=$4; shift 4
  step "embed-$(basename "$m")-$d-$t" "$bin" embed --model "$m" "$out/lines.txt" --device "$d" \
    --dtype "$t" --out "$o" -q "$@"
}
m=$fx/roberta-tied
if fill "$m" cpu f32 "$out/fill-cpu.json" && fill "$m" "$device" f32 "$out/fill-dev-f32.json"; then
  r=$("$py" "$check_py" fillmaskdiff "$out/fill-cpu.json" "$out/fill-dev-f32.json")
  ok=$("$py" -c 'import json,sys; r=json.loads(sys.argv[1]); print(int(r["top1_equal"]==r["masks"] and r["max_score_diff"]<=1e-4))' "$r")
  record "parity fill-mask f32 $device vs cpu" "$([ "$ok" = 1 ] && echo PASS || echo FAIL)" "$r"
  if [ $dry = 0 ] && fill "$m" "$device" bf16 "$out/fill-dev-bf16.json"; then
    r=$("$py" "$check_py" fillmaskdiff "$out/fill-cpu.json" "$out/fill-dev-bf16.json")
    ok=$("$py" -c 'import json,sys; r=json.loads(sys.argv[1]); print(int(r["top1_equal"]==r["masks"]))' "$r")
    record "parity fill-mask bf16 $device vs cpu (same top-1)" "$([ "$ok" = 1 ] && echo PASS || echo FAIL)" "$r"
  fi
  if [ $torch = 1 ] && step hf-fill "$py" "$check_py" hf-fillmask "$m" "$out/prompts.txt" "$out/fill-hf.json" "$device" f32; then
    r=$("$py" "$check_py" fillmaskdiff "$out/fill-hf.json" "$out/fill-dev-f32.json")
    ok=$("$py" -c 'import json,sys; r=json.loads(sys.argv[1]); print(int(r["top1_equal"]==r["masks"] and r["max_score_diff"]<=1e-4))' "$r")
    record "parity fill-mask f32 vs transformers on $device" "$([ "$ok" = 1 ] && echo PASS || echo FAIL)" "$r"
  fi
else
  record "parity fill-mask" FAIL "see logs/fill-*.err"
fi

embed_models="$fx/bert $fx/st-minilm"
if [ $torch = 1 ] && [ $dry = 0 ]; then
  # MiniLM's shape (6 layers, 384 wide, 12 heads) with random weights and the fixture's
  # tokenizer.
  mini=$out/minilm-shaped
  vocab=$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["vocab_size"])' "$fx/bert/config.json")
  if step make-minilm "$py" "$check_py" make-bert "$mini" 6 384 12 1536 "$vocab"; then
    cp "$fx"/bert/{tokenizer.json,tokenizer_config.json,special_tokens_map.json,vocab.json,merges.txt} "$mini/" 2>/dev/null
    embed_models="$embed_models $mini"
  fi
fi
for m in $embed_models; do
  name=$(basename "$m")
  if embed "$m" cpu f32 "$out/emb-$name-cpu.npy" && embed "$m" "$device" f32 "$out/emb-$name-f32.npy"; then
    r=$("$py" "$check_py" npydiff "$out/emb-$name-cpu.npy" "$out/emb-$name-f32.npy")
    ok=$("$py" -c 'import json,sys; r=json.loads(sys.argv[1]); print(int(r.get("finite",False) and r["max_abs_diff"]<=1e-4))' "$r")
    record "parity embed $name f32 $device vs cpu" "$([ "$ok" = 1 ] && echo PASS || echo FAIL)" "$r"
    if [ $dry = 0 ] && embed "$m" "$device" bf16 "$out/emb-$name-bf16.npy"; then
      r=$("$py" "$check_py" npydiff "$out/emb-$name-cpu.npy" "$out/emb-$name-bf16.npy")
      ok=$("$py" -c 'import json,sys; r=json.loads(sys.argv[1]); print(int(r.get("finite",False) and r["max_abs_diff"]<=2e-2))' "$r")
      record "parity embed $name bf16 $device vs cpu" "$([ "$ok" = 1 ] && echo PASS || echo FAIL)" "$r"
    fi
    # transformers' mean pooling of a plain encoder (a sentence-transformers folder adds its
    # own modules, checked on the CPU by the test suite).
    if [ $torch = 1 ] && [ "$name" != st-minilm ] \
      && step "hf-embed-$name" "$py" "$check_py" hf-embed "$m" "$out/lines.txt" "$out/emb-$name-hf.npy" "$device" f32 512; then
      r=$("$py" "$check_py" npydiff "$out/emb-$name-hf.npy" "$out/emb-$name-f32.npy")
      ok=$("$py" -c 'import json,sys; r=json.loads(sys.argv[1]); print(int(r.get("finite",False) and r["max_abs_diff"]<=1e-4))' "$r")
      record "parity embed $name f32 vs transformers on $device" "$([ "$ok" = 1 ] && echo PASS || echo FAIL)" "$r"
    fi
  else
    record "parity embed $name" FAIL "see logs/embed-$name-*.err"
  fi
done

# ---- a roberta-base-shaped model and shards of long texts --------------------------------
tok=$root/data-samples/models/pytorrent-small-mlm
"$py" "$check_py" text "$(( batch * (runs + 1) ))" 600 "$out/long.jsonl"
shards=$out/shards
big=$out/model
made=0
if step pack "$bin" pack "$out/long.jsonl" --tokenizer "$tok" --text-field text --seq-len "$seq" \
    --default-partition train --out "$shards" -q \
  && step make-model "$bin" pretrain "$shards" --model-config "$spec" --max-steps 1 \
    --batch-size 2 --device "$device" --out "$big" -q --json; then
  made=1
  params=$(field "$(cat "$out/logs/make-model.log")" parameters)
  record "model" INFO "$(basename "$spec" .toml) shape, $params parameters, seq $seq"
else
  record "model" FAIL "see logs/pack.err, logs/make-model.err"
fi

# ---- 2. embedding throughput -------------------------------------------------------------
if [ $made = 1 ]; then
  head -n "$batch" "$out/long.jsonl" > "$out/long-one.jsonl"
  emb_run() { # FILE NAME
    local t0 t1
    t0=$(now)
    step "$2" "$bin" embed --model "$big" "$1" --text-field text --max-length "$seq" \
      --batch-size "$batch" --device "$device" --dtype "$low" --out "$out/$2.npy" -q || return 1
    t1=$(now)
    elapsed "$t0" "$t1"
  }
  if t_one=$(emb_run "$out/long-one.jsonl" embed-one) && t_all=$(emb_run "$out/long.jsonl" embed-all); then
    ours=$("$py" -c 'import sys; print(round(float(sys.argv[1]) / (float(sys.argv[3]) - float(sys.argv[2])), 2))' \
      "$(( batch * runs ))" "$t_one" "$t_all")
    record "embed throughput (pytorrent, $low, ${batch}x$seq)" INFO "$ours sequences/s (steady state: $(( batch * runs )) rows beyond the first batch)"
    if [ $torch = 1 ] && step hf-embed-bench "$py" "$check_py" hf-embed-bench "$big" "$batch" "$seq" "$runs" "$device" "$low"; then
      theirs=$(field "$(tail -1 "$out/logs/hf-embed-bench.log")" sequences_per_s)
      ratio=$("$py" -c 'import sys; print(round(float(sys.argv[1]) / float(sys.argv[2]), 3))' "$ours" "$theirs")
      record "embed throughput vs transformers+sdpa" "$(goal "$ratio" 1.0)" \
        "${ratio}x ($ours against $theirs sequences/s)"
    fi
  else
    record "embed throughput" FAIL "see logs/embed-one.err, logs/embed-all.err"
  fi
fi

# ---- 3. pretraining ----------------------------------------------------------------------
if [ $made = 1 ]; then
  pbatch=$([ $dry = 1 ] && echo 2 || echo 32)
  if step pretrain "$bin" pretrain "$shards" --model-config "$spec" --max-steps "$steps" \
      --batch-size "$pbatch" --device "$device" --dtype "$low" --eval-every 100000 \
      --save-every 100000 --out "$out/pretrain" -q --json; then
    ours=$("$py" - "$out/pretrain/log.csv" "$warmup" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
w = int(sys.argv[2])
a, b = rows[w - 1], rows[-1]
print(round((int(b["tokens"]) - int(a["tokens"])) / (float(b["elapsed_s"]) - float(a["elapsed_s"])), 1))
EOF
)
    params=$(field "$(cat "$out/logs/pretrain.log")" parameters)
    value="$ours tokens/s over steps $(( warmup + 1 ))-$steps (batch $pbatch x $seq, $params parameters)"
    if [ $torch = 1 ] && step matmul-peak "$py" "$check_py" matmul-peak "$device" "$low"; then
      peak=$(field "$(tail -1 "$out/logs/matmul-peak.log")" tflops)
      mfu=$("$py" -c 'import sys; print(round(6 * float(sys.argv[1]) * float(sys.argv[2]) / (float(sys.argv[3]) * 1e12), 4))' "$params" "$ours" "$peak")
      value="$value; MFU $mfu of a measured $low matmul peak of $(printf '%.3g' "$peak") TFLOP/s"
      record "pretrain (pytorrent, $low)" "$(goal "$mfu" 0.4)" "$value"
    else
      record "pretrain (pytorrent, $low)" INFO "$value"
    fi
    if [ $torch = 1 ] && step hf-pretrain "$py" "$check_py" hf-pretrain "$shards" "$big" "$pbatch" "$steps" "$warmup" "$device" "$low"; then
      theirs=$(field "$(tail -1 "$out/logs/hf-pretrain.log")" tokens_per_s)
      ratio=$("$py" -c 'import sys; print(round(float(sys.argv[1]) / float(sys.argv[2]), 3))' "$ours" "$theirs")
      record "pretrain vs HF Trainer" "$(goal "$ratio" 1.0)" \
        "${ratio}x ($ours against $(printf '%.1f' "$theirs") tokens/s)"
    fi
  else
    record "pretrain" FAIL "see logs/pretrain.err"
  fi
fi

# ---- 4. cores ----------------------------------------------------------------------------
pkgs=$out/packages
mkdir -p "$pkgs"
for c in $(seq 1 $copies); do
  for a in "$root"/data-samples/packages/*.tar.gz; do
    f=$(basename "$a")
    cp "$a" "$pkgs/${f%%-[0-9]*}c$c-${f#*-}"
  done
done
"$py" "$check_py" text "$lines" 200 "$out/encode.jsonl"
for what in extract encode; do
  base=""
  for t in $threads; do
    rm -rf "$out/cores-$what"
    t0=$(now)
    if [ $what = extract ]; then
      RAYON_NUM_THREADS=$t step "$what-$t" "$bin" extract "$pkgs" --out "$out/cores-$what" -q
    else
      RAYON_NUM_THREADS=$t step "$what-$t" "$bin" tokenizer encode --tokenizer "$tok" "$out/encode.jsonl" \
        --text-field text --out "$out/cores-$what.npy" -q
    fi
    rc=$?
    t1=$(now)
    if [ $rc != 0 ]; then record "cores $what $t threads" FAIL "see logs/$what-$t.err"; continue; fi
    s=$(elapsed "$t0" "$t1")
    [ -n "$base" ] || base=$s
    record "cores $what $t threads" INFO "$(printf '%.2f' "$s") s, $("$py" -c 'import sys; print(round(float(sys.argv[1]) / float(sys.argv[2]), 2))' "$base" "$s")x over 1 thread"
  done
done
rm -rf "$pkgs" "$out/cores-extract" "$out/cores-encode.npy" "$out/encode.jsonl"

record "wall time" INFO "$(( $(date +%s) - started )) s"
echo
"$py" "$check_py" table "$out" | tee "$out/table.txt"
! grep -q '"status": "FAIL"' "$results"
