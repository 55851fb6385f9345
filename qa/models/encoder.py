"""The BERT encoder forward pass that embedder and reader run, in plain PyTorch.

Not a pipeline stage: embed.py and read.py load their models through `load_model`.

Why not transformers' BertModel: importing transformers' modeling code costs ~105 MB of resident
memory in every process (it pulls in torch.distributed, dynamo, ...), a third of a serving
process; and owning the forward lets query, key and value run as one GEMM and the padding mask
stay a [batch, 1, 1, length] broadcast instead of a [batch, 1, length, length] tensor per call.
Checkpoints are the standard Hugging Face ones (config.json + model.safetensors); any other
architecture is loaded with transformers instead (`load_encoder` returns None for it), and
tests/test_encoder.py checks this forward against transformers' on both shipped models.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class EncoderOutput:
    last_hidden_state: torch.Tensor
    start_logits: torch.Tensor | None = None
    end_logits: torch.Tensor | None = None


def load_model(model_dir: Path, precision: str, qa_head: bool = False) -> nn.Module:
    """The embedder's (qa_head=False) or reader's model, ready for CPU inference in what `precision`
    means on this CPU (qa.models.cpu.concrete_precision): bfloat16 with fused linear layers, int8
    linear layers, or float32. Its `precision` attribute says which. A plain BERT checkpoint runs on
    BertEncoder; any other architecture through transformers (float32 load, then converted), and
    not in int8: "auto" then means float32 for it, and an explicit "int8" is refused."""
    from ..errors import PrecisionUnavailable
    from .cpu import concrete_precision, prepare_model

    precision_used = concrete_precision(precision)
    dtype = torch.bfloat16 if precision_used == "bfloat16" else torch.float32
    model = load_encoder(model_dir, dtype, qa_head)
    if model is None:
        if precision_used == "int8":
            if precision != "auto":
                raise PrecisionUnavailable(f"QA_PRECISION=int8 runs plain BERT checkpoints only, not {model_dir}")
            precision_used = "float32"
        from transformers import AutoModel, AutoModelForQuestionAnswering

        auto = AutoModelForQuestionAnswering if qa_head else AutoModel
        model = auto.from_pretrained(str(model_dir), local_files_only=True, dtype=torch.float32)
        model.hidden_size = model.config.hidden_size
        model = prepare_model(model, dtype)
    elif precision_used == "int8":
        model.to_int8(calibration_batch(model_dir, qa_head))
    else:
        model = prepare_model(model, dtype)
    model.precision = precision_used
    return model


def calibration_batch(model_dir: Path, qa_head: bool) -> dict[str, torch.Tensor]:
    """The built-in calibration sentences (qa.models.int8) as one padded batch for this model's
    tokenizer: passages for an embedder, (question, passage) pairs for a reader."""
    from .int8 import CALIBRATION_PASSAGES, CALIBRATION_QUESTIONS

    tokenizer = load_tokenizer(model_dir)
    tokenizer.enable_padding(pad_id=pad_token_id(tokenizer))
    if qa_head:
        encodings = tokenizer.encode_batch(list(zip(CALIBRATION_QUESTIONS, CALIBRATION_PASSAGES)))
    else:
        encodings = tokenizer.encode_batch(list(CALIBRATION_PASSAGES))
    return {
        "input_ids": torch.tensor([e.ids for e in encodings]),
        "attention_mask": torch.tensor([e.attention_mask for e in encodings]),
        "token_type_ids": torch.tensor([e.type_ids for e in encodings]),
    }


def load_tokenizer(model_dir: Path):
    """The model's fast tokenizer as a `tokenizers.Tokenizer`, with no truncation or padding set
    (tokenizer.json files often carry both; callers set what they need).

    Read from tokenizer.json directly: importing transformers to load it costs ~1.3 s and ~25 MB
    resident in every process. transformers builds one only for a directory without that file.
    """
    from tokenizers import Tokenizer

    path = Path(model_dir) / "tokenizer.json"
    if path.is_file():
        tokenizer = Tokenizer.from_file(str(path))
    else:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True).backend_tokenizer
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def pad_token_id(tokenizer) -> int:
    """The id of the tokenizer's padding token ([PAD] for BERT vocabularies), else 0."""
    for token in ("[PAD]", "<pad>"):
        token_id = tokenizer.token_to_id(token)
        if token_id is not None:
            return token_id
    return 0


