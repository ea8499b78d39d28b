#!/usr/bin/env bash
# Headless Chromium and its WebDriver for the widget's browser test, from Debian's packages
# (`chromium`, `chromium-driver`). Installs them when missing (as root, or with sudo), then
# prints `export` lines for CORTEX_CHROMIUM and CORTEX_CHROMEDRIVER:
#
#   eval "$(scripts/browser-deps.sh)"
set -euo pipefail

find_bins() {
  CHROMIUM="$(command -v chromium || command -v chromium-browser || true)"
  CHROMEDRIVER="$(command -v chromedriver || true)"
  [ -z "$CHROMEDRIVER" ] && [ -x /usr/lib/chromium/chromedriver ] && CHROMEDRIVER=/usr/lib/chromium/chromedriver
  [ -n "$CHROMIUM" ] && [ -n "$CHROMEDRIVER" ]
}

if ! find_bins; then
  if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo="sudo"; else
    echo "chromium and chromium-driver are needed for the widget's browser test; install them (apt-get install chromium chromium-driver) or run as root" >&2
    exit 1
  fi
  echo "installing chromium and chromium-driver from Debian…" >&2
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium chromium-driver >&2
  find_bins || { echo "chromium or chromedriver still missing after installing" >&2; exit 1; }
fi
echo "export CORTEX_CHROMIUM='$CHROMIUM'"
echo "export CORTEX_CHROMEDRIVER='$CHROMEDRIVER'"
