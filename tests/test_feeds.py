"""Feeds and URLs → articles (qa.ingest.feeds), served by a local HTTP server; no outside network."""

from __future__ import annotations

import pytest

from qa.ingest.feeds import entry_date, ingest_url
from qa.ingest.fetch import Fetcher
from qa.ingest import ingest_paths

from .http_server import Route

BODY = (
    "The city council approved the new harbour bridge on Tuesday after a long debate about its cost. "
    "The bridge will cost 40 million pounds and is expected to open in 2027, the mayor said. "
    "Construction starts in spring and the ferry service will continue until the bridge opens."
)


def rss(base: str, items: list[dict], title: str = "City Herald") -> bytes:
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>',
        f"<title>{title}</title><link>{base}/</link><description>News</description>",
    ]
    for item in items:
        out.append("<item>")
        out.append(f"<title>{item['title']}</title><link>{item['link']}</link>")
        if item.get("date"):
            out.append(f"<pubDate>{item['date']}</pubDate>")
        if item.get("summary"):
            out.append(f"<description>{item['summary']}</description>")
        if item.get("content"):
            out.append(f"<content:encoded><![CDATA[{item['content']}]]></content:encoded>")
        out.append("</item>")
    out.append("</channel></rss>")
    return "\n".join(out).encode("utf-8")


def atom(entries: list[dict], title: str = "Wire Service") -> bytes:
    out = ['<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">',
           f"<title>{title}</title><id>urn:wire</id><updated>2024-03-05T10:00:00Z</updated>"]
    for e in entries:
        out.append(f"<entry><title>{e['title']}</title><id>{e['link']}</id><link href=\"{e['link']}\"/>")
        out.append(f"<updated>{e['date']}</updated>")
        if e.get("content"):
            out.append(f'<content type="html">{e["content"].replace("&", "&amp;").replace("<", "&lt;")}</content>')
        if e.get("summary"):
            out.append(f"<summary>{e['summary']}</summary>")
        out.append("</entry>")
    out.append("</feed>")
    return "".join(out).encode("utf-8")


def page(title: str, body: str, canonical: str | None = None, og_url: str | None = None, site: str = "Herald Site",
         date: str = "2024-03-04") -> bytes:
    head = f"<title>{title}</title><meta property='og:site_name' content='{site}'>"
    head += f"<meta property='article:published_time' content='{date}'>"
    if canonical:
        head += f"<link rel='canonical' href='{canonical}'>"
    if og_url:
        head += f"<meta property='og:url' content='{og_url}'>"
    paragraphs = "".join(f"<p>{s}.</p>" for s in body.split(". ") if s)
    return (f"<html><head>{head}</head><body><nav>Home | News | Sport</nav><article><h1>{title}</h1>"
            f"{paragraphs}</article><footer>Copyright</footer></body></html>").encode("utf-8")


@pytest.fixture
def fetcher():
    with Fetcher(timeout=1.0, max_bytes=512 * 1024, max_redirects=3, allow_private=True) as f:  # the test server is on 127.0.0.1
        yield f


def test_rss_with_full_content_needs_no_page_fetch(server, fetcher):
    link = server.url("/news/bridge?utm_source=rss&utm_medium=feed&id=7")
    server.routes["/rss"] = Route(rss(server.base, [
        {"title": "Council approves bridge", "link": link, "date": "Tue, 05 Mar 2024 10:00:00 +0100",
         "summary": "Short summary.", "content": "<p>" + BODY.replace(". ", ".</p><p>") + "</p><script>x()</script>"},
    ]), "application/rss+xml")
    report = ingest_url(server.url("/rss"), fetcher)
    assert report.skipped == []
    [article] = report.articles
    assert article.title == "Council approves bridge"
    assert article.text.startswith("The city council approved") and "x()" not in article.text
    assert article.text.count("\n\n") == 2  # paragraphs kept
    assert article.published == "2024-03-05T10:00:00+01:00"
    assert article.source == "City Herald"
    assert article.url == article.id == server.url("/news/bridge?id=7")
    assert "/news/bridge?utm_source=rss&utm_medium=feed&id=7" not in server.hits  # never fetched


