"""HTTP API and server: one FastAPI app serving the JSON API, the chat UI and the embeddable chat.

    /               chat UI (Gradio; its own API works with gradio_client, endpoint "/ask")
    /embed/         the chat alone, for an iframe (CSP frame-ancestors: Settings.frame_ancestors)
    POST /api/ask   {"question", "history"?, "k"?, "filters"?, "as_of"?} → the JSON of `qa ask --json`
    GET  /api/quotes?speaker=…&about=… what a speaker said, best match first (qa.speakers)
    GET  /api/stats what the index holds
    GET  /api/health liveness/readiness (never needs the token, never waits for the models)
    /docs           OpenAPI docs

The UI and the API share one `qa.serve.engine.Engine`.
"""

# No `from __future__ import annotations`: FastAPI must see the request models defined in create_app.
import json
import logging
import re
import secrets
import threading
from datetime import date
from typing import Annotated, Any, Literal

from ..answer import QAService
from ..config import Settings
from ..errors import InvalidQuestion, QAError
from ..retrieve import Filters
from ..timeframe import parse_as_of
from .engine import Busy, Engine


MAX_BODY_BYTES = 256 * 1024  # /api/* request bodies
# Every other body (the chat's Gradio calls carry the conversation so far). Both limits count the
# bytes actually read, chunked bodies included (Starlette's RequestBodyLimitMiddleware, FastAPI's
# max_body_size), so no request is read past them.
MAX_UI_BODY_BYTES = 2 * 2**20
UPLOAD_PATHS = ("/gradio_api/upload", "/gradio_api/process_recording")  # the chat takes no files
MAX_HISTORY_TURNS = 50
MAX_TURN_CHARS = 20_000  # an earlier turn (answers quote passages, so longer than a question)
MAX_SOURCE_CHARS = 500
MAX_SPEAKER_CHARS = 200  # GET /api/quotes
MAX_QUOTES = 100


# ---- Content-Security-Policy frame-ancestors ------------------------------------------------------

_CSP_SOURCE = re.compile(
    r"^(?:'self'|'none'|\*|https?:|(?:https?://(?:\*\.)?[a-z0-9-]+|(?:\*\.)?[a-z0-9-]+\.[a-z0-9-]+)(?:\.[a-z0-9-]+)*"
    r"(?::(?:[0-9]{1,5}|\*))?(?:/[^\s;,'\"]*)?)$",
    re.IGNORECASE,
)


def frame_ancestors(value: str) -> str:
    """Validate QA_FRAME_ANCESTORS (space-separated CSP sources, e.g. "'self' https://news.example")."""
    sources = value.split() or ["'self'"]
    for source in sources:
        if not _CSP_SOURCE.match(source):
            raise QAError(
                f"QA_FRAME_ANCESTORS: {source[:80]!r} is not a CSP source; use space-separated origins "
                "such as 'self' https://news.example https://*.example.org, or 'none'"
            )
    return " ".join(sources)


def too_large(path: str) -> str:
    return f"request body over {MAX_BODY_BYTES if path.startswith('/api/') else MAX_UI_BODY_BYTES} bytes"


class SecurityHeaders:
    """ASGI middleware: CSP frame-ancestors on every response ('self' except under /embed/), nosniff,
    and no file uploads to Gradio (404 before anything is read). Body sizes are limited by
    FastAPI's max_body_size (see create_app); every 413 becomes our JSON error here."""

    def __init__(self, app, embed_ancestors: str):
        self.app = app
        self.embed_policy = f"frame-ancestors {embed_ancestors}".encode()
        self.default_policy = b"frame-ancestors 'self'"

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        if path.removeprefix("/embed").rstrip("/") in UPLOAD_PATHS:
            from starlette.responses import JSONResponse

            response = JSONResponse({"error": "this server accepts no file uploads"}, status_code=404)
            return await response(scope, receive, send)
        policy = self.embed_policy if path == "/embed" or path.startswith("/embed/") else self.default_policy
        replaced = False

        async def send_with_headers(message):
            nonlocal replaced
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"content-security-policy"]
                if message["status"] == 413:  # Starlette's plain text, Gradio's {"detail"}: one shape for all
                    replaced = True
                    body = json.dumps({"error": too_large(path)}).encode()
                    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                               (b"connection", b"close")]  # the rest of the body is never read
                    await send({**message, "headers": headers + self._security(policy, headers)})
                    await send({"type": "http.response.body", "body": body})
                    return
                message = {**message, "headers": headers + self._security(policy, headers)}
            elif replaced:
                return  # the plain-text body replaced above
            await send(message)

        await self.app(scope, receive, send_with_headers)

    @staticmethod
    def _security(policy: bytes, headers: list) -> list:
        extra = [(b"content-security-policy", policy)]
        if not any(k.lower() == b"x-content-type-options" for k, _ in headers):
            extra.append((b"x-content-type-options", b"nosniff"))
        return extra


