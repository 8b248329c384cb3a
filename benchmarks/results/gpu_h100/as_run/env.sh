# sourced on the device: assemble the carried parts once, then export the paths
P=/tmp/parts
if [ ! -f /tmp/site/.done ]; then
  set -e
  cat $P/part_0 $P/part_1 $P/part_2 $P/part_3 > $P/all
  head -c 70312672 $P/all > $P/ortgpu.tar.xz
  tail -c +70312673 $P/all > $P/cv.tar.xz
  (cd $P && sha256sum -c $OLDPWD/.whl3/sums)
  mkdir -p /tmp/site
  tar -xJf $P/ortgpu.tar.xz -C /tmp/site
  tar -xJf $P/cv.tar.xz -C /tmp/site
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site /tmp/site/*.whl
  touch /tmp/site/.done
  set +e
fi
rm -rf /tmp/calc build
python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target /tmp/calc . >/tmp/calc_install.log 2>&1 || { cat /tmp/calc_install.log; exit 1; }
rm -rf build
export PYTHONPATH=/tmp/calc:/tmp/site PYTHONUNBUFFERED=1
export LD_LIBRARY_PATH=$(python3 -c "
import glob, os, sys
dirs = set()
for root in sys.path:
    for p in glob.glob(os.path.join(root, 'nvidia', '**', 'lib*.so*'), recursive=True):
        dirs.add(os.path.dirname(p))
print(':'.join(sorted(dirs)))")
python3 -c "import onnxruntime as ort, cv2; print('ort', ort.__version__, ort.__file__, ort.get_available_providers()); print('cv2', cv2.__version__, cv2.__file__, hasattr(cv2, 'ximgproc'))"
