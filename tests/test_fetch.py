"""qa.ingest.fetch against a local HTTP server (tests/http_server.py, 127.0.0.1, free port); no outside network."""

from __future__ import annotations

import time

import pytest

from qa.config import parse_networks
from qa.ingest.fetch import FEED_TYPES, HTML_TYPES, Fetcher, FetchError, address_refusal

from .http_server import NewsServer, Route


@pytest.fixture
def fetcher():
    with Fetcher(timeout=1.0, max_bytes=256 * 1024, max_redirects=3, allow_private=True) as f:  # the test server is on 127.0.0.1
        yield f


PAGE = b"<html><head><title>Hello</title></head><body><p>Hi.</p></body></html>"


def test_page_with_user_agent_and_charset(server, fetcher):
    server.routes["/a"] = Route(PAGE, "text/html; charset=ISO-8859-1")
    response = fetcher.get(server.url("/a"), accept=HTML_TYPES)
    assert response.status == 200 and response.body == PAGE
    assert response.content_type == "text/html" and response.charset == "ISO-8859-1"
    assert response.final_url == response.url == server.url("/a")
    _, headers = server.requests[-1]
    assert headers["User-Agent"].startswith("news-qa/")


def test_redirects_are_followed_and_bounded(server, fetcher):
    server.routes["/old"] = Route(status=301, headers={"Location": "/mid"})
    server.routes["/mid"] = Route(status=302, headers={"Location": server.url("/new")})
    server.routes["/new"] = Route(PAGE)
    response = fetcher.get(server.url("/old"))
    assert response.final_url == server.url("/new") and response.url == server.url("/old")
    for i in range(6):
        server.routes[f"/hop{i}"] = Route(status=302, headers={"Location": f"/hop{i + 1}"})
    with pytest.raises(FetchError, match="too many redirects"):
        fetcher.get(server.url("/hop0"))


def test_redirect_loop(server, fetcher):
    server.routes["/x"] = Route(status=302, headers={"Location": "/y"})
    server.routes["/y"] = Route(status=302, headers={"Location": "/x"})
    with pytest.raises(FetchError, match="redirect loop"):
        fetcher.get(server.url("/x"))


@pytest.mark.parametrize("target", ["ftp://127.0.0.1/file", "file:///etc/passwd", "javascript:alert(1)"])
def test_redirect_to_other_scheme_is_refused(server, fetcher, target):
    server.routes["/r"] = Route(status=302, headers={"Location": target})
    with pytest.raises(FetchError, match="non-http"):
        fetcher.get(server.url("/r"))
    assert server.hits.get("/r") == 1 and len(server.requests) == 1


@pytest.mark.parametrize("url", ["ftp://example.org/feed", "file:///etc/passwd", "/etc/passwd"])
def test_only_http_urls(fetcher, url):
    with pytest.raises(FetchError, match="not an http"):
        fetcher.get(url)


def test_slow_server_times_out(server, fetcher):
    server.routes["/slow"] = Route(PAGE, delay=3)
    start = time.monotonic()
    with pytest.raises(FetchError, match="timed out after 1 s"):
        fetcher.get(server.url("/slow"))
    assert time.monotonic() - start < 2.5


def test_slow_body_hits_the_overall_deadline(server, fetcher):
    server.routes["/drip"] = Route(PAGE * 4, drip=0.1)  # ~18 chunks: about 1.8 s
    with pytest.raises(FetchError, match="timed out"):
        fetcher.get(server.url("/drip"))


def test_huge_responses_are_cut_off(server, fetcher):
    server.routes["/declared"] = Route(b"x" * (300 * 1024))
    with pytest.raises(FetchError, match=r"larger than 256 KiB \(300 KiB declared\)"):
        fetcher.get(server.url("/declared"))
    server.routes["/stream"] = Route(stream_bytes=50 * 2**20)
    with pytest.raises(FetchError, match="larger than 256 KiB"):
        fetcher.get(server.url("/stream"))


def test_content_type_check(server, fetcher):
    server.routes["/doc.pdf"] = Route(b"%PDF-1.4", "application/pdf")
    with pytest.raises(FetchError, match="unsupported content type application/pdf"):
        fetcher.get(server.url("/doc.pdf"), accept=HTML_TYPES | FEED_TYPES)
    assert fetcher.get(server.url("/doc.pdf")).body == b"%PDF-1.4"  # no accept: anything


