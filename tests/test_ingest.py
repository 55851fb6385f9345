import json

import pytest

from qa.errors import IngestError
from qa.ingest import canonical_url, content_id, decode_bytes, ingest_file, ingest_paths, normalize_date

from .conftest import SAMPLE_FILE

HTML = """<html><head><title>Council approves bridge | City Herald</title>
<link rel="canonical" href="https://Herald.example/news/bridge?utm_source=feed&id=7#top">
<meta property="og:title" content="Council approves bridge">
<meta property="og:site_name" content="City Herald">
<meta property="article:published_time" content="2024-03-05T10:00:00+01:00">
</head><body><nav>Home | Sport | Weather</nav>
<article><h1>Council approves bridge</h1>
<p>The city council approved the new harbour bridge on Tuesday after a long debate about its cost.</p>
<p>The bridge will cost 40 million pounds and is expected to open in 2027, the mayor said.</p>
<script>document.title = "hacked"</script></article>
<footer>Copyright City Herald</footer></body></html>"""


def test_txt_title_is_first_nonempty_line(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("\n\n  Headline here  \n\nBody sentence one. Body two.\n", encoding="utf-8")
    [article] = ingest_file(path).articles
    assert article.title == "Headline here"
    assert article.text == "Body sentence one. Body two."
    assert article.id == content_id("Headline here", article.text)
    assert article.origin == str(path)


def test_markdown_heading_marker_is_dropped(tmp_path):
    path = tmp_path / "a.md"
    path.write_text("# Markets rally\n\nStocks rose on Monday.", encoding="utf-8")
    assert ingest_file(path).articles[0].title == "Markets rally"


def test_sample_article():
    [article] = ingest_file(SAMPLE_FILE).articles
    assert article.title.startswith("Trump receives")
    assert "There is not a second meeting" in article.text


def test_html_main_text_title_date_and_canonical_url(tmp_path):
    path = tmp_path / "page.html"
    path.write_text(HTML, encoding="utf-8")
    report = ingest_file(path)
    assert report.skipped == []
    [article] = report.articles
    assert "approved the new harbour bridge" in article.text
    assert "Home | Sport" not in article.text and "hacked" not in article.text
    assert article.title.startswith("Council approves bridge")
    assert article.published == "2024-03-05"
    assert article.source == "City Herald"
    assert article.url == "https://herald.example/news/bridge?id=7"
    assert article.id == article.url


def test_json_jsonl_csv_records(tmp_path):
    (tmp_path / "a.json").write_text(
        json.dumps([{"title": "One", "content": "Text one.", "published": "2024-01-02T03:04:05Z", "url": "http://x.example/1"}]),
        encoding="utf-8",
    )
    (tmp_path / "b.jsonl").write_text(
        json.dumps({"title": "Two", "body": "Text two.", "source": "Wire", "id": "two"}) + "\n"
        + "{not json\n"
        + json.dumps({"title": "No text"}) + "\n",
        encoding="utf-8",
    )
    (tmp_path / "c.csv").write_text('title,text,date,source\nThree,"Text, three.",5 March 2024,Paper\n', encoding="utf-8")
    report = ingest_paths([tmp_path])
    by_title = {a.title: a for a in report.articles}
    assert set(by_title) == {"One", "Two", "Three"}
    assert by_title["One"].published == "2024-01-02T03:04:05+00:00"
    assert by_title["One"].id == "http://x.example/1"
    assert by_title["Two"].id == "two" and by_title["Two"].source == "Wire"
    assert by_title["Three"].text == "Text, three." and by_title["Three"].published == "2024-03-05"
    reasons = {s.origin.rsplit("/", 1)[-1]: s.reason for s in report.skipped}
    assert "malformed JSON" in reasons["b.jsonl:2"]
    assert "missing text" in reasons["b.jsonl:3"]


def test_folder_with_bad_files_still_ingests_the_good_one(tmp_path):
    (tmp_path / "good.txt").write_text("Good title\nGood body.", encoding="utf-8")
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 10)
    (tmp_path / "title-only.txt").write_text("Just a title\n", encoding="utf-8")
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    report = ingest_paths([tmp_path, tmp_path / "missing.txt"])
    assert [a.title for a in report.articles] == ["Good title"]
    reasons = {s.origin.rsplit("/", 1)[-1]: s.reason for s in report.skipped}
    assert reasons["empty.txt"] == "empty file"
    assert "binary" in reasons["binary.txt"]
    assert "no text" in reasons["title-only.txt"]
    assert "malformed JSON" in reasons["broken.json"]
    assert "unsupported file type .png" in reasons["image.png"]
    assert reasons["missing.txt"] == "no such file or folder"


def test_latin1_file_is_decoded(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("Café owner wins award\n\nThe café in Zürich won a prize for its crème brûlée.".encode("latin-1"))
    [article] = ingest_file(path).articles
    assert "Zürich" in article.text and "crème brûlée" in article.text


def test_decode_refuses_binary():
    with pytest.raises(IngestError, match="binary"):
        decode_bytes(b"abc\x00def")


def test_canonical_url_drops_tracking_and_fragment():
    assert canonical_url("HTTPS://News.Example/a?utm_medium=x&b=2&fbclid=1#frag") == "https://news.example/a?b=2"
    assert canonical_url("javascript:alert(1)") is None
    assert canonical_url("ftp://x.example/a") is None


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("2024-03-05", "2024-03-05"),
        ("2024-03-05T10:00:00Z", "2024-03-05T10:00:00+00:00"),
        ("Tue, 05 Mar 2024 10:00:00 GMT", "2024-03-05T10:00:00+00:00"),
        ("March 5, 2024", "2024-03-05"),
    ],
)
def test_dates_become_iso_8601(raw, expected):
    assert normalize_date(raw) == expected


def test_unreadable_date_skips_record_with_reason(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps({"title": "T", "text": "Body.", "date": "not a date at all"}) + "\n", encoding="utf-8")
    report = ingest_file(path)
    assert report.articles == []
    assert "unreadable date" in report.skipped[0].reason
