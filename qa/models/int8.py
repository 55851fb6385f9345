"""int8 linear layers, for CPUs without native bfloat16 (x86 with AVX2 but no AMX, ARM).

Weights are quantized once, per output channel; activations per call, per tensor (dynamic
quantization), through torch's quantized kernels: fbgemm on x86, qnnpack on ARM. On an AVX2-only
Zen 3 core the int8 GEMM ran ~1.7x as fast as float32 at MiniLM's shapes.

Plain dynamic quantization of MiniLM loses too much: embedding cosine to float32 fell to 0.95
(Reuters chunks), because one scale per call must cover a few input channels (after LayerNorm)
and a few tokens ([CLS] in early layers' feed-forward output) that are 5-20x larger than the
rest. Two cheap remedies, measured on the same chunks (min cosine 0.994):
- per-input-channel smoothing (SmoothQuant, Xiao et al. 2022): x·Wᵀ = (x/s)·(W·s)ᵀ with
  s = peak(x)^α / peak(W)^(1-α) moves the activation's outlier channels into the weights, which are
  quantized per channel anyway. peak(x) is measured at load time on a few built-in sentences
  (CALIBRATION_*), so the same weights always give the same vectors;
- rows (tokens) whose peak is far above the median row's are computed in float32 (`outlier_rows`).

One scale per call also means a row's output depends on the other rows of the call: the reader
(qa.read) therefore runs each window alone in int8, so an answer never depends on what else was read.

The kernels live behind quantized tensor dtypes that torch 2.13 deprecates; `int8_linear_works`
checks them against float32 on this machine, and `QA_PRECISION=auto` falls back to float32 where
they are missing or wrong.
"""

from __future__ import annotations

import platform
import warnings
from contextlib import contextmanager
from functools import lru_cache

import torch
from torch import nn
from torch.nn import functional as F

SMOOTHING_ALPHA = 0.7  # 0.5 measured min cosine 0.991, 0.7 0.994 (Reuters chunks, embedder)
OUTLIER_ROW_RATIO = 3.0  # rows whose peak exceeds this many times the median row's run in float32

# Hand-written calibration text (not from any corpus): typical news sentences and questions, to
# measure each linear layer's per-channel input peaks. Their exact wording hardly matters: the
# outlier channels belong to the model, not to the text.
CALIBRATION_PASSAGES = (
    "Shares in the bank fell 4% on Tuesday after it warned that profits would drop this year.",
    "The striker scored twice as United beat Chelsea 3-1 at Old Trafford on Saturday evening.",
    "The education minister said the government would publish its plan for schools next month, "
    "despite protests from teachers' unions in several cities.",
    "The company's new phone goes on sale in Europe in March for 799 euros, it announced in a statement.",
    "Heavy rain flooded roads across the north of the country, and forecasters expect more storms by Friday.",
    "The film, directed by a first-time director, won three awards at the festival, including best actress.",
)
CALIBRATION_QUESTIONS = (
    "Why did the bank's shares fall?",
    "How many goals did the striker score?",
    "When will the government publish its plan?",
    "How much will the phone cost?",
    "What do forecasters expect?",
    "How many awards did the film win?",
)


def int8_engine() -> str | None:
    """torch's quantized engine for this CPU: x86 (fbgemm, which needs AVX2) or qnnpack on ARM;
    None where torch has neither."""
    supported = torch.backends.quantized.supported_engines
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64"):
        return next((e for e in ("x86", "fbgemm") if e in supported), None) if _has_avx2() else None
    if machine in ("aarch64", "arm64") and "qnnpack" in supported:
        return "qnnpack"
    return None


def _has_avx2() -> bool:
    from .cpu import cpu_flags

    return "avx2" in cpu_flags()


@lru_cache(maxsize=1)
def int8_linear_works() -> bool:
    """True when this machine's int8 kernels exist and agree with float32 linear on a test matrix."""
    if int8_engine() is None:
        return False
    generator = torch.Generator().manual_seed(0)
    linear = nn.Linear(64, 48)
    with torch.no_grad():
        linear.weight.copy_(torch.randn(48, 64, generator=generator) * 0.1)
    x = torch.randn(2, 7, 64, generator=generator)
    try:
        with torch.inference_mode():
            got = Int8Linear(linear)(x)
    except (RuntimeError, AttributeError):
        return False
    with torch.inference_mode():
        expected = linear(x)
    return bool((got - expected).norm() <= 0.03 * expected.norm())


