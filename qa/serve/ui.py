"""Chat UI (Gradio): answer bubbles with the highlighted span, sources and alternatives; filters.

Article text, titles, sources and URLs are untrusted. Every answer bubble is one HTML block built
here in which all of them are HTML-escaped (markdown does not run inside an HTML block, so the
text shows exactly as written), and only http(s) URLs become links. Gradio sanitizes the HTML once
more in the browser.

`build_ui(engine)` makes the full page (title, index stats, filters, chat); `build_ui(engine,
embed=True)` the chat for iframes at /embed/, which fills its frame: the conversation scrolls
inside, the input stays at the bottom. qa.serve.api mounts both beside the HTTP API, with PAGE_CSS
(or EMBED_CSS) and PAGE_JS. Example questions and the source list are read from the index on every
page load, so they follow `qa index build/add/remove`.

An answer bubble is a list of parts, one small function each (`answer_parts`): add a part there.
"""

from __future__ import annotations

import html
import re
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from ..chunk import sentence_spans
from ..errors import InvalidQuestion, QAError
from ..records import Answer, Citation, CitedAlternate
from ..retrieve import Filters
from ..wording import plural

if TYPE_CHECKING:
    from ..records import Article
    from .engine import Engine

NOT_FOUND = "Not found in the indexed articles."
SEARCHING = '<div class="qa-searching"><span class="qa-spinner"></span> Searching the indexed articles…</div>'
SAMPLE_TITLE = "Trump receives ‘nice letter’ from Kim Jong Un"
SAMPLE_QUESTIONS = [
    "What did Sanders say about a second meeting?",
    "Where was the summit held?",
    "What did North Korea pledge at the summit?",
]
GENERIC_QUESTION = "What is in the news?"  # only when the index holds no article to draw from
MAX_EXAMPLES = 3
MAX_SLIDER_K = 20  # the filter row's "passages" slider; the API allows up to Settings.max_k
ANY_SOURCE = ""  # the source dropdown's "any source" value
MAX_SENTENCE_CHARS = 320  # a longer "sentence" (no punctuation) is cut to words around the answer
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
.qa-answer details.qa-passage { margin-top: .3em; font-size: .95em; }
details.qa-passage > summary { list-style: none; cursor: pointer; }
details.qa-passage > summary::-webkit-details-marker { display: none; }
.qa-toggle { font-size: .85em; opacity: .7; white-space: nowrap; text-decoration: underline dotted; }
details.qa-passage .qa-less, details.qa-passage[open] .qa-sentence, details.qa-passage[open] .qa-more { display: none; }
details.qa-passage[open] .qa-less { display: inline; }
.qa-sources, .qa-also { font-size: .9em; }
.qa-sources ol, .qa-also ul { margin: .2em 0 .2em 1.2em !important; padding: 0 !important; }
.qa-meta { opacity: .75; }
.qa-answer details { margin-top: .4em; font-size: .9em; }
.qa-answer summary { cursor: pointer; }
.qa-searching { opacity: .8; font-style: italic; }
.qa-spinner { display: inline-block; width: .8em; height: .8em; border: 2px solid currentColor;
  border-right-color: transparent; border-radius: 50%; animation: qa-spin .8s linear infinite; vertical-align: -.1em; }
