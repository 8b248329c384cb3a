"""Fuzz :func:`calcsdk.image.read_mammogram` with mutated bytes of small valid files.

Each case takes one seed file (PNG 8/16-bit, TIFF, JPEG, PGM, DICOM native and RLE), applies
1-4 byte mutations (flip a bit, set a byte, insert, delete, truncate, write a boundary 32-bit
integer) and reads the result.  The contract: every case either raises a ``CalcSdkError`` or
returns a valid :class:`~calcsdk.image.Mammogram` (2-D, non-empty, allowed dtype, finite,
integers within ``max_value``).  Anything else is counted: another exception type
("escaped"), an invalid result, a hang, or a crash of the interpreter.

The cases run in a child process so that a segfault in a decoder is seen and reported, not
fatal to the harness; after a crash a fresh child continues with the next case.  Cases are
reproducible from ``(seed, index)``.  ``tests/sdk/test_image_fuzz.py`` drives the same
:class:`Mutation`/:func:`apply_mutations` with hypothesis.

    python -m calcsdk.benchmarks.fuzz_read --cases 10000 \\
        --json benchmarks/results/fuzz_read_mammogram.json
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import os
import platform
import queue
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import cv2
import numpy as np

from calcsdk.errors import CalcSdkError
from calcsdk.image import DEFAULT_MAX_PIXELS, PIXEL_DTYPES, Mammogram, read_mammogram
from calcsdk.raster import encode_png

MUTATION_KINDS = ("flip", "set", "insert", "delete", "truncate", "int32")
# Boundary values written over length/size fields by the "int32" mutation.
INTERESTING_INT32 = (0, 1, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x10000, 0x7FFFFFFF, 0xFFFFFFFF)
MAX_MUTATIONS = 4
CASE_TIMEOUT_S = 60.0  # a single read taking longer than this is reported as a hang


@dataclass(frozen=True)
class Mutation:
    """One edit of a byte string.  ``position`` in [0, 1] is a fraction of the current
    length (so it stays valid after earlier edits); ``value`` in 0..255 parametrises it."""

    kind: str
    position: float
    value: int


def apply_mutations(data: bytes, mutations: list[Mutation]) -> bytes:
    """Apply ``mutations`` in order and return the edited bytes (``data`` is not modified)."""
    buffer = bytearray(data)
    for mutation in mutations:
        index = min(int(mutation.position * len(buffer)), max(len(buffer) - 1, 0))
        if mutation.kind == "truncate":
            del buffer[index:]
        elif mutation.kind == "insert":
            buffer[index:index] = bytes([mutation.value]) * (1 + mutation.value % 4)
        elif not buffer:
            continue
        elif mutation.kind == "flip":
            buffer[index] ^= 1 << (mutation.value % 8)
        elif mutation.kind == "set":
            buffer[index] = mutation.value
        elif mutation.kind == "delete":
            del buffer[index : index + 1 + mutation.value % 8]
        elif mutation.kind == "int32":
            number = INTERESTING_INT32[mutation.value % len(INTERESTING_INT32)]
            order = "little" if mutation.value & 0x80 else "big"
            buffer[index : index + 4] = number.to_bytes(4, order)
        else:
            raise ValueError(f"unknown mutation kind {mutation.kind!r}")
    return bytes(buffer)


def random_mutations(rng: random.Random) -> list[Mutation]:
    """Draw 1..MAX_MUTATIONS mutations, from the same distribution the hypothesis test uses."""
    return [
        Mutation(rng.choice(MUTATION_KINDS), rng.random(), rng.randrange(256))
        for _ in range(rng.randint(1, MAX_MUTATIONS))
    ]


# --- seed files ---------------------------------------------------------------------------
def _gradient(dtype: type, top: int, shape: tuple[int, int] = (12, 10)) -> np.ndarray:
    rows, cols = np.indices(shape)
    return ((rows * 37 + cols * 11) % (top + 1)).astype(dtype)


def _seed_dicom(rle: bool) -> bytes:
    import io

    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, RLELossless

    pixels = _gradient(np.uint16, 4095)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.2"  # digital MG
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4.5"
    ds.SOPClassUID, ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPClassUID, "1.2.3.4.5"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME1"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelSpacing, ds.ViewPosition, ds.ImageLaterality = [0.07, 0.07], "MLO", "R"
    ds.WindowCenter, ds.WindowWidth = 2048, 4096
    ds.PixelData = pixels.astype("<u2").tobytes()
    if rle:
        ds.compress(RLELossless, generate_instance_uid=False)  # deterministic bytes
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def seed_files() -> dict[str, tuple[str, bytes]]:
    """Small valid files to mutate: name -> (suffix, bytes).  DICOM seeds need pydicom."""
    png8 = encode_png(_gradient(np.uint8, 255), (0.1, 0.1), None, "<seed>")
    png16 = encode_png(_gradient(np.uint16, 4095), (0.07, 0.05), 12, "<seed>")
    tiff_params = [
        cv2.IMWRITE_TIFF_RESUNIT,
        3,
        cv2.IMWRITE_TIFF_XDPI,
        100,
        cv2.IMWRITE_TIFF_YDPI,
        100,
    ]
    seeds = {
        "png8": (".png", png8),
        "png16": (".png", png16),
        "tiff": (
            ".tif",
            cv2.imencode(".tiff", _gradient(np.uint16, 65535), tiff_params)[1].tobytes(),
        ),
        "jpeg": (".jpg", cv2.imencode(".jpg", _gradient(np.uint8, 255))[1].tobytes()),
        "pgm": (".pgm", cv2.imencode(".pgm", _gradient(np.uint16, 65535))[1].tobytes()),
    }
    try:
        seeds["dicom"] = (".dcm", _seed_dicom(rle=False))
        seeds["dicom_rle"] = (".dcm", _seed_dicom(rle=True))
    except ImportError:
        pass
    return seeds


# --- one case -----------------------------------------------------------------------------
def invalid_mammogram_reason(image: Mammogram) -> str | None:
    """Why ``image`` breaks the Mammogram contract, or ``None`` if it is valid."""
    pixels = image.pixels
    if not isinstance(pixels, np.ndarray) or pixels.ndim != 2 or pixels.size == 0:
        return f"pixels of shape {getattr(pixels, 'shape', None)}"
    if pixels.dtype not in PIXEL_DTYPES or not pixels.flags.c_contiguous:
        return f"dtype {pixels.dtype}, C-contiguous {pixels.flags.c_contiguous}"
    if pixels.dtype.kind == "f" and not np.isfinite(pixels).all():
        return "non-finite float pixels"
    if image.max_value is not None and int(pixels.max()) > image.max_value:
        return f"max {int(pixels.max())} > max_value {image.max_value}"
    return None


def read_outcome(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> str:
    """``"ok"``, the name of the CalcSdkError raised, or ``"INVALID: ..."``.  Any other
    exception propagates (the caller decides how to report it)."""
    try:
        image = read_mammogram(path, max_pixels=max_pixels)
    except CalcSdkError as exc:
        return type(exc).__name__
    reason = invalid_mammogram_reason(image)
    return "ok" if reason is None else f"INVALID: {reason}"


def case_input(seed: int, index: int, seeds: dict[str, tuple[str, bytes]]):
    """The deterministic case ``index``: (seed name, suffix, mutated bytes, mutations)."""
    names = sorted(seeds)
    name = names[index % len(names)]
    rng = random.Random(seed * 1_000_003 + index)
    mutations = random_mutations(rng)
    suffix, data = seeds[name]
    return name, suffix, apply_mutations(data, mutations), mutations


def _worker(seed: int, start: int, stop: int, max_pixels: int) -> None:
    """Child process: run cases start..stop-1, one JSON line per case on stdout."""
    seeds = seed_files()
    with tempfile.TemporaryDirectory(prefix="calcsdk-fuzz-") as folder:
        for index in range(start, stop):
            name, suffix, data, _ = case_input(seed, index, seeds)
            path = os.path.join(folder, f"case{suffix}")
            with open(path, "wb") as handle:
                handle.write(data)
            began = time.perf_counter()
            try:
                outcome = read_outcome(path, max_pixels)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # the contract is broken: report, do not stop
                outcome = f"ESCAPED: {type(exc).__name__}: {str(exc)[:200]}"
            record = {"index": index, "format": name, "outcome": outcome}
            record["seconds"] = time.perf_counter() - began
            print(json.dumps(record), flush=True)


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for package in (
        "numpy",
        "opencv-contrib-python-headless",
        "pydicom",
        "pylibjpeg",
        "pylibjpeg-rle",
        "calcsdk",
    ):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    versions["opencv (cv2.__version__)"] = cv2.__version__
    return versions


def _start_child(
    seed: int, start: int, stop: int, max_pixels: int, stderr_file
) -> subprocess.Popen:
    command = [sys.executable, "-m", "calcsdk.benchmarks.fuzz_read", "--worker"]
    command += ["--seed", str(seed), "--start", str(start), "--stop", str(stop)]
    command += ["--max-pixels", str(max_pixels)]
    env = dict(os.environ, OPENCV_LOG_LEVEL="OFF")
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr_file, text=True, env=env)


def _pump(stream, lines: queue.Queue) -> None:
    """Move the child's output lines into ``lines``; ``None`` marks the end."""
    for line in stream:
        lines.put(line)
    lines.put(None)


