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
        from .encoder import load_tokenizer

        return load_tokenizer(self.model_dir)

    @cached_property
    def model(self):
        from .encoder import load_model

        # Weights ship as float16 to stay small; CPUs compute float16 slowly, so this runs in
        # bfloat16 where the CPU does that natively (precision "auto"), else in float32.
        return load_model(self.model_dir, self.precision, qa_head=True)

    def read(self, question: str, passages: Sequence[Passage]) -> ReaderOutput:
        if not passages:
            return ReaderOutput([], {})
        question = self.clip_question(question)
        enc = self.tokenizer(
            [question] * len(passages),
            [p.chunk.text for p in passages],
            truncation="only_second",
            max_length=self.max_seq_len,
            stride=self.doc_stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            padding="longest",
            pad_to_multiple_of=WINDOW_PAD_MULTIPLE,
            return_tensors="np",
        )
        start_logits, end_logits = self._logits(enc)
        window_passage = enc["overflow_to_sample_mapping"]
        offsets = enc["offset_mapping"]
        null_scores: dict[int, float] = {}
        candidates: list[Span] = []
        for w in range(len(window_passage)):
            passage = passages[int(window_passage[w])]
            context = np.array([s == 1 for s in enc.sequence_ids(w)])
            spans, null = decode_spans(
                start_logits[w], end_logits[w], context, offsets[w], self.max_answer_tokens, self.spans_per_window
            )
            chunk_id = passage.chunk.id
            null_scores[chunk_id] = min(null, null_scores.get(chunk_id, 1.0))
            candidates.extend(Span(passage, s, e, score) for s, e, score in spans)
        return ReaderOutput(merge_overlapping(candidates), null_scores)

    def clip_question(self, question: str) -> str:
        """Keep at most max_question_tokens tokens so a huge question cannot crowd out the passage."""
        question = " ".join(question.split())
        enc = self.tokenizer(question, add_special_tokens=False, return_offsets_mapping=True)
        if len(enc["input_ids"]) <= self.max_question_tokens:
            return question
        return question[: enc["offset_mapping"][self.max_question_tokens - 1][1]]

    def _logits(self, enc) -> tuple[np.ndarray, np.ndarray]:
        import torch

        names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in enc]
        starts, ends = [], []
        with torch.inference_mode():
            for i in range(0, len(enc["input_ids"]), self.batch_size):
                batch = {n: torch.from_numpy(np.asarray(enc[n][i : i + self.batch_size])) for n in names}
                out = self.model(**batch)
                starts.append(out.start_logits.float().numpy())
                ends.append(out.end_logits.float().numpy())
        return np.concatenate(starts), np.concatenate(ends)


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
