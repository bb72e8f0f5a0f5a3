#!/usr/bin/env bash
# Builds the wheel (maturin, `bindings = "bin"`), installs it into a fresh venv and runs the
# installed `pytorrent`: its version line and the sample pipeline, offline.
#
#   scripts/wheel/check_wheel.sh [WORKDIR]      (default: target/wheel-check)
#
# Needs python3 with venv; maturin is installed into a throw-away build venv from the index
# pip is configured with. Extra arguments for maturin: MATURIN_ARGS="--features cuda".
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
work=${1:-target/wheel-check}
rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd)

python3 -m venv "$work/build-venv"
"$work/build-venv/bin/pip" install --quiet "maturin>=1.5,<2"
# shellcheck disable=SC2086
"$work/build-venv/bin/maturin" build --release --out "$work/wheels" ${MATURIN_ARGS:-}
wheel=$(ls "$work"/wheels/pytorrent-*.whl)
echo "built $(basename "$wheel") ($(du -h "$wheel" | cut -f1))"

# A fresh venv that has never seen the source tree: the wheel alone must do.
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --no-index "$wheel"
bin="$work/venv/bin/pytorrent"
test -x "$bin" || { echo "FAIL: the wheel put no pytorrent in $work/venv/bin"; exit 1; }
version=$("$bin" --version)
echo "$version"
case "$version" in
  "pytorrent $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1) (commit "*"; features: "*")") ;;
  *) echo "FAIL: unexpected version line"; exit 1 ;;
esac
# Run from outside the tree, as an installed tool is used.
cd "$work"
PATH="$work/venv/bin:$PATH" pytorrent run "$root/configs/sample.toml" --out "$work/sample-run" --quiet
test -s "$work/sample-run/report.html" || { echo "FAIL: no report"; exit 1; }
PATH="$work/venv/bin:$PATH" pytorrent run "$root/configs/sample.toml" --out "$work/sample-run" --json --quiet \
  | python3 -c 'import json,sys; s=json.load(sys.stdin)["stages"]; bad=[x["stage"] for x in s if x["status"]!="up_to_date"]; sys.exit("FAIL: re-ran "+",".join(bad) if bad else 0)'
echo "OK: the wheel installs into a fresh venv, and its pytorrent runs the sample pipeline"