def run(cases: int, seed: int = 0, max_pixels: int = DEFAULT_MAX_PIXELS) -> dict:
    """Run ``cases`` cases in child processes and return the JSON-ready report."""
    seeds = seed_files()
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    problems: dict[str, list] = {"escaped": [], "invalid_results": [], "crashes": [], "hangs": []}
    durations: list[float] = []
    began = time.perf_counter()
    next_index = 0
    while next_index < cases:
        with tempfile.TemporaryFile("w+") as stderr_file:
            child = _start_child(seed, next_index, cases, max_pixels, stderr_file)
            lines: queue.Queue = queue.Queue()
            threading.Thread(target=_pump, args=(child.stdout, lines), daemon=True).start()
            while True:
                try:
                    line = lines.get(timeout=CASE_TIMEOUT_S)
                except queue.Empty:
                    child.kill()
                    name = case_input(seed, next_index, seeds)[0]
                    problems["hangs"].append({"index": next_index, "format": name})
                    counts[name]["HANG"] += 1
                    next_index += 1
                    break
                if line is None:
                    break
                record = json.loads(line)
                counts[record["format"]][record["outcome"].split(":")[0]] += 1
                durations.append(record["seconds"])
                if record["outcome"].startswith("ESCAPED"):
                    problems["escaped"].append(record)
                elif record["outcome"].startswith("INVALID"):
                    problems["invalid_results"].append(record)
                next_index = record["index"] + 1
            returncode = child.wait()
            if returncode != 0 and next_index < cases:  # died in the middle of a case
                name, _, _, mutations = case_input(seed, next_index, seeds)
                stderr_file.seek(0)
                problems["crashes"].append(
                    {
                        "index": next_index,
                        "format": name,
                        "returncode": returncode,
                        "mutations": [vars(m) for m in mutations],
                        "stderr_tail": stderr_file.read()[-2000:],
                    }
                )
                counts[name]["CRASH"] += 1
                next_index += 1
    seconds = time.perf_counter() - began
    total = collections.Counter()
    for counter in counts.values():
        total.update(counter)
    return {
        "benchmark": "fuzz_read_mammogram",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "python -m calcsdk.benchmarks.fuzz_read " + " ".join(sys.argv[1:]),
        "cases": cases,
        "seed": seed,
        "max_pixels": max_pixels,
        "mutations_per_case": f"1..{MAX_MUTATIONS} of {', '.join(MUTATION_KINDS)}",
        "seed_files": {name: {"suffix": s, "bytes": len(d)} for name, (s, d) in seeds.items()},
        "cases_per_format": {name: sum(c.values()) for name, c in sorted(counts.items())},
        "outcomes_per_format": {
            name: dict(sorted(c.items())) for name, c in sorted(counts.items())
        },
        "outcomes_total": dict(sorted(total.items())),
        "contract_violations": sum(len(v) for v in problems.values()),
        **problems,
        "seconds": round(seconds, 2),
        "read_ms": {
            "median": round(1000 * statistics.median(durations), 3) if durations else None,
            "max": round(1000 * max(durations), 3) if durations else None,
        },
        "cpu_count": os.cpu_count(),
        "versions": _versions(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1000, help="number of mutated files to read")
    parser.add_argument(
        "--seed", type=int, default=0, help="cases are reproducible from (seed, index)"
    )
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS)
    parser.add_argument("--json", type=Path, help="write the report here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--stop", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args.seed, args.start, args.stop, args.max_pixels)
        return 0
    report = run(args.cases, args.seed, args.max_pixels)
    text = json.dumps(report, indent=2)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n", encoding="utf-8")
    summary = {
        k: report[k]
        for k in ("cases_per_format", "outcomes_total", "contract_violations", "seconds")
    }
    sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    return 1 if report["contract_violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
