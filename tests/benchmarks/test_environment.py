"""Where a benchmark ran: the CPU's vector extensions are part of the record."""

from __future__ import annotations

from calcsdk.benchmarks.environment import SIMD_FLAGS, cpu_simd, environment_fingerprint

AVX2_ONLY = """processor\t: 0
model name\t: AMD EPYC
flags\t\t: fpu sse2 avx fma avx2 bmi2
processor\t: 1
flags\t\t: fpu sse2 avx fma avx2 bmi2 avx512f
"""
AVX512 = "model name\t: AMD EPYC\nflags\t\t: avx2 fma avx512f avx512_vnni avx512_bf16 sse2\n"


def test_simd_flags_in_a_fixed_order_from_the_first_flags_line():
    assert cpu_simd(AVX2_ONLY) == ["avx2", "fma"]
    assert cpu_simd(AVX512) == ["avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16"]


def test_no_flags_line_is_unknown_not_empty():
    assert cpu_simd("processor : 0\nmodel name : Apple M2\n") is None
    assert cpu_simd("") is None


def test_fingerprint_records_this_machines_simd():
    cpu = environment_fingerprint()["cpu"]
    assert cpu["simd"] == cpu_simd()
    assert cpu["simd"] is None or set(cpu["simd"]) <= set(SIMD_FLAGS)
