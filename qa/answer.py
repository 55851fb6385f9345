"""Answer: the facade that turns a question into a cited Answer (retrieve → read → decide).

`QAService` is what the CLI, the Gradio app and the HTTP API use; it owns no global state.
"""

from __future__ import annotations

import re
import string
from functools import cached_property

from .config import Settings
from .conversation import contextualize
from .embed import Embedder
from .errors import InvalidQuestion
from .read import Reader, ReaderOutput
from .records import Alternative, Answer, Citation, Passage, Span
from .retrieve import Filters, Retriever
from .index import IndexStore, Store, open_store
from .speakers import SpeakerAnswerer

MAX_ALTERNATIVES = 4


class QAService:
    def __init__(self, settings: Settings, store: Store | None = None, embedder: Embedder | None = None,
                 reader: Reader | None = None):
        self.settings = settings
        self.embedder = embedder or Embedder.from_settings(settings)
        self._store = store
        self._reader = reader

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

    def validate(self, question: str) -> str:
        if not isinstance(question, str) or not question.strip():
            raise InvalidQuestion("the question is empty")
        if len(question) > self.settings.max_question_chars:
            raise InvalidQuestion(
                f"the question is {len(question)} characters long; the limit is {self.settings.max_question_chars}"
            )
        return " ".join(question.split())

    def ask(self, question: str, k: int | None = None, filters: Filters | None = None,
            history: list | None = None) -> Answer:
        """Retrieve → read → compose. A follow-up question (see qa.conversation) is retrieved with
        the names and content words of the earlier questions in `history`; the reader reads it as asked."""
        question = self.validate(question)
        k = self.settings.top_k if k is None else k
        if k < 1:
            raise InvalidQuestion("k must be at least 1")
        query = contextualize(question, history or [])
        passages = self.retriever.retrieve(query, k, filters)
        read = self.reader.read(question, passages)
        # A question for someone's words is answered with their quote (qa.speakers), else as usual.
        quoted = self.speakers.answer(question, history or [], passages, read, filters)
        if quoted is not None:
            return quoted
        return compose_answer(question, passages, read, self.settings.null_threshold)


def compose_answer(question: str, passages: list[Passage], read: ReaderOutput, margin: float = 0.0) -> Answer:
    """Pick the answer, cite every passage that gives the same answer, list the other candidates."""
    if not passages or not read.best_is_answer(margin):
        best = read.spans[0].score if read.spans else 0.0
        return Answer(question, None, False, best)
    best = read.spans[0]
    key = normalize_answer(best.text)
    supporting: list[Span] = [best]
    alternatives: list[Alternative] = []
    seen = {key}
    for span in read.spans[1:]:
        if span.score <= read.null_scores[span.passage.chunk.id] + margin:
            continue  # its own passage says "no answer" more strongly
        span_key = normalize_answer(span.text)
        if span_key == key:
            supporting.append(span)  # the same answer in another place: one more citation
        elif span_key not in seen and len(alternatives) < MAX_ALTERNATIVES:
            seen.add(span_key)
            alternatives.append(Alternative(span.text, span.score, span.passage.article.id))
    return Answer(
        question=question,
        answer=best.text,
        found=True,
        score=best.score,
        citations=[Citation.from_span(s) for s in supporting],
        alternatives=alternatives,
    )


_PUNCT = set(string.punctuation) | {"‘", "’", "“", "”", "–", "—", "…"}


def normalize_answer(text: str) -> str:
    """SQuAD normalization: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())