def test_http_errors(server, fetcher):
    with pytest.raises(FetchError, match="HTTP 404"):
        fetcher.get(server.url("/missing"))
    server.routes["/boom"] = Route(b"oops", status=500)
    with pytest.raises(FetchError, match="HTTP 500"):
        fetcher.get(server.url("/boom"))


def test_connection_refused():
    with NewsServer() as s:
        url = s.url("/gone")
    with Fetcher(timeout=1.0, allow_private=True) as f, pytest.raises(FetchError, match="cannot fetch"):
        f.get(url)


def test_conditional_get(server, fetcher):
    server.routes["/feed"] = Route(b"<rss/>", "application/rss+xml", etag=True)
    first = fetcher.get(server.url("/feed"))
    assert first.etag and not first.not_modified
    second = fetcher.get(server.url("/feed"), etag=first.etag)
    assert second.not_modified and second.body == b""
    assert server.requests[-1][1]["If-None-Match"] == first.etag


def test_text_decoding():
    from qa.ingest.fetch import Response

    latin = "<html><head><meta charset='windows-1252'></head><body>Café</body></html>".encode("cp1252")
    assert "Café" in Response("u", "u", 200, "text/html", None, latin).text()
    assert "Café" in Response("u", "u", 200, "text/html", None, "Café".encode()).text()


def test_headers_trickled_a_byte_at_a_time_hit_the_overall_deadline(server, fetcher):
    server.routes["/slowloris"] = Route(PAGE, header_drip=0.05)  # ~300 header bytes: 15 s if waited for
    start = time.monotonic()
    with pytest.raises(FetchError, match="timed out after 1 s"):
        fetcher.get(server.url("/slowloris"))
    assert time.monotonic() - start < 2.5


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"])
def test_private_addresses_are_refused_by_default(server, host):
    server.routes["/internal-secret"] = Route(PAGE)
    url = server.url("/internal-secret").replace("127.0.0.1", host)
    with Fetcher(timeout=1.0) as f, pytest.raises(FetchError, match=r"refused: .* resolves to .*a loopback address"):
        f.get(url)
    assert server.hits == {}, "nothing was sent"


def test_every_redirect_is_checked_against_the_address_policy(server):
    server.routes["/r"] = Route(status=302, headers={"Location": server.url("/secret").replace("127.0.0.1", "127.0.0.2")})
    server.routes["/ok"] = Route(PAGE)
    with Fetcher(timeout=1.0, allow_networks=parse_networks("127.0.0.1/32")) as f:
        assert f.get(server.url("/ok")).body == PAGE  # the allowed network
        with pytest.raises(FetchError, match=r"refused: 127.0.0.2 resolves to 127.0.0.2, a loopback address"):
            f.get(server.url("/r"))
    assert server.hits == {"/ok": 1, "/r": 1}


@pytest.mark.parametrize("address, refused", [
    ("10.1.2.3", "a private address"), ("192.168.0.1", "a private address"), ("172.16.5.4", "a private address"),
    ("169.254.169.254", "a link-local address"), ("127.0.0.53", "a loopback address"), ("::1", "a loopback address"),
    ("fe80::1", "a link-local address"), ("fc00::1", "a private address"), ("0.0.0.0", "a private address"),
    ("100.64.0.1", "not a public address"), ("224.0.0.1", "a multicast address"), ("::ffff:10.0.0.1", "a private address"),
    ("93.184.216.34", None), ("2606:4700::6810:84e5", None),
])
def test_address_policy(address, refused):
    import ipaddress

    ip = ipaddress.ip_address(address)
    assert address_refusal(ip) == refused
    assert address_refusal(ip, allow_private=True) is None
    assert address_refusal(ip, allow_networks=parse_networks(f"{address}, 198.51.100.0/24")) is None


def test_allow_settings():
    from qa.config import Settings

    settings = Settings.from_env({"QA_FETCH_ALLOW_PRIVATE": "1", "QA_FETCH_ALLOW_NETWORKS": "10.0.0.0/8 192.168.1.7"})
    assert settings.fetch_allow_private and settings.fetch_allow_networks == "10.0.0.0/8 192.168.1.7"
    with pytest.raises(ValueError, match="QA_FETCH_ALLOW_NETWORKS"):
        Settings.from_env({"QA_FETCH_ALLOW_NETWORKS": "10.0.0.0/33"})
    with Fetcher.from_settings(settings) as f:
        assert f._backend.allow_private
