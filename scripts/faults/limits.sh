#!/usr/bin/env bash
# Resource limits, measured: peak RSS (GNU time) and outcome of each large or hostile input.
#   scripts/faults/limits.sh            (uses target/release/pytorrent; PYTHON with numpy for
#                                        the retrieval case, default python3)
# Prints a Markdown table: case, exit code, wall time, peak RSS.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${PYTORRENT:-$root/target/release/pytorrent}
py=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$py" - "$work" <<'PY'
import gzip, io, json, os, sys, tarfile
import numpy as np
w = sys.argv[1]
# An sdist of 10,000 small modules.
with tarfile.open(f"{w}/many-1.0.tar.gz", "w:gz") as t:
    for i in range(10_000):
        src = f'def f{i}(x):\n    """Return x plus {i}, as documented."""\n    y = x + {i}\n    return y\n'.encode()
        ti = tarfile.TarInfo(f"many-1.0/many/m{i}.py"); ti.size = len(src)
        t.addfile(ti, io.BytesIO(src))
# A 100 MB .py file (one documented function repeated).
body = ''.join(f'def g{i}(a):\n    """Add {i} to a and give it back."""\n    b = a + {i}\n    return b\n\n' for i in range(1_200_000))
body = body[: 100 * 2**20]
os.makedirs(f"{w}/huge-1.0", exist_ok=True)
open(f"{w}/huge-1.0/huge.py", "w").write(body)
with tarfile.open(f"{w}/huge-1.0.tar.gz", "w:gz") as t:
    t.add(f"{w}/huge-1.0/huge.py", arcname="huge-1.0/huge.py")
# A JSONL file whose one line is 200 MB, then a normal line.
rec = {"repo": "big", "path": "a.py", "func_name": "f", "original_string": "x" * (200 * 2**20),
       "language": "python", "code": "def f(): pass", "code_tokens": ["def"], "docstring": "d",
       "docstring_tokens": ["d"], "sha": None, "url": "a.py#L1-L1", "partition": "train"}
with open(f"{w}/big-line.jsonl", "w") as f:
    f.write(json.dumps(rec) + "\n")
    rec["original_string"] = "def f(): pass"
    f.write(json.dumps(rec) + "\n")
# Retrieval: 200,000 pairs, 384-d (query i answered by candidate i, among all 200,000).
rng = np.random.default_rng(0)
c = rng.standard_normal((200_000, 384), dtype=np.float32)
q = c + 0.5 * rng.standard_normal((200_000, 384), dtype=np.float32)
np.save(f"{w}/cand.npy", c); np.save(f"{w}/query.npy", q)
PY
"$bin" tokenizer train "$root/data-samples/corpus" --vocab-size 1200 --out "$work/tok" -q
measure() { # name, command...
  local name=$1; shift
  local rc=0
  /usr/bin/time -f "%e %M" -o "$work/t" "$@" > /dev/null 2> "$work/err" || rc=$?
  read -r secs kb < <(tail -1 "$work/t")
  printf '| %s | %s | %.1f s | %d MB |\n' "$name" "$rc" "$secs" $((kb / 1024))
}
echo "| case | exit | wall | peak RSS |"
echo "| --- | ---: | ---: | ---: |"
measure "extract: an sdist of 10,000 modules" "$bin" extract "$work/many-1.0.tar.gz" --out "$work/o1" -q
measure "extract: one 100 MB .py file (over the 8 MiB member limit: refused)" "$bin" extract "$work/huge-1.0.tar.gz" --out "$work/o2" -q
measure "corpus validate: a 200 MB JSONL line (under --max-line-bytes)" "$bin" corpus validate "$work/big-line.jsonl" -q
measure "corpus validate: the same with --max-line-bytes 16MiB (skipped, counted)" "$bin" corpus validate "$work/big-line.jsonl" --max-line-bytes 16777216 --on-error skip -q
measure "pack --seq-len 8192 of the samples" "$bin" pack "$root/data-samples/corpus" --tokenizer "$work/tok" --seq-len 8192 --out "$work/o3" -q
measure "eval retrieval: 200,000 queries × 200,000 candidates (384-d)" "$bin" eval retrieval --query-embeddings "$work/query.npy" --candidate-embeddings "$work/cand.npy" --protocol pool -q
