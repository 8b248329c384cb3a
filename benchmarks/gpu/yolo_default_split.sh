#!/usr/bin/env bash
# YOLOv4 on the default synthetic set, on the R-CNN's split, within one GPU lease.
#
# Generates the default synthetic set (same seed, same bytes as `calcsdk synth --out X
# --no-dicom`), trains YOLOv4 on the R-CNN run's train/val images for at most MAX_MINUTES,
# validates, then evaluates the best weights on the R-CNN's 376 test images with the
# R-CNN's tables (`calcsdk train yolo --split`). Every step logs to $WORK/pipeline.log; the
# last step copies the small result files to $RESULTS.
#
# Environment (defaults in brackets):
#   WORK [/tmp/gpu_work]  scratch folder     RESULTS [$WORK/results]   CONFIG [yolov4-1]
#   IMAGES [3265]         synthetic images   SPLIT [the rcnn-1-e12-mine split.json]
#   MAX_MINUTES [8]       training budget    WORKERS [nproc]           MICRO [32]
#   WIDTH, DEPTH, NETWORK_SIZE, AUTOCAST [bf16], EXTRA: passed on to `calcsdk train yolo`
#
# On the lent GPU machine (benchmarks/gpu/README.md) run it detached, e.g.
#   setsid nohup bash benchmarks/gpu/yolo_default_split.sh > /tmp/yolo_gpu.out 2>&1 &
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${WORK:-/tmp/gpu_work}
RESULTS=${RESULTS:-$WORK/results}
CONFIG=${CONFIG:-yolov4-1}
IMAGES=${IMAGES:-3265}
SPLIT=${SPLIT:-$REPO/benchmarks/results/rcnn_default/rcnn-1-e12-mine/split.json}
MAX_MINUTES=${MAX_MINUTES:-8}
WORKERS=${WORKERS:-$(nproc)}
MICRO=${MICRO:-32}
AUTOCAST=${AUTOCAST:-bf16}
CALCSDK=${CALCSDK:-calcsdk}
mkdir -p "$WORK" "$RESULTS"
log() { echo "$(date -u +%FT%TZ) $*" | tee -a "$WORK/pipeline.log"; }

log "start: config $CONFIG, $IMAGES images, $MAX_MINUTES min, workers $WORKERS"
WORK=$WORK IMAGES=$IMAGES WORKERS=$WORKERS CALCSDK=$CALCSDK \
  bash "$REPO/benchmarks/gpu/synth_default.sh" >> "$WORK/pipeline.log" 2>&1
args=(--data "$WORK/synth" --split "$SPLIT" --config "$CONFIG" --out "$WORK/run-$CONFIG"
      --cache-dir "$WORK/cache" --num-workers "$WORKERS" --micro-batch-size "$MICRO"
      --autocast "$AUTOCAST" --max-minutes "$MAX_MINUTES" --no-progress)
[ -n "${WIDTH:-}" ] && args+=(--width "$WIDTH")
[ -n "${DEPTH:-}" ] && args+=(--depth "$DEPTH")
[ -n "${NETWORK_SIZE:-}" ] && args+=(--network-size "$NETWORK_SIZE")
[ -f "$WORK/run-$CONFIG/last.pt" ] && args+=(--resume)
# shellcheck disable=SC2086
$CALCSDK train yolo "${args[@]}" ${EXTRA:-} >> "$WORK/pipeline.log" 2>&1
log "train + test evaluation done"
run="$WORK/run-$CONFIG"
for f in log.jsonl settings.json split.json eval/evaluation.json eval/evaluation.md; do
  [ -f "$run/$f" ] && cp "$run/$f" "$RESULTS/$CONFIG-$(basename "$f")"
done
cp "$WORK/pipeline.log" "$RESULTS/$CONFIG-pipeline.log"
log "results in $RESULTS"
