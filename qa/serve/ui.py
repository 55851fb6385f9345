"""Chat UI (Gradio): answer bubbles with the highlighted span, sources and alternatives.

Article text, titles, sources and URLs are untrusted. Every answer bubble is one HTML block built
here in which all of them are HTML-escaped (markdown does not run inside an HTML block, so the
text shows exactly as written), and only http(s) URLs become links. Gradio sanitizes the HTML once
more in the browser.

`build_ui(engine)` makes the full page (title, index stats, chat); `build_ui(engine, embed=True)`
the bare chat served at /embed/ for iframes. qa.serve.api mounts both beside the HTTP API.
"""

from __future__ import annotations

import html
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any, Iterator

from ..errors import InvalidQuestion, QAError
from ..records import Answer, Citation

if TYPE_CHECKING:
    from .engine import Engine

NOT_FOUND = "Not found in the indexed articles."
SEARCHING = '<div class="qa-searching"><span class="qa-spinner"></span> Searching the indexed articles…</div>'
SAMPLE_TITLE = "Trump receives ‘nice letter’ from Kim Jong Un"
SAMPLE_QUESTIONS = [
    "What did Sanders say about a second meeting?",
    "Where was the summit held?",
    "What did North Korea pledge at the summit?",
]
CONFIDENCE_LEVELS = ((0.75, "high"), (0.65, "medium"), (0.0, "low"))
MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>$])")

CSS = """
.qa-answer { line-height: 1.5; }
.qa-answer .qa-head { display: flex; flex-wrap: wrap; align-items: baseline; gap: .5em; margin: 0 0 .4em; }
.qa-answer .qa-text { font-size: 1.1em; }
.qa-conf { font-size: .8em; padding: .05em .55em; border-radius: 1em; border: 1px solid currentColor; opacity: .85; white-space: nowrap; }
.qa-conf-high { color: #15803d; } .qa-conf-medium { color: #b45309; } .qa-conf-low { color: #b91c1c; }
.qa-passage { margin: .3em 0 .6em !important; padding: .2em 0 .2em .8em !important; border-left: 3px solid #d1d5db; font-size: .95em; }
.qa-passage mark { background: #fde047; color: #111827; padding: 0 .15em; border-radius: .2em; }
.qa-sources { font-size: .9em; }
.qa-sources ol { margin: .2em 0 .2em 1.2em !important; padding: 0 !important; }
.qa-meta { opacity: .75; }
.qa-answer details { margin-top: .4em; font-size: .9em; }
.qa-answer summary { cursor: pointer; }
.qa-searching { opacity: .8; font-style: italic; }
.qa-spinner { display: inline-block; width: .8em; height: .8em; border: 2px solid currentColor;
  border-right-color: transparent; border-radius: 50%; animation: qa-spin .8s linear infinite; vertical-align: -.1em; }
@keyframes qa-spin { to { transform: rotate(360deg); } }
.qa-error { color: #b91c1c; }
.qa-quote-by { margin: -.2em 0 .4em; font-style: italic; }
"""
EMBED_CSS = CSS + "footer { display: none !important; } .gradio-container { padding: 0 !important; }"


# ---- rendering (pure) ---------------------------------------------------------------------------


def escape(text: str) -> str:
    """Safe inside Gradio markdown: no HTML, no markdown syntax from article text."""
    return MARKDOWN_SPECIALS.sub(r"\\\1", html.escape(" ".join(text.split()), quote=True))


def text(value: Any) -> str:
    """HTML-escaped, whitespace collapsed (an HTML block must not contain a blank line)."""
    return html.escape(" ".join(str(value).split()), quote=True)


def safe_url(url: str | None) -> str | None:
    return url if url and re.match(r"^https?://[^\s<>\"'`\\\x00-\x1f\x7f]+$", url) else None


def confidence_label(score: float) -> str:
    return next(label for floor, label in CONFIDENCE_LEVELS if score >= floor)


def render_passage(c: Citation) -> str:
    squash = lambda s: re.sub(r"\s+", " ", s)  # noqa: E731  (keeps the spaces around the answer)
    before = squash(c.passage[: c.answer_start]).lstrip()
    span = squash(c.passage[c.answer_start : c.answer_end]).strip()
    after = squash(c.passage[c.answer_end :]).rstrip()
    return (
        f'<blockquote class="qa-passage">{html.escape(before)}<mark>{html.escape(span)}</mark>'
        f"{html.escape(after)}</blockquote>"
    )


def render_quote(answer: Answer) -> str:
    """The speaker under a quotation answer: "— Sarah Sanders, White House spokeswoman" ("" otherwise)."""
    q = answer.quote
    if q is None:
        return ""
    who = text(q.speaker) + (f", {text(q.role)}" if q.role else "")
    how = "reported speech" if q.kind == "reported" else text(q.cue)
    return f'<div class="qa-quote-by">— {who} <span class="qa-meta">({how})</span></div>'


