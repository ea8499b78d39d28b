#!/usr/bin/env bash
# Fetches the web UI's third-party assets from the npm registry by exact version (plain
# tarballs over HTTPS: no Node needed) into crates/server/assets/vendor/<name>-<version>/ (shipped,
# embedded in the binary) and crates/server/tests/vendor/ (used by the tests only), each with its
# licence, then checks them against the committed SHA256SUMS. With --check it only checks.
#
# Bumping a version: change it below, run this script, review the diff, and update the
# SHA256SUMS lines it prints as missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# name version "path in the package" destination
ASSETS=(
  "htmx.org 2.0.11 dist/htmx.min.js crates/server/assets/vendor/htmx-2.0.11"
  "htmx.org 2.0.11 LICENSE crates/server/assets/vendor/htmx-2.0.11"
  "uplot 1.6.32 dist/uPlot.iife.min.js crates/server/assets/vendor/uplot-1.6.32"
  "uplot 1.6.32 dist/uPlot.min.css crates/server/assets/vendor/uplot-1.6.32"
  "uplot 1.6.32 LICENSE crates/server/assets/vendor/uplot-1.6.32"
  "axe-core 4.14.1 axe.min.js crates/server/tests/vendor/axe-core-4.14.1"
  "axe-core 4.14.1 LICENSE crates/server/tests/vendor/axe-core-4.14.1"
)

if [ "${1:-}" != "--check" ]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  for line in "${ASSETS[@]}"; do
    read -r name version path dest <<<"$line"
    tarball="$tmp/$name-$version.tgz"
    if [ ! -s "$tarball" ]; then
      curl -fsSL "https://registry.npmjs.org/$name/-/$name-$version.tgz" -o "$tarball"
      mkdir -p "$tmp/$name-$version"
      tar xzf "$tarball" -C "$tmp/$name-$version"
    fi
    mkdir -p "$dest"
    cp "$tmp/$name-$version/package/$path" "$dest/"
  done
fi

for sums in crates/server/assets/vendor/SHA256SUMS crates/server/tests/vendor/SHA256SUMS; do
  (cd "$(dirname "$sums")" && sha256sum --quiet -c SHA256SUMS)
done
echo "vendored assets match their checksums"
