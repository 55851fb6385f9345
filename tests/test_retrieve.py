import pytest

from qa.retrieve import AS_OF_POOL, AS_OF_WEIGHT, RECENCY_POOL, Filters, Retriever, reciprocal_rank_fusion, recency_fusion
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


# ---- time windows --------------------------------------------------------------------------------

from datetime import date  # noqa: E402

from qa.timeframe import time_window  # noqa: E402


def test_window_prefers_articles_published_inside_it(retriever):
    question = "What happened with the harbour bridge vote?"
    plain = retriever.retrieve(question, k=3)
    assert plain[0].article.id == "coast-bridge-delay"
    week = time_window(question + " this week", today=date(2024, 3, 7))  # 4-7 March 2024: the approval
    boosted = retriever.retrieve(question, k=3, window=week)
    assert boosted[0].article.id == "herald-bridge"
    assert {p.article.id for p in boosted} >= {"herald-bridge", "coast-bridge-delay"}  # a preference, not a filter


def test_recency_prefers_the_newest_of_similar_articles(retriever):
    question = "What is the latest on the harbour bridge?"
    assert retriever.retrieve(question, k=2, window=time_window(question, "2024-06-01"))[0].article.id == "herald-bridge"


def test_weighted_rrf_counts_a_ranking_by_its_weight():
    fused = reciprocal_rank_fusion([[1, 2], [2, 1]], k=60, weights=(1.0, AS_OF_WEIGHT))
    assert list(fused) == [1, 2]  # at half weight, the second ranking breaks ties, it does not overrule
    assert fused[1] == pytest.approx(1 / 61 + AS_OF_WEIGHT / 62)


@pytest.mark.parametrize("question, as_of, expected", [
    ("Who chairs the bank?", None, None),  # no time at all
    ("What is the latest on the bridge?", "2024-06-01", (5 * RECENCY_POOL, 1.0)),
    ("Who chairs the bank?", "2024-06-01", (5 * AS_OF_POOL, AS_OF_WEIGHT)),  # what was current that day
    ("What did the council decide this week?", "2024-06-01", None),  # the window's dates are the preference
])
def test_which_questions_prefer_newer_articles(question, as_of, expected):
    assert recency_fusion(time_window(question, as_of), 5) == expected


def test_as_of_day_ranks_the_best_candidates_partly_newest_first(retriever):
    question = "harbour bridge"
    plain = [p.article.id for p in retriever.retrieve(question, k=3)]
    as_of = [p.article.id for p in retriever.retrieve(question, k=3, window=time_window(question, "2024-06-01"))]
    assert plain[0] == as_of[0] == "herald-bridge"  # the best match, and the newer of the two bridge stories
    assert set(as_of) == set(plain)


def test_as_of_day_leaves_out_later_articles_but_never_undated_ones(retriever):
    window = time_window("Why were the schools closed?", "2024-01-01")
    passages = retriever.retrieve("Why were the schools closed?", k=20, window=window)
    ids = {p.article.id for p in passages}
    assert "coast-storm" not in ids and "herald-bridge" not in ids  # published after 1 January 2024
    assert "coast-bridge-delay" in ids  # before it
    assert any(p.article.published is None for p in passages)  # the undated sample article stays
    assert all(p.article.published is None or p.article.published <= "2024-01-01" for p in passages)


def test_passages_carry_retrieval_scores(retriever):
    [top, *_] = retriever.retrieve("How much will the harbour bridge cost?", k=3)
    assert 0.0 < top.dense_score <= 1.0 and top.bm25_score > 0.0
