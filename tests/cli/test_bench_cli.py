"""``calcsdk bench``: per-stage percentiles on the toy bundle, ``--compare`` with unavailable
entries, the JSON report validated against ``benchmarks/schema/bench.schema.json`` (with
``jsonschema`` when installed, and always with the small validator below), exit statuses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from calcsdk.benchmarks.bench_latency import SCHEMA_PATH, RunSpec, parse_compare
from calcsdk.benchmarks.phantom import write_phantoms
from calcsdk.benchmarks.stage_timer import StageRecorder, instrument, percentiles, restore

RCNN_STAGES = {"read", "preprocess", "proposals", "score", "warp", "cnn", "svm", "nms"}
SMALL = ["--image-size", "300x240", "--spacing", "0.2"]


def calcsdk(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "calcsdk.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- a small JSON Schema validator: the keywords bench.schema.json uses ------------------
_TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "null": type(None),
}


def _is_type(value, name: str) -> bool:
    if isinstance(value, bool) and name in ("integer", "number"):
        return False
    return isinstance(value, _TYPES[name])


def schema_errors(value, schema: dict, root: dict, where: str = "$") -> list[str]:
    """Errors of ``value`` against ``schema`` (type, enum, required, properties,
    additionalProperties, items, minItems, minimum, maximum, exclusiveMinimum, anyOf, $ref)."""
    if "$ref" in schema:
        target = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return schema_errors(value, target, root, where)
    if "anyOf" in schema:
        if all(schema_errors(value, option, root, where) for option in schema["anyOf"]):
            return [f"{where}: matches none of anyOf"]
        return []
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else types
        if not any(_is_type(value, name) for name in names):
            return [f"{where}: {value!r} is not of type {types}"]
    errors = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} not in {schema['enum']}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{where}: {value} < minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{where}: {value} > maximum {schema['maximum']}")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            errors.append(f"{where}: {value} <= exclusiveMinimum {schema['exclusiveMinimum']}")
    if isinstance(value, dict):
        errors += [f"{where}: missing {k!r}" for k in schema.get("required", []) if k not in value]
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in properties:
                errors += schema_errors(item, properties[key], root, f"{where}.{key}")
            elif extra is False:
                errors.append(f"{where}: unexpected key {key!r}")
            elif isinstance(extra, dict):
                errors += schema_errors(item, extra, root, f"{where}.{key}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            errors.append(f"{where}: fewer than {schema['minItems']} items")
        for index, item in enumerate(value):
            errors += schema_errors(item, schema.get("items", {}), root, f"{where}[{index}]")
    return errors


def validate(report: dict) -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    assert schema_errors(report, schema, schema) == []
    try:
        import jsonschema
    except ImportError:  # the hand validator above has checked it
        return
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(report, schema)


@pytest.fixture(scope="module")
def compare_report(tmp_path_factory, toy_bundle):
    cwd = tmp_path_factory.mktemp("bench")
    result = calcsdk(
        "bench",
        "--model",
        str(toy_bundle),
        "--images",
        "2",
        *SMALL,
        "--warmup",
        "1",
        "--repeat",
        "2",
        "--batch",
        "16",
        "--json",
        "report.json",
        "--compare",
        "onnxruntime:fp32,onnxruntime:int8,torch-reference",
        cwd=cwd,
    )
    return result, json.loads((cwd / "report.json").read_text())


def test_compare_report_follows_the_schema(compare_report):
    result, report = compare_report
    assert result.returncode == 0, result.stderr
    validate(report)
    assert [run["name"] for run in report["runs"]] == [
        "onnxruntime:fp32",
        "onnxruntime:int8",
        "torch-reference",
    ]
    assert report["workload"]["images"] == 2 and report["workload"]["batch"] == 16


def test_first_run_has_every_rcnn_stage(compare_report):
    _, report = compare_report
    first = report["runs"][0]
    assert first["status"] == "ok" and first["pipeline"] == "rcnn"
    assert set(first["stages"]) == RCNN_STAGES
    for stage, figures in first["stages"].items():
        assert figures["n"] == 4, stage  # 2 images x 2 repeats, warm-up excluded
        assert figures["min_ms"] <= figures["p50_ms"] <= figures["p90_ms"] <= figures["p99_ms"]
    e2e = first["end_to_end"]
    parts = sum(
        first["stages"][s]["mean_ms"] for s in ("read", "preprocess", "proposals", "score", "nms")
    )
    assert parts <= e2e["mean_ms"] * 1.05  # the stages fit inside end-to-end
    stages = first["stages"]  # the network stages nest inside "score", which detect() runs
    assert stages["score"]["mean_ms"] >= stages["cnn"]["mean_ms"] > 0
    assert first["throughput_images_per_s"] == pytest.approx(1e3 / e2e["mean_ms"], rel=1e-6)
    assert first["ratio_to_first"] == {"end_to_end_p50": 1.0, "throughput": 1.0}


@pytest.mark.parametrize(
    ("index", "words"),
    [(1, ["unavailable:", "int8"]), (2, ["unavailable:", "reference"])],
)
def test_unavailable_entries_say_why(compare_report, index, words):
    result, report = compare_report
    run = report["runs"][index]
    assert run["status"] == "unavailable" and run["end_to_end"] is None
    assert all(word in run["reason"] for word in words)
    assert run["name"] in result.stdout and "unavailable:" in result.stdout


def test_validator_rejects_broken_reports(compare_report):
    _, report = compare_report
    schema = json.loads(SCHEMA_PATH.read_text())
    broken = json.loads(json.dumps(report))
    del broken["runs"][0]["stages"]["cnn"]["p90_ms"]
    broken["runs"][1]["status"] = "maybe"
    broken["workload"]["repeat"] = 0
    errors = schema_errors(broken, schema, schema)
    assert len(errors) == 3, errors


def test_images_from_a_folder(tmp_path, toy_bundle):
    write_phantoms(tmp_path / "imgs", 2, (300, 240), 0.2)
    result = calcsdk(
        "bench",
        "--model",
        str(toy_bundle),
        "--images",
        "imgs",
        "--warmup",
        "0",
        "--repeat",
        "1",
        "--json",
        "r.json",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    validate(report)
    assert report["workload"]["source"] == "files" and len(report["workload"]["paths"]) == 2
    assert report["runs"][0]["end_to_end"]["n"] == 2


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["--compare", "onnxruntime:fp32,onnxruntime:fp32"], 2, "twice"),
        (["--compare", "onnxruntime:fp32,,"], 2, "empty item"),
        (["--images", "0"], 2, "--images should be >= 1"),
        (["--images", "nowhere/*.png"], 2, "no image files found"),
        (["--image-size", "10x10"], 2, "at least 32x32"),
        (["--compare", "onnxruntime:int8"], 1, "unavailable"),
    ],
)
def test_exit_status(tmp_path, toy_bundle, args, status, message):
    result = calcsdk(
        "bench", "--model", str(toy_bundle), *SMALL[2:], "--repeat", "1", *args, cwd=tmp_path
    )
    assert result.returncode == status, result.stderr
    assert message in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("onnxruntime:fp32,onnxruntime:int8", ["onnxruntime:fp32", "onnxruntime:int8"]),
        ("onnxruntime, torch-reference", ["onnxruntime:fp32", "torch-reference"]),
        (":int8", ["auto:int8"]),
    ],
)
def test_parse_compare(text, names):
    specs = parse_compare(text)
    assert [s.name for s in specs] == names
    assert all(isinstance(s, RunSpec) for s in specs)


@pytest.mark.parametrize(
    ("samples", "p50", "p99"),
    [([0.001], 1.0, 1.0), ([0.001, 0.002, 0.003, 0.004], 2.5, 3.97)],
)
def test_percentiles(samples, p50, p99):
    figures = percentiles(samples)
    assert figures["p50_ms"] == pytest.approx(p50) and figures["p99_ms"] == pytest.approx(p99)


def test_percentiles_need_samples():
    with pytest.raises(ValueError):
        percentiles([])


class FakeSession:
    input_names = ("x",)

    def run(self, feeds):
        return {"y": feeds["x"]}


class FakePipeline:
    def __init__(self):
        self.fc7, self.head = FakeSession(), FakeSession()

    def prepare(self, image):
        return image

    def propose(self, working):
        return [1, 2, 3]

    def score_and_deltas(self, working, boxes):  # as RcnnPipeline: what detect() runs
        return [self.fc7.run({"x": b}) for b in boxes], None


def test_instrument_times_and_restores():
    pipeline, recorder = FakePipeline(), StageRecorder()
    original_fc7 = pipeline.fc7
    replaced = instrument(pipeline, "rcnn", recorder)
    assert sorted(replaced) == ["fc7", "head", "prepare", "propose", "score_and_deltas"]
    recorder.begin_image()
    pipeline.score_and_deltas(pipeline.prepare(0), pipeline.propose(0))
    recorder.end_image()
    assert recorder.counts["proposals"] == [3]
    assert set(recorder.samples) == {"preprocess", "proposals", "score", "cnn", "svm", "warp"}
    assert recorder.samples["svm"] == [0.0]  # instrumented but not called: 0, not missing
    restore(pipeline, replaced)
    assert pipeline.fc7 is original_fc7 and "prepare" not in vars(pipeline)


def test_bench_proposals_sweep(tmp_path, toy_bundle):
    from calcsdk.benchmarks.bench_proposals import main as bench_proposals

    args = ["--model", str(toy_bundle), "--images", "1", "--image-size", "300x240"]
    args += ["--spacing", "0.2", "--warmup", "0", "--counts", "1,200", "--out", str(tmp_path)]
    assert bench_proposals(args) == 0
    report = json.loads((tmp_path / "bench_proposals.json").read_text())
    few, many = report["rows"]
    assert (few["max_proposals"], many["max_proposals"]) == (1, 200)
    assert few["proposals_mean"] <= 1 <= many["proposals_mean"]
    assert (report["plot"] is None) == (report["plot_note"] is not None)
    if report["plot"]:
        assert (tmp_path / report["plot"]).stat().st_size > 0
