"""qa.index.ann: the approximate index the FAISS backend adds past Settings.ann_threshold chunks."""

from __future__ import annotations

import numpy as np
import pytest

from qa.answer import QAService
from qa.config import Settings
from qa.errors import QAError
from qa.index import IndexStore, ann, build_store, update_store
from qa.ingest import ingest_paths
from qa.records import Article
from qa.retrieve import Retriever

from .conftest import SAMPLE_DIR, SPEC


def clustered(n: int, dim: int = 48, centres: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(centres, dim))
    x = means[rng.integers(0, centres, n)] + 0.4 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_ivf_recall_and_exact_filters():
    import faiss

    data = clustered(8000)
    flat = faiss.IndexFlatIP(data.shape[1])
    flat.add(data)
    ivf = ann.build(flat)
    assert ivf.nlist == ann.nlist_for(8000) and ivf.ntotal == 8000
    queries = clustered(100, seed=1)
    hits = 0
    for q in queries:
        exact = ann.search(flat, None, q[None, :], 10)
        hits += len(set(exact) & set(ann.search(flat, ivf, q[None, :], 10)))
    assert hits / (10 * len(queries)) >= 0.95
    allowed = np.arange(0, 8000, 40, dtype=np.int64)  # 2.5% of the rows: a selective filter is exact
    for q in queries[:10]:
        assert ann.search(flat, ivf, q[None, :], 10, allowed) == ann.search(flat, None, q[None, :], 10, allowed)


def test_nlist_sizing():
    assert ann.nlist_for(1_000_000) == 2000
    assert ann.nlist_for(6) == 1 and ann.nlist_for(2_000) == 51
    assert ann.default_nprobe(2000) == 62 and ann.default_nprobe(10) == 10


def test_large_index_is_memory_mapped_and_answers_the_same(tmp_path, embedder, reader, news_file, service):
    settings = Settings(index_dir=tmp_path / "index", ann_threshold=1)  # every index counts as large here
    articles = ingest_paths([SAMPLE_DIR, news_file]).articles
    build_store(settings, articles, embedder, SPEC)
    gen = next(p for p in (tmp_path / "index").iterdir() if p.name.startswith("gen-"))
    assert (gen / ann.ANN_FILE).is_file()
    store = IndexStore.load(settings.index_dir, embedder)
    assert store.ann is not None and store.read_only
    with pytest.raises(QAError, match="memory-mapped"):
        store.remove(["coast-storm"])
    mapped = Retriever(store, embedder)
    for question in ("How much will the bridge cost?", "What did Kim Jong Un write in the letter?"):
        got = [(p.chunk.article_id, p.chunk.start, p.dense_rank, p.bm25_rank) for p in mapped.retrieve(question, 5)]
        assert got == [(p.chunk.article_id, p.chunk.start, p.dense_rank, p.bm25_rank)
                       for p in service.retriever.retrieve(question, 5)]
    answer = QAService(settings, store=store, embedder=embedder, reader=reader).ask("How much will the bridge cost?")
    assert "40 million" in answer.answer
    # Updates load the vectors into memory and write a new approximate index.
    extra = Article(id="new", title="Ferry fares rise", text="Ferry fares to the islands rise by ten percent in May.")
    updated, report = update_store(settings, embedder, SPEC, add=[extra])
    assert report.added == ["new"] and not updated.read_only
    reloaded = IndexStore.load(settings.index_dir, embedder)
    assert reloaded.ann.ntotal == len(reloaded.chunks) == len(store.chunks) + 1


def test_small_index_unchanged(sample_index, embedder):
    store = IndexStore.load(sample_index, embedder)
    assert store.ann is None and not store.read_only
    gen = next(p for p in sample_index.iterdir() if p.name.startswith("gen-"))
    assert not (gen / ann.ANN_FILE).exists()
