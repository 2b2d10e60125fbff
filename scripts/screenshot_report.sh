#!/usr/bin/env bash
# Open a report in headless Chromium and save a screenshot of it, as a person would see it.
#   scripts/screenshot_report.sh report/report.html report.png [WIDTH,HEIGHT]
# Needs Debian's chromium (apt-get install chromium); the flags keep it off the network.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 REPORT.html OUT.png [WIDTH,HEIGHT]" >&2; exit 2
fi
browser="$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)"
if [ -z "$browser" ]; then
  echo "no Chromium found: install it (Debian/Ubuntu: sudo apt-get install chromium)," >&2
  echo "or open $1 in any browser; the report itself needs none." >&2
  exit 2
fi
test -f "$1" || { echo "no such report: $1 (write one with: sftmix report --sweep RUN_ID)" >&2; exit 2; }
html="$(realpath "$1")"; out="$(realpath -m "$2")"; size="${3:-1200,3400}"
profile="$(mktemp -d)"; trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --hide-scrollbars --window-size="$size" \
  --screenshot="$out" "file://$html" 2>/dev/null
if test -s "$out"; then echo "screenshot: $out"; else echo "Chromium wrote no screenshot" >&2; exit 1; fi