def test_atom_with_and_without_content(server, fetcher):
    server.routes["/page-b"] = Route(page("Storm closes schools", BODY.replace("bridge", "school"),
                                          canonical=server.url("/story/b?utm_campaign=x")))
    server.routes["/atom"] = Route(atom([
        {"title": "Bridge approved", "link": server.url("/a"), "date": "2024-03-05T10:00:00+02:00", "content": f"<p>{BODY}</p>"},
        {"title": "Storm closes schools", "link": server.url("/page-b"), "date": "2024-03-06T08:30:00Z",
         "summary": "Only a summary."},
    ]), "application/atom+xml")
    report = ingest_url(server.url("/atom"), fetcher)
    assert report.skipped == []
    a, b = report.articles
    assert a.published == "2024-03-05T10:00:00+02:00" and a.source == "Wire Service" and a.id == server.url("/a")
    assert b.title == "Storm closes schools" and "school" in b.text and "Only a summary" not in b.text
    assert "Home | News" not in b.text  # boilerplate removed by trafilatura
    assert b.id == b.url == server.url("/story/b")  # rel=canonical, tracking parameters dropped
    assert b.published == "2024-03-06T08:30:00+00:00"  # the entry's date wins over the page's
    assert b.source == "Wire Service"


def test_rss_without_content_fetches_pages_and_reports_failures(server, fetcher):
    server.routes["/p1"] = Route(page("Bridge approved", BODY, og_url=server.url("/canon/p1")))
    server.routes["/p2"] = Route(status=301, headers={"Location": "/p2-final"})
    server.routes["/p2-final"] = Route(page("Bridge opens", BODY.replace("approved", "opened")))
    server.routes["/slow"] = Route(page("Slow", BODY), delay=3)
    server.routes["/pdf"] = Route(b"%PDF-1.4", "application/pdf")
    server.routes["/loop"] = Route(status=302, headers={"Location": "/loop"})
    items = [{"title": t, "link": server.url(p), "summary": "Teaser."}
             for t, p in [("One", "/p1"), ("Two", "/p2"), ("Slow", "/slow"), ("Gone", "/gone"),
                          ("Pdf", "/pdf"), ("Loop", "/loop")]]
    server.routes["/rss"] = Route(rss(server.base, items), "text/xml")
    report = ingest_url(server.url("/rss"), fetcher)
    by_title = {a.title: a for a in report.articles}
    assert set(by_title) == {"One", "Two"}
    assert by_title["One"].id == server.url("/canon/p1")  # og:url
    assert by_title["Two"].id == server.url("/p2-final")  # final URL after the redirect
    assert by_title["One"].published == "2024-03-04" and by_title["One"].source == "City Herald"
    reasons = {s.origin.rsplit("/", 1)[-1]: s.reason for s in report.skipped}
    assert "timed out" in reasons["slow"]
    assert "HTTP 404" in reasons["gone"]
    assert "unsupported content type application/pdf" in reasons["pdf"]
    assert "redirect loop" in reasons["loop"]
    assert all("(entry " in r and "/rss)" in r for r in reasons.values())


def test_mixed_inputs_never_abort_the_batch(server, fetcher, tmp_path):
    server.routes["/article"] = Route(page("Bridge approved", BODY, canonical=server.url("/article")))
    server.routes["/huge"] = Route(stream_bytes=4 * 2**20)
    server.routes["/sitemap.xml"] = Route(b"<?xml version='1.0'?><urlset><url><loc>x</loc></urlset>", "application/xml")
    local = tmp_path / "story.txt"
    local.write_text("Mayor resigns\n\nThe mayor resigned on Monday.", encoding="utf-8")
    report = ingest_paths([
        server.url("/article"), server.url("/huge"), server.url("/sitemap.xml"), server.url("/nope"),
        "ftp://127.0.0.1/feed.xml", str(local),
    ], fetcher=fetcher)
    assert sorted(a.title for a in report.articles) == ["Bridge approved", "Mayor resigns"]
    reasons = {s.origin: s.reason for s in report.skipped}
    assert "larger than 512 KiB" in reasons[server.url("/huge")]
    assert "not an RSS or Atom feed" in reasons[server.url("/sitemap.xml")]
    assert "HTTP 404" in reasons[server.url("/nope")]
    assert "only http(s)" in reasons["ftp://127.0.0.1/feed.xml"]


