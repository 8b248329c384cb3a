#!/bin/bash
# Width-0.125 grayscale 5-fold CV with the cosine schedule; otherwise the recorded
# classifier_cv_default protocol (rcnn-1, lr 0.005, batch 128, 30 epochs, patience 10, seed 0).
source /work/main/.venv/bin/activate
cd /work/runs/s10
RESUME=""; [ -f cls_tiny_cosine/cv.json ] && RESUME="--resume"
echo "start $(date -Is) $RESUME"
calcsdk train classifier --rois /work/runs/synth_default --out cls_tiny_cosine --folds 5 \
    --config rcnn-1 --lr 0.005 --width 0.125 --epochs 30 --patience 10 \
    --lr-schedule cosine --warmup-epochs 0.5 --representation grayscale --no-progress $RESUME
echo "end $(date -Is) rc=$?"
