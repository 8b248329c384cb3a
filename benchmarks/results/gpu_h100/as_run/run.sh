source .whl3/env.sh || exit 1
set -o pipefail
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,temperature.gpu,utilization.gpu --format=csv | tee $OUT/nvidia_smi.txt
CLI="python3 -m calcsdk.cli"
echo "== gpu tests"; timeout 150 python3 -m pytest -q -p no:cacheprovider -m "gpu or tensorrt" tests/sdk -rs 2>&1 | tail -12 | tee $OUT/gpu_tests.log
echo "== models"; timeout 330 python3 -m calcsdk.benchmarks.gpu_models --out $OUT/gpu_models.json 2>&1 | grep -v torchvision | tee $OUT/gpu_models.log
echo "== e2e"; timeout 90 python3 -m calcsdk.benchmarks.full_size_rcnn --out /tmp/fullsize --no-int8 2>&1 | grep -v torchvision | tail -3
for dev in cuda cpu; do timeout 60 $CLI bench --model /tmp/fullsize/bundle --device $dev --images 2 --repeat 3 --json $OUT/e2e_full_$dev.json 2>&1 | tail -14; done
for dev in cuda cpu; do timeout 40 $CLI bench --device $dev --images 2 --repeat 3 --json $OUT/e2e_default_$dev.json 2>&1 | tail -14; done
