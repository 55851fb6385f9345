"""Fetch: one bounded HTTP(S) GET, for feeds and article pages (part of ingestion).

Every fetch is limited: only http(s) URLs, a hard wall-clock deadline for the whole fetch (DNS,
connecting, headers, redirects and body: every socket operation is given only the time left, so
a server trickling its headers a byte at a time cannot hold it), a size limit on the decoded
body, at most `max_redirects` redirects (each checked: never to a non-http(s) scheme, never in a
loop) and, when asked, an allowed set of content types.

Address policy (SSRF): feed entries and redirects choose where we connect, so every connection
resolves the host first and refuses loopback, private, link-local and other non-public addresses
(`allow_private`, or the networks in `allow_networks`, let an intranet deployment in), then
connects to the address it checked, so a second DNS answer cannot differ.

Any failure is a `FetchError` (an `IngestError`) whose message says why, so the caller reports the
URL as skipped and goes on with the batch. Conditional GET (ETag / Last-Modified) is supported:
a 304 answer comes back as a `Response` with `not_modified` set.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from importlib import metadata
from typing import Iterable
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

from ..config import parse_networks
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


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def address_refusal(address: IPAddress, allow_private: bool = False, allow_networks: Iterable[IPNetwork] = ()) -> str | None:
    """Why the policy refuses to connect to this address (None: allowed)."""
    forms = [address]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
        forms.append(address)
    if allow_private or any(a in net for a in forms for net in allow_networks if net.version == a.version):
        return None
    for kind, test in (("a loopback", "is_loopback"), ("a link-local", "is_link_local"), ("a private", "is_private"),
                       ("a multicast", "is_multicast"), ("an unspecified", "is_unspecified")):
        if getattr(address, test):
            return f"{kind} address"
    return None if address.is_global else "not a public address"


class _Deadline(threading.local):
    at: float | None = None  # time.monotonic() by which the current fetch must be over


class _GuardedStream(httpcore.NetworkStream):
    """A connection whose every read and write gets only the fetch's remaining time."""

    def __init__(self, stream: httpcore.NetworkStream, backend: _GuardedBackend):
        self._stream, self._backend = stream, backend

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._backend.time_left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._backend.time_left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context, server_hostname: str | None = None, timeout: float | None = None):
        timeout = self._backend.time_left(timeout, httpcore.ConnectTimeout)
        return _GuardedStream(self._stream.start_tls(ssl_context, server_hostname, timeout), self._backend)

    def get_extra_info(self, info: str):
        return self._stream.get_extra_info(info)


class _GuardedBackend(httpcore.NetworkBackend):
    """httpcore's socket backend with the fetch deadline on every operation and the address
    policy on every connection (after DNS, on the address actually connected to)."""

    def __init__(self, allow_private: bool, allow_networks: tuple[IPNetwork, ...]):
        self.allow_private, self.allow_networks = allow_private, allow_networks
        self.deadline = _Deadline()
        self._inner = httpcore.SyncBackend()
        self._resolver = ThreadPoolExecutor(2, thread_name_prefix="qa-dns")  # getaddrinfo has no timeout of its own

    def time_left(self, timeout: float | None, error: type[Exception]) -> float | None:
        if self.deadline.at is None:
            return timeout
        left = self.deadline.at - time.monotonic()
        if left <= 0:
            raise error("fetch deadline passed")
        return left if timeout is None else min(timeout, left)

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options=None) -> httpcore.NetworkStream:
        timeout = self.time_left(timeout, httpcore.ConnectTimeout)
        future = self._resolver.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
        try:
            infos = future.result(timeout)
        except FutureTimeout:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
        addresses = list(dict.fromkeys(info[4][0] for info in infos))
        for address in addresses:
            why = address_refusal(ipaddress.ip_address(address.split("%")[0]), self.allow_private, self.allow_networks)
            if why:
                raise FetchError(
                    f"refused: {host} resolves to {address}, {why} (QA_FETCH_ALLOW_PRIVATE=1 or "
                    "QA_FETCH_ALLOW_NETWORKS allow intranet feeds)"
                )
        error: Exception = httpcore.ConnectError(f"no address for {host}")
        for address in addresses:
            try:
                stream = self._inner.connect_tcp(address, port, self.time_left(timeout, httpcore.ConnectTimeout),
                                                 local_address, socket_options)
                return _GuardedStream(stream, self)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error

    def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options=None):
        raise httpcore.ConnectError("unix sockets are not fetched")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def close(self) -> None:
        self._resolver.shutdown(wait=False, cancel_futures=True)


class _GuardedTransport(httpx.HTTPTransport):
    def __init__(self, backend: _GuardedBackend):
        super().__init__(trust_env=False)
        # httpx has no parameter for httpcore's network backend: the pool is rebuilt with ours
        # (tests/test_fetch.py fails if this stops taking effect: a refused address would be fetched).
        self._pool = httpcore.ConnectionPool(ssl_context=httpx.create_ssl_context(trust_env=False), network_backend=backend)


class Fetcher:
    """A reusable HTTP client with the limits above; use as a context manager or call close()."""

    def __init__(
        self,
        timeout: float = DEFAULT_TIMEOUT,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_redirects: int = DEFAULT_MAX_REDIRECTS,
        agent: str | None = None,
        allow_private: bool = False,
        allow_networks: Iterable[IPNetwork] = (),
    ):
        if timeout <= 0 or max_bytes <= 0 or max_redirects < 0:
            raise ValueError("fetch limits must be positive")
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.user_agent = agent or user_agent()
        self._backend = _GuardedBackend(allow_private, tuple(allow_networks))
        self._client = httpx.Client(
            follow_redirects=False,  # followed by hand, so every hop is checked
            headers={"User-Agent": self.user_agent, "Accept-Encoding": "gzip, deflate"},
            trust_env=False,
            transport=_GuardedTransport(self._backend),
        )

    @classmethod
    def from_settings(cls, settings) -> Fetcher:
        return cls(
            settings.fetch_timeout, settings.fetch_max_bytes, settings.fetch_max_redirects,
            allow_private=settings.fetch_allow_private, allow_networks=parse_networks(settings.fetch_allow_networks),
        )

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()
        self._backend.close()

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
        self._backend.deadline.at = deadline
        try:
            return self._get(url, allowed, headers, deadline)
        finally:
            self._backend.deadline.at = None

    def _get(self, url: str, allowed, headers: dict, deadline: float) -> Response:
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
