#!/usr/bin/env bash
# Links the shared corpora (../shared/data/*) and the Banking77 class splits into data/01_raw/.
# Data is never copied into the project; the links are ignored by git.
set -euo pipefail
shared="${1:-../shared}"
raw="data/01_raw"
if [ ! -d "$shared/data" ]; then
  echo "No corpora at '$shared/data'. Put the shared folder beside the project, or run:" >&2
  echo "  make data SHARED=/path/to/shared" >&2
  exit 1
fi
shared="$(cd "$shared" && pwd)"
mkdir -p "$raw"
for corpus in "$shared"/data/*/; do
  ln -sfn "${corpus%/}" "$raw/$(basename "$corpus")"
done
if [ -d "$shared/benchmarks/banking77_class_splits" ]; then
  ln -sfn "$shared/benchmarks/banking77_class_splits" "$raw/banking77_class_splits"
fi
echo "Linked into $raw: $(ls "$raw" | tr '\n' ' ')"