def render_source(c: Citation) -> str:
    title = text(c.title or c.article_id)
    url = safe_url(c.url)
    head = f'<a href="{html.escape(url, quote=True)}" target="_blank" rel="noopener noreferrer nofollow">{title}</a>' if url else title
    meta = " · ".join(text(x) for x in (c.source, (c.date or "")[:10]) if x)
    return f"<li>{head}" + (f' <span class="qa-meta">· {meta}</span>' if meta else "") + "</li>"


def render_answer(answer: Answer) -> str:
    """One chat bubble: answer + confidence, the highlighted passage, sources, collapsed extras."""
    if not answer.found or not answer.citations:
        return NOT_FOUND
    level = confidence_label(answer.score)
    parts = [
        '<div class="qa-answer">',
        f'<div class="qa-head"><strong class="qa-text">{text(answer.answer or "")}</strong>'
        f'<span class="qa-conf qa-conf-{level}" title="score {answer.score:.2f}">{level} confidence · {answer.score:.2f}</span></div>',
        render_quote(answer),
        render_passage(answer.citations[0]),
    ]
    sources, seen = [], set()
    for c in answer.citations:
        if c.article_id not in seen:
            seen.add(c.article_id)
            sources.append(render_source(c))
    parts.append(f'<div class="qa-sources"><strong>Sources</strong><ol>{"".join(sources)}</ol></div>')
    if len(answer.citations) > 1:
        more = "".join(render_passage(c) for c in answer.citations[1:])
        parts.append(f"<details><summary>Same answer in {len(answer.citations) - 1} more passage(s)</summary>{more}</details>")
    if answer.alternatives:
        items = "".join(f"<li>{text(a.answer)} <span class=\"qa-meta\">({a.score:.2f})</span></li>" for a in answer.alternatives)
        parts.append(f"<details class=\"qa-alts\"><summary>Other candidate answers ({len(answer.alternatives)})</summary><ul>{items}</ul></details>")
    parts.append("</div>")
    return "".join(parts)


def render_error(message: str) -> str:
    return f'<div class="qa-error">{text(message)}</div>'


def stats_markdown(stats: dict) -> str:
    updated = stats.get("updated_at") or ""
    try:
        updated = datetime.fromisoformat(updated).strftime("%Y-%m-%d %H:%M %Z").strip()
    except ValueError:
        updated = escape(updated)
    plural = lambda n, word: f"**{n}** {word}" + ("" if n == 1 else "s")  # noqa: E731
    line = f"{plural(stats['articles'], 'article')} · {plural(stats['chunks'], 'passage')} · last update {updated or 'unknown'}"
    sources = stats.get("sources") or []
    if sources:
        shown = ", ".join(escape(s) for s in sources[:8]) + (f" and {len(sources) - 8} more" if len(sources) > 8 else "")
        line += f" · sources: {shown}"
    return line


def example_questions(articles: list) -> list[str]:
    """Questions the indexed articles can answer: the bundled sample's, else built from headlines."""
    if any((a.title or "").startswith(SAMPLE_TITLE) for a in articles):
        return list(SAMPLE_QUESTIONS)
    recent = sorted(articles, key=lambda a: a.published or "", reverse=True)[:3]
    titles = [" ".join(re.sub(r"[<>\[\]*_`#\\]", "", re.sub(r"<[^>]*>", "", a.title or "")).split())[:90] for a in recent]
    return [f"What happened: {t}?" for t in titles if t]


# ---- Gradio -------------------------------------------------------------------------------------


def chat_reply(engine: Engine, message: str, history: list) -> Iterator[str]:
    """The chat function: a visible "searching" state first, then the answer bubble."""
    yield SEARCHING
    try:
        yield render_answer(engine.ask(message, history))
    except InvalidQuestion as exc:
        yield render_error(f"Invalid question: {exc}.")
    except QAError as exc:
        yield render_error(f"Error: {exc}")


def build_ui(engine: Engine, embed: bool = False):
    import gradio as gr

    def respond(message: str, history: list):
        yield from chat_reply(engine, message, history)

    settings = engine.settings
    with gr.Blocks(title="News QA", analytics_enabled=False, fill_height=True) as demo:
        if not embed:
            gr.Markdown("# News QA\nExtractive answers from the indexed news articles, each with its highlighted source.")
            stats = gr.Markdown(stats_markdown(engine.stats()), elem_id="qa-stats")
        gr.ChatInterface(
            respond,
            chatbot=gr.Chatbot(
                elem_id="qa-chat",
                latex_delimiters=[],
                show_label=False,
                placeholder="Ask a question about the indexed news articles." if not embed else None,
                height=None if embed else 560,
            ),
            textbox=gr.Textbox(
                placeholder="Ask about the news… (follow-up questions work too)",
                max_length=settings.max_question_chars,
                show_label=False,
                submit_btn=True,
                elem_id="qa-input",
            ),
            examples=example_questions(list(engine.service.store.articles.values())),
            cache_examples=False,
            api_name="ask",
            autofocus=not embed,
            fill_height=True,
            analytics_enabled=False,
        )
        if not embed:
            demo.load(lambda: stats_markdown(engine.stats()), outputs=stats, api_visibility="private", queue=False)
    return demo
