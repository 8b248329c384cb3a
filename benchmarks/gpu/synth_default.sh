#!/usr/bin/env bash
# The default synthetic set in $WORK/synth (`calcsdk synth --no-dicom`: same seed, same bytes
# as on any machine), unless it is there already. ~8 minutes on the GPU machine's 16 cores.
set -euo pipefail
WORK=${WORK:-/tmp/gpu_work}
IMAGES=${IMAGES:-3265}
WORKERS=${WORKERS:-$(nproc)}
mkdir -p "$WORK"
if [ ! -f "$WORK/synth/annotations.json" ]; then
  ${CALCSDK:-calcsdk} synth --out "$WORK/synth" --images "$IMAGES" --no-dicom --workers "$WORKERS"
fi
echo "$(date -u +%FT%TZ) synth: $(ls "$WORK/synth/images" | wc -l) images in $WORK/synth"
