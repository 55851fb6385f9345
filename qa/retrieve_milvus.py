"""Retrieve from a Milvus store: the same dense + BM25 rankings fused by the same RRF as qa.retrieve.

Milvus runs both searches (dense FLAT/IP and the BM25 sparse vectors, qa.index.milvus) with the
source/date filters as a filter expression; the two rankings are fused here with
qa.retrieve.reciprocal_rank_fusion rather than Milvus's RRFRanker, so ranks and tie-breaking are
exactly those of the embedded path, and each Passage keeps its dense and BM25 ranks.
"""

from __future__ import annotations

from .embed import Embedder
from .index.milvus import MilvusStore, bm25_tokens, day_number, quote, source_key
from .records import Chunk, Passage
from .retrieve import Filters, reciprocal_rank_fusion


def milvus_filter(filters: Filters | None) -> str | None:
    """Filters as a Milvus expression over the chunk rows' source_key and day (YYYYMMDD; 0 = no date)."""
    if filters is None or not filters.active:
        return None
    terms = []
    if filters.source is not None:
        terms.append(f"source_key == {quote(source_key(filters.source))}")
    if filters.date_from is not None or filters.date_to is not None:
        terms.append("day > 0")  # undated articles are excluded by any date filter, as in qa.retrieve
    if filters.date_from is not None:
        terms.append(f"day >= {day_number(filters.date_from)}")
    if filters.date_to is not None:
        terms.append(f"day <= {day_number(filters.date_to)}")
    return " and ".join(terms)


class MilvusRetriever:
    def __init__(self, store: MilvusStore, embedder: Embedder, candidates: int = 50, rrf_k: int = 60):
        self.store = store
        self.embedder = embedder
        self.candidates = candidates
        self.rrf_k = rrf_k

    def retrieve(self, question: str, k: int = 5, filters: Filters | None = None) -> list[Passage]:
        snap = self.store.snapshot()
        if not snap.chunks or k <= 0:
            return []
        n = min(self.candidates, snap.chunks)
        vector = self.embedder.encode([question])[0]
        tokens = bm25_tokens([question])[0]
        dense, sparse, hits = self.store.search(snap, vector, tokens, n, milvus_filter(filters))
        fused = reciprocal_rank_fusion([dense, sparse], self.rrf_k)
        best = list(fused)[:k]
        articles = self.store.fetch_articles(snap, {hits[row][0] for row in best})
        dense_rank = {row: i for i, row in enumerate(dense)}
        sparse_rank = {row: i for i, row in enumerate(sparse)}
        passages = []
        for rank, row in enumerate(best):
            article_id, start, end = hits[row]
            article = articles[article_id]
            passages.append(Passage(
                chunk=Chunk(row, article_id, article.text[start:end], start, end),
                article=article,
                score=fused[row],
                rank=rank,
                dense_rank=dense_rank.get(row),
                bm25_rank=sparse_rank.get(row),
            ))
        return passages
