import re
from types import SimpleNamespace

from qa.serve.ui import (
    NOT_FOUND, SAMPLE_QUESTIONS, SEARCHING, chat_reply, confidence_label, escape, example_questions, render_answer,
    render_time_window, safe_url, stats_markdown,
)
from qa.errors import InvalidQuestion
from qa.records import Alternative, Answer, Article, Citation

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
    assert "<summary>Same answer in 1 more passage(s)</summary>" in html
    assert "<summary>Other candidate answers (1)</summary>" in html


def test_not_found_message():
    assert render_answer(Answer("q", None, False, 0.1)) == NOT_FOUND == "Not found in the indexed articles."


def test_confidence_label():
    assert [confidence_label(s) for s in (0.9, 0.8, 0.7, 0.5, 0.3)] == ["high", "high", "medium", "medium", "low"]


def test_time_window_line():
    from qa.timeframe import time_window

    window = time_window("What happened this week?", "2024-03-22")
    assert render_time_window(window) == '<div class="qa-time">articles from 18–22 March 2024 (this week)</div>'
    assert render_time_window(None) == ""
    html = render_answer(Answer("q", "the answer", True, 0.9, [hostile_citation()], time_window=window))
    assert '<div class="qa-answer"><div class="qa-time">articles from 18–22 March 2024 (this week)</div>' in html
    assert "(this week)</div>" + NOT_FOUND in render_answer(Answer("q", None, False, 0.1, time_window=window))


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


def test_chat_reply_shows_searching_then_answer():
    calls = []

    def ask(message, history):
        calls.append((message, history))
        if not message.strip():
            raise InvalidQuestion("the question is empty")
        return Answer(message, "the answer", True, 0.8, [hostile_citation()])

    engine = SimpleNamespace(ask=ask)
    first, second = chat_reply(engine, "q?", [{"role": "user", "content": "earlier"}])
    assert first == SEARCHING and second.startswith('<div class="qa-answer">')
    assert calls == [("q?", [{"role": "user", "content": "earlier"}])]
    assert list(chat_reply(engine, " ", []))[-1] == '<div class="qa-error">Invalid question: the question is empty.</div>'
