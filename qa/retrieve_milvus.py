"""Retrieve from a Milvus store: the same dense + BM25 rankings fused by the same RRF as qa.retrieve.

Milvus runs both searches (dense FLAT/IP and the BM25 sparse vectors, qa.index.milvus) with the
source/date filters as a filter expression; the two rankings are fused here with
qa.retrieve.reciprocal_rank_fusion rather than Milvus's RRFRanker, so ranks and tie-breaking are
exactly those of the embedded path, and each Passage keeps its dense and BM25 ranks and scores.
A TimeWindow works as in qa.retrieve: articles after its `until` are left out (undated ones kept),
a date window adds the rankings of the chunks inside it, a recency preference or an as-of day a
newest-first one (qa.retrieve.recency_fusion).
"""

from __future__ import annotations

from .embed import Embedder
from .index.milvus import MilvusStore, bm25_tokens, day_number, quote, source_key
from .records import Chunk, Passage, TimeWindow
from .retrieve import Filters, day_ordinal, newest_first, reciprocal_rank_fusion, recency_fusion


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


def window_filters(window: TimeWindow | None) -> tuple[str | None, str | None]:
    """The expressions of a TimeWindow: what it leaves out (after `until`; undated chunks, day 0, stay)
    and, for a date window, the chunks inside it."""
    if window is None:
        return None, None
    until = f"(day == 0 or day <= {day_number(window.until.isoformat())})" if window.until is not None else None
    inside = None
    if window.prefers_dates:
        terms = ["day > 0"]
        if window.start is not None:
            terms.append(f"day >= {day_number(window.start.isoformat())}")
        if window.end is not None:
            terms.append(f"day <= {day_number(window.end.isoformat())}")
        inside = " and ".join(terms)
    return until, inside


def _both(*exprs: str | None) -> str | None:
    kept = [f"({e})" for e in exprs if e]
    return " and ".join(kept) or None


class MilvusRetriever:
    def __init__(self, store: MilvusStore, embedder: Embedder, candidates: int = 50, rrf_k: int = 60):
        self.store = store
        self.embedder = embedder
        self.candidates = candidates
        self.rrf_k = rrf_k

    def retrieve(self, question: str, k: int = 5, filters: Filters | None = None,
                 window: TimeWindow | None = None) -> list[Passage]:
        snap = self.store.snapshot()
        if not snap.chunks or k <= 0:
            return []
        n = min(self.candidates, snap.chunks)
        vector = self.embedder.encode([question])[0]
        tokens = bm25_tokens([question])[0]
        until, inside = window_filters(window)
        allowed = _both(milvus_filter(filters), until)
        dense, sparse, hits, dense_scores, bm25_scores = self.store.search(snap, vector, tokens, n, allowed)
        rankings = [dense, sparse]
        if inside is not None:
            in_dense, in_sparse, in_hits, _, _ = self.store.search(snap, vector, tokens, n, _both(allowed, inside))
            hits.update(in_hits)
            rankings += [in_dense, in_sparse]
        fused = reciprocal_rank_fusion(rankings, self.rrf_k)
        articles: dict = {}
        recency = recency_fusion(window, k)
        if recency is not None:
            size, weight = recency
            pool = list(fused)[:size]
            articles = self.store.fetch_articles(snap, {hits[row][0] for row in pool})
            days = {row: day_ordinal(articles[hits[row][0]].published) for row in pool}
            fused = reciprocal_rank_fusion([list(fused), newest_first(pool, days)], self.rrf_k, (1.0, weight))
        best = list(fused)[:k]
        missing = {hits[row][0] for row in best} - articles.keys()
        if missing:  # the recency pool's articles were fetched already
            articles = {**articles, **self.store.fetch_articles(snap, missing)}
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
                dense_score=dense_scores.get(row),
                bm25_score=bm25_scores.get(row) if row in sparse_rank else None,
            ))
        return passages