def load_encoder(model_dir: Path, dtype: torch.dtype, qa_head: bool = False) -> BertEncoder | None:
    """The model in model_dir as a BertEncoder in eval mode, or None when it is not a plain BERT
    checkpoint in safetensors (the caller then uses transformers)."""
    model_dir = Path(model_dir)
    weights_file = model_dir / "model.safetensors"
    try:
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not (weights_file.is_file() and is_plain_bert(config)):
        return None
    from safetensors.torch import load_file

    weights = load_file(str(weights_file))
    prefix = "bert." if any(k.startswith("bert.") for k in weights) else ""
    state = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
    if qa_head:
        state.update({k: v for k, v in weights.items() if k.startswith("qa_outputs.")})
    state = {k: v for k, v in state.items() if not k.startswith("pooler.") and k != "embeddings.position_ids"}
    model = BertEncoder(config, qa_head)
    model.load_state_dict(state, strict=True)
    model.fuse_qkv()
    # Converting after loading measured ~60 MB less resident memory than building the module on
    # the meta device in the target dtype (glibc's heap keeps what the latter scatters).
    return model.to(dtype).eval()


def is_plain_bert(config: dict) -> bool:
    return (
        config.get("model_type") == "bert"
        and config.get("hidden_act", "gelu") == "gelu"
        and config.get("position_embedding_type", "absolute") == "absolute"
        and not config.get("is_decoder", False)
        and not config.get("add_cross_attention", False)
    )


class BertEncoder(nn.Module):
    """Parameter names follow transformers' BertModel (and BertForQuestionAnswering's qa_outputs)."""

    def __init__(self, config: dict, qa_head: bool = False):
        super().__init__()
        self.heads = int(config["num_attention_heads"])
        self.hidden_size = int(config["hidden_size"])
        self.embeddings = Embeddings(config)
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList(Layer(config) for _ in range(int(config["num_hidden_layers"])))
        self.qa_outputs = nn.Linear(int(config["hidden_size"]), 2) if qa_head else None

    @property
    def dtype(self) -> torch.dtype:
        return self.embeddings.LayerNorm.weight.dtype

    def fuse_qkv(self) -> None:
        for layer in self.encoder.layer:
            layer.attention.self.fuse()

    def to_int8(self, calibration: dict[str, torch.Tensor]) -> None:
        """Every encoder linear layer as an Int8Linear (qa.models.int8), in place; the QA head (384 × 2)
        stays float32. Input peaks are measured on `calibration` in float32 first. Smoothing of the
        attention output's input is folded into the value projection (the attention context is a
        mix of value vectors, channel by channel), so that layer needs no extra multiply; the
        feed-forward output gets float32 outlier rows instead, since per-channel smoothing of a GELU
        output measured worse. The word-embedding table is kept in float16 (Embeddings.halve_word_table)."""
        from .int8 import Int8Linear, input_peaks, smoothing_factors

        peaks = input_peaks(self, lambda: self(**calibration))
        self.embeddings.halve_word_table()
        with torch.no_grad():
            for layer in self.encoder.layer:
                attention, size = layer.attention, self.hidden_size
                qkv, out = attention.self.qkv, attention.output.dense
                s = smoothing_factors(peaks[out], out.weight)
                qkv.weight[2 * size :] /= s[:, None]
                qkv.bias[2 * size :] /= s
                out.weight *= s
                attention.self.qkv = Int8Linear(qkv, smoothing_factors(peaks[qkv], qkv.weight))
                attention.output.dense = Int8Linear(out)
                inner = layer.intermediate.dense
                layer.intermediate.dense = Int8Linear(inner, smoothing_factors(peaks[inner], inner.weight))
                layer.output.dense = Int8Linear(layer.output.dense, outlier_rows=True)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None) -> EncoderOutput:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        # True = attend. Broadcast over heads and query positions; SDPA expands it lazily.
        keep = attention_mask.bool()[:, None, None, :]
        hidden = self.embeddings(input_ids, token_type_ids)
        for layer in self.encoder.layer:
            hidden = layer(hidden, keep, self.heads)
        if self.qa_outputs is None:
            return EncoderOutput(hidden)
        start, end = self.qa_outputs(hidden).split(1, dim=-1)
        return EncoderOutput(hidden, start.squeeze(-1).contiguous(), end.squeeze(-1).contiguous())