# ---- request and response models --------------------------------------------------------------------


def _models(max_question_chars: int, max_k: int):
    from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

    strict = ConfigDict(extra="forbid", strict=True)

    class Message(BaseModel):
        model_config = strict
        role: Literal["user", "assistant"]
        content: str = Field(max_length=MAX_TURN_CHARS)

    class FiltersIn(BaseModel):
        model_config = strict
        source: str | None = Field(None, max_length=MAX_SOURCE_CHARS, description="Exact source name, case-insensitive.")
        date_from: str | None = Field(None, description="Published on or after this day (YYYY-MM-DD).", examples=["2018-01-01"])
        date_to: str | None = Field(None, description="Published on or before this day (YYYY-MM-DD).", examples=["2018-12-31"])

        @field_validator("date_from", "date_to")
        @classmethod
        def _iso_date(cls, value: str | None) -> str | None:
            if value is not None:
                try:
                    return date.fromisoformat(value).isoformat()
                except ValueError:
                    raise ValueError(f"must be a date as YYYY-MM-DD, got {value[:40]!r}") from None
            return value

        @model_validator(mode="after")
        def _ordered(self):
            if self.date_from and self.date_to and self.date_from > self.date_to:
                raise ValueError("date_from is after date_to")
            return self

    class AskRequest(BaseModel):
        model_config = ConfigDict(
            extra="forbid",
            strict=True,
            json_schema_extra={
                "examples": [
                    {"question": "What did Sanders say about a second meeting?"},
                    {
                        "question": "And what did she say about the letter?",
                        "history": ["What did Sanders say about a second meeting?"],
                        "k": 5,
                        "filters": {"source": None, "date_from": None, "date_to": None},
                    },
                ]
            },
        )
        question: str = Field(
            min_length=1, max_length=max_question_chars,
            description=f"The question (at most {max_question_chars} characters: QA_MAX_QUESTION_CHARS).",
        )
        history: list[Annotated[str, Field(max_length=MAX_TURN_CHARS)] | Message] = Field(
            default_factory=list, max_length=MAX_HISTORY_TURNS,
            description="Earlier turns, oldest first: the user's earlier questions as strings, or "
            '{"role": "user"|"assistant", "content": ...} messages. Follow-up questions ("And what did '
            'she say…?") are retrieved with them.',
        )
        k: int | None = Field(None, ge=1, le=max_k, description=f"Passages to read, 1 to {max_k} (default QA_TOP_K).")
        filters: FiltersIn | None = None
        as_of: str | None = Field(
            None, max_length=40, examples=["2024-03-20"],
            description='Ask as of this day (YYYY-MM-DD or ISO date-time; default now): "this week" is that '
            "day's week, articles published after it are left out, and newer ones lean ahead.",
        )

        @field_validator("as_of")
        @classmethod
        def _as_of_date(cls, value: str | None) -> str | None:
            if value is not None:
                parse_as_of(value)  # its ValueError becomes a 422
            return value

        @field_validator("question")
        @classmethod
        def _not_blank(cls, value: str) -> str:
            if not value.strip():
                raise ValueError("the question is empty")
            return value

    class CitedAlternateOut(BaseModel):
        source: str | None
        title: str | None
        url: str | None
        date: str | None

    class CitationOut(BaseModel):
        article_id: str
        title: str
        url: str | None
        date: str | None
        source: str | None
        passage: str
        passage_start: int = Field(description="Offset of the passage in the article text.")
        answer_start: int = Field(description="Offset of the answer in the passage.")
        answer_end: int
        alternates: list[CitedAlternateOut] = Field(
            default_factory=list,
            description="The same story from other sources: near-duplicate copies collapsed into this article "
            "when indexing (also reported by).",
        )

    class AlternativeOut(BaseModel):
        answer: str
        score: float
        article_id: str

    class TimeWindowOut(BaseModel):
        model_config = ConfigDict(populate_by_name=True)
        from_: str | None = Field(alias="from", description="First day (YYYY-MM-DD) of the preferred articles, or null.")
        to: str | None = Field(description="Last day preferred (or the as-of day), or null.")
        reason: str = Field(description='What set it: "this week", "latest", "as of 20 March 1987".')
    class QuoteOut(BaseModel):
        speaker: str
        speaker_as_written: str
        cue: str
        kind: Literal["direct", "reported"]
        role: str | None = None
        parts: list[list[int]] = Field(description="The quoted words as [start, end] offsets in the first citation's passage.")

    class AnswerOut(BaseModel):
        question: str
        answer: str | None
        found: bool
        score: float = Field(description="Calibrated: the estimated probability that the answer is right; found "
                                         "when it reaches QA_FOUND_THRESHOLD.")
        citations: list[CitationOut]
        alternatives: list[AlternativeOut]
        quote: QuoteOut | None = Field(None, description="Who said the answer, when it is a quotation (else null).")
        time_window: TimeWindowOut | None = Field(None, description="The dates the question was read as asking about.")

    class ErrorOut(BaseModel):
        error: str
        details: list[dict[str, Any]] | None = None

    return AskRequest, AnswerOut, ErrorOut


