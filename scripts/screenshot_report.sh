#!/usr/bin/env bash
# Open a report in headless Chromium and save a screenshot of it, as a person would see it.
#   scripts/screenshot_report.sh report/report.html report.png [WIDTH,HEIGHT]
# Needs Debian's chromium (apt-get install chromium); the flags keep it off the network.
set -euo pipefail
html="$(realpath "$1")"; out="$(realpath -m "$2")"; size="${3:-1200,3400}"
profile="$(mktemp -d)"; trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --hide-scrollbars --window-size="$size" \
  --screenshot="$out" "file://$html" 2>/dev/null
test -s "$out" && echo "screenshot: $out"
