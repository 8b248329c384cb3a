#!/bin/bash
# Issue 4: full-width (56.9 M) AlexNet, 5 folds x 3 representations, cut to 5 epochs with a
# cosine schedule so that the 15 folds fit one 2-core session. Resumable (--resume).
source /work/main/.venv/bin/activate
cd /work/runs/s10
RESUME=""; [ -f cls_full_e5/cv.json ] && RESUME="--resume"
echo "start $(date -Is) $RESUME"
calcsdk train classifier --rois /work/runs/synth_default --out cls_full_e5 --folds 5 \
    --config rcnn-1 --lr 0.005 --width 1.0 --epochs 5 --patience 10 \
    --lr-schedule cosine --warmup-epochs 0.5 --representation all --no-progress $RESUME
echo "end $(date -Is) rc=$?"