@keyframes qa-spin { to { transform: rotate(360deg); } }
.qa-error { color: #b91c1c; }
.qa-quote-by { margin: -.2em 0 .4em; font-style: italic; }
#qa-filters .form { flex-wrap: wrap !important; }
#qa-filters .form > .block { flex: 1 1 180px !important; min-width: 180px !important; }
#qa-filters input.time { min-width: 0 !important; width: 100%; }  /* its size=20 would overflow a narrow frame */
"""

# Both pages are the viewport's height; the conversation scrolls inside, the input stays at the
# bottom. Gradio's flex column (gradio-app > .gradio-container > .main > .wrap > main.contain >
# columns) sizes to its content by default, so each level is pinned to the viewport and may shrink.
FILL_CSS = """
html, body { height: 100% !important; min-height: 0 !important; margin: 0; }
gradio-app, .gradio-container, .gradio-container .main, .gradio-container .wrap, main.contain,
main.contain .column { min-height: 0 !important; }
gradio-app, .gradio-container { height: 100% !important; }
#qa-chat { flex: 1 1 0 !important; height: auto !important; }
#qa-filters { flex: none !important; }
"""
# The full page scrolls only when the window is too short for a usable chat.
PAGE_CSS = CSS + FILL_CSS + """
gradio-app { min-height: 640px !important; }
#qa-chat { min-height: 240px !important; }
"""
# /embed/ is exactly the iframe's height and never scrolls; it has no margins, title or footer.
EMBED_CSS = CSS + FILL_CSS + """
html, body { overflow: hidden !important; }
#qa-chat { min-height: 0 !important; }
.gradio-container { padding: 0 !important; max-width: none !important; }
.gradio-container .main.app { padding: 6px !important; }
main.contain { gap: 6px !important; }
#qa-chat .message-row { margin-left: 6px !important; margin-right: 6px !important; }
#qa-chat .bot-row { max-width: 100% !important; }
footer { display: none !important; }
"""

# ?theme=dark|light (Gradio's own switch is ?__theme=) and ?lang=xx (marks the page's language for
# screen readers and hyphenation; Gradio's own labels follow the browser's language).
PAGE_JS = """
() => {
  const query = new URLSearchParams(window.location.search);
  const theme = query.get("theme");
  if (theme === "dark" || theme === "light") document.body.classList.toggle("dark", theme === "dark");
  const lang = query.get("lang");
  if (lang && /^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$/.test(lang)) document.documentElement.lang = lang;
}
"""


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


def sentence_bounds(passage: str, start: int, end: int) -> tuple[int, int]:
    """Offsets of the sentence(s) around passage[start:end]; a run-on "sentence" is cut to words."""
    around = [(s, e) for s, e in sentence_spans(passage) if s < max(end, start + 1) and e > start]
    lo, hi = (around[0][0], around[-1][1]) if around else (0, len(passage))
    if hi - lo > MAX_SENTENCE_CHARS:  # keep whole words, centred on the answer
        room = max(0, MAX_SENTENCE_CHARS - (end - start)) // 2
        if start - room > lo:
            lo = passage.find(" ", start - room, start) + 1 or start
        if end + room < hi:
            cut = passage.rfind(" ", end, end + room)
            hi = cut if cut > 0 else end
    return lo, hi


def highlight(passage: str, start: int, end: int, lo: int = 0, hi: int | None = None) -> str:
    """passage[lo:hi], escaped and whitespace collapsed, with the answer passage[start:end] in <mark>."""
    squash = lambda s: re.sub(r"\s+", " ", s)  # noqa: E731  (keeps the spaces around the answer)
    hi = len(passage) if hi is None else hi
    before = squash(passage[lo:start]).lstrip()
    span = squash(passage[start:end]).strip()
    after = squash(passage[end:hi]).rstrip()
    return f"{html.escape(before)}<mark>{html.escape(span)}</mark>{html.escape(after)}"


def render_passage(c: Citation) -> str:
    """The sentence around the answer; a click on it opens the whole passage (if there is more)."""
    full = highlight(c.passage, c.answer_start, c.answer_end)
    lo, hi = sentence_bounds(c.passage, c.answer_start, c.answer_end)
    if not c.passage[:lo].strip() and not c.passage[hi:].strip():
        return f'<blockquote class="qa-passage">{full}</blockquote>'
    sentence = (
        ("… " if c.passage[:lo].strip() else "")
        + highlight(c.passage, c.answer_start, c.answer_end, lo, hi)
        + (" …" if c.passage[hi:].strip() else "")
    )
    return (
        '<details class="qa-passage"><summary title="Show the whole passage">'
        f'<span class="qa-sentence">{sentence}</span> <span class="qa-toggle qa-more">whole passage</span>'
        '<span class="qa-toggle qa-less">show less</span></summary>'
        f'<div class="qa-full">{full}</div></details>'
    )


def render_quote(answer: Answer) -> str:
    """The speaker under a quotation answer: "— Sarah Sanders, White House spokeswoman" ("" otherwise)."""
    q = answer.quote
    if q is None:
        return ""
    who = text(q.speaker) + (f", {text(q.role)}" if q.role else "")
    how = "reported speech" if q.kind == "reported" else text(q.cue)
    return f'<div class="qa-quote-by">— {who} <span class="qa-meta">({how})</span></div>'


def render_link(title: str | None, url: str | None, source: str | None, day: str | None) -> str:
    """One list item: the title (a link for http(s) URLs), then source and day."""
    url = safe_url(url)
    name = title or source or url or "untitled"
    label = text(name)
    head = f'<a href="{html.escape(url, quote=True)}" target="_blank" rel="noopener noreferrer nofollow">{label}</a>' if url else label
    meta = " · ".join(text(x) for x in (source if source != name else None, (day or "")[:10]) if x)
    return f"<li>{head}" + (f' <span class="qa-meta">· {meta}</span>' if meta else "") + "</li>"


def render_source(c: Citation) -> str:
    return render_link(c.title or c.article_id, c.url, c.source, c.date)


def render_head(answer: Answer) -> str:
    level = confidence_label(answer.score)
    return (
        f'<div class="qa-head"><strong class="qa-text">{text(answer.answer or "")}</strong>'
        f'<span class="qa-conf qa-conf-{level}" title="score {answer.score:.2f}">{level} confidence · {answer.score:.2f}</span></div>'
    )


def render_sources(answer: Answer) -> str:
    sources, seen = [], set()
    for c in answer.citations:
        if c.article_id not in seen:
            seen.add(c.article_id)
            sources.append(render_source(c))
    return f'<div class="qa-sources"><strong>Sources</strong><ol>{"".join(sources)}</ol></div>'


def render_also_reported(answer: Answer) -> str:
    """The cited articles' near-duplicate copies elsewhere (their `alternates`), once each."""
    seen: set[CitedAlternate] = set()
    items = []
    for c in answer.citations:
        for alt in c.alternates:
            if alt not in seen:
                seen.add(alt)
                items.append(render_link(alt.title, alt.url, alt.source, alt.date))
    return f'<div class="qa-also"><strong>Also reported by</strong><ul>{"".join(items)}</ul></div>' if items else ""


def render_more_passages(answer: Answer) -> str:
    more = answer.citations[1:]
    if not more:
        return ""
    passages = "".join(f'<blockquote class="qa-passage">{highlight(c.passage, c.answer_start, c.answer_end)}</blockquote>'
                       for c in more)
    return f"<details><summary>Same answer in {plural(len(more), 'more passage')}</summary>{passages}</details>"


def render_alternatives(answer: Answer) -> str:
    if not answer.alternatives:
        return ""
    items = "".join(f"<li>{text(a.answer)} <span class=\"qa-meta\">({a.score:.2f})</span></li>" for a in answer.alternatives)
    return f'<details class="qa-alts"><summary>Other candidate answers ({len(answer.alternatives)})</summary><ul>{items}</ul></details>'


def answer_parts(answer: Answer) -> list[str]:
    """The bubble's parts, top to bottom (empty strings are left out)."""
    return [
        render_head(answer),
        render_quote(answer),
        render_passage(answer.citations[0]),
        render_sources(answer),
        render_also_reported(answer),
        render_more_passages(answer),
        render_alternatives(answer),
    ]


def render_answer(answer: Answer) -> str:
    """One chat bubble: answer + confidence, the sentence around it, sources, collapsed extras."""
    if not answer.found or not answer.citations:
        return NOT_FOUND
    return '<div class="qa-answer">' + "".join(part for part in answer_parts(answer) if part) + "</div>"


def render_error(message: str) -> str:
    return f'<div class="qa-error">{text(message)}</div>'


def stats_markdown(stats: dict) -> str:
    updated = stats.get("updated_at") or ""
    try:
        updated = datetime.fromisoformat(updated).strftime("%Y-%m-%d %H:%M %Z").strip()
    except ValueError:
        updated = escape(updated)
    bold = lambda n, word: f"**{n}** " + plural(n, word).split(" ", 1)[1]  # noqa: E731
    line = f"{bold(stats['articles'], 'article')} · {bold(stats['chunks'], 'passage')} · last update {updated or 'unknown'}"
    sources = stats.get("sources") or []
    if sources:
        shown = ", ".join(escape(s) for s in sources[:8]) + (f" and {len(sources) - 8} more" if len(sources) > 8 else "")
        line += f" · sources: {shown}"
    return line


# ---- example questions --------------------------------------------------------------------------


def configured_examples(value: str) -> list[str]:
    """QA_EXAMPLES: questions separated by '|'."""
    return [q for q in (" ".join(part.split()) for part in value.split("|")) if q]


def headline_question(title: str) -> str | None:
    """A question a headline's article answers: "What happened: <headline>?" (markup removed,
    ALL-CAPS wire headlines in sentence case, at most 90 characters)."""
    plain = " ".join(re.sub(r"[<>\[\]*_`#\\|]", "", re.sub(r"<[^>]*>", "", title or "")).split()).rstrip(".?!:;")
    if plain.isupper():
        plain = plain[0] + plain[1:].lower()
    if len(plain) > 90:
        plain = plain[:90].rsplit(" ", 1)[0] + "…"
    return f"What happened: {plain}?" if plain else None


def example_questions(articles: Iterable[Article], configured: Iterable[str] = ()) -> list[str]:
    """QA_EXAMPLES if set; else the bundled sample's questions when it is indexed; else questions
    from the newest articles' headlines. Never empty (a click on an example must have a handler)."""
    configured = list(configured)
    if configured:
        return configured[:MAX_EXAMPLES * 2]
    articles = list(articles)
    if any((a.title or "").startswith(SAMPLE_TITLE) for a in articles):
        return list(SAMPLE_QUESTIONS)
    newest = sorted(articles, key=lambda a: a.published or "", reverse=True)
    questions: list[str] = []
    for article in newest:
        question = headline_question(article.title)
        if question and question not in questions:
            questions.append(question)
        if len(questions) == MAX_EXAMPLES:
            break
    return questions or [GENERIC_QUESTION]


# ---- filters ------------------------------------------------------------------------------------


def chat_filters(source: str | None, date_from: str | None, date_to: str | None) -> Filters | None:
    """The filter row's values as Filters (None: no filter); InvalidQuestion names the field."""
    days = []
    for label, value in (("From", date_from), ("To", date_to)):
        value = (value or "").strip()
        try:
            days.append(date.fromisoformat(value).isoformat() if value else None)
        except ValueError:
            raise InvalidQuestion(f"the “{label}” date must be YYYY-MM-DD, not {value[:40]!r}") from None
    if days[0] and days[1] and days[0] > days[1]:
        raise InvalidQuestion("the “From” date is after the “To” date")
    filters = Filters((source or "").strip() or None, days[0], days[1])
    return filters if filters.active else None


# ---- Gradio -------------------------------------------------------------------------------------


def chat_reply(engine: Engine, message: str, history: list, filters: Filters | None = None,
               k: int | None = None) -> Iterator[str]:
    """The chat function: a visible "searching" state first, then the answer bubble."""
    yield SEARCHING
    try:
        yield render_answer(engine.ask(message, history, k, filters))
    except InvalidQuestion as exc:
        yield render_error(f"Invalid question: {exc}.")
    except QAError as exc:
        yield render_error(f"Error: {exc}")


def filtered_reply(engine: Engine, message: str, history: list, source: str | None, date_from: str | None,
                   date_to: str | None, k: float | None) -> Iterator[str]:
    """The chat function with the filter row's values (Gradio passes them in this order)."""
    try:
        filters = chat_filters(source, date_from, date_to)
    except InvalidQuestion as exc:
        yield render_error(f"Invalid filter: {exc}.")
        return
    yield from chat_reply(engine, message, history, filters, None if k is None else int(k))


def page_state(engine: Engine) -> dict:
    """What a page shows from the index as it is now (reloaded if it changed on disk)."""
    stats = engine.stats()
    articles = engine.service.store.articles.values()
    return {
        "stats": stats,
        "sources": list(stats.get("sources") or []),
        "examples": example_questions(articles, configured_examples(engine.settings.examples)),
    }


def source_choices(sources: list[str]) -> list[tuple[str, str]]:
    return [("Any source", ANY_SOURCE)] + [(s, s) for s in sources]


def build_ui(engine: Engine, embed: bool = False):
    import gradio as gr

    def respond(message: str, history: list, source: str, date_from: str | None, date_to: str | None, k: float):
        yield from filtered_reply(engine, message, history, source, date_from, date_to, k)

    settings = engine.settings
    state = page_state(engine)
    with gr.Blocks(title="News QA", analytics_enabled=False, fill_height=True) as demo:
        if not embed:
            gr.Markdown("# News QA\nExtractive answers from the indexed news articles, each with its highlighted source.")
            stats = gr.Markdown(stats_markdown(state["stats"]), elem_id="qa-stats")
        with gr.Accordion("Filters", open=False, elem_id="qa-filters"):
            with gr.Row():
                # Custom values: the choices change with the index, and API callers name any source.
                source = gr.Dropdown(source_choices(state["sources"]), value=ANY_SOURCE, label="Source",
                                     allow_custom_value=True, elem_id="qa-source", min_width=140)
                date_from = gr.DateTime("", label="From", include_time=False, type="string", elem_id="qa-date-from",
                                        min_width=140)
                date_to = gr.DateTime("", label="To", include_time=False, type="string", elem_id="qa-date-to",
                                      min_width=140)
                k = gr.Slider(1, min(MAX_SLIDER_K, settings.max_k), value=min(settings.top_k, settings.max_k), step=1,
                              label="Passages to read", elem_id="qa-k", min_width=140)
        chat = gr.ChatInterface(
            respond,
            chatbot=gr.Chatbot(
                elem_id="qa-chat",
                latex_delimiters=[],
                show_label=False,
                placeholder="Ask a question about the indexed news articles." if not embed else None,
                height=None,  # the page's height (FILL_CSS)
                scale=1,
                buttons=["copy_all"],  # no "share" (to Hugging Face Spaces)
            ),
            textbox=gr.Textbox(
                placeholder="Ask about the news… (follow-up questions work too)",
                max_length=settings.max_question_chars,
                show_label=False,
                submit_btn=True,
                elem_id="qa-input",
            ),
            additional_inputs=[source, date_from, date_to, k],
            examples=[[q] for q in state["examples"]],  # one-item lists: the filters keep their values
            cache_examples=False,
            api_name="ask",
            autofocus=not embed,
            fill_height=True,
            analytics_enabled=False,
        )

        def refresh():
            now = page_state(engine)
            updates = [
                gr.Chatbot(examples=[{"text": q} for q in now["examples"]]),
                gr.Dropdown(choices=source_choices(now["sources"])),
            ]
            return updates if embed else [*updates, stats_markdown(now["stats"])]

        demo.load(refresh, outputs=[chat.chatbot, source] + ([] if embed else [stats]), api_visibility="private",
                  queue=False)
    return demo