class Embeddings(nn.Module):
    def __init__(self, config: dict):
        super().__init__()
        size = int(config["hidden_size"])
        self.word_embeddings = nn.Embedding(int(config["vocab_size"]), size)
        self.position_embeddings = nn.Embedding(int(config["max_position_embeddings"]), size)
        self.token_type_embeddings = nn.Embedding(int(config.get("type_vocab_size", 2)), size)
        self.LayerNorm = nn.LayerNorm(size, eps=float(config.get("layer_norm_eps", 1e-12)))

    def halve_word_table(self) -> None:
        """Keep the word-embedding table in float16, looked up into float32: it is the largest tensor
        left in float32 once the linear layers are int8 (30,522 × 384: 47 MB, now 23 MB per model).
        Lossless for the shipped reader (its weights are stored in float16); for the embedder the
        rounding is far below int8's (benchmarks/bench_precision.py measures the vectors)."""
        self.word_embeddings = HalfEmbedding(self.word_embeddings.weight.detach())

    def forward(self, input_ids, token_type_ids=None):
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        types = self.token_type_embeddings(token_type_ids) if token_type_ids is not None else (
            self.token_type_embeddings.weight[0]
        )
        return self.LayerNorm(self.word_embeddings(input_ids) + self.position_embeddings(positions) + types)


class HalfEmbedding(nn.Module):
    """An embedding table stored in float16 whose lookups come out in float32."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.register_buffer("weight", table.to(torch.float16).contiguous())

    def forward(self, ids):
        return F.embedding(ids, self.weight).float()


class SelfAttention(nn.Module):
    def __init__(self, size: int):
        super().__init__()
        self.query, self.key, self.value = nn.Linear(size, size), nn.Linear(size, size), nn.Linear(size, size)
        self.qkv: nn.Linear | None = None

    def fuse(self) -> None:
        """One [3·size × size] GEMM instead of three (loaded weights are kept, concatenated)."""
        size = self.query.in_features
        self.qkv = nn.Linear(size, 3 * size)
        with torch.no_grad():
            self.qkv.weight.copy_(torch.cat([self.query.weight, self.key.weight, self.value.weight]))
            self.qkv.bias.copy_(torch.cat([self.query.bias, self.key.bias, self.value.bias]))
        del self.query, self.key, self.value

    def forward(self, hidden, keep, heads: int):
        batch, length, size = hidden.shape
        qkv = self.qkv(hidden).view(batch, length, 3, heads, size // heads).permute(2, 0, 3, 1, 4)
        context = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=keep)
        return context.transpose(1, 2).reshape(batch, length, size)


class Output(nn.Module):
    """dense, then LayerNorm over (dense output + residual)."""

    def __init__(self, in_size: int, size: int, eps: float):
        super().__init__()
        self.dense = nn.Linear(in_size, size)
        self.LayerNorm = nn.LayerNorm(size, eps=eps)

    def forward(self, hidden, residual):
        return self.LayerNorm(self.dense(hidden) + residual)


class Intermediate(nn.Module):
    """dense then exact GELU; the names let qa.models.cpu.fuse_linears fold the GELU into the GEMM."""

    def __init__(self, size: int, inner: int):
        super().__init__()
        self.dense = nn.Linear(size, inner)
        self.intermediate_act_fn = nn.GELU()

    def forward(self, hidden):
        return self.intermediate_act_fn(self.dense(hidden))


class Layer(nn.Module):
    def __init__(self, config: dict):
        super().__init__()
        size, inner = int(config["hidden_size"]), int(config["intermediate_size"])
        eps = float(config.get("layer_norm_eps", 1e-12))
        self.attention = nn.Module()
        self.attention.self = SelfAttention(size)
        self.attention.output = Output(size, size, eps)
        self.intermediate = Intermediate(size, inner)
        self.output = Output(inner, size, eps)

    def forward(self, hidden, keep, heads: int):
        attended = self.attention.output(self.attention.self(hidden, keep, heads), hidden)
        return self.output(self.intermediate(attended), attended)
