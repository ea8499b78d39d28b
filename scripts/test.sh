#!/usr/bin/env bash
# The README's test command: every test, on SQLite and on a real PostgreSQL 16.
# Starts a throwaway PostgreSQL (scripts/pg-test-server.sh) unless TEST_DATABASE_URL is set,
# fetches the local embedding model (scripts/fetch-model.sh) unless CORTEX_MODEL_DIR is set,
# and installs headless Chromium (scripts/browser-deps.sh) unless CORTEX_CHROMEDRIVER is set.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${TEST_DATABASE_URL:-}" ]; then
  eval "$(scripts/pg-test-server.sh start)"
  trap 'scripts/pg-test-server.sh stop "$PG_TEST_DIR"' EXIT
fi
export TEST_DATABASE_URL

# The real embedding model, fetched once into a cache outside the clone.
if [ -z "${CORTEX_MODEL_DIR:-}" ]; then
  if [ "$(id -u)" = 0 ]; then cache=/var/tmp/cortexlayer-models; else cache="${XDG_CACHE_HOME:-$HOME/.cache}/cortexlayer-models"; fi
  CORTEX_MODEL_DIR="$(scripts/fetch-model.sh "$cache/all-MiniLM-L6-v2")"
fi
export CORTEX_MODEL_DIR

# Headless Chromium for the widget's browser test (Debian's packages, installed if missing).
if [ -z "${CORTEX_CHROMEDRIVER:-}" ]; then
  eval "$(scripts/browser-deps.sh)"
fi
export CORTEX_CHROMIUM CORTEX_CHROMEDRIVER

# Both passes build the whole workspace the same way, so the second reuses the first's build
# (selecting one package would change feature unification and rebuild dependencies).
if cargo nextest --version >/dev/null 2>&1; then
  all() { cargo nextest run --no-fail-fast --workspace; }
  api() { cargo nextest run --no-fail-fast --workspace -E 'binary(api)'; }
else
  all() { cargo test --no-fail-fast --workspace; }
  api() { cargo test --no-fail-fast --workspace --test api; }
fi

echo "== every crate; store conformance on SQLite and PostgreSQL; API on SQLite"
CORTEX_TEST_BACKEND=sqlite all
echo "== API suite again on PostgreSQL"
CORTEX_TEST_BACKEND=postgres api