# ---- the app ------------------------------------------------------------------------------------------


def create_app(settings: Settings, service: QAService | None = None):
    """The FastAPI app (API + Gradio UI at / + widget at /embed/). Loads the index now."""
    import gradio as gr
    from fastapi import Depends, FastAPI, HTTPException, Query, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, RedirectResponse
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.middleware.body_limit import RequestBodyLimitMiddleware

    from .ui import EMBED_CSS, PAGE_CSS, PAGE_JS, build_ui

    ancestors = frame_ancestors(settings.frame_ancestors)
    engine = Engine(settings, service)
    engine.load()
    AskRequest, AnswerOut, ErrorOut = _models(settings.max_question_chars, settings.max_k)
    errors = {401: {"model": ErrorOut}, 413: {"model": ErrorOut}, 422: {"model": ErrorOut}, 503: {"model": ErrorOut}}

    app = FastAPI(
        title="News QA",
        version="1",
        description="Extractive, cited answers from the indexed news articles. "
        + ("Send `Authorization: Bearer <QA_API_TOKEN>` to /api/ask, /api/quotes and /api/stats." if settings.api_token else ""),
    )
    app.state.engine = engine
    bearer = HTTPBearer(auto_error=False, description="QA_API_TOKEN, when the server sets one")

    def require_token(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        token = settings.api_token
        if not token:
            return
        given = credentials.credentials if credentials else ""
        if not secrets.compare_digest(given.encode(), token.encode()):
            raise HTTPException(401, "missing or wrong API token (Authorization: Bearer <QA_API_TOKEN>)",
                                headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(StarletteHTTPException)  # FastAPI's own (body parsing, body limit) are Starlette's
    async def http_error(request: Request, exc: StarletteHTTPException):
        detail = too_large(request.url.path) if exc.status_code == 413 else str(exc.detail)
        return JSONResponse({"error": detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(QAError)  # the index on disk went missing or bad: one line, never a traceback
    async def service_unavailable(request: Request, exc: QAError):
        return JSONResponse({"error": str(exc)}, status_code=503)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        details = [
            {"loc": [str(x) for x in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors()
        ]
        summary = "; ".join(
            "body is not valid JSON" if d["type"] == "json_invalid" else f"{'.'.join(d['loc'][1:]) or 'body'}: {d['msg']}"
            for d in details[:5]
        )
        return JSONResponse({"error": f"invalid request: {summary}", "details": details}, status_code=422)

    @app.post("/api/ask", response_model=AnswerOut, responses=errors, dependencies=[Depends(require_token)],
              summary="Answer a question (with optional conversation history)", max_body_size=MAX_BODY_BYTES)
    def api_ask(body: AskRequest):  # sync: runs in the thread pool, so health stays responsive
        filters = None
        if body.filters is not None:
            source = (body.filters.source or "").strip() or None  # "" (an empty form field) = any source
            filters = Filters(source, body.filters.date_from, body.filters.date_to)
        history = [h if isinstance(h, str) else h.model_dump() for h in body.history]
        try:
            answer = engine.ask(body.question, history, body.k, filters, as_of=body.as_of)
        except InvalidQuestion as exc:
            raise HTTPException(422, f"invalid question: {exc}") from None
        except Busy as exc:
            raise HTTPException(503, str(exc), headers={"Retry-After": str(exc.retry_after)}) from None
        except QAError as exc:  # the index went missing or bad on disk
            raise HTTPException(503, str(exc)) from None
        return answer.to_dict()

    @app.get("/api/quotes", responses=errors, dependencies=[Depends(require_token)],
             summary="What a speaker said, best match to `about` first (newest first without it)")
    def api_quotes(
        speaker: Annotated[str, Query(min_length=1, max_length=MAX_SPEAKER_CHARS, description='"Sanders", "Ms Sanders", "the minister"')],
        about: Annotated[str | None, Query(max_length=settings.max_question_chars)] = None,
        source: Annotated[str | None, Query(max_length=MAX_SOURCE_CHARS)] = None,
        date_from: Annotated[date | None, Query(description="YYYY-MM-DD")] = None,
        date_to: Annotated[date | None, Query(description="YYYY-MM-DD")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_QUOTES)] = 10,
    ) -> dict:
        if not speaker.strip():
            raise HTTPException(422, "invalid request: speaker is empty")
        if date_from and date_to and date_from > date_to:
            raise HTTPException(422, "invalid request: date_from is after date_to")
        filters = Filters((source or "").strip() or None, date_from and date_from.isoformat(),
                          date_to and date_to.isoformat())
        try:
            found = engine.quotes(speaker, about, filters, limit)
        except Busy as exc:
            raise HTTPException(503, str(exc), headers={"Retry-After": "10"}) from None
        except QAError as exc:  # no quotes in this index, or the index went bad on disk
            raise HTTPException(503, str(exc)) from None
        return {"speaker": speaker, "about": about, "quotes": found}

    @app.get("/api/stats", responses=errors, dependencies=[Depends(require_token)], summary="What the index holds")
    def api_stats() -> dict:
        return engine.stats()

    @app.get("/api/health", summary="Liveness and readiness; open even with a token")
    async def api_health() -> dict:
        return {"status": "ok", "ready": engine.ready.is_set()}

    @app.api_route("/api/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    async def api_not_found(rest: str):  # keep /api/* out of the Gradio app mounted at /
        if rest in {"ask", "stats", "health", "quotes"}:
            raise HTTPException(405, "method not allowed; see /docs")
        raise HTTPException(404, "no such API endpoint; see /docs")

    @app.get("/embed", include_in_schema=False)
    async def embed_slash():
        return RedirectResponse("/embed/")

    theme = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
    common = dict(server_name=settings.host, server_port=settings.port, run_history=False, ssr_mode=False,
                  mcp_server=False, theme=theme, max_file_size="64kb", js=PAGE_JS)

    def bounded(blocks):  # Gradio's own queue of chat questions, bounded like the API's
        return blocks.queue(max_size=max(1, settings.max_waiting), default_concurrency_limit=1)

    gr.mount_gradio_app(app, bounded(build_ui(engine, embed=True)), path="/embed", footer_links=[], css=EMBED_CSS, **common)
    gr.mount_gradio_app(app, bounded(build_ui(engine)), path="/", footer_links=["api"], css=PAGE_CSS, **common)
    # Inside SecurityHeaders, so that its 413 is turned into JSON; /api/ask lowers it (max_body_size).
    app.add_middleware(RequestBodyLimitMiddleware, max_body_size=MAX_UI_BODY_BYTES)
    app.add_middleware(SecurityHeaders, embed_ancestors=ancestors)

    return app


def configure_logging() -> None:
    """Warnings and errors from everyone, INFO from qa. Libraries that set their own logger's level
    (bm25s sets DEBUG when imported: "Building index from tokens") are held to WARNING too."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("qa").setLevel(logging.INFO)
    for handler in logging.getLogger().handlers:
        handler.addFilter(lambda record: record.levelno >= logging.WARNING or record.name.split(".")[0] == "qa")


def serve(settings: Settings) -> None:
    import uvicorn

    configure_logging()
    app = create_app(settings)
    # Load and run the models once in the background: the UI is up at once, the first question is fast.
    threading.Thread(target=app.state.engine.warm_up, name="qa-warm-up", daemon=True).start()
    base = f"http://{settings.host}:{settings.port}"
    print(f"News QA on {base}/  (widget {base}/embed/, API {base}/api/ask, docs {base}/docs)", flush=True)
    if settings.api_token:
        print("API token required for /api/ask, /api/quotes and /api/stats (QA_API_TOKEN)", flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
