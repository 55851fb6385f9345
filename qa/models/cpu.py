"""CPU inference for the embedder and the reader: which dtype to compute in, and fused linear layers.

Not a pipeline stage: embed.py and read.py both prepare their model through `prepare_model`.

Why fused linears: on CPUs with AMX, aten's bfloat16 `linear` runs the GEMM, then adds the bias
in a second pass over the output, and BERT applies GELU in a third. oneDNN's fused linear (the
kernel torch.compile's Inductor emits on CPU) does GEMM + bias + GELU in one pass over a weight
pre-packed once for AMX: +25-35% embedding throughput on MiniLM, without compile's 30-60 s start-up
or a C++ toolchain at run time. The op is private to PyTorch, so it is used only after a self-check
against `torch.nn.functional.linear` on this machine, and every layer falls back to aten otherwise.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from ..errors import PrecisionUnavailable


def concrete_precision(precision: str) -> str:
    """What `precision` runs as on this CPU: "bfloat16", "int8" or "float32".

    "auto" is bfloat16 where the CPU computes it natively (AMX or AVX512-BF16: 2-3x faster than
    float32, cosine >= 0.9999 to float32 embeddings); else int8 where torch's x86 int8 kernels work
    (AVX2: ~1.5x faster than float32, cosine >= 0.99; see qa.models.int8); else float32. ARM's
    qnnpack kernels run with precision "int8" but are not chosen by "auto": not measured yet.
    Raises PrecisionUnavailable for an explicit "int8" that this CPU or torch cannot run.
    """
    from .int8 import int8_engine, int8_linear_works

    if precision == "auto":
        if cpu_has_native_bf16():
            return "bfloat16"
        if int8_engine() in ("x86", "fbgemm") and int8_linear_works():
            return "int8"
        return "float32"
    if precision == "int8" and not int8_linear_works():
        raise PrecisionUnavailable(
            "QA_PRECISION=int8 needs torch's int8 kernels (fbgemm on x86 with AVX2, qnnpack on ARM), which "
            "this CPU or torch build lacks; use auto or float32"
        )
    if precision not in ("float32", "bfloat16", "int8"):
        raise ValueError(f"unknown precision {precision!r}")
    return precision


def resolve_precision(precision: str):
    """The torch dtype activations are computed in: bfloat16 for "bfloat16", else float32 (int8
    models quantize only their linear layers' inputs and weights)."""
    return torch.bfloat16 if concrete_precision(precision) == "bfloat16" else torch.float32


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (x86 "flags", ARM "Features"); empty elsewhere."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


# oneDNN's ISA caps (ONEDNN_MAX_CPU_ISA, or its older name DNNL_MAX_CPU_ISA) that still include native
# bfloat16. A lower cap, such as AVX2 to reproduce an AVX2-only machine on a newer one, makes oneDNN
# emulate bfloat16 slowly, so "auto" must take the AVX2 path then.
BF16_ISA_CAPS = frozenset({"ALL", "AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX", "AVX512_CORE_AMX_FP16",
                           "AVX10_1_512", "AVX10_1_512_AMX", "AVX10_1_512_AMX_FP16", "AVX10_2_512",
                           "AVX10_2_512_AMX_2"})


def onednn_isa_cap() -> str | None:
    """The instruction-set cap the environment sets for oneDNN, upper-cased; None when unset."""
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")
    return cap.strip().upper() if cap and cap.strip() else None


def cpu_has_native_bf16() -> bool:
    cap = onednn_isa_cap()
    return bool(cpu_flags() & {"amx_bf16", "avx512_bf16"}) and (cap is None or cap in BF16_ISA_CAPS)


@contextmanager
def intra_op_threads(n: int):
    """torch's intra-op thread count set to n inside the block (it is process-wide), then restored."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def prepare_model(model, dtype):
    """`model` in `dtype`, in eval mode, its linear layers fused where that is faster (bfloat16 only:
    in float32 MKL's GEMM is already the fast path)."""
    model = model.to(dtype).eval()
    if dtype == torch.bfloat16 and fused_linear_works():
        fuse_linears(model)
    return model


@lru_cache(maxsize=1)
def fused_linear_works() -> bool:
    """True when oneDNN's fused linear exists here and agrees with aten's linear (bias and GELU)."""
    ops = torch.ops.mkldnn
    if not (torch.backends.mkldnn.is_available() and hasattr(ops, "_linear_pointwise")
            and hasattr(ops, "_reorder_linear_weight")):
        return False
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 64, generator=generator).to(torch.bfloat16)
    weight = (torch.randn(96, 64, generator=generator) * 0.1).to(torch.bfloat16)
    bias = torch.randn(96, generator=generator).to(torch.bfloat16)
    try:
        with torch.inference_mode():
            packed = ops._reorder_linear_weight(weight, 15)
            plain = ops._linear_pointwise(x, packed, bias, "none", [], "")
            gelu = ops._linear_pointwise(x, packed, bias, "gelu", [], "none")
    except RuntimeError:
        return False
    expected = torch.nn.functional.linear(x.float(), weight.float(), bias.float())
    return bool(
        torch.allclose(plain.float(), expected, atol=0.05, rtol=0.02)
        and torch.allclose(gelu.float(), torch.nn.functional.gelu(expected), atol=0.05, rtol=0.02)
    )


def fuse_linears(model) -> int:
    """Replace the model's nn.Linear layers by FusedLinear in place; a BERT-style intermediate block
    (`dense` followed by exact GELU as `intermediate_act_fn`) gets GELU fused into its GEMM.
    Returns the number of layers replaced."""
    replaced = 0
    for module in list(model.modules()):
        act = getattr(module, "intermediate_act_fn", None)
        dense = getattr(module, "dense", None)
        if isinstance(dense, nn.Linear) and _is_exact_gelu(act):
            module.dense = FusedLinear(dense, gelu=True)
            module.intermediate_act_fn = nn.Identity()
            replaced += 1
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.Linear) and child.weight.dtype == torch.bfloat16:
                setattr(module, name, FusedLinear(child))
                replaced += 1
    return replaced


