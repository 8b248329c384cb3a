# Sourced on the lent GPU machine, in the repository root. Installs calcsdk with pip --target
# and exports PYTHONPATH, PATH and LD_LIBRARY_PATH. When the parts of pack_wheels.sh were
# copied to /tmp/parts, it first assembles, checks and installs them (once per machine), and
# onnxruntime-gpu then finds the CUDA 13 libraries of the image's PyTorch. Without parts,
# the image's own onnxruntime (CPU) and OpenCV (no contrib: no EdgeBoxes) stay in use, which
# is enough for training and torch evaluation (yolo_default_split.sh).
P=/tmp/parts
if ls $P/part_* > /dev/null 2>&1 && [ ! -f /tmp/site/.complete ]; then
  sums=$(ls .gpuwheels*/sums 2>/dev/null | head -1)
  [ -n "$sums" ] || { echo "device_env: carry the last .gpuwheelsK folder (it holds sums)"; return 1; }
  cat $(ls $P/part_* | sort) > $P/all || return 1
  head -c "$(cat "$(dirname "$sums")/ort_size")" $P/all > $P/ortgpu.tar.xz
  tail -c +"$(( $(cat "$(dirname "$sums")/ort_size") + 1 ))" $P/all > $P/cv.tar.xz
  (cd $P && sha256sum -c "$OLDPWD/$sums") || { echo "device_env: parts missing or corrupt"; return 1; }
  rm -rf /tmp/site && mkdir -p /tmp/site
  tar -xJf $P/ortgpu.tar.xz -C /tmp/site && tar -xJf $P/cv.tar.xz -C /tmp/site || return 1
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site /tmp/site/*.whl || return 1
  touch /tmp/site/.complete
fi
rm -rf /tmp/calc build
python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target /tmp/calc . \
  > /tmp/calc_install.log 2>&1 || { cat /tmp/calc_install.log; return 1; }
rm -rf build
export PYTHONPATH=/tmp/calc:/tmp/site PYTHONUNBUFFERED=1 PATH=/tmp/calc/bin:$PATH
export LD_LIBRARY_PATH=$(python3 -c "
import glob, os, sys
dirs = {os.path.dirname(p) for root in sys.path
        for p in glob.glob(os.path.join(root, 'nvidia', '**', 'lib*.so*'), recursive=True)}
print(':'.join(sorted(dirs)))")
python3 -c "import onnxruntime as ort, cv2; print('onnxruntime', ort.__version__, ort.get_available_providers()); print('cv2', cv2.__version__, 'ximgproc', hasattr(cv2, 'ximgproc'))"
