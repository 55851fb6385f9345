"""File formats: the bytes of one file (or one record) → Article records.

.txt/.md (title = first non-empty line), .html/.htm (main text, title, date and canonical URL via
trafilatura), .json/.jsonl/.csv records with fields title, text|content|body, date|published,
source, url and optional id. Feeds are read by qa.ingest.feeds; qa.ingest dispatches by path.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any, Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import IngestError
from ..records import Article

TEXT_SUFFIXES = {".txt", ".md"}
HTML_SUFFIXES = {".html", ".htm"}
RECORD_SUFFIXES = {".json", ".jsonl", ".csv"}
FEED_SUFFIXES = {".rss", ".atom", ".xml"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | RECORD_SUFFIXES | FEED_SUFFIXES
# Formats parsed as one document (.json, feeds) are refused above this size: parsing holds several
# copies in memory. JSONL and CSV are streamed record by record, text files read only as far as
# the article limit needs, so their size is not limited.
MAX_DOCUMENT_BYTES = 64 * 2**20
MAX_HTML_BYTES = 16 * 2**20  # trafilatura builds a tree of the whole page: ~20× its size in memory
BOMS = (  # UTF-32 first: its little-endian BOM starts with UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)

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

    def add(self, item: Article | Skipped | str) -> None:
        """One item of an ingest stream: an article, a skipped item, or a warning."""
        if isinstance(item, Article):
            self.articles.append(item)
        elif isinstance(item, Skipped):
            self.skipped.append(item)
        else:
            self.warnings.append(item)

    def items(self) -> Iterator[Article | Skipped | str]:
        yield from self.articles
        yield from self.skipped
        yield from self.warnings


@dataclass(frozen=True)
class IngestLimits:
    """Bounds on what one item may cost (Settings: QA_MAX_ARTICLE_CHARS, QA_FEED_MAX_ENTRIES, --follow-symlinks)."""

    max_article_chars: int = 2_000_000  # longer texts are cut there, with a warning
    max_feed_entries: int = 500  # entries read per feed, the first ones (feeds list the newest first)
    follow_symlinks: bool = False  # follow links in a folder that lead outside it

    @classmethod
    def from_settings(cls, settings) -> IngestLimits:
        return cls(settings.max_article_chars, settings.feed_max_entries, settings.follow_symlinks)

    @property
    def max_record_bytes(self) -> int:
        """Longest JSONL line or CSV row read: room for a maximal article in UTF-8 plus its fields."""
        return 4 * self.max_article_chars + 2**20


def clip_article(article: Article, max_chars: int) -> tuple[Article, str | None]:
    """The article with its text cut to max_chars (at a space when one is near), and a warning; as is when short enough."""
    if len(article.text) <= max_chars:
        return article, None
    space = article.text.rfind(" ", max(0, max_chars - 200), max_chars)
    text = article.text[: space if space > 0 else max_chars].rstrip()
    warning = f"{article.origin or article.id}: text cut to its first {len(text):,} characters (QA_MAX_ARTICLE_CHARS)"
    return replace(article, text=text), warning


def item_error(exc: Exception) -> str:
    """Why an item is skipped when reading it raised something unexpected (one line)."""
    if isinstance(exc, RecursionError):
        return "nested too deeply to read"
    if isinstance(exc, MemoryError):
        return "too large to read in memory"
    return f"cannot read ({type(exc).__name__}: {' '.join(str(exc).split())[:120]})"


def is_whole_file(origin: str | None) -> bool:
    """True when the origin is a file holding exactly one article (not a record in a JSONL/CSV)."""
    return bool(origin) and "://" not in origin and Path(origin).suffix.lower() in TEXT_SUFFIXES | HTML_SUFFIXES


def decode_bytes(data: bytes, final: bool = True) -> str:
    """UTF-16/32 with a byte order mark, else UTF-8, else Windows-1252/Latin-1 (what older news
    archives use); binary data is refused. final=False: `data` is a prefix of the file, and a
    character cut at its end is dropped."""
    if not data.strip():
        raise IngestError("empty file")
    for bom, encoding in BOMS:
        if data.startswith(bom):
            try:
                return _decode(data, encoding, final)
            except UnicodeDecodeError:
                raise IngestError(f"invalid {encoding.upper()} text") from None
    if b"\x00" in data[:8192]:
        raise IngestError("binary file (contains NUL bytes)")
    try:
        return _decode(data, "utf-8-sig", final)
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # total: every byte maps; _check_printable rejects garbage


def _decode(data: bytes, encoding: str, final: bool) -> str:
    return codecs.getincrementaldecoder(encoding)().decode(data, final=final)


def read_prefix(path: Path, limit: int) -> tuple[bytes, bool]:
    """At most `limit` bytes of the file, and whether there was more."""
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    return data[:limit], len(data) > limit


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


def records_from_file(text: str, suffix: str, origin: str, limits: IngestLimits = IngestLimits()) -> IngestReport:
    """Articles from the decoded text of a .json, .jsonl or .csv file."""
    report = IngestReport()
    lines = iter(io.StringIO(text, newline=""))  # splits at \n, \r\n and \r only, like a file
    for item in iter_records(lines, suffix, origin, limits) if suffix != ".json" else iter_json_document(text, origin):
        report.add(item)
    if not report.articles and not report.skipped:
        report.skipped.append(Skipped(origin, "no records"))
    return report


def iter_json_document(text: str, origin: str) -> Iterator[Article | Skipped]:
    """A .json file: an object, a list of objects, or {"articles": [...]}."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise IngestError(f"malformed JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise IngestError("JSON nested too deeply") from None
    if isinstance(data, dict) and isinstance(data.get("articles"), list):
        data = data["articles"]
    items = data if isinstance(data, list) else [data]
    for n, item in enumerate(items):
        yield _record_article(item, f"{origin}[{n}]")


