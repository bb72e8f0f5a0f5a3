#!/usr/bin/env bash
# Makes the venv the torch-dependent interop checks and reference fixtures need (torch,
# transformers, sentence-transformers, safetensors), from the package index pip is configured
# with. ~6 GB (torch brings its CUDA libraries even for CPU use), so CI does not make it.
#
#   scripts/interop/make_torch_venv.sh DIR && PYTORRENT_TORCH_VENV=DIR scripts/interop/run.sh
set -euo pipefail
dir=${1:?usage: make_torch_venv.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)
python3 -m venv "$dir"
"$dir/bin/pip" install --quiet -r "$here/requirements-torch.txt"
"$dir/bin/python" -c 'import torch, transformers, sentence_transformers; print("torch", torch.__version__, "transformers", transformers.__version__, "sentence-transformers", sentence_transformers.__version__)'
