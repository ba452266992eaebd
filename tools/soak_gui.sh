#!/usr/bin/env bash
# Run the real window for a while under a virtual X server and print its memory every INTERVAL seconds: a
# leak shows as a resident size that keeps growing (needs Debian's xvfb).
# Usage: tools/soak_gui.sh SECONDS [INTERVAL] [app flags...]
#   e.g. tools/soak_gui.sh 240 24 --input assets/sample.mp4 --loop --geometry homography --compare sift
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECONDS_TOTAL="$1"; INTERVAL="${2:-30}"; shift 2 || true
xvfb-run -a -s "-screen 0 1700x640x24" bash -c '
  .venv/bin/python -m app "${@:3}" & APP=$!
  for (( t = $2; t <= $1; t += $2 )); do
    sleep "$2"
    echo "after ${t} s: resident $(( $(ps -o rss= -p $APP) / 1024 )) MiB"
  done
  kill -INT $APP; wait $APP || true
' _ "$SECONDS_TOTAL" "$INTERVAL" "$@"