def test_feed_files_on_disk(tmp_path):
    (tmp_path / "herald.rss").write_bytes(rss("https://herald.example", [
        {"title": "Bridge", "link": "https://herald.example/b?fbclid=1", "date": "Tue, 05 Mar 2024 10:00:00 GMT",
         "content": BODY},
        {"title": "No text, no link", "link": ""},
    ]))
    (tmp_path / "wire.atom").write_bytes(atom([
        {"title": "Storm", "link": "https://wire.example/s", "date": "2024-03-05", "content": f"<p>{BODY}</p>"}]))
    (tmp_path / "sitemap.xml").write_text("<urlset><url><loc>x</loc></url></urlset>", encoding="utf-8")
    report = ingest_paths([tmp_path])
    ids = sorted(a.id for a in report.articles)
    assert ids == ["https://herald.example/b", "https://wire.example/s"]
    storm = next(a for a in report.articles if a.title == "Storm")
    assert storm.published == "2024-03-05T00:00:00+00:00"  # time zone aware (UTC when none given)
    reasons = {s.origin.rsplit("/", 1)[-1]: s.reason for s in report.skipped}
    assert "not an RSS or Atom feed" in reasons["sitemap.xml"]
    assert any("no content, no summary and no link" in r for r in reasons.values())


@pytest.mark.parametrize(
    "entry,expected",
    [
        ({"published": "Tue, 05 Mar 2024 10:00:00 EST"}, "2024-03-05T10:00:00-05:00"),
        ({"published": "Tue, 05 Mar 2024 10:00:00 GMT"}, "2024-03-05T10:00:00+00:00"),
        ({"updated": "2024-03-05T10:00:00.5+05:30"}, "2024-03-05T10:00:00.500000+05:30"),
        ({"published": "2024-03-05 10:00"}, "2024-03-05T10:00:00+00:00"),
        ({"published": "garbage", "published_parsed": (2024, 3, 5, 9, 0, 0, 1, 65, 0)}, "2024-03-05T09:00:00+00:00"),
        ({}, None),
    ],
)
def test_entry_dates_are_time_zone_aware(entry, expected):
    assert entry_date(entry) == expected


@pytest.mark.parametrize(
    "body,content_type,expected",
    [
        (b'\xef\xbb\xbf<?xml version="1.0"?>\n<?xml-stylesheet type="text/xsl" href="f.xsl"?>\n<!-- c -->\n<rss>', "text/html", True),
        (b"<feed xmlns='http://www.w3.org/2005/Atom'>", "", True),
        (b"<?xml version='1.0'?><rdf:RDF>", "text/plain", True),
        (b"<?xml version='1.0'?><urlset>", "application/xml", False),
        (b"<!DOCTYPE html><html><body>rss</body></html>", "text/html", False),
    ],
)
def test_feed_sniffing(body, content_type, expected):
    from qa.ingest.feeds import looks_like_feed

    assert looks_like_feed(body, content_type) is expected


def test_feed_entries_linking_to_internal_addresses_are_not_fetched(server, tmp_path):
    """Issue 16 (7): a feed (here a file) whose entry links to a loopback URL; nothing is fetched
    from it with the default policy, so nothing internal can be indexed and answered in the chat."""
    server.routes["/internal-secret"] = Route(page("Internal secret", "The admin password is hunter2. " * 5))
    feed = tmp_path / "outside.rss"
    feed.write_bytes(rss("https://news.example", [
        {"title": "Innocent entry", "link": server.url("/internal-secret"), "summary": "Teaser"},
        {"title": "Full entry", "link": "https://news.example/a", "content": "<p>" + BODY + "</p>"},
    ]))
    report = ingest_paths([feed])
    assert [a.title for a in report.articles] == ["Full entry"]
    [skipped] = report.skipped
    assert "refused: 127.0.0.1 resolves to 127.0.0.1, a loopback address" in skipped.reason
    assert server.hits == {}


def test_entries_per_feed_are_capped(tmp_path):
    from qa.ingest import IngestLimits

    feed = tmp_path / "many.rss"
    feed.write_bytes(rss("https://news.example", [
        {"title": f"Entry {i}", "link": f"https://news.example/{i}", "content": f"<p>Story number {i} text.</p>"}
        for i in range(7)
    ]))
    report = ingest_paths([feed], limits=IngestLimits(max_feed_entries=5))
    assert [a.title for a in report.articles] == [f"Entry {i}" for i in range(5)]
    assert report.warnings == [f"{feed}: the feed has 7 entries; read the first 5 (QA_FEED_MAX_ENTRIES)"]