def _is_exact_gelu(act) -> bool:
    if isinstance(act, nn.GELU):
        return act.approximate == "none"
    # transformers' GELUActivation calls nn.functional.gelu (exact) unless built with use_gelu_python.
    return type(act).__name__ == "GELUActivation" and getattr(act, "act", None) is nn.functional.gelu


class FusedLinear(nn.Module):
    """y = x·Wᵀ + b (then exact GELU if gelu) through oneDNN, with W pre-packed once for this CPU."""

    def __init__(self, linear: nn.Linear, gelu: bool = False):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.gelu = gelu
        weight = linear.weight.detach()
        # The batch-size hint only tunes the packed layout; any number of rows works.
        self.register_buffer("weight", torch.ops.mkldnn._reorder_linear_weight(weight, 4096), persistent=False)
        bias = linear.bias.detach() if linear.bias is not None else None
        self.register_buffer("bias", bias, persistent=False)

    def forward(self, x):
        if self.gelu:
            return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "gelu", [], "none")
        return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "none", [], "")

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, gelu={self.gelu}"


def resident_mb() -> float:
    """This process's resident memory in MB (Linux: /proc/self/statm; elsewhere 0)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


def release_free_memory() -> None:
    """Hand the heap's free pages back to the OS (glibc only; elsewhere a no-op).

    glibc keeps memory freed by the tokenizer and by large tensors for reuse; after a corpus is
    embedded that is 100-300 MB of resident memory the server would carry for nothing.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@lru_cache(maxsize=1)
def _malloc_trim():
    """glibc's malloc_trim, or None (find_library runs ldconfig: once per process, not per call)."""
    name = ctypes.util.find_library("c")
    if not name:
        return None
    return getattr(ctypes.CDLL(name), "malloc_trim", None)
