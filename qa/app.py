"""Chat UI (Gradio) over a QAService. Article text is untrusted: everything shown is escaped."""

from __future__ import annotations

import html
import re

from .answer import QAService
from .config import Settings
from .errors import QAError
from .records import Answer, Citation

MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def escape(text: str) -> str:
    """Safe inside Gradio markdown: no HTML, no markdown syntax from article text."""
    return MARKDOWN_SPECIALS.sub(r"\\\1", html.escape(" ".join(text.split()), quote=True))


def safe_url(url: str | None) -> str | None:
    return url if url and re.match(r"^https?://[^\s<>\"']+$", url) else None


def render_citation(n: int, c: Citation) -> str:
    before = escape(c.passage[: c.answer_start])
    answer = escape(c.passage[c.answer_start : c.answer_end])
    after = escape(c.passage[c.answer_end :])
    title = escape(c.title or c.article_id)
    url = safe_url(c.url)
    head = f"[{title}]({html.escape(url, quote=True)})" if url else title
    meta = " · ".join(escape(x) for x in (c.source, c.date) if x)
    return f"**[{n}]** {head}" + (f" — {meta}" if meta else "") + f"\n\n> {before}<mark>{answer}</mark>{after}"


def render_answer(answer: Answer) -> str:
    if not answer.found:
        return "Not found in the indexed articles."
    parts = [f"**{escape(answer.answer or '')}** _(confidence {answer.score:.2f})_"]
    parts += [render_citation(n, c) for n, c in enumerate(answer.citations, 1)]
    if answer.alternatives:
        alts = "; ".join(f"{escape(a.answer)} ({a.score:.2f})" for a in answer.alternatives)
        parts.append(f"Other candidates: {alts}")
    return "\n\n".join(parts)


def build_ui(service: QAService):
    import gradio as gr

    def respond(message: str, history: list) -> str:
        try:
            return render_answer(service.ask(message))
        except QAError as exc:
            return f"Error: {escape(str(exc))}"

    stats = service.store.stats()
    return gr.ChatInterface(
        respond,
        title="News QA",
        description=f"Ask about the {stats['articles']} indexed articles ({stats['chunks']} passages).",
        examples=["What did Sanders say about a second meeting?", "Where was the summit held?"],
        cache_examples=False,
        api_name="ask",
    )


def launch(settings: Settings) -> None:
    service = QAService(settings)
    service.store  # load now: a missing or damaged index fails before the server starts
    ui = build_ui(service)
    ui.launch(server_name=settings.host, server_port=settings.port)