def iter_records(lines: Iterator[str], suffix: str, origin: str, limits: IngestLimits) -> Iterator[Article | Skipped]:
    """JSONL or CSV records, one at a time, from the file's lines (a line longer than
    limits.max_record_bytes arrives as None: that record is skipped)."""
    if suffix == ".jsonl":
        for n, line in enumerate(lines, 1):
            where = f"{origin}:{n}"
            if line is None:
                yield Skipped(where, f"record longer than {limits.max_record_bytes // 2**20} MiB")
                continue
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                yield Skipped(where, f"malformed JSON line ({exc.msg})")
                continue
            except RecursionError:
                yield Skipped(where, "JSON nested too deeply")
                continue
            yield _record_article(record, where)
        return
    # CSV: a field may be as long as a record (the csv module's default stops at 131,072 characters).
    csv.field_size_limit(max(csv.field_size_limit(), limits.max_record_bytes))
    reader = csv.DictReader(_csv_lines(lines, limits, origin))
    try:
        header = reader.fieldnames
    except csv.Error as exc:
        raise IngestError(f"malformed CSV header ({exc})") from None
    if not header or not set(TEXT_FIELDS) & {f.strip().lower() for f in header}:
        raise IngestError(f"CSV header must name a text column ({', '.join(TEXT_FIELDS)})")
    n = 1  # line 1 is the header
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except (csv.Error, IngestError) as exc:  # the parser cannot resynchronize: the rest is unreadable
            yield Skipped(f"{origin}:{reader.line_num}", f"malformed CSV ({exc}); the rest of the file is skipped")
            return
        n += 1
        yield _record_article({(k or "").strip().lower(): v for k, v in row.items()}, f"{origin}:{n}")


def _csv_lines(lines: Iterator[str | None], limits: IngestLimits, origin: str) -> Iterator[str]:
    for line in lines:
        if line is None:
            raise IngestError(f"a line longer than {limits.max_record_bytes // 2**20} MiB")
        yield line


def _record_article(record: Any, where: str) -> Article | Skipped:
    """One record → an Article, or the reason it is skipped; no exception escapes one record."""
    try:
        return article_from_record(record, where)
    except IngestError as exc:
        return Skipped(where, str(exc))
    except Exception as exc:  # noqa: BLE001 - one bad record must not stop the file (reported, not swallowed)
        return Skipped(where, item_error(exc))


def text_lines(f: IO[bytes], limit: int) -> Iterator[str | None]:
    """Decoded lines (with their line ends) of a binary file, streamed; None for a line over
    `limit` bytes (skipped to its end without being kept). UTF-16/32 with a byte order mark is
    decoded as such; otherwise each line is UTF-8, else Windows-1252."""
    head = f.read(8192)
    if not head.strip():
        raise IngestError("empty file")
    encoding = next((enc for bom, enc in BOMS if head.startswith(bom)), None)
    if encoding is None and b"\x00" in head:
        raise IngestError("binary file (contains NUL bytes)")
    f.seek(0)
    if encoding is not None:
        stream = io.TextIOWrapper(f, encoding=encoding, newline="")
        while line := stream.readline(limit + 1):
            if len(line) > limit and not line.endswith(("\n", "\r")):
                while (rest := stream.readline(limit)) and not rest.endswith(("\n", "\r")):
                    pass
                yield None
            else:
                yield line
        return
    first = True
    while line := f.readline(limit + 1):
        if len(line) > limit and not line.endswith(b"\n"):
            while (rest := f.readline(limit)) and not rest.endswith(b"\n"):
                pass
            yield None
            continue
        if first:
            line, first = line.removeprefix(codecs.BOM_UTF8), False
        try:
            yield line.decode("utf-8")
        except UnicodeDecodeError:
            yield line.decode("cp1252", errors="replace")


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
