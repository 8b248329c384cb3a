#!/bin/bash
# Session-7 RCNN-1 (its fine-tuned AlexNet, 3 epochs: resumed, nothing to train) with the SVMs
# refitted on hard negatives mined over every proposal of the first 300 training images, C 1e-4, 5 rounds of 10,000
source /work/main/.venv/bin/activate
export PYTHONPATH=/work/runs/s8/pkg8b
cd /work/runs/s7
echo "start $(date -u +%FT%T)"
calcsdk train rcnn --data /work/runs/synth_default --classifier cls_tiny7/grayscale/best.pt \
  --config rcnn-1 --width 0.125 --epochs 3 --batch-size 64 --negatives-per-image 24 \
  --samples-cache /work/runs/s7/samples_default --mine-images 300 --mine-per-image 500 --svm-c 1e-4 --svm-rounds 5 --svm-negatives-per-round 10000 \
  --out /work/runs/s8/rcnn-1-mine
echo "rc=$? $(date -u +%FT%T)"
