"""Watch: poll feeds every few minutes and keep the index up to date (ingestion, then update_index).

Each round fetches every feed, turns its entries into articles (qa.ingest.feeds) and hands them all to
`update_index` at once: new entries are added, entries whose text changed (same canonical URL)
replace their old version, unchanged ones are left alone and near-duplicates are collapsed. So a
round over unchanged feeds is a no-op, and stopping and restarting never duplicates anything.

Politeness, not correctness: `<index>/watch-state.json` keeps each feed's and page's ETag /
Last-Modified from the last successful round and sends them back (conditional GET). A 304 is
trusted only while every article that URL produced is still in the index (as an article or an
alternate copy), and a feed's own 304 only when its entries carry their full text (a linked page
can change while its feed does not); otherwise the URL is fetched in full. A feed with a failed
entry keeps no validators, so the entry is retried next round. Deleting the file only costs
bandwidth.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

from ..chunk import ChunkSpec
from ..ingest.dedup import DedupSpec
from ..embed import Embedder
from ..errors import IngestError, QAError
from ..ingest.feeds import URL_TYPES, ingest_feed_bytes, looks_like_feed
from ..ingest.fetch import HTML_TYPES, Fetcher, Response, is_http_url
from ..ingest import IngestLimits, IngestReport, Skipped, ingest_paths
from ..ingest.formats import item_error
from .store import GENERATION, KEEP_GENERATIONS, current_generation, update_index, write_lock
from ..wording import plural

STATE_FILE = "watch-state.json"
STATE_VERSION = 1


@dataclass
class RoundReport:
    round: int
    started_at: str
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    collapsed: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    feeds_not_modified: int = 0
    pages_not_modified: int = 0
    articles: int = 0  # in the index after the round
    error: str | None = None  # the round failed (e.g. another process held the index); retried next round

    def summary(self) -> str:
        if self.error:
            return f"round {self.round} ({self.started_at}) failed: {self.error}"
        return (
            f"round {self.round} ({self.started_at}): added {self.added}, updated {self.updated}, "
            f"unchanged {self.unchanged + self.pages_not_modified}, collapsed {self.collapsed}, "
            f"skipped {len(self.skipped)}; feeds not modified {self.feeds_not_modified}; "
            f"index now {plural(self.articles, 'article')}"
        )


def indexed_ids(index_dir: Path) -> set[str]:
    """Ids of the live generation's articles and of their alternate copies (no embedder needed)."""
    name = current_generation(index_dir)
    if name is None or not GENERATION.match(name):
        return set()
    gen = Path(index_dir) / name
    ids: set[str] = set()
    try:
        with open(gen / "articles.jsonl", encoding="utf-8") as f:
            for line in f:
                record = json.loads(line)
                ids.add(record["id"])
                ids.update(a["id"] for a in record.get("alternates") or ())
    except (OSError, ValueError, KeyError, TypeError):
        return set()  # unreadable: trust no cached validator; update_index reports the damage
    return ids


