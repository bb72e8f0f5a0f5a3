#!/usr/bin/env bash
# Compares two output trees of outputs.sh: every data file byte for byte; manifests and
# JSON reports after the tree's own path is replaced by a placeholder. Exit 1 on any difference.
set -euo pipefail
a=$(realpath "$1")
b=$(realpath "$2")
status=0
if ! diff <(cd "$a" && find . -type f | sort) <(cd "$b" && find . -type f | sort); then
  echo "the two trees hold different files"; status=1
fi
while IFS= read -r f; do
  [ -f "$b/$f" ] || continue
  case "$f" in
    *.json)
      if ! cmp -s <(sed "s#$a#ROOT#g" "$a/$f") <(sed "s#$b#ROOT#g" "$b/$f"); then
        echo "differs (JSON, paths normalised): $f"
        diff <(sed "s#$a#ROOT#g" "$a/$f") <(sed "s#$b#ROOT#g" "$b/$f") | head -20 || true
        status=1
      fi ;;
    *.npy)
      if ! cmp -s "$a/$f" "$b/$f"; then
        # Same dtype, shape and data under a differently spaced header dict?
        if python3 "$(dirname "$0")/npy_same.py" "$a/$f" "$b/$f"; then
          echo "differs in the npy header text only (same dtype, shape and data): $f"
        else
          echo "differs: $f"
        fi
        status=1
      fi ;;
    *)
      if ! cmp -s "$a/$f" "$b/$f"; then echo "differs: $f"; status=1; fi ;;
  esac
done < <(cd "$a" && find . -type f | sort)
[ $status = 0 ] && echo "identical: $(cd "$a" && find . -type f | wc -l) files"
exit $status
