"""Read: (question, passages) → scored answer spans with character offsets, plus no-answer scores.

Each passage is cut into token windows (max_seq_len, stride) and all windows of all passages go
through the model together. A span's logit is start_logit + end_logit, and the window's
no-answer logit is that of [CLS]. Logits are not softmax-normalized per window: normalizing
hides how strongly a passage supports any answer, so an irrelevant passage would get a peaked
distribution too. Each span keeps its raw logit and its window's null logit, and the output
keeps the log-partition of start and end logits over all windows read (a global softmax, as in
multi-passage BERT), so qa.selection can weigh spans across passages; `Span.score` is
sigmoid(0.1 × logit) (as Haystack's ExtractiveReader does): monotonic in the logit, hence
comparable across passages.

Spans are repaired before they leave: a span cut inside a word ("$327m" out of "HK$327m") is
widened to the word, a trailing comma or full stop dropped, and brackets and quotation marks
balanced (widened to the closing mark when it is near, else cut before the stray mark), so no
answer ever shows an unbalanced bracket or quote.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .chunk import sentence_spans
from .conversation import QUESTION_WORDS, content_stems
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
    # log Σ exp(start logit) and log Σ exp(end logit) over the context tokens of every window read:
    # log P(span) under a softmax over all windows is span.logit - start_log_z - end_log_z.
    start_log_z: float = float("-inf")
    end_log_z: float = float("-inf")
    question: str = ""  # as the reader read it (clipped): answer selection matches its words near each span

    def best_is_answer(self, margin: float = 0.0) -> bool:
        if not self.spans:
            return False
        best = self.spans[0]
        return best.score > self.null_scores[best.passage.chunk.id] + margin

    def log_prob(self, span: Span) -> float:
        """log P(span) under the softmax over all windows read (start and end independent)."""
        return span.logit - self.start_log_z - self.end_log_z

    def merge(self, other: ReaderOutput) -> ReaderOutput:
        """The output of reading both outputs' passages together (adaptive reading reads in steps)."""
        nulls = dict(self.null_scores)
        for chunk_id, score in other.null_scores.items():
            nulls[chunk_id] = min(score, nulls.get(chunk_id, 1.0))
        return ReaderOutput(
            merge_overlapping([*self.spans, *other.spans]), nulls,
            float(np.logaddexp(self.start_log_z, other.start_log_z)), float(np.logaddexp(self.end_log_z, other.end_log_z)),
            self.question or other.question,
        )


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
        focus_sentences: int = 0,
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
        if focus_sentences < 0:
            raise ValueError(f"focus_sentences (QA_READ_SENTENCES) must be 0 or more, got {focus_sentences}")
        self.focus_sentences = focus_sentences

    @classmethod
    def from_settings(cls, settings) -> Reader:
        s = settings
        return cls(
            s.reader_dir, s.max_seq_len, s.doc_stride, s.max_answer_tokens, s.max_question_tokens,
            precision=s.precision, focus_sentences=s.read_sentences,
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
    def concrete_precision(self) -> str:
        """What the reader computes in on this CPU: "bfloat16", "int8" or "float32"."""
        from .models.cpu import concrete_precision

        return concrete_precision(self.precision)

    @cached_property
    def windows_alone(self) -> bool:
        """Whether each window runs through the model by itself, at its own width. In int8 the
        activations get one quantization scale per call, so a window batched with others (and their
        padding) got other logits than alone: up to ~2 apart, and another best span in 6 of 15
        development questions. Alone, its answer depends on nothing but the window itself."""
        return self.concrete_precision == "int8"

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
        if self.focus_sentences:
            stems = content_stems(question) - QUESTION_WORDS
            focus = [focus_sentences(stems, p.chunk.text, self.focus_sentences) for p in passages]
        else:  # the default: whole passages, no sentence splitting on the query path
            focus = [(0, len(p.chunk.text)) for p in passages]
        encodings = self.window_tokenizer.encode_batch([(question, p.chunk.text[a:b]) for p, (a, b) in zip(passages, focus)])
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
            null_scores[chunk_id] = min(_calibrate(null), null_scores.get(chunk_id, 1.0))
            shift = focus[i][0]  # the reader's offsets are in the focused part of the passage
            for s, e, logit in spans:
                repaired = repair_span(passage.chunk.text, s + shift, e + shift)
                if repaired is not None:
                    candidates.append(Span(passage, *repaired, _calibrate(logit), logit=logit, null_logit=null))
        start_log_z, end_log_z = _log_partitions(start_logits, end_logits, batch.context)
        return ReaderOutput(merge_overlapping(candidates), null_scores, start_log_z, end_log_z, question)

    def read_adaptively(self, question: str, passages: Sequence[Passage], first: int,
                        enough: Callable[[ReaderOutput, Sequence[Passage]], bool]) -> ReaderOutput:
        """Read the first `first` passages (best retrieved first); read the others only while
        `enough(output so far, passages not read)` says the answer is not settled yet: one at a time
        where windows are read alone anyway (int8: no batch to lose, so stopping after any passage
        is free), else all the others at once."""
        if first <= 0 or len(passages) <= first:
            return self.read(question, passages)
        output, done = self.read(question, passages[:first]), first
        while done < len(passages):
            rest = passages[done:]
            if enough(output, rest):
                break
            step = 1 if self.windows_alone else len(rest)
            output, done = output.merge(self.read(question, rest[:step])), done + step
        return output

    def clip_question(self, question: str) -> str:
        """Keep at most max_question_tokens tokens so a huge question cannot crowd out the passage."""
        question = " ".join(question.split())
        offsets = self.tokenizer.encode(question, add_special_tokens=False).offsets
        if len(offsets) <= self.max_question_tokens:
            return question
        return question[: offsets[self.max_question_tokens - 1][1]]

    def _logits(self, batch: Windows) -> tuple[np.ndarray, np.ndarray]:
        import torch

        n, width = batch.input_ids.shape
        if self.windows_alone:  # one row a call, cut to its own padded width
            lengths = batch.attention_mask.sum(axis=1)
            calls = [(slice(i, i + 1), padded_width(int(lengths[i]), WINDOW_PAD_MULTIPLE)) for i in range(n)]
        else:
            calls = [(slice(i, i + self.batch_size), width) for i in range(0, n, self.batch_size)]
        # Columns past a row's width are padding: never context, so their logits are never read.
        starts, ends = np.full((n, width), -1e4, np.float32), np.full((n, width), -1e4, np.float32)
        with torch.inference_mode():
            for rows, cut in calls:
                inputs = {"input_ids": batch.input_ids[rows, :cut], "attention_mask": batch.attention_mask[rows, :cut]}
                if self.takes_token_types:
                    inputs["token_type_ids"] = batch.token_type_ids[rows, :cut]
                out = self.model(**{name: torch.from_numpy(np.ascontiguousarray(array)) for name, array in inputs.items()})
                starts[rows, :cut] = out.start_logits.float().numpy()
                ends[rows, :cut] = out.end_logits.float().numpy()
        return starts, ends


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
        width = padded_width(longest, multiple)
        shape = (len(encodings), width)
        ids, mask, types = np.full(shape, pad_id, np.int64), np.zeros(shape, np.int64), np.zeros(shape, np.int64)
        offsets, context = np.zeros((*shape, 2), np.int64), np.zeros(shape, bool)
        for row, e in enumerate(encodings):
            n = len(e.ids)
            ids[row, :n], mask[row, :n], types[row, :n] = e.ids, e.attention_mask, e.type_ids
            offsets[row, :n] = e.offsets
            context[row, :n] = [s == 1 for s in e.sequence_ids]
        return cls(ids, mask, types, offsets, context)


def focus_sentences(question_stems: set[str], text: str, sentences: int) -> tuple[int, int]:
    """(start, end) in `text` of the `sentences` consecutive sentences that share the most content
    words with the question (the earliest of equals); all of `text` when `sentences` is 0 or the
    text has no more. The reader's cost grows with the tokens it reads, and the answer is nearly
    always beside the question's words (the `near` feature of qa.selection)."""
    if sentences <= 0:
        return 0, len(text)
    spans = sentence_spans(text)
    if len(spans) <= sentences:
        return 0, len(text)
    shared = [len(question_stems & content_stems(text[a:b])) for a, b in spans]
    best = max(range(len(spans) - sentences + 1), key=lambda i: (sum(shared[i:i + sentences]), -i))
    return spans[best][0], spans[best + sentences - 1][1]


def padded_width(length: int, multiple: int) -> int:
    """`length` tokens rounded up to a multiple of `multiple` (the width a window is padded to)."""
    return -(-length // multiple) * multiple


def decode_spans(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    context: np.ndarray,
    offsets: np.ndarray,
    max_answer_tokens: int,
    top_n: int,
) -> tuple[list[tuple[int, int, float]], float]:
    """Best (char_start, char_end, logit) spans of one window and its no-answer logit.

    Only context tokens may start or end a span; [CLS] (index 0) stands for "no answer".
    """
    null = float(start_logits[0] + end_logits[0])
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
            spans.append((char_start, char_end, float(logits[i, j])))
    return spans, null


def _log_partitions(start_logits: np.ndarray, end_logits: np.ndarray, context: np.ndarray) -> tuple[float, float]:
    """log Σ exp over the context tokens of all windows, for start and for end logits."""
    if not context.any():
        return float("-inf"), float("-inf")
    return (float(np.logaddexp.reduce(start_logits[context].astype(np.float64))),
            float(np.logaddexp.reduce(end_logits[context].astype(np.float64))))


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


# ---- boundary repair ------------------------------------------------------------------------------

OPENERS = {"(": ")", "[": "]", "{": "}", "<": ">", "“": "”", "‘": "’", "«": "»", "‹": "›"}
CLOSERS = {close: open_ for open_, close in OPENERS.items()}
STRAIGHT_QUOTES = ('"',)
ATTACHED_BEFORE = set("$£€¥#")  # signs that belong to the number after them
ATTACHED_AFTER = set("%°")
TRAILING_PUNCT = set(",;:")
MAX_EXTENSION = 60  # characters a span may grow to reach its closing bracket or quote


def unbalanced_marks(text: str) -> list[int]:
    """Offsets of the brackets and quotation marks in `text` that have no partner inside it.

    Pairs: () [] {} <> “” ‘’ «» ‹› and straight double quotes. A ’ or ' inside or at the end of a word
    is an apostrophe ("don’t", "Sanders’") unless a ‘ (or a word-initial ') before it opens a
    quote; a ' at the start of a word opens a quote that must close.
    """
    stack: list[tuple[str, int]] = []
    stray: list[int] = []
    for i, ch in enumerate(text):
        if ch in OPENERS:
            stack.append((ch, i))
        elif ch in CLOSERS:
            if stack and stack[-1][0] == CLOSERS[ch]:
                stack.pop()
            elif ch != "’":  # a ’ with no ‘ open is an apostrophe
                stray.append(i)
        elif ch in STRAIGHT_QUOTES:
            if stack and stack[-1][0] == ch:
                stack.pop()
            else:
                stack.append((ch, i))
        elif ch == "'":
            before = text[i - 1] if i else " "
            after = text[i + 1] if i + 1 < len(text) else " "
            if stack and stack[-1][0] == "'" and not after.isalnum():
                stack.pop()  # closes a quote opened at a word start
            elif not before.isalnum() and after.isalnum():
                stack.append((ch, i))  # opens at a word start
            # otherwise an apostrophe
    return sorted(stray + [i for _, i in stack])


def is_balanced(text: str) -> bool:
    return not unbalanced_marks(text)


def repair_span(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The span [start, end) of `text` widened to whole words and balanced, or None if nothing is left.

    - A word cut by the tokenizer is made whole ("HK" + "$327m", "17.30" + "m"), with a currency
      sign before it or a per cent sign after it.
    - A trailing comma, semicolon or colon goes; so does a full stop that ends a sentence (not
      the one of "U.S." or "Inc.").
    - A bracket or quote left open is closed by widening to its partner when that lies within
      MAX_EXTENSION characters on the same line; otherwise the span is cut before the stray mark
      (or after it, when the mark leads the span).
    """
    start, end = _whole_words(text, start, end)
    for _ in range(8):  # each round fixes one stray mark; a span has only a few
        start, end = _strip(text, start, end)
        if start >= end:
            return None
        stray = unbalanced_marks(text[start:end])
        if not stray:
            return start, end
        start, end = _fix_mark(text, start, end, start + stray[0])
    start, end = _strip(text, start, end)
    return (start, end) if start < end and is_balanced(text[start:end]) else None


def _whole_words(text: str, start: int, end: int) -> tuple[int, int]:
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] in ATTACHED_BEFORE) and not text[start].isspace():
        start -= 1
    while end < len(text) and (text[end].isalnum() or text[end] in ATTACHED_AFTER) and not text[end - 1].isspace():
        end += 1
    return start, end


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and (text[end - 1].isspace() or text[end - 1] in TRAILING_PUNCT):
        end -= 1
    if end > start and text[end - 1] == "." and not _is_abbreviation(text[start : end - 1].split()[-1:]):
        end -= 1  # a full stop that ends the sentence, not "U.S." or "Inc."
    return start, end


def _is_abbreviation(words: list[str]) -> bool:
    if not words:
        return True
    word = words[-1]
    letters = word.replace(".", "")
    return letters.isalpha() and ("." in word or (len(word) <= 3 and word[0].isupper()))


def _fix_mark(text: str, start: int, end: int, at: int) -> tuple[int, int]:
    """Widen [start, end) to the partner of the stray mark at `at`, or cut the mark off."""
    ch = text[at]
    if ch in OPENERS or ch == "'":
        opens = True
    elif ch in CLOSERS:
        opens = False
    else:  # a straight double quote closes a quote when an odd number of them precede it on its line
        line_start = text.rfind("\n", 0, at) + 1
        opens = text.count(ch, line_start, at) % 2 == 0
    partner = _find_partner(text, at, end if opens else start, forward=opens)
    if partner is not None:
        return (start, partner + 1) if opens else (partner, end)
    # No partner near: keep the larger side of the span, without the mark.
    return (at + 1, end) if at - start < end - at - 1 else (start, at)


def _find_partner(text: str, at: int, bound: int, forward: bool) -> int | None:
    """Offset of the mark pairing with text[at], looked for beyond `bound` within MAX_EXTENSION
    characters on the same line, or None."""
    ch = text[at]
    if forward:
        close = OPENERS.get(ch, ch)
        for i in range(bound, min(len(text), bound + MAX_EXTENSION)):
            if text[i] == "\n":
                return None
            if text[i] == close and (close != "'" or i + 1 >= len(text) or not text[i + 1].isalnum()):
                return i
        return None
    open_ = CLOSERS.get(ch, ch)
    for i in range(bound - 1, max(0, bound - MAX_EXTENSION) - 1, -1):
        if text[i] == "\n":
            return None
        if text[i] == open_:
            return i
    return None
