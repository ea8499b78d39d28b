#!/usr/bin/env bash
# Regenerates the dashboard screenshots in docs/screenshots/ (the README shows them): runs the
# dashboard's Chromium tests, which save every page in both themes under
# target/tmp/screenshots/, and copies the ones the README uses. Fetches the model and
# headless Chromium as scripts/test.sh does.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${CORTEX_MODEL_DIR:-}" ]; then
  if [ "$(id -u)" = 0 ]; then cache=/var/tmp/cortexlayer-models; else cache="${XDG_CACHE_HOME:-$HOME/.cache}/cortexlayer-models"; fi
  CORTEX_MODEL_DIR="$(scripts/fetch-model.sh "$cache/all-MiniLM-L6-v2")"
fi
export CORTEX_MODEL_DIR
if [ -z "${CORTEX_CHROMEDRIVER:-}" ]; then
  eval "$(scripts/browser-deps.sh)"
fi
export CORTEX_CHROMIUM CORTEX_CHROMEDRIVER

CORTEX_TEST_BACKEND=sqlite cargo nextest run --no-fail-fast -p cortexlayer-server \
  -E 'test(/dashboard_browser::/)'

mkdir -p docs/screenshots
for shot in overview-activity-light knowledge-dark bot-console-light channels-light; do
  cp "target/tmp/screenshots/$shot.png" "docs/screenshots/$shot.png"
done
echo "docs/screenshots/ updated"
