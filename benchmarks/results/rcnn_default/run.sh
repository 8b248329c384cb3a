#!/bin/bash
# Paper-scale tiny R-CNN on the default synthetic set (3,265 images; 2,889 train+val / 376 test)
source /work/main/.venv/bin/activate
export PYTHONPATH=/work/runs/s7/pkg7
cd /work/runs/s7
if [ ! -f cls_tiny7/grayscale/best.pt ]; then
  echo "classifier start $(date -u +%FT%T)"
  calcsdk train classifier --rois rois_train --out cls_tiny7 --folds 2 --representation grayscale \
    --config rcnn-1 --lr 0.005 --width 0.125 --epochs 30 --patience 10 --batch-size 64 --no-progress --resume
  echo "classifier rc=$? $(date -u +%FT%T)"
fi
for cfg in rcnn-1 rcnn-2; do
  [ -f $cfg/eval/evaluation.json ] && continue
  echo "$cfg start $(date -u +%FT%T)"
  calcsdk train rcnn --data /work/runs/synth_default --classifier cls_tiny7/grayscale/best.pt \
    --config $cfg --width 0.125 --epochs 3 --batch-size 64 --negatives-per-image 24 \
    --samples-cache samples_default --out $cfg
  echo "$cfg rc=$? $(date -u +%FT%T)"
done
