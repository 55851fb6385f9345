"""benchmarks/peers/compare.py (standard library only): the CPU line every comparison prints."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks" / "peers"))
compare = pytest.importorskip("compare")


def test_cpu_description_names_the_family_and_the_flags_that_pick_kernels(monkeypatch, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu sse avx2 fma avx_vnni\n")
    real_path = compare.Path
    monkeypatch.setattr(compare, "Path", lambda p: cpuinfo if p == "/proc/cpuinfo" else real_path(p))
    line = compare.cpu_description()
    assert line.startswith("AMD EPYC 7B13,")
    assert "AVX2, no native bf16" in line and line.endswith("flags avx2 fma avx_vnni")
    cpuinfo.write_text("model name\t: Intel Xeon\nflags\t\t: avx2 fma avx512f avx512_bf16 amx_bf16 amx_int8\n")
    assert "Intel AMX (bf16 path)" in compare.cpu_description()
