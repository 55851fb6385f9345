"""Fetch: one bounded HTTP(S) GET, for feeds and article pages (part of ingestion).

Every fetch is limited: only http(s) URLs, a wall-clock timeout for the whole fetch (redirects and
body included), a size limit on the decoded body, at most `max_redirects` redirects (each checked:
never to a non-http(s) scheme, never in a loop) and, when asked, an allowed set of content types.
Any failure is a `FetchError` (an `IngestError`) whose message says why, so the caller reports the
URL as skipped and goes on with the batch. Conditional GET (ETag / Last-Modified) is supported:
a 304 answer comes back as a `Response` with `not_modified` set.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from importlib import metadata
from typing import Iterable
from urllib.parse import urljoin, urlsplit

import httpx

from ..errors import IngestError

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
FEED_TYPES = frozenset({
    "application/rss+xml", "application/atom+xml", "application/rdf+xml", "application/xml", "text/xml",
    "application/x-rss+xml", "application/x-atom+xml",
})
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
DEFAULT_TIMEOUT = 20.0  # seconds for the whole fetch
DEFAULT_MAX_BYTES = 10 * 2**20
DEFAULT_MAX_REDIRECTS = 5
META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.I)


def user_agent() -> str:
    try:
        version = metadata.version("news-qa")
    except metadata.PackageNotFoundError:
        version = "dev"
    return f"news-qa/{version} (self-hosted news question answering; feed reader)"


class FetchError(IngestError):
    """A URL could not be fetched (the message says why)."""


@dataclass(frozen=True)
class Response:
    url: str  # what was asked for
    final_url: str  # after redirects
    status: int  # 200-299, or 304 for a conditional GET that found nothing new
    content_type: str  # media type, lower case, without parameters ("" when not sent)
    charset: str | None
    body: bytes
    etag: str | None = None
    last_modified: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    def text(self) -> str:
        """The body decoded: HTTP charset, else a <meta charset>, else UTF-8, else Windows-1252."""
        for encoding in (self.charset, _meta_charset(self.body)):
            if encoding:
                try:
                    return self.body.decode(encoding, errors="replace")
                except LookupError:
                    continue
        try:
            return self.body.decode("utf-8-sig")
        except UnicodeDecodeError:
            return self.body.decode("cp1252", errors="replace")


def is_http_url(url: str) -> bool:
    parts = urlsplit(url.strip())
    return parts.scheme.lower() in {"http", "https"} and bool(parts.netloc)


class Fetcher:
    """A reusable HTTP client with the limits above; use as a context manager or call close()."""

    def __init__(
        self,
        timeout: float = DEFAULT_TIMEOUT,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_redirects: int = DEFAULT_MAX_REDIRECTS,
        agent: str | None = None,
    ):
        if timeout <= 0 or max_bytes <= 0 or max_redirects < 0:
            raise ValueError("fetch limits must be positive")
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.user_agent = agent or user_agent()
        self._client = httpx.Client(
            follow_redirects=False,  # followed by hand, so every hop is checked
            headers={"User-Agent": self.user_agent, "Accept-Encoding": "gzip, deflate"},
            trust_env=False,
        )

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def get(
        self,
        url: str,
        accept: Iterable[str] | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> Response:
        """GET url within the limits; `accept` (media types) refuses any other content type."""
        url = url.strip()
        if not is_http_url(url):
            raise FetchError(f"not an http(s) URL: {url[:80]}")
        allowed = frozenset(accept) if accept is not None else None
        headers = {"Accept": _accept_header(allowed)}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        deadline = time.monotonic() + self.timeout
        current, seen = url, {url}
        for _ in range(self.max_redirects + 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise FetchError(f"timed out after {self.timeout:g} s")
            try:
                with self._client.stream("GET", current, headers=headers, timeout=httpx.Timeout(remaining)) as resp:
                    if resp.status_code in REDIRECT_CODES and resp.headers.get("location"):
                        target = urljoin(current, resp.headers["location"].strip())
                        if not is_http_url(target):
                            raise FetchError(f"redirect to a non-http(s) URL refused: {target[:80]}")
                        if target in seen:
                            raise FetchError(f"redirect loop at {target[:80]}")
                        seen.add(target)
                        current = target
                        continue
                    return self._finish(url, current, resp, allowed, deadline)
            except httpx.TimeoutException:
                raise FetchError(f"timed out after {self.timeout:g} s") from None
            except httpx.TooManyRedirects:  # pragma: no cover - redirects are followed by hand
                raise FetchError("too many redirects") from None
            except httpx.InvalidURL as exc:  # e.g. a redirect to "javascript:…", refused while httpx parses it
                raise FetchError(f"invalid or non-http(s) URL refused: {str(exc)[:120]}") from None
            except httpx.HTTPError as exc:
                raise FetchError(f"cannot fetch: {type(exc).__name__}: {str(exc)[:120] or 'connection failed'}") from None
        raise FetchError(f"too many redirects (more than {self.max_redirects})")

    def _finish(self, url: str, final_url: str, resp: httpx.Response, allowed, deadline: float) -> Response:
        etag, last_modified = resp.headers.get("etag"), resp.headers.get("last-modified")
        content_type, charset = _media_type(resp.headers.get("content-type", ""))
        if resp.status_code == 304:
            return Response(url, final_url, 304, content_type, charset, b"", etag, last_modified)
        if resp.status_code >= 400:
            raise FetchError(f"HTTP {resp.status_code} {resp.reason_phrase}".strip())
        if not 200 <= resp.status_code < 300:
            raise FetchError(f"unexpected HTTP status {resp.status_code}")
        if allowed is not None and content_type not in allowed:
            raise FetchError(f"unsupported content type {content_type or '(none)'}")
        declared = resp.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise FetchError(f"response larger than {_size(self.max_bytes)} ({_size(int(declared))} declared)")
        body = bytearray()
        for block in resp.iter_bytes():
            body += block
            if len(body) > self.max_bytes:
                raise FetchError(f"response larger than {_size(self.max_bytes)}")
            if time.monotonic() > deadline:
                raise FetchError(f"timed out after {self.timeout:g} s")
        return Response(url, final_url, resp.status_code, content_type, charset, bytes(body), etag, last_modified)


def _media_type(header: str) -> tuple[str, str | None]:
    media, _, params = header.partition(";")
    charset = None
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip("\"'")
    return media.strip().lower(), charset


def _meta_charset(body: bytes) -> str | None:
    match = META_CHARSET.search(body[:4096])
    return match.group(1).decode("ascii") if match else None


def _accept_header(allowed: frozenset[str] | None) -> str:
    if not allowed:
        return "*/*"
    return ", ".join(sorted(allowed)) + ", */*;q=0.1"


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 1024:.0f} KiB" if n >= 1024 else f"{n} bytes"
