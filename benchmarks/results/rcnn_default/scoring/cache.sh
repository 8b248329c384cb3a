source /work/main/.venv/bin/activate
cd /work/runs/s8
for key in val test; do
  python fc7_cache.py /work/runs/s7/rcnn-1/bundle /work/runs/synth_default /work/runs/s7/rcnn-1/split.json $key fc7_r1/$key
done
