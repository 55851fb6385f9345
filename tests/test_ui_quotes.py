from qa.records import Answer, Citation, QuoteAttribution
from qa.serve.ui import render_answer, render_quote


def quoted(speaker="Sarah Sanders", role="White House <b>spokeswoman</b>", kind="direct"):
    passage = "“He did receive a letter,” Sanders told a White House briefing."
    c = Citation("a", "Title", None, None, None, passage, 0, 1, 24)
    return Answer("q", passage[1:24], True, 0.8, [c], [], QuoteAttribution(speaker, "Sanders", "told", kind, role, ((1, 24),)))


def test_quote_bubble_names_the_speaker_and_highlights_the_words():
    html = render_answer(quoted())
    assert "— Sarah Sanders, White House &lt;b&gt;spokeswoman&lt;/b&gt;" in html and "<b>" not in html
    assert "<mark>He did receive a letter</mark>" in html


def test_no_quote_no_attribution_line():
    plain = quoted()
    plain = Answer(plain.question, plain.answer, True, 0.8, plain.citations)
    assert render_quote(plain) == "" and "qa-quote-by" not in render_answer(plain)
    assert "(reported speech)" in render_quote(quoted(kind="reported"))
