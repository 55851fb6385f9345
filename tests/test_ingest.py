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


# ---- no input stops a batch (issue 16, 3) and bounded articles (issue 16, 4) ---------------------------------


GOOD = json.dumps({"title": "Good record", "text": "The council met on Monday and approved the budget."})


def test_csv_field_over_the_csv_modules_default_limit_is_read(tmp_path):
    long_text = "The harbour bridge opened. " * 6000  # 162,000 characters: over csv's 131,072 default
    path = tmp_path / "long.csv"
    path.write_text(f'title,text\nLong one,"{long_text}"\nShort one,Just a short text.\n', encoding="utf-8")
    report = ingest_file(path)
    assert report.skipped == []
    assert [a.title for a in report.articles] == ["Long one", "Short one"]
    assert len(report.articles[0].text) == len(long_text.strip())


def test_deeply_nested_json_skips_that_record_only(tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    (tmp_path / "a.jsonl").write_text(GOOD + "\n" + deep + "\n" + GOOD.replace("Good", "Other") + "\n", encoding="utf-8")
    (tmp_path / "b.json").write_text('{"articles": ' + deep + "}", encoding="utf-8")
    (tmp_path / "c.txt").write_text("Plain title\nPlain text body.", encoding="utf-8")
    report = ingest_paths([tmp_path])
    assert sorted(a.title for a in report.articles) == ["Good record", "Other record", "Plain title"]
    reasons = {s.origin.rsplit("/", 1)[-1]: s.reason for s in report.skipped}
    assert reasons == {"a.jsonl:2": "JSON nested too deeply", "b.json": "JSON nested too deeply"}


def test_an_unexpected_exception_skips_one_item_with_its_reason(tmp_path, monkeypatch):
    import qa.ingest.formats as formats

    real = formats.article_from_record

    def flaky(record, origin):
        if record.get("title") == "Boom":
            raise RuntimeError("parser bug")
        return real(record, origin)

    monkeypatch.setattr(formats, "article_from_record", flaky)
    path = tmp_path / "a.jsonl"
    path.write_text(GOOD + "\n" + json.dumps({"title": "Boom", "text": "x y z"}) + "\n", encoding="utf-8")
    report = ingest_paths([path])
    assert [a.title for a in report.articles] == ["Good record"]
    assert report.skipped[0].origin.endswith("a.jsonl:2")
    assert report.skipped[0].reason == "cannot read (RuntimeError: parser bug)"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32", "utf-32-be"])
def test_utf16_and_utf32_with_a_byte_order_mark(tmp_path, encoding):
    bom = {"utf-16": "", "utf-32": ""}.get(encoding, "\ufeff")  # the -be codecs write no BOM themselves
    text = "Café wins award\n\nThe café in Zürich won a prize for its crème brûlée."
    (tmp_path / "a.txt").write_bytes((bom + text).encode(encoding))
    (tmp_path / "b.csv").write_bytes((bom + 'title,text\nCsv row,"Zürich, again."\n').encode(encoding))
    (tmp_path / "c.jsonl").write_bytes((bom + json.dumps({"title": "Jsonl", "text": "Crème brûlée."}, ensure_ascii=False) + "\n").encode(encoding))
    report = ingest_paths([tmp_path])
    assert report.skipped == []
    texts = {a.title: a.text for a in report.articles}
    assert texts == {"Café wins award": text.split("\n\n")[1], "Csv row": "Zürich, again.", "Jsonl": "Crème brûlée."}


def test_links_out_of_the_folder_are_not_followed_unless_asked(tmp_path):
    from qa.ingest import IngestLimits

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("Secret title\nroot:x:0:0:root:/root:/bin/bash", encoding="utf-8")
    (outside / "more").mkdir()
    (outside / "more" / "other.txt").write_text("Other title\nMore outside text.", encoding="utf-8")
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "good.txt").write_text("Good title\nGood body.", encoding="utf-8")
    (folder / "passwd.txt").symlink_to(outside / "secret.txt")
    (folder / "linked").symlink_to(outside / "more")
    (folder / "alias.txt").symlink_to(folder / "good.txt")  # inside the folder: read
    (folder / "loop").symlink_to(folder)

    report = ingest_paths([folder])
    assert sorted(a.title for a in report.articles) == ["Good title", "Good title"]
    reasons = {s.origin.rsplit("/", 1)[-1]: s.reason for s in report.skipped}
    assert set(reasons) == {"passwd.txt", "linked"}
    assert all("outside" in r and "--follow-symlinks" in r for r in reasons.values())

    followed = ingest_paths([folder], limits=IngestLimits(follow_symlinks=True))
    assert sorted(a.title for a in followed.articles) == ["Good title", "Good title", "Other title", "Secret title"]
    assert followed.skipped == []


