#!/usr/bin/env bash
# Screenshot of the real GUI window under a virtual X server (needs Debian's xvfb and imagemagick).
# Usage: tools/screenshot_gui.sh OUT.png [SECONDS] [app flags...]
# With DRAG="X0 Y0 X1 Y1" (screen pixels; needs xdotool), the mouse drags that box halfway through the wait,
# e.g. to select a region of the anchor. SCREEN=WxH sets the virtual screen (default 1700x640; the window fits it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="$1"; WAIT="${2:-30}"; shift 2 || true
xvfb-run -a -s "-screen 0 ${SCREEN:-1700x640}x24" bash -c '
  .venv/bin/python -m app "${@:4}" & APP=$!
  if [ -n "$3" ]; then
    sleep $(( $2 / 2 ))
    set -- "$1" "$2" "$3" "${@:4}"
    read -r X0 Y0 X1 Y1 <<< "$3"
    xdotool mousemove "$X0" "$Y0" mousedown 1 mousemove $(( (X0 + X1) / 2 )) $(( (Y0 + Y1) / 2 )) \
      mousemove "$X1" "$Y1" mouseup 1
    sleep $(( $2 - $2 / 2 ))
  else
    sleep "$2"
  fi
  import -window root "$1"
  kill -INT $APP; wait $APP || true
' _ "$OUT" "$WAIT" "${DRAG:-}" "$@"
echo "wrote $OUT"
