"""Retrieve: question → top passages, fusing dense (FAISS) and BM25 (bm25s) rankings with RRF."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from .embed import Embedder, passage_text
from .records import Passage
from .index import IndexStore, ann


@dataclass(frozen=True)
class Filters:
    source: str | None = None  # case-insensitive exact match on Article.source
    date_from: str | None = None  # ISO dates, inclusive; articles without a date are excluded
    date_to: str | None = None

    def __post_init__(self) -> None:
        for name in ("date_from", "date_to"):
            value = getattr(self, name)
            if value is not None:
                try:
                    date.fromisoformat(value[:10])
                except ValueError:
                    raise ValueError(f"{name} must be an ISO date (YYYY-MM-DD), got {value!r}") from None

    @property
    def active(self) -> bool:
        return any(v is not None for v in (self.source, self.date_from, self.date_to))


class Retriever:
    def __init__(self, store: IndexStore, embedder: Embedder, candidates: int = 50, rrf_k: int = 60, nprobe: int = 0):
        self.store = store
        self.embedder = embedder
        self.candidates = candidates
        self.rrf_k = rrf_k
        self.nprobe = nprobe  # IVF lists per query when the store has an approximate index (qa.index.ann)
        self._bm25 = self._build_bm25()

    def _build_bm25(self):
        import bm25s

        if not self.store.chunks:
            return None
        articles = self.store.articles
        corpus = [passage_text(articles[c.article_id].title, c.text) for c in self.store.chunks]
        tokens = bm25s.tokenize(corpus, return_ids=False, show_progress=False)
        bm25 = bm25s.BM25()
        bm25.index(tokens, show_progress=False)
        return bm25

    def retrieve(self, question: str, k: int = 5, filters: Filters | None = None) -> list[Passage]:
        chunks = self.store.chunks
        if not chunks or k <= 0:
            return []
        allowed = self._allowed_rows(filters) if filters and filters.active else None
        if allowed is not None and not len(allowed):
            return []
        n = min(self.candidates, len(chunks))
        dense = self._dense(question, n, allowed)
        sparse = self._bm25_ranking(question, n, allowed)
        fused = reciprocal_rank_fusion([dense, sparse], self.rrf_k)
        best = list(fused)[:k]
        dense_rank = {row: i for i, row in enumerate(dense)}
        sparse_rank = {row: i for i, row in enumerate(sparse)}
        return [
            Passage(
                chunk=chunks[row],
                article=self.store.articles[chunks[row].article_id],
                score=fused[row],
                rank=rank,
                dense_rank=dense_rank.get(row),
                bm25_rank=sparse_rank.get(row),
            )
            for rank, row in enumerate(best)
        ]

    def _dense(self, question: str, n: int, allowed: np.ndarray | None) -> list[int]:
        query = self.embedder.encode([question])
        return ann.search(self.store.vectors, getattr(self.store, "ann", None), query, n, allowed, self.nprobe)

    def _bm25_ranking(self, question: str, n: int, allowed: np.ndarray | None) -> list[int]:
        import bm25s

        tokens = bm25s.tokenize([question], return_ids=False, show_progress=False)[0]
        vocab = self._bm25.vocab_dict
        tokens = [t for t in tokens if t in vocab]
        if not tokens:
            return []
        scores = self._bm25.get_scores(tokens)
        if allowed is not None:
            masked = np.full_like(scores, -np.inf)
            masked[allowed] = scores[allowed]
            scores = masked
        n = min(n, len(scores))
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [int(r) for r in top if scores[r] > 0]

    def _allowed_rows(self, filters: Filters) -> np.ndarray:
        keep = {a.id for a in self.store.articles.values() if _matches(a, filters)}
        return np.array([c.id for c in self.store.chunks if c.article_id in keep], dtype=np.int64)


def reciprocal_rank_fusion(rankings: list[list[int]], k: int = 60) -> dict[int, float]:
    """RRF (Cormack et al. 2009): sum of 1 / (k + rank) over rankings; best first, ties by id."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, 1):
            fused[item] = fused.get(item, 0.0) + 1.0 / (k + rank)
    return dict(sorted(fused.items(), key=lambda kv: (-kv[1], kv[0])))


def _matches(article, filters: Filters) -> bool:
    if filters.source is not None and (article.source or "").casefold() != filters.source.casefold():
        return False
    if filters.date_from is not None or filters.date_to is not None:
        if not article.published:
            return False
        day = article.published[:10]
        if filters.date_from is not None and day < filters.date_from[:10]:
            return False
        if filters.date_to is not None and day > filters.date_to[:10]:
            return False
    return True
