#!/usr/bin/env bash
# The README's run command: fetches the local embedding model (once, into
# data/models/all-MiniLM-L6-v2 unless CORTEX_MODEL_DIR names another folder), then builds and
# starts CortexLayer on the embedded default (SQLite under ./data, 127.0.0.1:8080). Extra
# arguments go to `serve`, e.g. `scripts/run.sh --bind 0.0.0.0:8080`.
set -euo pipefail
cd "$(dirname "$0")/.."
CORTEX_MODEL_DIR="$(scripts/fetch-model.sh)"
export CORTEX_MODEL_DIR
exec cargo run --release --locked -p cortexlayer-server --bin cortexlayer -- serve "$@"
