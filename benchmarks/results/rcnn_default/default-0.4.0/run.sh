#!/bin/bash
# Issue 5: session 8's best R-CNN recipe (rcnn-1, width 0.125, 12 epochs, mined SVMs C 1e-4)
# rebuilt on the regenerated default set; the candidate for a new shipped default bundle.
# Waits for the issue-4 classifier CV (run_full_b32.sh) to finish first. Resumable.
source /work/main/.venv/bin/activate
cd /work/runs/s12
while ! grep -q '^end ' run_full_b32.log; do sleep 60; done
R=/work/main/benchmarks/results/rcnn_default
echo "start $(date -Is)"
[ -f rois_train/index.csv ] || python $R/make_rois_train.py /work/runs/synth_default $R/rcnn-1-e12-mine/split.json rois_train
if [ ! -f cls_tiny/grayscale/best.pt ]; then
  RES=""; [ -f cls_tiny/cv.json ] && RES="--resume"
  echo "classifier start $(date -Is)"
  calcsdk train classifier --rois rois_train --out cls_tiny --folds 2 --representation grayscale \
    --config rcnn-1 --lr 0.005 --width 0.125 --epochs 30 --patience 10 --batch-size 64 --no-progress $RES
  echo "classifier rc=$? $(date -Is)"
fi
echo "rcnn start $(date -Is)"
calcsdk train rcnn --data /work/runs/synth_default --classifier cls_tiny/grayscale/best.pt \
  --config rcnn-1 --width 0.125 --epochs 12 --batch-size 64 --negatives-per-image 24 \
  --samples-cache samples_default --sample-workers 2 --mine-images 300 --mine-per-image 500 \
  --svm-c 1e-4 --svm-rounds 5 --svm-negatives-per-round 10000 --out rcnn-1-e12-mine
echo "rcnn rc=$? $(date -Is)"
