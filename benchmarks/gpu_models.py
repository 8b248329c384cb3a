"""The R-CNN's fc7 extractor and YOLOv4 on one GPU: onnxruntime vs PyTorch, batch 1 and best.

Issue 8's "on a lent GPU" row. Both models are built at full size (AlexNet 56.9 M parameters,
input (N, 1, 227, 227); YOLOv4 with CSPDarknet53, input (N, 1, 608, 608)) with seeded random
weights: latency does not depend on the weights. The ONNX files are the SDK's exports
(:func:`calcsdk.export.onnx_fc7.export_fc7`, :func:`calcsdk.export.onnx_yolo.export_yolo`,
decoding in the graph), so onnxruntime runs exactly what a bundle ships.

Variants (``--variants``; each is skipped with its reason where its runtime is missing):

- ``ort-cuda-fp32``: onnxruntime's CUDA provider with TF32 off, numpy in and out (what the
  SDK's onnxruntime backend does, so host<->device copies are included);
- ``ort-cuda-tf32``: the same with the provider's default TF32 convolutions and matmuls;
- ``ort-cuda-fp16``: the same graph with float16 weights and activations, float32 inputs and
  outputs (``onnxruntime.transformers.float16``);
- ``ort-cuda-fp32-resident``, ``ort-cuda-fp16-resident``: the same sessions through an
  ``IOBinding``, input already on the GPU and output left there (no host copies);
- ``ort-trt-fp16``: onnxruntime's TensorRT provider (needs TensorRT's libraries);
- ``torch-cuda-fp32`` (TF32 off), ``torch-cuda-tf32``, ``torch-cuda-fp16`` (autocast),
  ``torch-cuda-fp16-resident`` (autocast, input already on the GPU, output left there): eager
  PyTorch, channels-last, ``torch.inference_mode``; the non-resident ones copy the numpy input
  to the GPU and the output back, like the onnxruntime variants;
- ``ort-cpu-fp32``, ``torch-cpu-fp32``: the same models on the CPU (for tests and a CPU row).

Timing: ``--warmup`` untimed calls, then the median of ``--runs`` calls, each timed on the host
clock after a device synchronisation (onnxruntime's ``run`` returns host arrays, so it is
synchronous). Inputs are seeded uniform [0, 1) float32: latency does not depend on pixel
values, and never-zero inputs do not hit zero fast paths.

Accuracy: every variant's first output is compared with float32 PyTorch on the CPU as
``||out - ref|| / ||ref||`` (relative L2) at batch 1.

    python -m calcsdk.benchmarks.gpu_models --out gpu_models.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from calcsdk.benchmarks.environment import environment_fingerprint
from calcsdk.export.onnx_fc7 import Fc7Extractor, export_fc7
from calcsdk.export.onnx_yolo import DecodedYOLOv4, export_yolo
from calcsdk.training.models.alexnet import INPUT_SIZE, AlexNet, AlexNetConfig
from calcsdk.training.models.yolov4 import YOLOv4, YOLOv4Config

VARIANTS = (
    "ort-cuda-fp32",
    "ort-cuda-tf32",
    "ort-cuda-fp16",
    "ort-cuda-fp32-resident",
    "ort-cuda-fp16-resident",
    "ort-trt-fp16",
    "torch-cuda-fp32",
    "torch-cuda-tf32",
    "torch-cuda-fp16",
    "torch-cuda-fp16-resident",
)
CPU_VARIANTS = ("ort-cpu-fp32", "torch-cpu-fp32")
YOLO_ANCHORS = np.array(  # YOLOv4's COCO anchors at 608 (latency does not depend on them)
    [[12, 16], [19, 36], [40, 28], [36, 75], [76, 55], [72, 146], [142, 110], [192, 243],
     [459, 401]], np.float32,
)  # fmt: skip


class Unavailable(RuntimeError):
    """A variant whose runtime is missing here; the message says what is missing."""


def build_models(alexnet_width: float, yolo_width: float, yolo_depth: float, yolo_size: int):
    """Seeded eval-mode models: ``{name: (torch module, input side in pixels)}``.

    The torch modules compute what the ONNX exports compute: fc7 (N, D) for the AlexNet, and
    decoded ``boxes`` (N, P, 4) / ``scores`` (N, P, 2) for YOLOv4.
    """
    torch.manual_seed(0)
    alexnet = AlexNet(AlexNetConfig(width=alexnet_width)).eval()
    torch.manual_seed(0)
    yolo = YOLOv4(YOLOv4Config(width=yolo_width, depth=yolo_depth)).eval()
    return {
        "alexnet_fc7": (alexnet, Fc7Extractor(alexnet).eval(), INPUT_SIZE),
        "yolov4": (yolo, DecodedYOLOv4(yolo, YOLO_ANCHORS).eval(), yolo_size),
    }


def export_onnx(name: str, model: torch.nn.Module, side: int, folder: Path) -> Path:
    """The SDK's ONNX export of ``model`` into ``folder``; returns the file."""
    if name == "alexnet_fc7":
        return export_fc7(model, folder / "alexnet_fc7.onnx")
    return export_yolo(model, folder / "yolov4.onnx", anchors=YOLO_ANCHORS, input_size=side)


