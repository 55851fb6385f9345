"""Read: (question, passages) → scored answer spans with character offsets, plus no-answer scores.

Each passage is cut into token windows (max_seq_len, stride) and all windows of all passages go
through the model together. A span's logit is start_logit + end_logit, and the window's
no-answer logit is that of [CLS]. Logits are not softmax-normalized per window: normalizing
hides how strongly a passage supports any answer, so an irrelevant passage would get a peaked
distribution too. Scores are sigmoid(CALIBRATION * logit) (as Haystack's ExtractiveReader does):
in [0, 1], monotonic in the logit, hence comparable across passages, and a span beats "no
answer" exactly when its score exceeds the window's null score.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import ModelNotFound
from .records import Passage, Span

# Scales logits before the sigmoid so typical answer logits (5-15) spread over (0.6, 0.8].
CALIBRATION = 0.1
# Windows are padded to a multiple of this many tokens: oneDNN caches a kernel per shape, and a
# long-running server would otherwise grow by one set per question length (~2 MB/question measured).
WINDOW_PAD_MULTIPLE = 32


@dataclass(frozen=True)
class ReaderOutput:
    spans: list[Span]  # best first, overlapping duplicates merged
    null_scores: dict[int, float]  # chunk id → no-answer score (min over its windows)

    def best_is_answer(self, margin: float = 0.0) -> bool:
        if not self.spans:
            return False
        best = self.spans[0]
        return best.score > self.null_scores[best.passage.chunk.id] + margin


class Reader:
    """Extractive reader; the model loads on first use."""

    def __init__(
        self,
        model_dir: Path,
        max_seq_len: int = 384,
        doc_stride: int = 128,
        max_answer_tokens: int = 30,
        max_question_tokens: int = 64,
        batch_size: int = 16,
        spans_per_window: int = 10,
        precision: str = "auto",
    ):
        self.model_dir = Path(model_dir)
        if not (self.model_dir / "config.json").is_file():
            raise ModelNotFound(f"no reader model in {self.model_dir} (expected a Hugging Face model directory)")
        self.max_seq_len = max_seq_len
        self.doc_stride = doc_stride
        self.max_answer_tokens = max_answer_tokens
        self.max_question_tokens = max_question_tokens
        self.batch_size = batch_size
        self.spans_per_window = spans_per_window
        self.precision = precision

    @classmethod
    def from_settings(cls, settings) -> Reader:
        s = settings
        return cls(
            s.reader_dir, s.max_seq_len, s.doc_stride, s.max_answer_tokens, s.max_question_tokens,
            precision=s.precision,
        )

    @cached_property
    def tokenizer(self):
        """A `tokenizers.Tokenizer` without truncation (questions are measured whole)."""
        from .models.encoder import load_tokenizer

        return load_tokenizer(self.model_dir)

    @cached_property
    def window_tokenizer(self):
        """Tokenizes (question, passage) pairs into windows: the passage is cut into max_seq_len
        windows overlapping by doc_stride tokens, each repeating the question."""
        from .models.encoder import load_tokenizer

        tokenizer = load_tokenizer(self.model_dir)
        tokenizer.enable_truncation(self.max_seq_len, stride=self.doc_stride, strategy="only_second")
        return tokenizer

    @cached_property
    def pad_id(self) -> int:
        from .models.encoder import pad_token_id

        return pad_token_id(self.tokenizer)

    @cached_property
    def takes_token_types(self) -> bool:
        """Whether the model gets token_type_ids (question 0, passage 1). BERT-style models embed two
        segment types; DistilBERT has no such input and RoBERTa a single type, so those get none
        (as transformers' tokenizers for them return none)."""
        config = json.loads((self.model_dir / "config.json").read_text(encoding="utf-8"))
        return int(config.get("type_vocab_size") or 0) > 1

    @cached_property
    def model(self):
        from .models.encoder import load_model

        # Weights ship as float16 to stay small; CPUs compute float16 slowly, so this runs in
        # bfloat16 where the CPU does that natively (precision "auto"), else in float32.
        return load_model(self.model_dir, self.precision, qa_head=True)

    def read(self, question: str, passages: Sequence[Passage]) -> ReaderOutput:
        if not passages:
            return ReaderOutput([], {})
        question = self.clip_question(question)
        encodings = self.window_tokenizer.encode_batch([(question, p.chunk.text) for p in passages])
        windows = [(i, window) for i, e in enumerate(encodings) for window in (e, *e.overflowing)]
        batch = Windows.pad([window for _, window in windows], self.pad_id, WINDOW_PAD_MULTIPLE)
        start_logits, end_logits = self._logits(batch)
        null_scores: dict[int, float] = {}
        candidates: list[Span] = []
        for w, (i, _) in enumerate(windows):
            passage = passages[i]
            spans, null = decode_spans(
                start_logits[w], end_logits[w], batch.context[w], batch.offsets[w], self.max_answer_tokens,
                self.spans_per_window,
            )
            chunk_id = passage.chunk.id
            null_scores[chunk_id] = min(null, null_scores.get(chunk_id, 1.0))
            candidates.extend(Span(passage, s, e, score) for s, e, score in spans)
        return ReaderOutput(merge_overlapping(candidates), null_scores)

    def clip_question(self, question: str) -> str:
        """Keep at most max_question_tokens tokens so a huge question cannot crowd out the passage."""
        question = " ".join(question.split())
        offsets = self.tokenizer.encode(question, add_special_tokens=False).offsets
        if len(offsets) <= self.max_question_tokens:
            return question
        return question[: offsets[self.max_question_tokens - 1][1]]

    def _logits(self, batch: Windows) -> tuple[np.ndarray, np.ndarray]:
        import torch

        starts, ends = [], []
        with torch.inference_mode():
            for i in range(0, len(batch.input_ids), self.batch_size):
                rows = slice(i, i + self.batch_size)
                inputs = {"input_ids": batch.input_ids[rows], "attention_mask": batch.attention_mask[rows]}
                if self.takes_token_types:
                    inputs["token_type_ids"] = batch.token_type_ids[rows]
                out = self.model(**{name: torch.from_numpy(array) for name, array in inputs.items()})
                starts.append(out.start_logits.float().numpy())
                ends.append(out.end_logits.float().numpy())
        return np.concatenate(starts), np.concatenate(ends)


@dataclass(frozen=True)
class Windows:
    """Token windows as padded arrays [windows, width]; offsets are (start, end) characters in the
    window's passage, context marks the passage's tokens (not question, special or padding)."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    token_type_ids: np.ndarray
    offsets: np.ndarray  # [windows, width, 2]
    context: np.ndarray  # bool

    @classmethod
    def pad(cls, encodings: Sequence, pad_id: int, multiple: int) -> Windows:
        longest = max(len(e.ids) for e in encodings)
        width = -(-longest // multiple) * multiple
        shape = (len(encodings), width)
        ids, mask, types = np.full(shape, pad_id, np.int64), np.zeros(shape, np.int64), np.zeros(shape, np.int64)
        offsets, context = np.zeros((*shape, 2), np.int64), np.zeros(shape, bool)
        for row, e in enumerate(encodings):
            n = len(e.ids)
            ids[row, :n], mask[row, :n], types[row, :n] = e.ids, e.attention_mask, e.type_ids
            offsets[row, :n] = e.offsets
            context[row, :n] = [s == 1 for s in e.sequence_ids]
        return cls(ids, mask, types, offsets, context)


def decode_spans(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    context: np.ndarray,
    offsets: np.ndarray,
    max_answer_tokens: int,
    top_n: int,
) -> tuple[list[tuple[int, int, float]], float]:
    """Best (char_start, char_end, score) spans of one window and its no-answer score.

    Only context tokens may start or end a span; [CLS] (index 0) stands for "no answer".
    """
    null = _calibrate(start_logits[0] + end_logits[0])
    idx = np.flatnonzero(context)
    if not len(idx):
        return [], null
    logits = start_logits[idx].astype(np.float64)[:, None] + end_logits[idx].astype(np.float64)[None, :]
    length = idx[None, :] - idx[:, None]
    logits[(length < 0) | (length >= max_answer_tokens)] = -np.inf
    flat = np.argsort(-logits, axis=None)[:top_n]
    spans = []
    for f in flat:
        i, j = divmod(int(f), len(idx))
        if not np.isfinite(logits[i, j]):
            break
        char_start, char_end = int(offsets[idx[i]][0]), int(offsets[idx[j]][1])
        if char_end > char_start:
            spans.append((char_start, char_end, _calibrate(logits[i, j])))
    return spans, null


def merge_overlapping(spans: list[Span]) -> list[Span]:
    """Best first; a span overlapping a better one in the same article is dropped as its duplicate.

    Chunks overlap by a sentence and windows by the stride, so one answer is often found twice.
    """
    kept: list[Span] = []
    taken: dict[str, list[tuple[int, int]]] = {}
    for span in sorted(spans, key=lambda s: -s.score):
        ranges = taken.setdefault(span.passage.article.id, [])
        a, b = span.article_start, span.article_end
        if any(a < e and s < b for s, e in ranges):
            continue
        ranges.append((a, b))
        kept.append(span)
    return kept


def _calibrate(logit: float) -> float:
    return float(1.0 / (1.0 + np.exp(-CALIBRATION * float(logit))))