@contextmanager
def _quantized_engine(name: str):
    previous = torch.backends.quantized.engine
    torch.backends.quantized.engine = name
    try:
        yield
    finally:
        torch.backends.quantized.engine = previous


class Int8Linear(nn.Module):
    """y = x·Wᵀ + b with W in int8 (one scale per output channel) and x quantized per call.

    smoothing: per-input-channel factors s; the layer computes (x/s)·(W·s)ᵀ (see the module
    docstring). outlier_rows: rows of x whose peak is over OUTLIER_ROW_RATIO times the median
    row's are computed in float32; the int8 GEMM sees them as zeros, written into x itself, so set
    it only where x is a temporary nobody else reads (BERT's GELU output).
    """

    def __init__(self, linear: nn.Linear, smoothing: torch.Tensor | None = None, outlier_rows: bool = False):
        super().__init__()
        engine = int8_engine()
        if engine is None:
            raise RuntimeError("no int8 engine for this CPU")
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.outlier_rows = outlier_rows
        # fbgemm's AVX2 kernel multiplies u8·s8 pairs into int16, which saturates on full-range
        # activations (measured: cosine 0.991 instead of 0.997); 7-bit activations avoid it. qnnpack has no such limit.
        self.reduce_range = engine != "qnnpack"
        weight = linear.weight.detach().float()
        if smoothing is not None:
            weight = weight * smoothing
            self.register_buffer("inverse_smoothing", (1 / smoothing).contiguous(), persistent=False)
        else:
            self.inverse_smoothing = None
        scales = (weight.abs().amax(dim=1) / 127).clamp(min=1e-8).double()
        bias = linear.bias.detach().float() if linear.bias is not None else None
        with warnings.catch_warnings(), _quantized_engine(engine):
            # torch 2.13 deprecates quantized dtypes (pytorch#184982) but has no other int8 GEMM
            # for eager CPU code; int8_linear_works() guards against their removal.
            warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
            qweight = torch.quantize_per_channel(weight, scales, torch.zeros_like(scales, dtype=torch.long), 0, torch.qint8)
            self.packed = torch.ops.quantized.linear_prepack(qweight, bias)
        self.qweight = qweight if outlier_rows else None  # outlier rows multiply its float32 copy
        self.register_buffer("bias", bias, persistent=False)

    def forward(self, x):
        if self.inverse_smoothing is not None:
            x = x * self.inverse_smoothing
        if not self.outlier_rows:
            return self._int8(x)
        flat = x.reshape(-1, self.in_features)
        # amin and amax separately: aminmax over dim=1 ran ~10x slower on AVX2 (Zen 3, torch 2.13),
        # 10% of the whole int8 forward.
        low, high = flat.amin(dim=1), flat.amax(dim=1)
        peak = torch.maximum(high, low.neg())
        rows = torch.nonzero(peak > OUTLIER_ROW_RATIO * peak.median()).squeeze(1)
        if not len(rows):
            return self._int8(x)
        outliers = flat.index_select(0, rows)
        flat.index_fill_(0, rows, 0.0)
        y = self._int8(flat)
        y.index_copy_(0, rows, F.linear(outliers, self.qweight.dequantize(), self.bias))
        return y.view(*x.shape[:-1], self.out_features)

    def _int8(self, x):
        return torch.ops.quantized.linear_dynamic(x, self.packed, self.reduce_range)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"smoothed={self.inverse_smoothing is not None}, outlier_rows={self.outlier_rows}")


def smoothing_factors(input_peak: torch.Tensor, weight: torch.Tensor, alpha: float = SMOOTHING_ALPHA) -> torch.Tensor:
    """SmoothQuant's per-input-channel s = peak(x)^α / peak(W)^(1-α) (peaks over each input channel)."""
    weight_peak = weight.detach().abs().amax(dim=0).clamp(min=1e-5)
    return (input_peak.clamp(min=1e-5) ** alpha / weight_peak ** (1 - alpha)).clamp(min=1e-5)


def input_peaks(model: nn.Module, run) -> dict[nn.Linear, torch.Tensor]:
    """Each nn.Linear's largest |input| per input channel while `run()` runs the model."""
    peaks: dict[nn.Linear, torch.Tensor] = {}

    def record(module, args):
        peak = args[0].detach().abs().reshape(-1, module.in_features).amax(dim=0)
        peaks[module] = torch.maximum(peaks[module], peak) if module in peaks else peak

    hooks = [m.register_forward_pre_hook(record) for m in model.modules() if isinstance(m, nn.Linear)]
    try:
        with torch.inference_mode():
            run()
    finally:
        for hook in hooks:
            hook.remove()
    return peaks
