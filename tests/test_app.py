from qa.app import escape, render_answer, safe_url
from qa.records import Alternative, Answer, Citation


def hostile_citation(url="javascript:alert(1)"):
    passage = 'Intro <script>alert("x")</script> and <img src=x onerror=alert(1)> **bold** the answer here.'
    start = passage.index("the answer")
    return Citation(
        article_id="evil", title="<b>Title</b>", url=url, date="2024-01-01", source="<i>src</i>",
        passage=passage, passage_start=0, answer_start=start, answer_end=start + len("the answer"),
    )


def test_article_text_is_escaped_and_answer_highlighted():
    answer = Answer("q", "the answer", True, 0.9, [hostile_citation()], [Alternative("<script>", 0.5, "evil")])
    html = render_answer(answer)
    assert "<script>" not in html and "<img" not in html and "<b>" not in html and "<i>" not in html
    assert "&lt;script&gt;" in html and "onerror" in html  # shown as text
    assert "<mark>the answer</mark>" in html
    assert "\\*\\*bold\\*\\*" in html
    assert "javascript:" not in html, "only http(s) links are rendered"


def test_http_links_are_rendered():
    html = render_answer(Answer("q", "the answer", True, 0.9, [hostile_citation("https://news.example/a")]))
    assert "](https://news.example/a)" in html


def test_not_found_message():
    assert render_answer(Answer("q", None, False, 0.1)) == "Not found in the indexed articles."


def test_safe_url():
    assert safe_url("http://a.example/x?y=1") == "http://a.example/x?y=1"
    assert safe_url('https://a.example/"onmouseover=') is None
    assert safe_url("data:text/html,hi") is None and safe_url(None) is None


def test_escape_collapses_whitespace():
    assert escape("a\n\n b") == "a b"
