"""qa index watch: rounds over feeds served locally, with the real embedder."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from qa.cli import cli
from qa.ingest.fetch import Fetcher
from qa.index import IndexStore, current_generation, write_lock
from qa.index.watch import STATE_FILE, run_round, watch

from .conftest import SPEC
from .test_dedup import COPY, OTHER, STORY
from .test_feeds import BODY, atom, page, rss
from .http_server import Route

STORM = ("A winter storm closed thirty schools along the coast on Friday. Forecasters expect winds of 120 "
         "kilometres per hour until Sunday, and ferries to the islands were cancelled. The council opened two "
         "shelters for families whose homes lost power, and asked drivers to stay off the coast road.")


@pytest.fixture
def fetcher():
    with Fetcher(timeout=2.0, allow_private=True) as f:  # the test server is on 127.0.0.1
        yield f


def serve_feeds(server, wire_entries=None, p2=OTHER):
    server.routes["/p/1"] = Route(page("Northwind shares fall", STORY), etag=True)
    server.routes["/p/2"] = Route(page("Strike averted", p2), etag=True)
    server.routes["/herald.rss"] = Route(rss(server.base, [
        {"title": "Northwind shares fall", "link": server.url("/p/1?utm_source=rss"), "summary": "Teaser",
         "date": "Mon, 01 Jul 2024 09:00:00 +0200"},
        {"title": "Strike averted", "link": server.url("/p/2"), "summary": "Teaser", "date": "Thu, 04 Jul 2024 18:00:00 +0200"},
    ]), "application/rss+xml", etag=True)
    server.routes["/wire.atom"] = Route(atom(wire_entries or [
        {"title": "Bridge approved", "link": server.url("/w/1"), "date": "2024-07-02T10:00:00Z", "content": BODY},
        {"title": "Airline stock slides", "link": server.url("/w/2"), "date": "2024-07-01T12:00:00Z", "content": COPY},
    ]), "application/atom+xml", etag=True)
    return [server.url("/herald.rss"), server.url("/wire.atom")]


def current_gen(index_dir):
    return current_generation(index_dir)


def test_rounds_add_then_noop_then_update(tmp_path, server, fetcher, embedder):
    index_dir = tmp_path / "idx"
    feeds = serve_feeds(server)

    r1 = run_round(feeds, index_dir, embedder, SPEC, fetcher, number=1)
    assert (r1.added, r1.updated, r1.collapsed, len(r1.skipped), r1.articles) == (3, 0, 1, 0, 3), r1
    store = IndexStore.load(index_dir, embedder)
    kept = store.articles[server.url("/p/1")]  # canonical URL: tracking parameter dropped
    assert [a.id for a in kept.alternates] == [server.url("/w/2")]
    assert kept.source == "City Herald" and kept.published == "2024-07-01T09:00:00+02:00"

    # Same feeds again: nothing changes, no new generation; conditional GETs answer 304.
    gen = current_gen(index_dir)
    hits = dict(server.hits)
    r2 = run_round(feeds, index_dir, embedder, SPEC, fetcher, number=2)
    assert (r2.added, r2.updated, r2.collapsed, len(r2.skipped)) == (0, 0, 0, 0), r2
    assert r2.feeds_not_modified == 1 and r2.pages_not_modified == 2  # wire 304; herald's pages 304
    assert current_gen(index_dir) == gen
    assert server.hits["/herald.rss"] == hits["/herald.rss"] + 1  # feeds linking pages are read every round

    # An updated page (same canonical URL, changed text) replaces the old text.
    server.routes["/p/2"] = Route(page("Strike averted", OTHER.replace("5% raise", "6% raise")), etag=True)
    r3 = run_round(feeds, index_dir, embedder, SPEC, fetcher, number=3)
    assert (r3.added, r3.updated, r3.collapsed) == (0, 1, 0), r3
    store = IndexStore.load(index_dir, embedder)
    assert "6% raise" in store.articles[server.url("/p/2")].text
    assert not any("5% raise" in c.text for c in store.chunks) and any("6% raise" in c.text for c in store.chunks)

    # The wire feed changes: an entry's content is edited and a new one appears.
    serve_feeds(server, wire_entries=[
        {"title": "Bridge approved", "link": server.url("/w/1"), "date": "2024-07-02T10:00:00Z",
         "content": BODY.replace("40 million", "45 million")},
        {"title": "Airline stock slides", "link": server.url("/w/2"), "date": "2024-07-01T12:00:00Z", "content": COPY},
        {"title": "Storm closes schools", "link": server.url("/w/3"), "date": "2024-07-03T07:00:00Z", "content": STORM},
    ], p2=OTHER.replace("5% raise", "6% raise"))
    r4 = run_round(feeds, index_dir, embedder, SPEC, fetcher, number=4)
    assert (r4.added, r4.updated, r4.collapsed, r4.articles) == (1, 1, 0, 4), r4
    assert "45 million" in IndexStore.load(index_dir, embedder).articles[server.url("/w/1")].text

    # Restart without the state file (validators lost): still a no-op, no duplicates.
    (index_dir / STATE_FILE).unlink()
    gen = current_gen(index_dir)
    r5 = run_round(feeds, index_dir, embedder, SPEC, fetcher, number=5)
    assert (r5.added, r5.updated, r5.collapsed, r5.unchanged, r5.articles) == (0, 0, 0, 5, 4), r5
    assert current_gen(index_dir) == gen


def test_failed_entry_is_reported_and_retried(tmp_path, server, fetcher, embedder):
    index_dir = tmp_path / "idx"
    server.routes["/ok"] = Route(page("Bridge approved", BODY), etag=True)
    server.routes["/feed"] = Route(rss(server.base, [
        {"title": "Bridge approved", "link": server.url("/ok"), "summary": "x"},
        {"title": "Storm", "link": server.url("/later"), "summary": "x"},
    ]), "application/rss+xml", etag=True)
    r1 = run_round([server.url("/feed"), server.url("/no-such-feed")], index_dir, embedder, SPEC, fetcher)
    assert r1.added == 1 and len(r1.skipped) == 2
    reasons = {s.origin: s.reason for s in r1.skipped}
    assert reasons[server.url("/no-such-feed")] == "HTTP 404 Not Found"
    assert reasons[server.url("/later")] == f"HTTP 404 Not Found (entry 2 of {server.url('/feed')})"
    state = json.loads((index_dir / STATE_FILE).read_text())
    assert server.url("/feed") not in state["feeds"]  # no validators for a partly failed feed
    server.routes["/later"] = Route(page("Storm", STORM))
    r2 = run_round([server.url("/feed")], index_dir, embedder, SPEC, fetcher)
    # The page that worked is fetched in full again (the feed kept no validators), and is unchanged.
    assert (r2.added, r2.unchanged, r2.pages_not_modified, len(r2.skipped)) == (1, 1, 0, 0), r2
    r3 = run_round([server.url("/feed")], index_dir, embedder, SPEC, fetcher)
    assert (r3.added, r3.updated, r3.unchanged, r3.pages_not_modified) == (0, 0, 1, 1), r3


def test_locked_index_fails_the_round_not_the_watch(tmp_path, server, fetcher, embedder):
    index_dir = tmp_path / "idx"
    feeds = serve_feeds(server)
    with write_lock(index_dir):
        report = run_round(feeds, index_dir, embedder, SPEC, fetcher)
    assert report.error and "another process" in report.error and "failed" in report.summary()
    assert not (index_dir / STATE_FILE).exists()


def test_ctrl_c_between_rounds_stops_cleanly(tmp_path, server, fetcher, embedder):
    feeds = serve_feeds(server)
    seen = []

    def interrupted_sleep(seconds):
        assert seconds <= 60
        raise KeyboardInterrupt

    reports = watch(feeds, tmp_path / "idx", embedder, SPEC, fetcher, every_s=60, rounds=None,
                    on_round=seen.append, sleep=interrupted_sleep)
    assert len(reports) == 1 and seen == reports and reports[0].added == 3


def test_cli_watch_rounds(tmp_path, server, monkeypatch):
    monkeypatch.setenv("QA_FETCH_ALLOW_PRIVATE", "1")  # the test server is on 127.0.0.1
    feeds = serve_feeds(server)
    result = CliRunner().invoke(cli, ["index", "watch", *feeds, "--every", "0", "--rounds", "2",
                                      "--index", str(tmp_path / "idx"), "--quiet"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.startswith("round ")]
    assert len(lines) == 2
    assert "added 3, updated 0" in lines[0] and "collapsed 1" in lines[0]
    # Herald's two pages answer 304; the wire feed itself answers 304.
    assert "added 0, updated 0, unchanged 2, collapsed 0" in lines[1] and "feeds not modified 1" in lines[1]


def test_cli_add_feed_urls_twice_is_a_noop(tmp_path, server, monkeypatch):
    monkeypatch.setenv("QA_FETCH_ALLOW_PRIVATE", "1")  # the test server is on 127.0.0.1
    feeds = serve_feeds(server)
    args = ["index", "add", *feeds, server.url("/missing-feed"), "--index", str(tmp_path / "idx"), "--quiet"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 3, first.output  # indexed, but one named feed could not be read
    assert "Added 3, updated 0, unchanged 0, collapsed 1, skipped 1" in first.stdout
    assert f"skipped {server.url('/missing-feed')}: HTTP 404 Not Found" in first.stderr
    again = CliRunner().invoke(cli, args)
    assert "Added 0, updated 0, unchanged 4, collapsed 0, skipped 1" in again.stdout
