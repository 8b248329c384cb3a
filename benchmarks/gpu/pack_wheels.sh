#!/usr/bin/env bash
# Pack onnxruntime-gpu, OpenCV contrib, pydicom and skl2onnx for the lent GPU machine.
#
# That machine has no network and no onnxruntime-gpu or OpenCV contrib, and one call of the
# device tool carries at most 64 MiB with the repository (~29 MB). This script downloads
# the wheels here, zeroes the CUDA provider's cubins for GPUs other than sm_$ARCH (the H100
# and H200 are sm_90; prune_fatbin.py), xz-compresses both packages and splits them into
# parts of $PART bytes, one per folder .gpuwheels0, .gpuwheels1, ... (git-ignored through
# .git/info/exclude). Each part travels in its own call (`carry: [".gpuwheelsK"]`) and is
# copied to /tmp/parts there; device_env.sh then assembles and installs them.
# Takes ~3 minutes on 2 cores.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
ARCH=${ARCH:-90}
PART=${PART:-30100000}
TMP=${TMP_PACK:-/tmp/calcsdk-gpu-pack}
rm -rf "$TMP" && mkdir -p "$TMP/dl" "$TMP/ort" "$TMP/cv"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d "$TMP/dl" onnxruntime-gpu==1.31.1 \
  opencv-contrib-python-headless==5.0.0.93 pydicom==3.0.2 skl2onnx==1.20.0
(cd "$TMP/ort" && unzip -q "$TMP"/dl/onnxruntime_gpu-*.whl)
lib="$TMP/ort/onnxruntime/capi/libonnxruntime_providers_cuda.so"
python3 "$REPO/benchmarks/gpu/prune_fatbin.py" "$lib" "$lib.pruned" "$ARCH" && mv "$lib.pruned" "$lib"
(cd "$TMP/ort" && tar -cf - onnxruntime onnxruntime_gpu-*.dist-info) | xz -T2 -6 > "$TMP/ortgpu.tar.xz"
(cd "$TMP/cv" && unzip -q "$TMP"/dl/opencv_contrib_python_headless-*.whl \
  && cp "$TMP"/dl/pydicom-*.whl "$TMP"/dl/skl2onnx-*.whl . && tar -cf - .) | xz -T2 -6 > "$TMP/cv.tar.xz"
(cd "$TMP" && sha256sum ortgpu.tar.xz cv.tar.xz > sums && stat -c %s ortgpu.tar.xz > ort_size)
rm -rf "$REPO"/.gpuwheels*
(cd "$TMP" && cat ortgpu.tar.xz cv.tar.xz | split -b "$PART" -d -a 1 - part_)
grep -qx '/.gpuwheels\*/' "$REPO/.git/info/exclude" 2>/dev/null || echo '/.gpuwheels*/' >> "$REPO/.git/info/exclude"
for part in "$TMP"/part_*; do
  k=${part##*_}
  mkdir -p "$REPO/.gpuwheels$k" && cp "$part" "$REPO/.gpuwheels$k/"
done
last=$(ls -d "$REPO"/.gpuwheels* | sort | tail -1)
cp "$TMP/sums" "$TMP/ort_size" "$last/"
ls -l "$REPO"/.gpuwheels*/
