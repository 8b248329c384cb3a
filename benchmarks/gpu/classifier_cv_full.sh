#!/usr/bin/env bash
# Issue 4's full-width run on a GPU: AlexNet (56.9 M) 5-fold CV over the three ROI
# representations of the default synthetic ROI set, with the options of the recorded
# width-0.125 run (BENCHMARKS.md, "ROI classifier: 5-fold cross-validation"): rcnn-1, lr
# 0.005, 30 epochs, patience 10. Writes $RESULTS/classifier_cv_full.tar.gz: the run folder
# without weights (report, Tables 2/3, confusion figures, per-fold logs and predictions).
#
# Environment: WORK [/tmp/gpu_work], RESULTS [$WORK/results], WIDTH [1.0], EPOCHS [30],
# REPRESENTATION [all], EXTRA (more `calcsdk train classifier` options).
# Run detached on the lent machine (benchmarks/gpu/README.md):
#   setsid nohup bash benchmarks/gpu/classifier_cv_full.sh > /tmp/cls_gpu.out 2>&1 &
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${WORK:-/tmp/gpu_work}
RESULTS=${RESULTS:-$WORK/results}
CALCSDK=${CALCSDK:-calcsdk}
RUN="$WORK/classifier_cv_full"
mkdir -p "$RESULTS"
log() { echo "$(date -u +%FT%TZ) $*" | tee -a "$WORK/classifier.log"; }
WORK=$WORK CALCSDK=$CALCSDK bash "$REPO/benchmarks/gpu/synth_default.sh" >> "$WORK/classifier.log" 2>&1
log "classifier CV: width ${WIDTH:-1.0}, ${EPOCHS:-30} epochs, ${REPRESENTATION:-all}"
resume=()
[ -d "$RUN" ] && resume=(--resume)
# shellcheck disable=SC2086
$CALCSDK train classifier --rois "$WORK/synth" --out "$RUN" --folds 5 --config rcnn-1 \
  --lr 0.005 --width "${WIDTH:-1.0}" --epochs "${EPOCHS:-30}" --patience 10 \
  --representation "${REPRESENTATION:-all}" --no-progress "${resume[@]}" ${EXTRA:-} \
  >> "$WORK/classifier.log" 2>&1
log "classifier CV done"
tar -czf "$RESULTS/classifier_cv_full.tar.gz" --exclude='*.pt' -C "$WORK" classifier_cv_full
cp "$WORK/classifier.log" "$RESULTS/classifier.log"
log "results in $RESULTS"
