#!/bin/bash
# Issue 6: full-architecture YOLOv4 (CSPDarknet53, width 1, depth 1) on the default synthetic
# set, on the R-CNN's split (same 376 test images), with a schedule cut to fit 2 CPU cores:
# 256-px tiles at 0.2 mm (128-px overlap), batch 16 (micro 8), every cluster tile plus as many
# background tiles per epoch, EPOCHS epochs (warmup a quarter epoch), no validation (the test
# images are the only evaluation; last.pt's EMA weights with their BatchNorm statistics
# re-estimated on 256 training tiles at the end). Resumable: rerun it.
# CONFIG=yolov4-1|yolov4-2 EPOCHS=N bash yolo_cpu.sh
source /work/main/.venv/bin/activate
cd /work/runs/s13
CONFIG=${CONFIG:-yolov4-1}
EPOCHS=${EPOCHS:-2}
RES=""; [ -f run-$CONFIG/last.pt ] && RES="--resume"
echo "start $CONFIG $(date -Is) $RES"
calcsdk train yolo --data /work/runs/synth_default \
  --split /work/main/benchmarks/results/rcnn_default/rcnn-1-e12-mine/split.json \
  --config $CONFIG --out run-$CONFIG --cache-dir yolo_cache --device cpu \
  --epochs $EPOCHS --batch-size 16 --micro-batch-size 8 --network-size 256 --tile-overlap 128 \
  --negative-tile-ratio 1.0 --no-validation --checkpoint-every-steps 25 \
  --num-workers 0 --warmup-epochs 0.25 --no-progress $RES
echo "end $CONFIG rc=$? $(date -Is)"
