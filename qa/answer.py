"""Answer: the facade that turns a question into a cited Answer (time → retrieve → read → select).

`QAService` is what the CLI, the Gradio app and the HTTP API use; it owns no global state.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from functools import cached_property

from .config import Settings
from .conversation import contextualize
from .embed import Embedder
from .errors import InvalidQuestion
from .read import Reader, ReaderOutput
from .records import Alternative, Answer, Citation, Passage, TimeWindow
from .retrieve import Filters, Retriever
from .index import IndexStore, Store, open_store
from .selection import Calibration, Candidate, candidates, normalize_answer
from .speakers import SpeakerAnswerer
from .timeframe import time_window

__all__ = ["QAService", "compose_answer", "normalize_answer"]

MAX_ALTERNATIVES = 4
ALTERNATIVE_FLOOR = 0.02  # calibrated score below which another candidate is not worth listing


class QAService:
    def __init__(self, settings: Settings, store: Store | None = None, embedder: Embedder | None = None,
                 reader: Reader | None = None, calibration: Calibration | None = None):
        self.settings = settings
        self.embedder = embedder or Embedder.from_settings(settings)
        self._store = store
        self._reader = reader
        self._calibration = calibration

    @cached_property
    def store(self) -> Store:
        return self._store or open_store(self.settings, self.embedder)

    @cached_property
    def retriever(self) -> Retriever:
        if not isinstance(self.store, IndexStore):  # a server-side store (qa.index.milvus) searches itself
            from .retrieve_milvus import MilvusRetriever

            return MilvusRetriever(self.store, self.embedder, self.settings.candidates, self.settings.rrf_k)
        return Retriever(self.store, self.embedder, self.settings.candidates, self.settings.rrf_k, self.settings.ann_nprobe)

    @cached_property
    def speakers(self) -> SpeakerAnswerer:
        return SpeakerAnswerer.from_settings(self.settings, self.store, self.embedder)

    @cached_property
    def reader(self) -> Reader:
        return self._reader or Reader.from_settings(self.settings)

    @cached_property
    def calibration(self) -> Calibration:
        return self._calibration or Calibration.for_reader(self.reader.model_dir, self.reader.concrete_precision)

    def validate(self, question: str) -> str:
        if not isinstance(question, str) or not question.strip():
            raise InvalidQuestion("the question is empty")
        if len(question) > self.settings.max_question_chars:
            raise InvalidQuestion(
                f"the question is {len(question)} characters long; the limit is {self.settings.max_question_chars}"
            )
        return " ".join(question.split())

    def ask(self, question: str, k: int | None = None, filters: Filters | None = None,
            history: list | None = None, as_of: str | date | datetime | None = None) -> Answer:
        """Time → retrieve → read → select. A follow-up question (see qa.conversation) is retrieved with
        the names and content words of the earlier questions in `history`; the reader reads it as asked.
        `as_of` (default: now) is when the question is asked: "this week" is the week of that day, and
        articles published after a given as-of day are left out."""
        question = self.validate(question)
        k = self.settings.top_k if k is None else k
        if k < 1:
            raise InvalidQuestion("k must be at least 1")
        try:
            window = time_window(question, as_of)
        except ValueError as exc:
            raise InvalidQuestion(str(exc)) from None
        query = contextualize(question, history or [])
        passages = self.retriever.retrieve(query, k, filters, window)
        read = self.read(question, passages, window)
        # A question for someone's words is answered with their quote (qa.speakers), else as usual.
        quoted = self.speakers.answer(question, history or [], passages, read, filters)
        if quoted is not None:
            if not quoted.found:  # the reader's answer cannot be the speaker's words: say how close the best came
                ranked = select(passages, read, self.calibration, window)
                quoted = replace(quoted, score=ranked[0].probability if ranked else 0.0)
            return replace(quoted, time_window=window)
        return compose_answer(question, passages, read, self.calibration, self.settings.found_threshold, window)

    def read(self, question: str, passages: list[Passage], window: TimeWindow | None = None) -> ReaderOutput:
        """Read the passages, adaptively (Settings.read_first): stop after the first ones when their
        best answer is already sure and the passages left are retrieved far less confidently."""
        s = self.settings

        def enough(head: ReaderOutput, rest) -> bool:
            read_so_far = passages[: len(passages) - len(rest)]
            ranked = select(read_so_far, head, self.calibration, window)
            if not ranked or ranked[0].probability < s.read_stop_score:
                return False
            best = max((p.dense_score for p in read_so_far if p.dense_score is not None), default=None)
            left = max((p.dense_score for p in rest if p.dense_score is not None), default=None)
            return best is not None and (left is None or left < best - s.read_stop_gap)

        return self.reader.read_adaptively(question, passages, s.read_first, enough)


def compose_answer(question: str, passages: list[Passage], read: ReaderOutput, calibration: Calibration | None = None,
                   threshold: float = 0.5, window: TimeWindow | None = None) -> Answer:
    """Pick the best candidate answer across all passages; cite every place that gives it, list the others.

    The answer is found when its calibrated score reaches `threshold`; otherwise it is withheld
    (answer None, no citations) and `score` says how close the best candidate came.
    """
    ranked = select(passages, read, calibration or Calibration.uncalibrated(), window)
    if not passages or not ranked:
        return Answer(question, None, False, 0.0, time_window=window)
    best = ranked[0]
    if best.probability < threshold:
        return Answer(question, None, False, best.probability, time_window=window)
    alternatives = [
        Alternative(c.text, c.probability, c.best.passage.article.id)
        for c in ranked[1:] if c.probability >= ALTERNATIVE_FLOOR
    ][:MAX_ALTERNATIVES]
    return Answer(
        question=question,
        answer=best.text,
        found=True,
        score=best.probability,
        citations=[Citation.from_span(s) for s in best.spans],
        alternatives=alternatives,
        time_window=window,
    )


def select(passages: list[Passage], read: ReaderOutput, calibration: Calibration,
           window: TimeWindow | None = None) -> list[Candidate]:
    """Candidate answers across the passages read, scored and calibrated, best first."""
    return calibration.rank(candidates(read, passages, window))
