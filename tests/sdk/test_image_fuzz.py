"""Fuzz read_mammogram with mutated bytes of small valid PNG, TIFF and DICOM files.

Every case must either raise a CalcSdkError or return a valid Mammogram (2-D, non-empty,
allowed dtype, finite, integers within max_value): never another exception, never a crash.
The mutation strategy is the one of ``calcsdk.benchmarks.fuzz_read`` (which runs it at
scale in a child process); here hypothesis drives it, derandomized, 300 cases in all.
"""

from __future__ import annotations

import os
import warnings

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from calcsdk.benchmarks.fuzz_read import (
    MAX_MUTATIONS,
    MUTATION_KINDS,
    Mutation,
    apply_mutations,
    read_outcome,
    seed_files,
)

SEEDS = seed_files()
MAX_PIXELS = 1 << 20  # keeps a mutated header from allocating much (the benchmark uses the default)
FUZZ = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)

mutations = st.lists(
    st.builds(
        Mutation,
        kind=st.sampled_from(MUTATION_KINDS),
        position=st.floats(0.0, 1.0),
        value=st.integers(0, 255),
    ),
    min_size=1,
    max_size=MAX_MUTATIONS,
)


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def check_case(folder, seed_name: str, edits: list[Mutation]) -> str:
    suffix, data = SEEDS[seed_name]
    path = os.path.join(folder, f"case{suffix}")
    with open(path, "wb") as handle:
        handle.write(apply_mutations(data, edits))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about every damaged element
        outcome = read_outcome(path, MAX_PIXELS)  # other exception types propagate: failure
    assert not outcome.startswith("INVALID"), outcome
    return outcome


@FUZZ
@given(seed_name=st.sampled_from(["png8", "png16"]), edits=mutations)
def test_fuzz_png(fuzz_dir, seed_name, edits):
    check_case(fuzz_dir, seed_name, edits)


@FUZZ
@given(edits=mutations)
def test_fuzz_tiff(fuzz_dir, edits):
    check_case(fuzz_dir, "tiff", edits)


@pytest.mark.skipif("dicom" not in SEEDS, reason="pydicom (the [dicom] extra) is not installed")
@FUZZ
@given(seed_name=st.sampled_from(["dicom", "dicom_rle"]), edits=mutations)
# Found by the benchmark: pylibjpeg-rle 2.2 panics (pyo3 PanicException, a BaseException).
@example(seed_name="dicom_rle", edits=[Mutation("flip", 0.9478653606090632, 202)])
def test_fuzz_dicom(fuzz_dir, seed_name, edits):
    check_case(fuzz_dir, seed_name, edits)


@pytest.mark.parametrize("seed_name", sorted(SEEDS))
def test_unmutated_seeds_read_cleanly(fuzz_dir, seed_name):
    assert check_case(fuzz_dir, seed_name, []) == "ok"


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        (Mutation("flip", 0.0, 0), b"`bcdefgh"),
        (Mutation("flip", 0.5, 7), b"abcd\xe5fgh"),
        (Mutation("set", 1.0, 0x5A), b"abcdefgZ"),
        (Mutation("insert", 0.25, 3), b"ab\x03\x03\x03\x03cdefgh"),
        (Mutation("delete", 0.5, 1), b"abcdgh"),
        (Mutation("truncate", 0.375, 0), b"abc"),
        (Mutation("int32", 0.25, 8), b"ab\x7f\xff\xff\xffgh"),  # 0x7FFFFFFF, big-endian
        (Mutation("int32", 0.0, 0x89), b"\x00\x00\x01\x00efgh"),  # 0x10000, little-endian
    ],
    ids=[
        "flip_bit0",
        "flip_bit7",
        "set_last",
        "insert",
        "delete",
        "truncate",
        "int32_be",
        "int32_le",
    ],
)
def test_mutations_do_what_they_say(mutation, expected):
    assert apply_mutations(b"abcdefgh", [mutation]) == expected


@pytest.mark.parametrize(
    ("data", "edits"),
    [
        (b"", [Mutation("flip", 0.5, 1)]),
        (b"x", [Mutation("truncate", 0.0, 0), Mutation("delete", 1.0, 9)]),
    ],
    ids=["empty_input", "emptied_then_edited"],
)
def test_mutations_of_empty_data(data, edits):
    assert apply_mutations(data, edits) == b""


def test_read_outcome_names_the_error(fuzz_dir):
    path = os.path.join(fuzz_dir, "empty.png")
    open(path, "wb").close()
    assert read_outcome(path) == "CorruptImageError"
