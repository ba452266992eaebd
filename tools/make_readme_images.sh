#!/usr/bin/env bash
# Regenerate docs/gui.png (the real window under Xvfb) and docs/headless_frame.png (a headless PNG).
# Needs Debian's xvfb, imagemagick, xdotool and Qt's X11 libraries (libxcb-cursor0, libxkbcommon-x11-0).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mkdir -p docs
# No --input: without a camera the bundled sample video (a planar photo wall) plays in a loop. Halfway, the
# mouse drags a box over the cat on the anchor (screen pixels of the window once it has grown to its first view
# and its whole control bar, centred on the 1920x640 screen).
SCREEN=1920x640 DRAG="91 354 323 559" tools/screenshot_gui.sh docs/gui.png 20 --geometry homography
convert docs/gui.png -trim +repage docs/gui.png  # the window without the empty screen around it
OUT="$(mktemp -d)"
.venv/bin/python -m app --input assets/sample.mp4 --no_display --output_dir "$OUT" --max_length 31 --skip 1
# The app writes PNGs fast (little compression); the committed copy is compressed hard.
.venv/bin/python -c "import cv2, sys; cv2.imwrite(sys.argv[2], cv2.imread(sys.argv[1]), [cv2.IMWRITE_PNG_COMPRESSION, 9])" \
    "$OUT/frame_000030.png" docs/headless_frame.png
rm -r "$OUT"
echo "wrote docs/gui.png docs/headless_frame.png"
