import re
from types import SimpleNamespace

import pytest

from qa.serve.ui import (
    GENERIC_QUESTION, MAX_SENTENCE_CHARS, NOT_FOUND, SAMPLE_QUESTIONS, SEARCHING, chat_filters, chat_reply,
    confidence_label, configured_examples, escape, example_questions, filtered_reply, headline_question, page_state,
    render_answer,
    render_passage, safe_url, sentence_bounds, stats_markdown,
)
from qa.errors import InvalidQuestion
from qa.records import Alternative, Answer, Article, Citation, CitedAlternate
from qa.retrieve import Filters

PAYLOAD = 'Intro <script>window.__pwned=1</script> and <img src=x onerror="window.__pwned=2"> **bold** the answer here.'


def hostile_citation(url="javascript:alert(1)", article_id="evil"):
    start = PAYLOAD.index("the answer")
    return Citation(
        article_id=article_id, title="<b>Title</b>\n\nsecond line", url=url, date="2024-01-01T10:00:00+00:00",
        source="<i>src</i>", passage=PAYLOAD, passage_start=0, answer_start=start, answer_end=start + len("the answer"),
    )


def tags(html: str) -> set[str]:
    return set(re.findall(r"<([a-zA-Z][a-zA-Z0-9]*)", html))


def test_article_text_is_escaped_and_answer_highlighted():
    answer = Answer("q", "the answer", True, 0.9, [hostile_citation()], [Alternative("<script>", 0.5, "evil")])
    html = render_answer(answer)
    # Only the bubble's own markup; everything from the article is text.
    assert tags(html) <= {"div", "strong", "span", "blockquote", "mark", "ol", "li", "details", "summary", "ul"}
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html
    assert 'onerror="' not in html and "onerror=&quot;" in html
    assert "&lt;b&gt;Title&lt;/b&gt; second line" in html and "&lt;i&gt;src&lt;/i&gt;" in html
    assert "<mark>the answer</mark> here." in html
    assert "**bold**" in html, "markdown is not interpreted inside the HTML block: shown as written"
    assert "javascript:" not in html, "only http(s) links are rendered"
    assert "\n" not in html, "a blank line would end the HTML block"


def test_answer_bubble_parts():
    other = hostile_citation("https://news.example/b", article_id="other")
    answer = Answer("q", "the answer", True, 0.71, [hostile_citation("https://news.example/a?x=1&y=2"), other],
                    [Alternative("another", 0.61, "evil")])
    html = render_answer(answer)
    assert '<span class="qa-conf qa-conf-medium" title="score 0.71">medium confidence · 0.71</span>' in html
    assert '<a href="https://news.example/a?x=1&amp;y=2" target="_blank" rel="noopener noreferrer nofollow">' in html
    assert "2024-01-01</span>" in html  # date shown as the day
    assert html.count("<li>") == 3  # two sources + one alternative
    assert "<summary>Same answer in 1 more passage</summary>" in html
    assert "<summary>Other candidate answers (1)</summary>" in html


def test_not_found_message():
    assert render_answer(Answer("q", None, False, 0.1)) == NOT_FOUND == "Not found in the indexed articles."


def test_confidence_label():
    assert [confidence_label(s) for s in (0.9, 0.75, 0.7, 0.65, 0.3)] == ["high", "high", "medium", "medium", "low"]


def test_safe_url():
    assert safe_url("http://a.example/x?y=1") == "http://a.example/x?y=1"
    assert safe_url('https://a.example/"onmouseover=') is None
    assert safe_url("https://a.example/\x00x") is None
    assert safe_url("data:text/html,hi") is None and safe_url("javascript:alert(1)") is None and safe_url(None) is None


def test_escape_collapses_whitespace():
    assert escape("a\n\n b") == "a b"


