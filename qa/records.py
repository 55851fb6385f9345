"""Typed records that flow through the pipeline.

Every record keeps character offsets back into ``Article.text`` so an answer can always be
highlighted in its source: ``article.text[chunk.start:chunk.end] == chunk.text``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Alternate:
    """Another copy of an article (the same story syndicated elsewhere), collapsed into it by qa.ingest.dedup."""

    id: str
    url: str | None = None
    source: str | None = None
    title: str | None = None
    published: str | None = None
    similarity: float = 1.0  # Jaccard similarity of the two texts' word shingles
    content_id: str | None = None  # hash of the copy's title + text: tells an unchanged copy on re-adding


@dataclass(frozen=True)
class Article:
    id: str
    title: str
    text: str
    url: str | None = None
    published: str | None = None  # ISO 8601 date or datetime
    source: str | None = None
    origin: str | None = None  # file (and line) it came from, for error messages
    alternates: tuple[Alternate, ...] = ()  # near-duplicate copies kept once (qa.ingest.dedup)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Article:
        """Inverse of to_dict; records written before `alternates` existed load with none."""
        data = dict(data)
        data["alternates"] = tuple(Alternate(**a) for a in data.get("alternates") or ())
        return cls(**data)


@dataclass(frozen=True)
class Chunk:
    id: int  # row of the chunk's vector in the index
    article_id: str
    text: str
    start: int  # character offsets in the article text
    end: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its fused retrieval score and rank (0 = best)."""

    chunk: Chunk
    article: Article
    score: float
    rank: int
    dense_rank: int | None = None
    bm25_rank: int | None = None


@dataclass(frozen=True)
class Span:
    """A candidate answer found by the reader inside one passage."""

    passage: Passage
    start: int  # character offsets in the passage text
    end: int
    score: float  # probability-like, comparable across passages

    @property
    def text(self) -> str:
        return self.passage.chunk.text[self.start : self.end]

    @property
    def article_start(self) -> int:
        return self.passage.chunk.start + self.start

    @property
    def article_end(self) -> int:
        return self.passage.chunk.start + self.end


@dataclass(frozen=True)
class CitedAlternate:
    """A near-duplicate copy of a cited article (one of its `alternates`): "also reported by"."""

    source: str | None
    title: str | None
    url: str | None
    date: str | None  # ISO 8601, as published

    @classmethod
    def from_alternate(cls, alternate: Alternate) -> CitedAlternate:
        return cls(alternate.source, alternate.title, alternate.url, alternate.published)


@dataclass(frozen=True)
class Citation:
    article_id: str
    title: str
    url: str | None
    date: str | None
    source: str | None
    passage: str
    passage_start: int  # offset of the passage in the article text
    answer_start: int  # offsets of the answer in the passage
    answer_end: int
    alternates: tuple[CitedAlternate, ...] = ()  # the same story elsewhere (collapsed near-duplicates)

    @classmethod
    def from_span(cls, span: Span) -> Citation:
        return cls.in_article(span.passage.article, span.passage.chunk.text, span.passage.chunk.start, span.start, span.end)

    @classmethod
    def in_article(cls, article: Article, passage: str, passage_start: int, answer_start: int,
                   answer_end: int) -> Citation:
        """The answer at [answer_start, answer_end) of `passage`, which starts at passage_start in the article."""
        return cls(
            article_id=article.id,
            title=article.title,
            url=article.url,
            date=article.published,
            source=article.source,
            passage=passage,
            passage_start=passage_start,
            answer_start=answer_start,
            answer_end=answer_end,
            alternates=tuple(CitedAlternate.from_alternate(a) for a in article.alternates),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"alternates": [asdict(a) for a in self.alternates]}  # JSON-shaped: lists


@dataclass(frozen=True)
class Quote:
    """Words attributed to a speaker in an article (qa.quotes): ``article.text[start:end]`` are the
    quoted words (direct) or the reported clause (reported), without the quotation marks."""

    article_id: str
    start: int
    end: int
    speaker: str  # resolved name: "Sarah Sanders" for "Sanders", "she", "the spokeswoman"
    speaker_as_written: str  # the attribution as it reads at this quote: "Sanders", "she", "the firm"
    cue: str  # "said", "told", "added", "according to", ...
    kind: str  # "direct" | "reported"
    role: str | None = None  # how the article describes the speaker: "White House spokeswoman"
    aliases: tuple[str, ...] = ()  # other names of the same speaker in the article: "Sanders"
    utterance: int = 0  # quotes with the same number continue one utterance (split or paragraph-spanning)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Quote:
        data = dict(data)
        data["aliases"] = tuple(data.get("aliases") or ())
        return cls(**data)


@dataclass(frozen=True)
class QuoteAttribution:
    """Who said an answer that is a quotation (Answer.quote)."""

    speaker: str
    speaker_as_written: str
    cue: str
    kind: str  # "direct" | "reported"
    role: str | None = None
    # The quoted words as (start, end) offsets in the first citation's passage: one range, or
    # several when the answer spans a split quote ("A," she said, "B.").
    parts: tuple[tuple[int, int], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["parts"] = [list(p) for p in self.parts]
        return data


@dataclass(frozen=True)
class Alternative:
    answer: str
    score: float
    article_id: str


@dataclass(frozen=True)
class Answer:
    question: str
    answer: str | None
    found: bool
    score: float
    citations: list[Citation] = field(default_factory=list)
    alternatives: list[Alternative] = field(default_factory=list)
    quote: QuoteAttribution | None = None  # set when the answer is a speaker's quotation (qa.speakers)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape shared by `qa ask --json` and the HTTP API."""
        return {
            "question": self.question,
            "answer": self.answer,
            "found": self.found,
            "score": round(float(self.score), 4),
            "citations": [c.to_dict() for c in self.citations],
            "alternatives": [
                {"answer": a.answer, "score": round(float(a.score), 4), "article_id": a.article_id}
                for a in self.alternatives
            ],
            "quote": self.quote.to_dict() if self.quote else None,
        }
