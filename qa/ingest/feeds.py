"""Feeds and URLs → Article records (part of ingestion; nothing downstream is imported).

An RSS 2.0 / RSS 1.0 / Atom feed (parsed by feedparser) gives one article per entry:

- text: the entry's full content (Atom <content>, RSS <content:encoded>), else the linked page,
  fetched and extracted like an .html file (trafilatura), else — only for an entry without a
  link — its summary;
- title: the entry's title, else the page's;
- published: the entry's published (else updated) date as ISO 8601 with a time zone (a date
  given without one is taken as UTC, as feedparser does), else the page's date;
- source: the feed's title, else the page's site name, else the host name;
- url and id: the canonical URL — the page's <link rel="canonical"> or og:url when the page was
  fetched, else the entry's link — without tracking parameters (qa.ingest.canonical_url).

A URL given directly is fetched once and read as a feed when it is one (by content type or by its
first bytes), else as an article page. Every entry or URL that fails is a `Skipped` item with its
reason; the rest of the batch goes on.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

from ..errors import IngestError
from .fetch import FEED_TYPES, HTML_TYPES, Fetcher, Response, is_http_url
from .formats import IngestLimits, IngestReport, Skipped, article_from_html, item_error, make_article

# What a URL given on the command line may turn out to be; "" and text/plain are sniffed.
URL_TYPES = HTML_TYPES | FEED_TYPES | {"text/plain", ""}
FEED_START = re.compile(rb"^(\xef\xbb\xbf)?\s*(<\?[^>]*>\s*|<!--.*?-->\s*|<!DOCTYPE[^>]*>\s*)*<(rss|feed|rdf:RDF)\b", re.S)
MAX_ENTRIES = IngestLimits.max_feed_entries
BLOCK_TAGS = ("p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "tr", "section", "article")

# Fetches one entry's page; returns None when the page is known and unchanged (conditional GET).
PageFetch = Callable[[str], "Response | None"]


class NotModified(Exception):
    """Raised for an entry whose page answered 304: it is already indexed, unchanged."""


def looks_like_feed(body: bytes, content_type: str = "") -> bool:
    return content_type in FEED_TYPES - {"application/xml", "text/xml"} or bool(FEED_START.match(body[:2048]))


def ingest_url(url: str, fetcher: Fetcher | None = None, max_entries: int = MAX_ENTRIES) -> IngestReport:
    """A feed URL (its first max_entries entries) or an article page URL (one article)."""
    report = IngestReport()
    if not is_http_url(url):
        report.skipped.append(Skipped(url, "only http(s) URLs can be fetched"))
        return report
    with _fetcher(fetcher) as f:
        try:
            response = f.get(url, accept=URL_TYPES)
            if looks_like_feed(response.body, response.content_type):
                return ingest_feed_bytes(response.body, url, f, content_type=response.content_type, max_entries=max_entries)
            if response.content_type in FEED_TYPES:
                raise IngestError(f"not an RSS or Atom feed ({response.content_type})")
            report.articles.append(article_from_response(response))
        except IngestError as exc:
            report.skipped.append(Skipped(url, str(exc)))
        except Exception as exc:  # noqa: BLE001 - a page or feed that breaks a parser is skipped, with its reason
            report.skipped.append(Skipped(url, item_error(exc)))
    return report


def ingest_feed_file(path: Path, data: bytes, fetcher: Fetcher | None = None, max_entries: int = MAX_ENTRIES) -> IngestReport:
    """A feed saved as a file (.rss, .atom, .xml); entries without content fetch their page."""
    return ingest_feed_bytes(data, str(path), fetcher, max_entries=max_entries)


def ingest_feed_bytes(
    data: bytes,
    origin: str,
    fetcher: Fetcher | None = None,
    content_type: str = "",
    fetch_page: PageFetch | None = None,
    not_modified: list[str] | None = None,
    max_entries: int = MAX_ENTRIES,
) -> IngestReport:
    """The entries of one feed document, the first max_entries of them (a warning says when
    there were more). `origin` is the feed's URL or file path.

    `fetch_page` replaces the plain page fetch (qa.index.watch uses it for conditional GETs); entries
    whose page it reports unchanged are left out and their page URL appended to `not_modified`.
    """
    import feedparser

    report = IngestReport()
    headers = {"content-type": content_type or "application/xml"}
    if is_http_url(origin):
        headers["content-location"] = origin  # base for relative links
    parsed = feedparser.parse(data, response_headers=headers)  # bytes: feedparser never fetches
    if not parsed.get("version") and not parsed.entries:
        why = parsed.get("bozo_exception")
        report.skipped.append(Skipped(origin, "not an RSS or Atom feed" + (f" ({str(why)[:80]})" if why else "")))
        return report
    feed_title = _plain(parsed.feed.get("title", ""), "text/html") or None
    if not parsed.entries:
        report.warnings.append(f"{origin}: the feed has no entries")
        return report
    entries = parsed.entries[:max_entries]
    if len(parsed.entries) > max_entries:
        report.warnings.append(
            f"{origin}: the feed has {len(parsed.entries)} entries; read the first {max_entries} (QA_FEED_MAX_ENTRIES)"
        )
    with _fetcher(fetcher, lazy=True) as get_fetcher:
        page = fetch_page or (lambda url: get_fetcher().get(url, accept=HTML_TYPES))
        for n, entry in enumerate(entries, 1):
            where = entry.get("link") or f"{origin} entry {n}"
            try:
                report.articles.append(article_from_entry(entry, feed_title, page, origin=where))
            except NotModified:
                if not_modified is not None:
                    not_modified.append(entry.get("link"))
            except IngestError as exc:
                report.skipped.append(Skipped(where, f"{exc} (entry {n} of {origin})"))
            except Exception as exc:  # noqa: BLE001 - one broken entry is skipped with its reason, the feed goes on
                report.skipped.append(Skipped(where, f"{item_error(exc)} (entry {n} of {origin})"))
    return report


def article_from_entry(entry: Any, feed_title: str | None, fetch_page: PageFetch, origin: str | None = None):
    title = _plain(entry.get("title", ""), (entry.get("title_detail") or {}).get("type", "text/plain"))
    published = entry_date(entry)
    link = entry.get("link") or None
    text = _content_text(entry)
    if text:
        return make_article(
            title=title or _first_line(text), text=text, url=link, published=published,
            source=feed_title or _host(link), origin=origin,
        )
    if link:
        if not is_http_url(link):
            raise IngestError(f"entry has no content and its link is not http(s): {link[:80]}")
        response = fetch_page(link)
        if response is None:
            raise NotModified(link)
        page = article_from_response(response)
        return replace(
            page,
            title=title or page.title,
            published=published or page.published,
            source=feed_title or page.source or _host(page.url or link),
        )
    summary = _plain(entry.get("summary", ""), (entry.get("summary_detail") or {}).get("type", "text/html"))
    if summary:
        return make_article(title=title or _first_line(summary), text=summary, published=published,
                            source=feed_title, origin=origin)
    raise IngestError("entry has no content, no summary and no link")


def article_from_response(response: Response):
    """An article page: main text and metadata via trafilatura; the canonical URL is the id."""
    if response.content_type not in HTML_TYPES | {"text/plain", ""}:
        raise IngestError(f"not an article page (content type {response.content_type})")
    html = response.text()
    if not html.strip():
        raise IngestError("empty page")
    article = article_from_html(html, origin=response.url, url=response.final_url)
    if not article.source:
        article = replace(article, source=_host(article.url or response.final_url))
    return article


def entry_date(entry: Any) -> str | None:
    """The entry's published (else updated) date, ISO 8601 with a time zone (UTC when none given)."""
    for key in ("published", "updated", "created"):
        raw, parsed = entry.get(key), entry.get(f"{key}_parsed")
        moment = _parse_datetime(raw) if raw else None
        if (moment is None or moment.tzinfo is None) and parsed:
            moment = datetime(*parsed[:6], tzinfo=timezone.utc)  # feedparser normalizes to UTC
        if moment is not None:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=timezone.utc)
            return moment.isoformat()
    return None


