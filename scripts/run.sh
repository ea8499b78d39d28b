#!/usr/bin/env bash
# The README's run command: builds and starts CortexLayer on the embedded default
# (SQLite under ./data, listening on 127.0.0.1:8080). Extra arguments go to `serve`,
# e.g. `scripts/run.sh --bind 0.0.0.0:8080`.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --release --locked -p cortexlayer-server --bin cortexlayer -- serve "$@"