def test_stats_markdown_escapes_sources():
    line = stats_markdown({"articles": 2, "chunks": 5, "updated_at": "2024-03-05T10:20:30+00:00",
                           "sources": ["<b>Evil</b> *Gazette*"]})
    assert line.startswith("**2** articles · **5** passages · last update 2024-03-05 10:20 UTC")
    assert "<b>" not in line and "&lt;b&gt;" in line and "\\*Gazette\\*" in line


def test_example_questions():
    sample = Article("s", "Trump receives ‘nice letter’ from Kim Jong Un despite growing rift", "text")
    assert example_questions([sample]) == SAMPLE_QUESTIONS
    other = Article("o", "Council <b>approves</b> bridge", "text", published="2024-01-01")
    assert example_questions([other]) == ["What happened: Council approves bridge?"]
    # The newest three headlines, newest first; the sample's questions only while it is indexed.
    dated = [Article(f"a{i}", f"Headline {i}", "text", published=f"2024-01-0{i}") for i in range(1, 6)]
    assert example_questions(dated + [other]) == [f"What happened: Headline {i}?" for i in (5, 4, 3)]
    # QA_EXAMPLES wins over the index.
    assert example_questions([sample], configured_examples(" Who won? | |What  next?")) == ["Who won?", "What next?"]
    assert example_questions([]) == [GENERIC_QUESTION]


def test_headline_question():
    assert headline_question("BAHIA COCOA REVIEW") == "What happened: Bahia cocoa review?"
    assert headline_question("Markets rally.") == "What happened: Markets rally?"
    assert headline_question("<i></i>") is None
    long = headline_question("word " * 40)
    assert len(long) < 110 and long.endswith("…?")


def test_answer_shows_the_sentence_around_it_and_the_whole_passage_on_click():
    passage = ("The council met on Tuesday. It approved the harbour bridge by nine votes to two. "
               "Work starts in spring, the mayor said.")
    start = passage.index("harbour bridge")
    citation = Citation("a", "T", None, None, None, passage, 0, start, start + len("harbour bridge"))
    html = render_passage(citation)
    sentence = html[html.index('<span class="qa-sentence">'):html.index("</summary>")]
    assert "It approved the <mark>harbour bridge</mark> by nine votes to two." in sentence
    assert "council met" not in sentence and "Work starts" not in sentence
    assert html.startswith('<details class="qa-passage"><summary')
    full = html[html.index('<div class="qa-full">'):]
    assert "The council met on Tuesday. It approved the <mark>harbour bridge</mark>" in full and "the mayor said." in full
    # A passage of one sentence is shown whole, with nothing to open.
    whole = Citation("a", "T", None, None, None, "It approved the bridge.", 0, 16, 22)
    assert render_passage(whole) == '<blockquote class="qa-passage">It approved the <mark>bridge</mark>.</blockquote>'


def test_a_run_on_sentence_is_cut_to_words_around_the_answer():
    passage = " ".join(f"w{i}" for i in range(400))
    start = passage.index("w200 ")
    lo, hi = sentence_bounds(passage, start, start + 4)
    assert hi - lo <= MAX_SENTENCE_CHARS and lo < start and hi > start + 4
    assert passage[lo - 1] == " " and passage[hi] == " ", "whole words"


def test_also_reported_by_lists_the_alternates_once():
    alt = CitedAlternate("<b>Wire</b>", "Copy <i>title</i>", "https://wire.example/x", "2024-01-02T10:00:00")
    bad = CitedAlternate("Other", None, "javascript:alert(1)", None)
    first = hostile_citation("https://news.example/a")
    cited = [Citation(**{**first.__dict__, "alternates": (alt, bad)}),
             Citation(**{**first.__dict__, "article_id": "other", "alternates": (alt,)})]
    html = render_answer(Answer("q", "the answer", True, 0.9, cited))
    also = html[html.index('<div class="qa-also">'):]
    assert also.startswith('<div class="qa-also"><strong>Also reported by</strong><ul>')
    assert also.count("<li>") == 2 and "javascript:" not in also
    assert ('<a href="https://wire.example/x" target="_blank" rel="noopener noreferrer nofollow">Copy &lt;i&gt;title&lt;/i&gt;</a>'
            ' <span class="qa-meta">· &lt;b&gt;Wire&lt;/b&gt; · 2024-01-02</span>') in also
    assert "<li>Other</li>" in also  # no title: named by its source
    assert 'class="qa-also"' not in render_answer(Answer("q", "the answer", True, 0.9, [first]))


