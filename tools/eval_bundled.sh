#!/usr/bin/env bash
# The homography benchmark and the TUM sequence statistics of every bundled weights file, at the protocol's
# 640x480 and at the live CPU setting (320x240, 300 matches), plus the two sub-pixel refinements compared on
# the same pairs; written to training/eval_bundled.txt (weights/README.md quotes it).
# Usage: tools/eval_bundled.sh [OUTPUT]   (about 15 minutes on a 2-core CPU)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${1:-training/eval_bundled.txt}"
SEQUENCE=../shared/data/sequences/tum_freiburg/images
EVAL=(.venv/bin/python -m model eval --pairs 100 --sequence "$SEQUENCE")
{
  echo "# tools/eval_bundled.sh, $(date -u +%Y-%m-%d), $(nproc) CPU cores"
  for name in compact_s xfeat_s xfeat_lite; do
    echo "== $name 640x480"
    "${EVAL[@]}" --weights "weights/loftr_live_$name.pt" --resize -1 $([ "$name" = compact_s ] || echo --no_xfeat)
    echo "== $name 320x240 cap300"
    "${EVAL[@]}" --weights "weights/loftr_live_$name.pt" --resize 320 240 --max_matches 300 --no_xfeat
  done
  echo "== the sub-pixel refinements: peak (ours) - window (official), same weights and pairs"
  .venv/bin/python -m model eval --pairs 200 --weights weights/loftr_live_xfeat_s.pt --resize 320 240 \
    --max_matches 300 --no_xfeat --compare weights/loftr_live_xfeat_s.pt --compare_fine_expectation window
  .venv/bin/python -m model eval --pairs 100 --weights weights/loftr_live_compact_s.pt --resize -1 --no_xfeat \
    --compare weights/loftr_live_compact_s.pt --compare_fine_expectation window
} > "$OUT.partial"
mv "$OUT.partial" "$OUT"
echo "wrote $OUT"
