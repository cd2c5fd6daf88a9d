#!/usr/bin/env bash
# buf breaking against the previous commit (FILE rules), when it had contracts to compare with.
set -euo pipefail
buf="$1"
if ! git rev-parse --verify --quiet HEAD~1 >/dev/null; then
  echo "buf breaking: no previous commit, nothing to compare"; exit 0
fi
if ! git cat-file -e HEAD~1:buf.yaml 2>/dev/null; then
  echo "buf breaking: the previous commit has no buf.yaml, nothing to compare"; exit 0
fi
"$buf" breaking --against '.git#ref=HEAD~1'
echo "buf breaking: no breaking change against HEAD~1"
