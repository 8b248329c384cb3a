#!/bin/bash
# Issue 4 on CPU: full-width AlexNet (56.9 M), 5 folds x 3 representations, cut to 6 epochs
# with batch 32 and a cosine schedule (fold 1 of grayscale: 82.9% test, as width 0.125 at 30
# epochs). ~205 s per epoch on this AVX2-only 2-core machine: ~5.1 h in all. Resumable.
source /work/main/.venv/bin/activate
cd /work/runs/s10
RESUME=""; [ -f cls_full_b32_e6/cv.json ] && RESUME="--resume"
echo "start $(date -Is) $RESUME"
calcsdk train classifier --rois /work/runs/synth_default --out cls_full_b32_e6 --folds 5 \
    --config rcnn-1 --lr 0.005 --width 1.0 --epochs 6 --patience 10 --batch-size 32 \
    --lr-schedule cosine --warmup-epochs 0.5 --representation all --no-progress $RESUME
echo "end $(date -Is) rc=$?"
