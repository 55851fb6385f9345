import pytest

from qa.answer import compose_answer, normalize_answer
from qa.errors import InvalidQuestion
from qa.read import ReaderOutput
from qa.retrieve import Filters


def assert_citations_slice_articles(answer, service):
    for c in answer.citations:
        article = service.store.articles[c.article_id]
        assert article.text[c.passage_start : c.passage_start + len(c.passage)] == c.passage
        assert c.passage[c.answer_start : c.answer_end] == answer.answer
        assert article.text[c.passage_start + c.answer_start : c.passage_start + c.answer_end] == answer.answer


def test_sanders_question_cites_the_second_meeting_passage(service):
    answer = service.ask("What did Sanders say about a second meeting?")
    assert answer.found
    assert answer.citations[0].title.startswith("Trump receives")
    assert "There is not a second meeting that is currently locked in or finalized" in answer.citations[0].passage
    assert_citations_slice_articles(answer, service)


def test_unanswerable_question_is_not_found(service):
    answer = service.ask("What is the capital of Peru?")
    assert answer.found is False and answer.answer is None
    assert answer.citations == [] and answer.alternatives == []
    assert 0.0 <= answer.score <= 1.0


def test_factoid_answer_with_metadata(service):
    answer = service.ask("How much will the harbour bridge cost?")
    assert answer.found and answer.answer == "40 million pounds"
    c = answer.citations[0]
    assert (c.article_id, c.source, c.date, c.url) == ("herald-bridge", "City Herald", "2024-03-05", "https://herald.example/bridge")
    assert_citations_slice_articles(answer, service)
    assert 0.5 < answer.score <= 1.0
    assert all(a.score <= answer.score for a in answer.alternatives)


def test_filters_reach_retrieval(service):
    question = "Who said the bridge vote was delayed?"
    unfiltered = service.ask(question)
    assert "Daily Coast" in {c.source for c in unfiltered.citations}  # so the filter below has something to remove
    answer = service.ask(question, filters=Filters(source="City Herald"))
    assert answer.found and answer.citations and {c.source for c in answer.citations} == {"City Herald"}
    assert answer.answer != unfiltered.answer
    none = service.ask("Who said the bridge vote was delayed?", filters=Filters(source="Nobody"))
    assert not none.found


@pytest.mark.parametrize("question", ["", "   \n "])
def test_empty_question(service, question):
    with pytest.raises(InvalidQuestion, match="empty"):
        service.ask(question)


def test_oversized_question(service):
    with pytest.raises(InvalidQuestion, match="limit is 1000"):
        service.ask("why " * 1000)


def test_no_passages_means_not_found():
    answer = compose_answer("q", [], ReaderOutput([], {}))
    assert answer.to_dict() == {
        "question": "q", "answer": None, "found": False, "score": 0.0, "citations": [], "alternatives": [],
        "quote": None,
    }


@pytest.mark.parametrize(
    "text,expected", [("The  Singapore summit!", "singapore summit"), ("“An” answer…", "answer"), ("A", "")]
)
def test_normalize_answer(text, expected):
    assert normalize_answer(text) == expected