def to_fp16(path: Path) -> Path:
    """A float16 copy of the ONNX model at ``path`` (float32 inputs and outputs kept)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(path)), keep_io_types=True)
    seen: set[str] = set()  # the converter can name two inserted Casts alike: rename the second
    for index, node in enumerate(model.graph.node):
        if node.name in seen:
            node.name = f"{node.name}__{index}"
        seen.add(node.name)
    out = path.with_name(path.stem + "_fp16.onnx")
    onnx.save(model, str(out))
    return out


def _ort_runner(
    path: Path, provider: str, threads: int | None, resident: bool = False, tf32: bool = False
) -> Callable[[Any], Any]:
    import onnxruntime as ort

    if provider not in ort.get_available_providers():
        raise Unavailable(f"{provider} is not in this onnxruntime ({ort.__version__})")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    provider_options: dict[str, Any] = {}
    if provider == "TensorrtExecutionProvider":
        provider_options = {"trt_fp16_enable": True}
    if provider == "CUDAExecutionProvider":
        provider_options = {"use_tf32": int(tf32)}
    try:
        session = ort.InferenceSession(str(path), options, providers=[(provider, provider_options)])
    except Exception as exc:  # onnxruntime raises untyped errors
        raise Unavailable(f"{provider} failed to create a session: {exc}") from None
    if session.get_providers()[0] != provider:
        raise Unavailable(f"{provider} fell back to {session.get_providers()}")
    name = session.get_inputs()[0].name
    if not resident:
        return lambda x: session.run(None, {name: x})[0]
    binding = session.io_binding()
    output = session.get_outputs()[0].name

    def run_bound(x: torch.Tensor) -> Any:  # x: a contiguous float32 CUDA tensor
        binding.bind_input(name, "cuda", 0, np.float32, tuple(x.shape), x.data_ptr())
        binding.bind_output(output, "cuda")
        session.run_with_iobinding(binding)
        binding.synchronize_outputs()
        return binding.get_outputs()[0]

    return run_bound


def _torch_runner(module: torch.nn.Module, variant: str) -> Callable[[np.ndarray], Any]:
    device = "cuda" if "cuda" in variant else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise Unavailable(f"torch {torch.__version__} sees no CUDA device")
    module = module.to(device)
    if device == "cuda":
        module = module.to(memory_format=torch.channels_last)
        tf32 = variant == "torch-cuda-tf32"
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cudnn.benchmark = True
    fp16 = "fp16" in variant
    resident = variant.endswith("resident")

    def run(x: np.ndarray) -> Any:
        with torch.inference_mode(), torch.autocast(device, torch.float16, enabled=fp16):
            xt = x if resident else torch.from_numpy(x).to(device)
            out = module(xt)
            out = out[0] if isinstance(out, tuple) else out
            if device == "cuda":
                torch.cuda.synchronize()
            return out if resident else out.float().cpu().numpy()

    return run


def make_runner(
    variant: str, module: torch.nn.Module, onnx_path: Path, threads: int | None
) -> Callable[[np.ndarray], Any]:
    """A callable ``(N, 1, S, S) float32 -> first output`` for ``variant``; raises Unavailable."""
    if variant == "ort-cuda-fp32":
        return _ort_runner(onnx_path, "CUDAExecutionProvider", threads)
    if variant == "ort-cuda-tf32":
        return _ort_runner(onnx_path, "CUDAExecutionProvider", threads, tf32=True)
    if variant == "ort-cuda-fp16":
        return _ort_runner(to_fp16(onnx_path), "CUDAExecutionProvider", threads)
    if variant == "ort-cuda-fp32-resident":
        return _ort_runner(onnx_path, "CUDAExecutionProvider", threads, resident=True)
    if variant == "ort-cuda-fp16-resident":
        return _ort_runner(to_fp16(onnx_path), "CUDAExecutionProvider", threads, resident=True)
    if variant == "ort-trt-fp16":
        return _ort_runner(onnx_path, "TensorrtExecutionProvider", threads)
    if variant == "ort-cpu-fp32":
        return _ort_runner(onnx_path, "CPUExecutionProvider", threads)
    if variant.startswith("torch-"):
        return _torch_runner(module, variant)
    raise ValueError(f"unknown variant {variant!r}; known: {VARIANTS + CPU_VARIANTS}")


def time_runner(run: Callable[[np.ndarray], Any], x: Any, warmup: int, runs: int) -> list[float]:
    """Milliseconds of ``runs`` calls of ``run(x)`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        run(x)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run(x)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def relative_error(out: Any, ref: np.ndarray) -> float:
    """``||out - ref|| / ||ref||`` in float64 (NaN anywhere gives NaN)."""
    if isinstance(out, torch.Tensor):
        out = out.float().cpu().numpy()
    elif hasattr(out, "numpy"):  # an onnxruntime OrtValue on the GPU
        out = out.numpy()
    out, ref = np.asarray(out, np.float64), np.asarray(ref, np.float64)
    return float(np.linalg.norm(out - ref) / max(np.linalg.norm(ref), 1e-30))


def bench_model(
    name: str,
    module: torch.nn.Module,
    side: int,
    onnx_path: Path,
    variants: Sequence[str],
    batches: Sequence[int],
    *,
    warmup: int,
    runs: int,
    threads: int | None,
) -> dict[str, Any]:
    """Per variant: p50 ms and items/s per batch, the best batch, and batch-1 accuracy."""
    rng = np.random.default_rng(0)
    inputs = {b: rng.random((b, 1, side, side), dtype=np.float32) for b in batches}
    with torch.inference_mode():
        ref = module(torch.from_numpy(inputs[batches[0]]))
        ref = (ref[0] if isinstance(ref, tuple) else ref).numpy()
    rows: dict[str, Any] = {}
    for variant in variants:
        try:
            run = make_runner(variant, module, onnx_path, threads)
        except Unavailable as exc:
            rows[variant] = {"status": "unavailable", "reason": str(exc)}
            continue
        resident = variant.endswith("resident")
        row: dict[str, Any] = {"status": "ok", "batches": {}}
        row["rel_error_vs_torch_cpu_fp32"] = relative_error(
            run(torch.from_numpy(inputs[batches[0]]).cuda() if resident else inputs[batches[0]]),
            ref,
        )
        for b in batches:
            x = torch.from_numpy(inputs[b]).cuda() if resident else inputs[b]
            try:
                times = time_runner(run, x, warmup, runs)
            except Exception as exc:  # out of memory at a large batch: record and stop
                row["batches"][str(b)] = {"status": "failed", "reason": str(exc)[:200]}
                break
            p50 = statistics.median(times)
            row["batches"][str(b)] = {
                "p50_ms": round(p50, 3),
                "min_ms": round(min(times), 3),
                "items_per_s": round(b / p50 * 1e3, 1),
            }
        timed = {b: r for b, r in row["batches"].items() if "p50_ms" in r}
        if timed:
            best = max(timed, key=lambda b: timed[b]["items_per_s"])
            row["best_batch"] = int(best)
        rows[variant] = row
        module.to("cpu")
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return {
        "input": f"(N, 1, {side}, {side}) float32",
        "parameters": sum(p.numel() for p in module.parameters()),
        "variants": rows,
    }


def format_table(report: dict[str, Any]) -> str:
    """Markdown: one row per model and variant, batch 1 p50 and the best batch's throughput."""
    lines = [
        "| model | variant | batch 1 p50 ms | best batch | its p50 ms | items/s | rel. error |",
        "|---|---|---|---|---|---|---|",
    ]
    for model, result in report["models"].items():
        for variant, row in result["variants"].items():
            if row["status"] != "ok":
                lines.append(f"| {model} | {variant} | {row['status']}: {row['reason'][:60]} |")
                continue
            one = row["batches"].get("1", {})
            best = row["batches"].get(str(row.get("best_batch")), {})
            lines.append(
                f"| {model} | {variant} | {one.get('p50_ms', '-')} | {row.get('best_batch')} "
                f"| {best.get('p50_ms', '-')} | {best.get('items_per_s', '-')} "
                f"| {row['rel_error_vs_torch_cpu_fp32']:.1e} |"
            )
    return "\n".join(lines)


def _batches(text: str) -> list[int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"batches should be positive integers, got {text!r}")
    return values


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m calcsdk.benchmarks.gpu_models")
    parser.add_argument("--out", type=Path, required=True, help="JSON report to write")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--alexnet-batches", type=_batches, default=[1, 8, 32, 128, 512])
    parser.add_argument("--yolo-batches", type=_batches, default=[1, 2, 4, 8, 16])
    parser.add_argument("--alexnet-width", type=float, default=1.0)
    parser.add_argument("--yolo-width", type=float, default=1.0)
    parser.add_argument("--yolo-depth", type=float, default=1.0)
    parser.add_argument("--yolo-size", type=int, default=608)
    parser.add_argument("--models", default="alexnet_fc7,yolov4")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime CPU threads")
    args = parser.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = set(variants) - set(VARIANTS + CPU_VARIANTS)
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}")
    models = build_models(args.alexnet_width, args.yolo_width, args.yolo_depth, args.yolo_size)
    report: dict[str, Any] = {
        "what": __doc__.splitlines()[0],
        "command": "python -m calcsdk.benchmarks.gpu_models "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "environment": environment_fingerprint(),
        "warmup": args.warmup,
        "runs": args.runs,
        "models": {},
    }
    batches = {"alexnet_fc7": args.alexnet_batches, "yolov4": args.yolo_batches}
    with tempfile.TemporaryDirectory(prefix="calcsdk-gpu-models-") as tmp:
        for name in [m.strip() for m in args.models.split(",") if m.strip()]:
            if name not in models:
                parser.error(f"unknown model {name!r}; known: {sorted(models)}")
            network, module, side = models[name]
            path = export_onnx(name, network, side, Path(tmp))
            report["models"][name] = bench_model(
                name, module, side, path, variants, batches[name],
                warmup=args.warmup, runs=args.runs, threads=args.threads,
            )  # fmt: skip
            print(f"{name} done", file=sys.stderr, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(format_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