def _parse_datetime(raw: str) -> datetime | None:
    raw = raw.strip()
    for parse in (parsedate_to_datetime, lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))):
        try:
            return parse(raw)
        except (TypeError, ValueError, IndexError):
            continue
    from dateutil import parser as date_parser

    try:
        return date_parser.parse(raw)
    except (ValueError, OverflowError):
        return None


def _content_text(entry: Any) -> str:
    for content in entry.get("content") or ():
        text = _plain(content.get("value", ""), content.get("type", "text/html"))
        if text:
            return text
    return ""


def _plain(value: str, content_type: str = "text/html") -> str:
    """Text of an HTML fragment, paragraphs separated by blank lines; plain text as is."""
    value = (value or "").strip()
    if not value:
        return ""
    if "html" not in content_type or "<" not in value:
        text = value
    else:
        import lxml.html

        try:
            root = lxml.html.fragment_fromstring(value, create_parent="div")
        except Exception:  # lxml raises several types on garbage; keep the raw text then
            return re.sub(r"\s+", " ", re.sub(r"<[^>]*>", " ", value)).strip()
        for bad in root.xpath(".//script|.//style|.//noscript"):
            bad.drop_tree()
        for el in root.iter(*BLOCK_TAGS):
            el.tail = "\n\n" + (el.tail or "")
        text = root.text_content()
    paragraphs = (" ".join(p.split()) for p in re.split(r"\n\s*\n", text.replace("\r", "\n")))
    return "\n\n".join(p for p in paragraphs if p)


def _first_line(text: str) -> str:
    return text.strip().split("\n", 1)[0][:120]


def _host(url: str | None) -> str | None:
    if not url:
        return None
    host = urlsplit(url).hostname or ""
    return host.removeprefix("www.") or None


@contextmanager
def _fetcher(fetcher: Fetcher | None, lazy: bool = False) -> Iterator[Any]:
    """The given fetcher, or a new one closed afterwards; lazy=True yields a getter (no client unless used)."""
    made: list[Fetcher] = []

    def get() -> Fetcher:
        if fetcher is not None:
            return fetcher
        if not made:
            made.append(Fetcher())
        return made[0]

    try:
        yield get if lazy else get()
    finally:
        for f in made:
            f.close()
