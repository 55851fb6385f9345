"""Ingest (stage 1): files, folders, feeds and URLs → Article records, with a reason for every item skipped.

    formats   one file's bytes (or one record) → Article: text, Markdown, HTML, JSON/JSONL/CSV
    fetch     bounded HTTP(S) fetching of pages and feeds
    feeds     RSS/Atom feeds → one Article per entry
    dedup     near-duplicate detection (MinHash + LSH), used when articles are added to the index

`ingest_paths` is the entry point: it walks folders, reads files by their suffix and fetches URLs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable

from ..errors import IngestError
from .formats import (
    FEED_SUFFIXES,
    HTML_SUFFIXES,
    MAX_FILE_BYTES,
    SUPPORTED_SUFFIXES,
    TEXT_SUFFIXES,
    IngestReport,
    Skipped,
    article_from_html,
    article_from_record,
    article_from_text,
    canonical_url,
    content_id,
    decode_bytes,
    is_whole_file,
    make_article,
    normalize_date,
    records_from_file,
)

__all__ = [
    "IngestReport", "Skipped", "ingest_paths", "ingest_file", "article_from_html", "article_from_record",
    "article_from_text", "canonical_url", "content_id", "decode_bytes", "is_whole_file", "make_article",
    "normalize_date",
]

URL_LIKE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def ingest_paths(paths: Iterable[str | Path], fetcher: Any = None) -> IngestReport:
    """Read every supported file under the given files and folders (recursively, sorted).

    A string that looks like a URL is fetched (qa.ingest.feeds.ingest_url): a feed gives its entries, a
    page one article. `fetcher` (a qa.ingest.fetch.Fetcher) sets the limits; by default one is made.
    """
    report = IngestReport()
    for item in paths:
        if isinstance(item, str) and URL_LIKE.match(item.strip()):
            from .feeds import ingest_url

            report.extend(ingest_url(item.strip(), fetcher))
            continue
        path = Path(item)
        if not path.exists():
            report.skipped.append(Skipped(str(item), "no such file or folder"))  # as the user typed it
        elif path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and not _hidden(p, path))
            for file in files:
                report.extend(ingest_file(file, explicit=False, fetcher=fetcher))
        else:
            report.extend(ingest_file(path, explicit=True, fetcher=fetcher))
    return report


def ingest_file(path: Path, explicit: bool = True, fetcher: Any = None) -> IngestReport:
    """Articles from one file. Files of unknown type found inside a folder are reported too."""
    report = IngestReport()
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        why = f"unsupported file type {suffix or '(none)'}; expected one of {', '.join(sorted(SUPPORTED_SUFFIXES))}"
        if explicit or not path.name.lower().startswith("readme"):
            report.skipped.append(Skipped(str(path), why))
        return report
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise IngestError(f"file is larger than {MAX_FILE_BYTES // 2**20} MiB")
        data = path.read_bytes()
        text = decode_bytes(data)
        if suffix in FEED_SUFFIXES:
            from .feeds import ingest_feed_file

            report.extend(ingest_feed_file(path, data, fetcher))
        elif suffix in TEXT_SUFFIXES:
            report.articles.append(article_from_text(text, origin=str(path.resolve()), markdown=suffix == ".md"))
        elif suffix in HTML_SUFFIXES:
            report.articles.append(article_from_html(text, origin=str(path.resolve())))
        else:
            report.extend(records_from_file(text, suffix, str(path)))
    except IngestError as exc:
        report.skipped.append(Skipped(str(path), str(exc)))
    except OSError as exc:
        report.skipped.append(Skipped(str(path), f"cannot read: {exc.strerror or exc}"))
    return report


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)
