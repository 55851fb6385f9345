"""File formats: the bytes of one file (or one record) → Article records.

.txt/.md (title = first non-empty line), .html/.htm (main text, title, date and canonical URL via
trafilatura), .json/.jsonl/.csv records with fields title, text|content|body, date|published,
source, url and optional id. Feeds are read by qa.ingest.feeds; qa.ingest dispatches by path.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import IngestError
from ..records import Article

TEXT_SUFFIXES = {".txt", ".md"}
HTML_SUFFIXES = {".html", ".htm"}
RECORD_SUFFIXES = {".json", ".jsonl", ".csv"}
FEED_SUFFIXES = {".rss", ".atom", ".xml"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | RECORD_SUFFIXES | FEED_SUFFIXES
MAX_FILE_BYTES = 200 * 1024 * 1024

TEXT_FIELDS = ("text", "content", "body")
DATE_FIELDS = ("date", "published")
TRACKING_PARAMS = re.compile(r"^(utm_\w+|fbclid|gclid|mc_cid|mc_eid|ref|cmpid)$", re.I)


@dataclass(frozen=True)
class Skipped:
    origin: str
    reason: str


@dataclass
class IngestReport:
    articles: list[Article] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def extend(self, other: IngestReport) -> None:
        self.articles.extend(other.articles)
        self.skipped.extend(other.skipped)
        self.warnings.extend(other.warnings)


def is_whole_file(origin: str | None) -> bool:
    """True when the origin is a file holding exactly one article (not a record in a JSONL/CSV)."""
    return bool(origin) and "://" not in origin and Path(origin).suffix.lower() in TEXT_SUFFIXES | HTML_SUFFIXES


def decode_bytes(data: bytes) -> str:
    """UTF-8, else Windows-1252/Latin-1 (what older news archives use); binary data is refused."""
    if not data.strip():
        raise IngestError("empty file")
    if b"\x00" in data[:8192]:
        raise IngestError("binary file (contains NUL bytes)")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")  # total: every byte maps; _check_printable rejects garbage


def article_from_text(text: str, origin: str | None = None, markdown: bool = False) -> Article:
    text = _normalize_newlines(text)
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.strip():
            title = line.strip()
            if markdown:
                title = title.lstrip("#").strip()
            body = "\n".join(lines[i + 1 :]).strip()
            break
    else:
        raise IngestError("no text")
    _check_printable(title + body)
    if not body:
        raise IngestError("no text after the title line")
    return make_article(title=title, text=body, origin=origin)


def article_from_html(html: str, origin: str | None = None, url: str | None = None) -> Article:
    import trafilatura

    doc = trafilatura.bare_extraction(html, url=url, with_metadata=True, favor_recall=True)
    if doc is None or not (doc.text or "").strip():
        raise IngestError("no main text found in the HTML")
    text = _normalize_newlines(doc.text).strip()
    title = (doc.title or "").strip()
    first, _, rest = text.partition("\n")
    if title and first.strip() == title and rest.strip():
        text = rest.strip()  # trafilatura repeats the headline as the first line
    if not title:
        title = first.strip()[:200]
    return make_article(
        title=title, text=text, url=doc.url or url, published=doc.date, source=doc.sitename, origin=origin
    )


def article_from_record(record: Any, origin: str) -> Article:
    if not isinstance(record, dict):
        raise IngestError(f"expected a JSON object, got {type(record).__name__}")
    text = next((record[f] for f in TEXT_FIELDS if isinstance(record.get(f), str) and record[f].strip()), None)
    if text is None:
        raise IngestError(f"missing text (one of the fields {', '.join(TEXT_FIELDS)})")
    text = _normalize_newlines(text).strip()
    title = record.get("title")
    title = str(title).strip() if title is not None else ""
    if not title:
        title = text.split("\n", 1)[0][:120]
    raw_date = next((record[f] for f in DATE_FIELDS if record.get(f) not in (None, "")), None)
    rid = record.get("id")
    return make_article(
        title=title,
        text=text,
        url=_str_or_none(record.get("url")),
        published=normalize_date(raw_date, origin),
        source=_str_or_none(record.get("source")),
        origin=origin,
        explicit_id=str(rid) if rid not in (None, "") else None,
    )


def make_article(
    title: str,
    text: str,
    url: str | None = None,
    published: str | None = None,
    source: str | None = None,
    origin: str | None = None,
    explicit_id: str | None = None,
) -> Article:
    _check_printable(text)
    url = canonical_url(url) if url else None
    article_id = explicit_id or url or content_id(title, text)
    return Article(
        id=article_id,
        title=title,
        text=text,
        url=url,
        published=normalize_date(published, origin) if published else None,
        source=source,
        origin=origin,
    )


def content_id(title: str, text: str) -> str:
    return hashlib.sha256(f"{title}\n{text}".encode()).hexdigest()[:20]


def canonical_url(url: str) -> str | None:
    """Lower-case scheme and host, drop the fragment and tracking parameters; only http(s)."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in {"http", "https"} or not parts.netloc:
        return None
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not TRACKING_PARAMS.match(k)])
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", query, ""))


def normalize_date(value: Any, origin: str | None = None) -> str | None:
    """ISO 8601 (date, or datetime with its time zone when one was given)."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = str(value).strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        from dateutil import parser as date_parser

        try:
            parsed = date_parser.parse(text)
        except (ValueError, OverflowError):
            raise IngestError(f"unreadable date {text[:40]!r}") from None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) or (parsed.time() == datetime.min.time() and parsed.tzinfo is None):
        return parsed.date().isoformat()
    return parsed.isoformat()


def records_from_file(text: str, suffix: str, origin: str) -> IngestReport:
    report = IngestReport()
    for where, record in _iter_records(text, suffix, origin, report):
        try:
            report.articles.append(article_from_record(record, where))
        except IngestError as exc:
            report.skipped.append(Skipped(where, str(exc)))
    if not report.articles and not report.skipped:
        report.skipped.append(Skipped(origin, "no records"))
    return report


def _iter_records(text: str, suffix: str, origin: str, report: IngestReport) -> Iterator[tuple[str, Any]]:
    if suffix == ".jsonl":
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                yield f"{origin}:{n}", json.loads(line)
            except json.JSONDecodeError as exc:
                report.skipped.append(Skipped(f"{origin}:{n}", f"malformed JSON line ({exc.msg})"))
    elif suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise IngestError(f"malformed JSON ({exc.msg} at line {exc.lineno})") from None
        if isinstance(data, dict) and isinstance(data.get("articles"), list):
            data = data["articles"]
        items = data if isinstance(data, list) else [data]
        for n, item in enumerate(items):
            yield f"{origin}[{n}]", item
    else:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        if not reader.fieldnames or not set(TEXT_FIELDS) & {f.strip().lower() for f in reader.fieldnames}:
            raise IngestError(f"CSV header must name a text column ({', '.join(TEXT_FIELDS)})")
        for n, row in enumerate(reader, 2):  # line 1 is the header
            yield f"{origin}:{n}", {(k or "").strip().lower(): v for k, v in row.items()}


def _normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _check_printable(text: str) -> None:
    if not text.strip():
        raise IngestError("no text")
    controls = sum(1 for ch in text[:4096] if ord(ch) < 32 and ch not in "\n\t")
    if controls > 0.05 * min(len(text), 4096):
        raise IngestError("looks binary (many control characters)")


def _str_or_none(value: Any) -> str | None:
    return str(value).strip() or None if value is not None else None