def test_readme_and_licence_files_in_folders_are_skipped_with_a_notice(tmp_path):
    for name in ("README.TXT", "readme.md", "LICENSE", "LICENSE-MIT.txt", "COPYING.txt", "CHANGELOG.md"):
        (tmp_path / name).write_text("About this corpus\nThese files were collected in 2005.", encoding="utf-8")
    (tmp_path / "readmeals.txt").write_text("Ready meals sales rise\nSales of ready meals rose.", encoding="utf-8")
    report = ingest_paths([tmp_path])
    assert [a.title for a in report.articles] == ["Ready meals sales rise"]
    assert len(report.skipped) == 6 and all("README or licence" in s.reason for s in report.skipped)
    assert [a.title for a in ingest_paths([tmp_path / "README.TXT"]).articles] == ["About this corpus"]


def test_long_articles_are_cut_with_a_warning_and_read_with_bounded_memory(tmp_path):
    import tracemalloc

    from qa.ingest import IngestLimits

    limits = IngestLimits(max_article_chars=10_000)
    sentence = "The council approved the harbour bridge on Tuesday. "
    (tmp_path / "huge.txt").write_text("Huge title\n" + sentence * 400_000, encoding="utf-8")  # 20 MB
    (tmp_path / "long.jsonl").write_text(
        json.dumps({"title": "Long record", "text": sentence * 1000}) + "\n"  # 52 KB: cut
        + json.dumps({"title": "Huge record", "text": sentence * 100_000}) + "\n"  # 5 MB: over the record limit
        + GOOD + "\n",
        encoding="utf-8",
    )
    tracemalloc.start()
    report = ingest_paths([tmp_path], limits=limits)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    by_title = {a.title: a for a in report.articles}
    assert set(by_title) == {"Huge title", "Long record", "Good record"}
    huge = by_title["Huge title"].text
    assert 9_800 < len(huge) <= 10_000 and huge.split()[-1] in sentence.split()  # cut between words
    assert 9_800 < len(by_title["Long record"].text) <= 10_000
    assert [s.reason for s in report.skipped] == ["record longer than 1 MiB"]
    assert len(report.warnings) == 2 and all("QA_MAX_ARTICLE_CHARS" in w for w in report.warnings)
    assert peak < 8 * 2**20, f"reading a 20 MB file and a 5 MB record peaked at {peak / 2**20:.0f} MiB"


def test_ingest_stream_yields_articles_one_at_a_time(tmp_path):
    from qa.ingest import IngestStream

    for i in range(3):
        (tmp_path / f"{i}.txt").write_text(f"Title {i}\nBody {i}.", encoding="utf-8")
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    stream = IngestStream([tmp_path])
    first = next(iter(stream))
    assert first.title == "Title 0" and stream.count == 1 and stream.skipped == []
    stream = IngestStream([tmp_path])
    assert [a.title for a in stream] == ["Title 0", "Title 1", "Title 2"]
    assert stream.count == 3 and [s.reason[:14] for s in stream.skipped] == ["malformed JSON"]
