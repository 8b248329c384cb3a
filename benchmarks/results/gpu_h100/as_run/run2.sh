source .whl3/env.sh || exit 1
set -o pipefail
CLI="python3 -m calcsdk.cli"
echo "== gpu tests"; timeout 120 python3 -m pytest -q -p no:cacheprovider -m "gpu or tensorrt" tests/sdk/test_backends.py tests/sdk/test_detector.py tests/sdk/test_tensorrt.py -rs 2>&1 | tail -12 | tee $OUT/gpu_tests.log
echo "== models"; timeout 300 python3 -m calcsdk.benchmarks.gpu_models --out $OUT/gpu_models.json 2>&1 | grep -v -E "torchvision|EP Error|Falling back|\*\*\*\*|provider_bridge|Please install|when using" | tee $OUT/gpu_models.log
echo "== e2e"; timeout 90 python3 -m calcsdk.benchmarks.full_size_rcnn --out /tmp/fullsize --no-int8 2>&1 | tail -1
timeout 60 $CLI bench --model /tmp/fullsize/bundle --device cuda --batch 1024 --images 2 --repeat 3 --json $OUT/e2e_full_cuda_b1024.json 2>&1 | grep -v plugin | tail -6
timeout 100 python3 -m calcsdk.benchmarks.bench_detect_batch --model /tmp/fullsize/bundle --device cuda --repeat 3 --json $OUT/detect_batch_full_cuda.json 2>&1 | grep -v plugin | tail -14
