import pytest
import torch
from torch import nn

from qa.errors import PrecisionUnavailable
from qa.models import int8
from qa.models.cpu import concrete_precision, cpu_has_native_bf16
from qa.models.int8 import Int8Linear, int8_linear_works, smoothing_factors

needs_int8 = pytest.mark.skipif(not int8_linear_works(), reason="no int8 kernels on this CPU/torch "
                                "(test_auto_falls_back_to_float32_without_int8_kernels covers that case)")


def linear_and_input(seed=0):
    generator = torch.Generator().manual_seed(seed)
    linear = nn.Linear(96, 64)
    with torch.no_grad():
        linear.weight.copy_(torch.randn(64, 96, generator=generator) * 0.1)
    return linear, torch.randn(3, 10, 96, generator=generator)


def relative_error(got, expected):
    return float((got - expected).norm() / expected.norm())


@needs_int8
def test_int8_linear_is_close_to_float_with_or_without_smoothing():
    linear, x = linear_and_input()
    x[..., 5] *= 30  # an outlier input channel, as after BERT's LayerNorm
    with torch.inference_mode():
        expected = linear(x)
        plain = relative_error(Int8Linear(linear)(x), expected)
        smoothed = relative_error(Int8Linear(linear, smoothing_factors(x.abs().amax(dim=(0, 1)), linear.weight))(x),
                                  expected)
    assert plain < 0.1 and smoothed < 0.03
    assert smoothed < plain / 2, "smoothing moves the outlier channel's range into the weights"


@needs_int8
def test_outlier_rows_are_computed_in_float32():
    linear, x = linear_and_input(1)
    x[0, 0] *= 40  # one token far larger than the rest, as [CLS] in MiniLM's early feed-forward outputs
    with torch.inference_mode():
        expected = linear(x)
        without = relative_error(Int8Linear(linear)(x.clone())[:, 1:], expected[:, 1:])
        layer = Int8Linear(linear, outlier_rows=True)
        got = layer(x.clone())
    assert got.shape == expected.shape
    assert relative_error(got[0, 0], expected[0, 0]) < 0.01
    assert relative_error(got[:, 1:], expected[:, 1:]) < without / 3


def test_auto_falls_back_to_float32_without_int8_kernels(monkeypatch):
    """Where torch has no int8 engine (or it fails its self-check), "auto" runs float32 (or bfloat16
    on native-bf16 CPUs) and an explicit "int8" is a one-line error."""
    monkeypatch.setattr(int8, "int8_engine", lambda: None)
    int8.int8_linear_works.cache_clear()
    try:
        assert not int8_linear_works()
        assert concrete_precision("auto") == ("bfloat16" if cpu_has_native_bf16() else "float32")
        with pytest.raises(PrecisionUnavailable, match="QA_PRECISION=int8"):
            concrete_precision("int8")
    finally:
        int8.int8_linear_works.cache_clear()


def test_auto_prefers_native_bfloat16_then_int8(monkeypatch):
    from qa.models import cpu

    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    monkeypatch.setattr(cpu, "cpu_flags", lambda: frozenset({"avx2", "amx_bf16"}))
    assert concrete_precision("auto") == "bfloat16"
    x86_int8 = int8.int8_engine() in ("x86", "fbgemm") and int8_linear_works()  # ARM's qnnpack: not measured, not auto
    avx2_path = "int8" if x86_int8 else "float32"
    # oneDNN capped below bfloat16 (how an AVX2-only machine is reproduced on an AMX one): the AVX2 path.
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx2")
    assert concrete_precision("auto") == avx2_path
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_AMX")
    assert concrete_precision("auto") == "bfloat16"
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    monkeypatch.setattr(cpu, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    assert concrete_precision("auto") == avx2_path
    assert concrete_precision("float32") == "float32" and concrete_precision("bfloat16") == "bfloat16"
