#!/usr/bin/env bash
# Screenshot of the real GUI window under a virtual X server (needs Debian's xvfb and imagemagick).
# Usage: tools/screenshot_gui.sh OUT.png [SECONDS] [app flags...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="$1"; WAIT="${2:-30}"; shift 2 || true
xvfb-run -a -s "-screen 0 1700x640x24" bash -c '
  .venv/bin/python -m app "${@:3}" & APP=$!
  sleep "$2"
  import -window root "$1"
  kill -INT $APP; wait $APP || true
' _ "$OUT" "$WAIT" "$@"
echo "wrote $OUT"
