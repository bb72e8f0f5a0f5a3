#!/usr/bin/env bash
# The project's test command: the Rust test suite, then the interop checks against the
# Python ecosystem (which set up their own throw-away venv; see scripts/interop/run.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --locked
scripts/interop/run.sh
