"""Ingest (stage 1): files, folders, feeds and URLs → Article records, with a reason for every item skipped.

    formats   one file's bytes (or one record) → Article: text, Markdown, HTML, JSON/JSONL/CSV
    fetch     bounded HTTP(S) fetching of pages and feeds
    feeds     RSS/Atom feeds → one Article per entry
    dedup     near-duplicate detection (MinHash + LSH), used when articles are added to the index

`IngestStream` is the entry point: it walks folders, reads files by their suffix and fetches URLs,
yielding one article at a time (so a large corpus is never held in memory) and collecting what
was skipped and why. `ingest_paths` collects a whole stream into an IngestReport.

Nothing one item contains stops the others: any exception while reading a file, record, feed
entry or URL skips that item with its reason.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..errors import IngestError
from ..interrupts import raise_if_interrupted
from ..records import Article
from ..wording import plural
from .formats import (
    FEED_SUFFIXES,
    HTML_SUFFIXES,
    MAX_DOCUMENT_BYTES,
    MAX_HTML_BYTES,
    SUPPORTED_SUFFIXES,
    TEXT_SUFFIXES,
    IngestLimits,
    IngestReport,
    Skipped,
    article_from_html,
    article_from_record,
    article_from_text,
    canonical_url,
    clip_article,
    content_id,
    decode_bytes,
    is_whole_file,
    item_error,
    iter_json_document,
    iter_records,
    make_article,
    normalize_date,
    read_prefix,
    text_lines,
)

__all__ = [
    "IngestLimits", "IngestReport", "IngestStream", "Skipped", "ingest_paths", "ingest_file", "article_from_html",
    "article_from_record", "article_from_text", "canonical_url", "content_id", "decode_bytes", "is_whole_file",
    "make_article", "normalize_date",
]

URL_LIKE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# Files in a folder that describe the folder rather than hold news (README.TXT of a corpus,
# LICENSE…). Named explicitly on the command line, they are read like any other file.
NOT_ARTICLES = re.compile(
    r"^(readme|licen[cs]e|copying|notice|authors|contributors|changelog|changes|contributing|code_of_conduct)"
    r"([._ -].*)?$",
    re.I,
)

Item = Article | Skipped | str  # an article, a skipped item with its reason, or a warning


class IngestStream:
    """The articles of files, folders, feeds and URLs, one at a time; `skipped` and `warnings`
    fill up while it is iterated, `count` counts the articles yielded. Iterate it once. With
    `strict`, any skipped item raises IngestError at the end of the stream, so every skip is
    reported first and the consumer, which saves only after the last article, saves nothing."""

    def __init__(self, paths: Iterable[str | Path], fetcher: Any = None, limits: IngestLimits = IngestLimits(),
                 strict: bool = False):
        self.paths = list(paths)
        self.fetcher = fetcher
        self.limits = limits
        self.strict = strict
        self.skipped: list[Skipped] = []
        self.warnings: list[str] = []
        self.count = 0

    def __iter__(self) -> Iterator[Article]:
        for item in iter_paths(self.paths, self.fetcher, self.limits):
            raise_if_interrupted()
            if isinstance(item, Article):
                self.count += 1
                yield item
            elif isinstance(item, Skipped):
                self.skipped.append(item)
            else:
                self.warnings.append(item)
        if self.strict and self.skipped:
            raise IngestError(f"{plural(len(self.skipped), 'item')} skipped (--strict); the index is unchanged")


def ingest_paths(paths: Iterable[str | Path], fetcher: Any = None, limits: IngestLimits = IngestLimits()) -> IngestReport:
    """Read every supported file under the given files and folders (recursively, sorted).

    A string that looks like a URL is fetched (qa.ingest.feeds.ingest_url): a feed gives its entries, a
    page one article. `fetcher` (a qa.ingest.fetch.Fetcher) sets the limits; by default one is made.
    """
    report = IngestReport()
    for item in iter_paths(paths, fetcher, limits):
        report.add(item)
    return report


def ingest_file(path: Path, explicit: bool = True, fetcher: Any = None, limits: IngestLimits = IngestLimits()) -> IngestReport:
    """Articles from one file. Files of unknown type found inside a folder are reported too."""
    report = IngestReport()
    for item in _bounded(_guarded(str(path), _file_items(Path(path), explicit, fetcher, limits)), limits):
        report.add(item)
    return report


def iter_paths(paths: Iterable[str | Path], fetcher: Any, limits: IngestLimits) -> Iterator[Item]:
    items = (item for path in paths for item in _path_items(path, fetcher, limits))
    return _bounded(items, limits)


def _path_items(item: str | Path, fetcher: Any, limits: IngestLimits) -> Iterator[Item]:
    if isinstance(item, str) and URL_LIKE.match(item.strip()):
        from .feeds import ingest_url

        url = item.strip()
        yield from _guarded(url, ingest_url(url, fetcher, max_entries=limits.max_feed_entries).items())
        return
    path = Path(item)
    if not path.exists():
        yield Skipped(str(item), "no such file or folder")  # as the user typed it
    elif path.is_dir():
        for found in _walk(path, limits.follow_symlinks):
            if isinstance(found, Skipped):
                yield found
            elif NOT_ARTICLES.match(found.name):
                yield Skipped(str(found), "looks like a README or licence, not an article (name the file itself to index it)")
            else:
                yield from _guarded(str(found), _file_items(found, False, fetcher, limits))
    else:
        yield from _guarded(str(path), _file_items(path, True, fetcher, limits))


def _guarded(origin: str, items: Iterator[Item]) -> Iterator[Item]:
    """The items of one file or URL; an exception while reading it ends that item with its reason
    (the articles it gave before stay), never the batch."""
    try:
        yield from items
    except IngestError as exc:
        yield Skipped(origin, str(exc))
    except OSError as exc:
        yield Skipped(origin, f"cannot read: {exc.strerror or exc}")
    except Exception as exc:  # noqa: BLE001 - reported as skipped with its reason, the batch goes on
        yield Skipped(origin, item_error(exc))


def _bounded(items: Iterator[Item], limits: IngestLimits) -> Iterator[Item]:
    """Articles longer than limits.max_article_chars cut, each with a warning."""
    for item in items:
        if isinstance(item, Article):
            item, warning = clip_article(item, limits.max_article_chars)
            if warning:
                yield warning
        yield item


def _file_items(path: Path, explicit: bool, fetcher: Any, limits: IngestLimits) -> Iterator[Item]:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        yield Skipped(str(path), f"unsupported file type {suffix or '(none)'}; expected one of {', '.join(sorted(SUPPORTED_SUFFIXES))}")
        return
    if suffix in TEXT_SUFFIXES:
        # A title line and an article: no need to read further than the article limit allows.
        data, more = read_prefix(path, 4 * limits.max_article_chars + 4 * 4096)
        text = decode_bytes(data, final=not more)
        yield article_from_text(text, origin=str(path.resolve()), markdown=suffix == ".md")
        return
    if suffix in {".jsonl", ".csv"}:
        with open(path, "rb") as f:
            empty = True
            for item in iter_records(text_lines(f, limits.max_record_bytes), suffix, str(path), limits):
                empty = False
                yield item
        if empty:
            yield Skipped(str(path), "no records")
        return
    size = path.stat().st_size
    limit = MAX_HTML_BYTES if suffix in HTML_SUFFIXES else MAX_DOCUMENT_BYTES
    if size > limit:
        raise IngestError(f"file is larger than {limit // 2**20} MiB" + (
            "; split it into JSONL (one record per line), which has no size limit" if suffix == ".json" else ""))
    data = path.read_bytes()
    if suffix in FEED_SUFFIXES:
        from .feeds import ingest_feed_file

        yield from ingest_feed_file(path, data, fetcher, max_entries=limits.max_feed_entries).items()
    elif suffix in HTML_SUFFIXES:
        yield article_from_html(decode_bytes(data), origin=str(path.resolve()))
    else:
        empty = True
        for item in iter_json_document(decode_bytes(data), str(path)):
            empty = False
            yield item
        if empty:
            yield Skipped(str(path), "no records")


def _walk(root: Path, follow_symlinks: bool) -> Iterator[Path | Skipped]:
    """Files under root in sorted path order, hidden ones left out. A symbolic link that leads
    outside root is reported, not followed, unless follow_symlinks; a link to a folder inside
    root is not followed (its files are read there); loops are never followed."""
    real_root = root.resolve()

    def visit(folder: Path, ancestors: frozenset[Path]) -> Iterator[Path | Skipped]:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            yield Skipped(str(folder), f"cannot read folder: {exc.strerror or exc}")
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            try:
                if entry.is_symlink() and not follow_symlinks:
                    target = path.resolve()
                    if not target.is_relative_to(real_root):
                        yield Skipped(str(path), f"link to {target}, outside {root}: not followed (--follow-symlinks follows it)")
                        continue
                    if entry.is_dir():
                        continue
                if entry.is_dir():
                    real = path.resolve()
                    if real not in ancestors:
                        yield from visit(path, ancestors | {real})
                elif entry.is_file():
                    yield path
            except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Path.resolve)
                yield Skipped(str(path), f"cannot read: {getattr(exc, 'strerror', None) or exc}")

    yield from visit(root, frozenset({real_root}))
