#!/bin/bash
# RCNN-1 fine-tuning continued from the session-7 run's epoch 3 to epoch 12 (constant lr, so the
# same as a 12-epoch run); everything else as benchmarks/results/rcnn_default/run.sh
source /work/main/.venv/bin/activate
export PYTHONPATH=/work/runs/s8/pkg8
cd /work/runs/s7
echo "start $(date -u +%FT%T)"
calcsdk train rcnn --data /work/runs/synth_default --classifier cls_tiny7/grayscale/best.pt \
  --config rcnn-1 --width 0.125 --epochs 12 --batch-size 64 --negatives-per-image 24 \
  --samples-cache /work/runs/s7/samples_default --out /work/runs/s8/rcnn-1-e12
echo "rc=$? $(date -u +%FT%T)"