def test_chat_filters():
    assert chat_filters("", None, "") is None
    assert chat_filters(" City Herald ", "2024-01-01", "2024-12-31") == Filters("City Herald", "2024-01-01", "2024-12-31")
    with pytest.raises(InvalidQuestion, match="“From” date must be YYYY-MM-DD"):
        chat_filters("", "01/02/2024", "")
    with pytest.raises(InvalidQuestion, match="“From” date is after the “To” date"):
        chat_filters("", "2024-02-01", "2024-01-01")


def test_page_state_follows_the_index_on_disk(tmp_path, embedder, reader, news_file):
    """Examples and sources are read at each page load: a rebuilt index is never shown stale."""
    from qa.answer import QAService
    from qa.config import Settings
    from qa.index import build_index
    from qa.ingest import ingest_paths
    from qa.serve.engine import Engine

    from .conftest import SAMPLE_DIR, SPEC

    settings = Settings(index_dir=tmp_path / "idx")
    build_index(ingest_paths([SAMPLE_DIR]).articles, settings.index_dir, embedder, SPEC)
    engine = Engine(settings, QAService(settings, embedder=embedder, reader=reader))
    before = page_state(engine)
    assert before["examples"] == SAMPLE_QUESTIONS and before["sources"] == []
    build_index(ingest_paths([news_file]).articles, settings.index_dir, embedder, SPEC, replace=True)  # `qa index build` again
    after = page_state(engine)
    assert after["sources"] == ["City Herald", "Daily Coast"] and after["stats"]["articles"] == 3
    assert after["examples"] == [
        "What happened: Storm closes schools along the coast?", "What happened: Council approves harbour bridge?",
        "What happened: Bridge vote delayed?",
    ]
    assert page_state(Engine(settings.with_(examples="Who won?"), engine.service))["examples"] == ["Who won?"]


def test_chat_reply_shows_searching_then_answer():
    calls = []

    def ask(message, history, k=None, filters=None):
        calls.append((message, history, k, filters))
        if not message.strip():
            raise InvalidQuestion("the question is empty")
        return Answer(message, "the answer", True, 0.8, [hostile_citation()])

    engine = SimpleNamespace(ask=ask)
    first, second = chat_reply(engine, "q?", [{"role": "user", "content": "earlier"}], Filters("S"), 3)
    assert first == SEARCHING and second.startswith('<div class="qa-answer">')
    assert calls == [("q?", [{"role": "user", "content": "earlier"}], 3, Filters("S"))]
    assert list(chat_reply(engine, " ", []))[-1] == '<div class="qa-error">Invalid question: the question is empty.</div>'


def test_filter_row_values_reach_the_engine():
    calls = []

    def ask(message, history, k=None, filters=None):
        calls.append((k, filters))
        return Answer(message, None, False, 0.1)

    engine = SimpleNamespace(ask=ask)
    assert list(filtered_reply(engine, "q?", [], "Daily Coast", "2024-01-01", "", 3.0)) == [SEARCHING, NOT_FOUND]
    assert list(filtered_reply(engine, "q?", [], "", "", "", 5))[-1] == NOT_FOUND
    assert calls == [(3, Filters("Daily Coast", "2024-01-01", None)), (5, None)]
    [error] = filtered_reply(engine, "q?", [], "", "2024-1-1", "", 5)
    assert error == '<div class="qa-error">Invalid filter: the “From” date must be YYYY-MM-DD, not &#x27;2024-1-1&#x27;.</div>'
    assert len(calls) == 2, "a bad filter asks nothing"