def load_state(index_dir: Path) -> dict:
    try:
        state = json.loads((Path(index_dir) / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"version": STATE_VERSION, "feeds": {}}
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION or not isinstance(state.get("feeds"), dict):
        return {"version": STATE_VERSION, "feeds": {}}
    return state


def save_state(index_dir: Path, state: dict) -> None:
    path = Path(index_dir) / STATE_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def run_round(
    feeds: Sequence[str],
    index_dir: Path,
    embedder: Embedder,
    spec: ChunkSpec,
    fetcher: Fetcher,
    dedup: DedupSpec | None = DedupSpec(),
    number: int = 1,
    progress: bool = False,
    limits: IngestLimits = IngestLimits(),
    keep: int = KEEP_GENERATIONS,
) -> RoundReport:
    """Poll every feed once and update the index; a failing feed or entry is reported, not fatal.

    The round holds the index's write lock from the start: when another process is writing, it
    fails at once (retried next round) instead of after fetching everything.
    """
    report = RoundReport(number, datetime.now(timezone.utc).isoformat(timespec="seconds"))
    try:
        with write_lock(index_dir):
            return _locked_round(report, feeds, Path(index_dir), embedder, spec, fetcher, dedup, progress, limits, keep)
    except QAError as exc:
        report.error = str(exc)
        return report


def _locked_round(
    report: RoundReport,
    feeds: Sequence[str],
    index_dir: Path,
    embedder: Embedder,
    spec: ChunkSpec,
    fetcher: Fetcher,
    dedup: DedupSpec | None,
    progress: bool,
    limits: IngestLimits,
    keep: int,
) -> RoundReport:
    state = load_state(index_dir)
    known = indexed_ids(index_dir)
    ingested = IngestReport()
    new_state: dict = {"version": STATE_VERSION, "feeds": {}}
    for feed in feeds:
        if not is_http_url(feed):  # a local feed file (or folder): read again every round
            ingested.extend(ingest_paths([feed], fetcher=fetcher, limits=limits))
            continue
        old = state["feeds"].get(feed) or {}
        # A 304 for the feed is trusted only when all its entries carried their full text: pages
        # linked from the feed can change while the feed does not, so those feeds are read every
        # round and their pages checked one by one (conditional GET).
        trusted = bool(old.get("ids")) and set(old["ids"]) <= known and not old.get("pages")
        try:
            response = fetcher.get(
                feed,
                accept=URL_TYPES,
                etag=old.get("etag") if trusted else None,
                last_modified=old.get("last_modified") if trusted else None,
            )
        except IngestError as exc:
            ingested.skipped.append(Skipped(feed, str(exc)))
            continue
        if response.not_modified:
            report.feeds_not_modified += 1
            new_state["feeds"][feed] = old
            continue
        if not looks_like_feed(response.body, response.content_type):
            ingested.skipped.append(Skipped(feed, f"not an RSS or Atom feed ({response.content_type or 'no content type'})"))
            continue
        pages_old = old.get("pages") or {}
        pages_new: dict[str, dict] = {}
        not_modified: list[str] = []

        def fetch_page(url: str) -> Response | None:
            cached = pages_old.get(url) or {}
            usable = cached.get("id") in known
            page = fetcher.get(
                url, accept=HTML_TYPES,
                etag=cached.get("etag") if usable else None,
                last_modified=cached.get("last_modified") if usable else None,
            )
            if page.not_modified:
                pages_new[url] = cached
                return None
            pages_new[url] = {"etag": page.etag, "last_modified": page.last_modified}
            return page

        try:
            feed_report = ingest_feed_bytes(
                response.body, feed, fetcher, content_type=response.content_type,
                fetch_page=fetch_page, not_modified=not_modified, max_entries=limits.max_feed_entries,
            )
        except Exception as exc:  # noqa: BLE001 - a feed that breaks the parser is skipped with its reason
            ingested.skipped.append(Skipped(feed, item_error(exc)))
            continue
        report.pages_not_modified += len(not_modified)
        for article in feed_report.articles:  # remember which article each fetched page became
            for url, entry in pages_new.items():
                if "id" not in entry and url in (article.origin, article.url):
                    entry["id"] = article.id
        ingested.extend(feed_report)
        if not feed_report.skipped:  # validators only for a feed read completely
            ids = [a.id for a in feed_report.articles] + [p["id"] for p in pages_new.values() if p.get("id")]
            new_state["feeds"][feed] = {
                "etag": response.etag,
                "last_modified": response.last_modified,
                "ids": sorted(set(ids)),
                "pages": {u: p for u, p in pages_new.items() if p.get("id")},
            }
    report.skipped, report.warnings = ingested.skipped, ingested.warnings
    store, update = update_index(index_dir, embedder, spec, add=ingested.articles, progress=progress, dedup=dedup,
                                 keep=keep, lock_held=True)
    report.added, report.updated = len(update.added), len(update.updated)
    report.unchanged, report.collapsed = len(update.unchanged), len(update.collapsed)
    report.articles = len(store.articles)
    save_state(index_dir, new_state)
    return report


def watch(
    feeds: Sequence[str],
    index_dir: Path,
    embedder: Embedder,
    spec: ChunkSpec,
    fetcher: Fetcher,
    every_s: float,
    rounds: int | None = None,
    dedup: DedupSpec | None = DedupSpec(),
    on_round: Callable[[RoundReport], None] = lambda r: None,
    sleep: Callable[[float], None] = time.sleep,
    progress: bool = False,
    limits: IngestLimits = IngestLimits(),
    keep: int = KEEP_GENERATIONS,
) -> list[RoundReport]:
    """Run rounds every `every_s` seconds (measured start to start), `rounds` times or forever.

    KeyboardInterrupt while waiting between rounds ends the loop normally; during a round it
    propagates (the index on disk is then unchanged: updates are atomic).
    """
    reports: list[RoundReport] = []
    number = 0
    while rounds is None or number < rounds:
        number += 1
        started = time.monotonic()
        report = run_round(feeds, index_dir, embedder, spec, fetcher, dedup, number, progress, limits, keep)
        reports.append(report)
        on_round(report)
        if rounds is not None and number >= rounds:
            break
        try:
            sleep(max(0.0, every_s - (time.monotonic() - started)))
        except KeyboardInterrupt:
            break
    return reports
