import pytest

from qa.retrieve import Filters, Retriever, reciprocal_rank_fusion
from qa.index import IndexStore


@pytest.fixture(scope="module")
def retriever(sample_index, embedder):
    return Retriever(IndexStore.load(sample_index, embedder), embedder)


def test_rrf_rewards_agreement():
    fused = reciprocal_rank_fusion([[1, 2, 3], [3, 1, 4]], k=60)
    assert list(fused)[:2] == [1, 3]
    assert fused[1] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[4] == pytest.approx(1 / 63)


def test_finds_the_right_article(retriever):
    [top, *_] = retriever.retrieve("How much will the harbour bridge cost?", k=3)
    assert top.article.id == "herald-bridge"
    assert top.dense_rank is not None and top.bm25_rank is not None
    assert top.rank == 0


def test_sample_question_retrieves_the_sanders_passage(retriever):
    passages = retriever.retrieve("What did Sanders say about a second meeting?", k=2)
    assert any("There is not a second meeting" in p.chunk.text for p in passages)


def test_dense_alone_finds_paraphrase(retriever):
    # No word in common with the storm article except stop words: BM25 cannot help here.
    passages = retriever.retrieve("pupils missed lessons in severe weather", k=1)
    assert passages[0].article.id == "coast-storm"
    assert passages[0].bm25_rank is None


def test_source_filter(retriever):
    passages = retriever.retrieve("harbour bridge", k=10, filters=Filters(source="daily coast"))
    assert passages and {p.article.source for p in passages} == {"Daily Coast"}


def test_date_filter_excludes_undated_and_out_of_range(retriever):
    passages = retriever.retrieve("bridge", k=10, filters=Filters(date_from="2024-01-01", date_to="2024-12-31"))
    assert {p.article.id for p in passages} == {"herald-bridge", "coast-storm"}


def test_filter_matching_nothing(retriever):
    assert retriever.retrieve("bridge", k=5, filters=Filters(source="Nobody")) == []


def test_bad_date_filter():
    with pytest.raises(ValueError, match="ISO date"):
        Filters(date_from="yesterday")
