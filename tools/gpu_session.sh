#!/usr/bin/env bash
# Everything a short GPU lease is for, as one command (the device tool runs one command per call):
#   1. the CUDA checks (tests/test_cuda.py), CUDA timings of the bundled CUDA default (at four sizes, also with the
#      refinement on the images) and of the official size against kornia (with the fp16 agreement), the window's
#      frame rate and the app run headless on CUDA;
#   2. one more training stage of both bundled chains, side by side, continued from the shipped weights.
# Results go into one archive, OUT_DIR/gpu_session.tgz (the device tool brings back few files).
#
# Before the lease, make the small photo copy the GPU machine can receive; with the tree (16 MB) and
# kornia's wheels in .gpu_data/whl (7 MB, `pip download` of kornia and kornia_rs for the machine's Python;
# kornia, for the bench's ratio, is not on those machines, and without it the bench skips it) the upload
# must stay under 64 MiB, which quality 65 does (39 MB):
#   python tools/shrink_images.py ../shared/data/train_images .gpu_data/train_images --quality 65
# then run, from the repository root on the GPU machine, with .gpu_data/train_images (and the wheels)
# carried:
#   bash tools/gpu_session.sh "$OUT" 4      # 4 training minutes per chain
# and afterwards compare the new stages here with `python -m model eval --compare` before shipping.
set -uo pipefail

out=${1:?usage: tools/gpu_session.sh OUT_DIR [TRAIN_MINUTES]}
minutes=${2:-4}
photos=.gpu_data/train_images
wheels=.gpu_data/whl
python=${PYTHON:-python3}
work=$(mktemp -d)
export PYTHONUNBUFFERED=1
[ -d "$photos" ] || { echo "no $photos: make it with tools/shrink_images.py before the lease" >&2; exit 2; }
if ls "$wheels"/*.whl > /dev/null 2>&1; then
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        "$wheels"/*.whl && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi

{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    "$python" -c "import torch, cv2; print('torch', torch.__version__, 'cv2', cv2.__version__)"
    "$python" -m pytest -q -p no:cacheprovider tests/test_cuda.py
    # 800x600 and 960x720: the GPU default's frames upscaled before the network, more accurate on this host's
    # benchmarks (weights/README.md, Network size); whether the GPU keeps an interactive rate there decides the size.
    for size in "640 480" "320 240" "800 600" "960 720"; do
        # shellcheck disable=SC2086  # the size is two arguments
        "$python" -m model bench --device cuda --weights weights/loftr_live_compact_s.pt --resize $size --runs 30 \
            --compile
    done
    # The refinement on the images at the CUDA default's size, where auto leaves it off: its host time per frame
    # (the fine stage's) against the run above, to decide whether the GPU default refines (weights/README.md).
    "$python" -m model bench --device cuda --weights weights/loftr_live_compact_s.pt --resize 640 480 --runs 30 \
        --refinement affine
    # The official size (random weights: speed does not depend on the values), against kornia in the same run.
    "$python" -m model bench --device cuda --random --preset outdoor_ds --resize 640 480 --runs 30 --compile
    # The window end to end (offscreen Qt), when PyQt6 is on the machine.
    if "$python" -c "import PyQt6, pyqtgraph" 2> /dev/null; then
        "$python" tools/gui_fps.py --seconds 20 --camera_fps 120 --device cuda --model_alone
        "$python" tools/gui_fps.py --seconds 20 --camera_fps 120 --device cuda --compile
    else
        echo "gui_fps on CUDA: skipped (no PyQt6/pyqtgraph here)"
    fi
    # The app end to end on CUDA (headless: its defaults there: a longer side of 640, fp16, no cap), when its packages are here.
    if "$python" -c "import imageio_ffmpeg" 2> /dev/null; then
        "$python" -m app --no_display --input assets/sample.mp4 --max_length 150 --geometry homography \
            --output_dir "$work/app_cuda" --save_matches
        # LoFTR on the GPU, SIFT on the CPU, one after the other: is running them side by side worth it there?
        "$python" -m app --no_display --input assets/sample.mp4 --max_length 150 --compare sift \
            --output_dir "$work/app_cuda_compare" --save_matches
        rm -rf "$work/app_cuda" "$work/app_cuda_compare"
    else
        echo "app on CUDA: skipped (no imageio_ffmpeg here)"
    fi
} > "$work/cuda_checks.txt" 2>&1
tail -n 25 "$work/cuda_checks.txt"

# Real pairs with depth when the scenes came along (.gpu_data/multiview: copies of the scene folders of
# ../shared/data/multiview; shrink the photos further to stay under the upload limit): half of each batch from
# TartanAir, pose AUC on the five held-out scenes (training/README.md). Not 7-Scenes: its stored focal length (585,
# the depth camera's) puts its depth truth a median 2.4 px (at 320x240) from ALIKED + LightGlue's verified matches,
# 1.2 px with 525 (training/pseudo_ft/accuracy.txt), more than the fine stage's own error.
scenes=()
if [ -d .gpu_data/multiview ]; then
    mv_dir=.gpu_data/multiview
    scenes=(--scenes "$mv_dir/tartanair_indoor" --val_scenes "$mv_dir/realsense_box"
            "$mv_dir/slambook_room" "$mv_dir/ingp_fox" "$mv_dir/middlebury_templeSR" "$mv_dir/middlebury_dinoSR")
fi
# Real pairs labelled by ALIKED + LightGlue when the labels came along (.gpu_data/pseudo, made here before the lease
# from copies of the image-only scenes in .gpu_data/multiview, so that the labels' relative image paths hold there:
# python -m model label --scenes .gpu_data/multiview/vggsfm_* .gpu_data/multiview/opensfm_* --out .gpu_data/pseudo).
if [ -d .gpu_data/pseudo ]; then
    scenes+=(--pseudo .gpu_data/pseudo --pseudo_share 0.3)
fi
# The recipes of the last GPU stages (training/README.md), learning rates lowered for a later stage.
"$python" -m model train --images "$photos" --out "$work/compact_s" --init weights/loftr_live_compact_s.pt \
    --batch 32 --lr 5e-4 --warmup 100 --minutes "$minutes" --schedule cosine --workers 7 "${scenes[@]}" \
    > "$work/compact_s.log" 2>&1 &
"$python" -m model train --images "$photos" --out "$work/xfeat_s" --init weights/loftr_live_xfeat_s.pt \
    --backbone_lr_scale 0.3 --batch 32 --lr 1e-3 --warmup 100 --minutes "$minutes" --schedule cosine --workers 7 \
    "${scenes[@]}" > "$work/xfeat_s.log" 2>&1 &
wait
tail -n 3 "$work/compact_s.log" "$work/xfeat_s.log"

# Keep what a later session needs: weights of the best validation step, logs and recipes.
(cd "$work" && tar czf "$out/gpu_session.tgz" cuda_checks.txt ./*.log \
    compact_s/best.pt compact_s/log.jsonl compact_s/settings.json \
    xfeat_s/best.pt xfeat_s/log.jsonl xfeat_s/settings.json)
ls -l "$out"
