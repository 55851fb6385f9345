"""The Milvus store (qa.index.milvus) against milvus-lite's file mode: same results as the FAISS
backend, updates by id, near-duplicate collapse, filters, versioning. Skipped without `.[milvus]`."""

from __future__ import annotations


import numpy as np
import pytest

pytest.importorskip("pymilvus", reason="the Milvus backend needs the extra: pip install '.[milvus]'")
pytest.importorskip("milvus_lite", reason="milvus-lite (in the extra .[milvus]) runs these tests' .db files")

from qa.config import Settings
from qa.errors import IndexExists, IndexIncompatible, IndexNotFound, QAError
from qa.index import IndexStore, build_store, open_store, store_exists, update_store
from qa.index.base import chunk_count, parse_location
from qa.index.milvus import MilvusBackend, MilvusStore, band_keys, day_number, quote
from qa.ingest import ingest_paths
from qa.ingest.dedup import DedupSpec, signatures
from qa.records import Article
from qa.retrieve import Filters, Retriever
from qa.retrieve_milvus import MilvusRetriever, milvus_filter

from .conftest import SAMPLE_DIR, SPEC

QUESTIONS = [
    "How much will the bridge cost?",
    "What did Kim Jong Un write in the letter?",
    "storm winds ferries",
    "Who delayed the vote?",
    "zzzz unknownword",
]


def ranks(passages):
    return [(p.chunk.id, p.chunk.article_id, p.chunk.start, p.chunk.end, p.dense_rank, p.bm25_rank, round(p.score, 6))
            for p in passages]


@pytest.fixture(scope="module")
def lite(tmp_path_factory, embedder, news_file):
    """One milvus-lite file built from the sample article and the news records (tests must not modify it)."""
    path = tmp_path_factory.mktemp("milvus") / "news.db"
    settings = Settings(store=str(path))
    articles = ingest_paths([SAMPLE_DIR, news_file]).articles
    build_store(settings, articles, embedder, SPEC, dedup=DedupSpec())
    return settings


@pytest.fixture
def scratch(tmp_path, embedder):
    """A fresh milvus-lite file per test, for updates."""
    return Settings(store=str(tmp_path / "scratch.db"))


def article(id, text, **kw):
    return Article(id=id, title=kw.pop("title", id.title()), text=text, **kw)


def test_same_rankings_as_faiss_backend(lite, sample_index, embedder):
    """Dense FLAT/IP, BM25 with the same tokens and IDF, the same RRF: identical passages, ranks and scores."""
    faiss = Retriever(IndexStore.load(sample_index, embedder), embedder)
    milvus = MilvusRetriever(open_store(lite, embedder), embedder)
    for question in QUESTIONS:
        assert ranks(milvus.retrieve(question, 5)) == ranks(faiss.retrieve(question, 5)), question
    for filters in (Filters(source="daily coast"), Filters(date_from="2024-01-01"),
                    Filters(date_to="2024-01-01"), Filters(source="City Herald", date_to="2024-12-31"),
                    Filters(source='nope "quoted" \\ source')):
        assert ranks(milvus.retrieve("bridge cost vote", 5, filters)) == ranks(faiss.retrieve("bridge cost vote", 5, filters)), filters


def test_time_windows_rank_as_on_faiss_backend(lite, sample_index, embedder):
    """An as-of day, a date window and a recency preference (qa.timeframe) change the rankings on
    Milvus exactly as on FAISS, dense and BM25 scores included."""
    from datetime import date

    from qa.records import TimeWindow

    faiss = Retriever(IndexStore.load(sample_index, embedder), embedder)
    milvus = MilvusRetriever(open_store(lite, embedder), embedder)

    def scored(passages):
        return ranks(passages) + [(round(p.dense_score, 4), p.bm25_score and round(p.bm25_score, 3)) for p in passages]

    windows = [
        TimeWindow(None, None, "as of 1 January 2024", until=date(2024, 1, 1)),
        TimeWindow(date(2024, 3, 1), date(2024, 3, 31), "in March 2024"),
        TimeWindow(None, None, "latest", recency=True),
        TimeWindow(date(2023, 11, 1), date(2023, 11, 30), "last month", until=date(2023, 12, 5)),
    ]
    for window in windows:
        for question in ("bridge cost vote", "What did Kim Jong Un write in the letter?"):
            mine, theirs = milvus.retrieve(question, 5, None, window), faiss.retrieve(question, 5, None, window)
            assert scored(mine) == scored(theirs), (window.reason, question)
    as_of = milvus.retrieve("bridge cost vote", 5, None, windows[0])
    assert as_of and all(not p.article.published or p.article.published[:10] <= "2024-01-01" for p in as_of)
    assert any(p.article.published and p.article.published[:10] > "2024-01-01" for p in milvus.retrieve("bridge cost vote", 5))


def test_passages_carry_offsets_and_articles(lite, embedder):
    store = open_store(lite, embedder)
    passages = MilvusRetriever(store, embedder).retrieve("How much will the bridge cost?", 3)
    assert passages and passages[0].article.id == "herald-bridge"
    for p in passages:
        assert p.article.text[p.chunk.start:p.chunk.end] == p.chunk.text
    assert isinstance(store, MilvusStore)
    assert len(store.articles) == 4 and chunk_count(store) == store.stats()["chunks"]
    assert store.articles["coast-storm"].source == "Daily Coast"
    assert sorted(store.articles) == sorted(a.id for a in store.articles.values())
    assert store.stats()["sources"] == ["City Herald", "Daily Coast"]


def test_answers_through_qaservice(lite, embedder, reader):
    from qa.answer import QAService

    service = QAService(lite, embedder=embedder, reader=reader)
    answer = service.ask("How much will the harbour bridge cost?")
    assert answer.found and "40 million" in answer.answer
    citation = answer.citations[0]
    assert citation.article_id == "herald-bridge"
    assert citation.passage[citation.answer_start:citation.answer_end] == answer.answer


def test_filter_expressions_escape_user_text():
    assert quote('a"b\\c\n') == '"a\\"b\\\\c"'
    assert milvus_filter(Filters(source='X" or id > 0 or "')) == 'source_key == "x\\" or id > 0 or \\""'
    assert milvus_filter(Filters(date_from="2024-01-31", date_to="2024-02-01")) == "day > 0 and day >= 20240131 and day <= 20240201"
    assert milvus_filter(Filters()) is None
    assert day_number("2024-03-05T10:00:00Z") == 20240305 and day_number(None) == 0 and day_number("soon") == 0


def test_update_replace_remove_and_generations(scratch, embedder):
    build_store(scratch, [article("a", "Apples grow in the orchard near the river."),
                          article("b", "Bananas are shipped from the port every week.")], embedder, SPEC)
    backend = MilvusBackend(parse_location(scratch.store, scratch.index_dir).uri, "news_qa")
    reader = open_store(scratch, embedder)
    g1 = backend.snapshot()
    store, report = update_store(scratch, embedder, SPEC, add=[article("a", "Avocados now grow in the orchard."),
                                                               article("c", "Cherries are picked in June.")],
                                 remove=["b", "missing"])
    assert (report.added, report.updated, report.removed, report.missing) == (["c"], ["a"], ["b"], ["missing"])
    assert sorted(store.articles) == ["a", "c"] and store.articles["a"].text.startswith("Avocados")
    assert chunk_count(store) == 2
    # A reader still holding the old generation sees it whole; a new question sees the new one.
    old = backend.articles(g1, ["a", "b", "c"])
    assert sorted(old) == ["a", "b"] and old["a"].text.startswith("Apples")
    hits = MilvusRetriever(reader, embedder).retrieve("Which fruit grows in the orchard?", 3)
    assert {p.article.id for p in hits} == {"a", "c"} and "Avocados" in hits[0].chunk.text + hits[1].chunk.text
    # Identical re-add: nothing written, the generation stays.
    g2 = backend.snapshot().generation
    _, report = update_store(scratch, embedder, SPEC, add=[article("c", "Cherries are picked in June.")])
    assert report.unchanged == ["c"] and backend.snapshot().generation == g2
    # Rows retired two generations ago are deleted; the previous generation stays readable.
    update_store(scratch, embedder, SPEC, remove=["c"])
    assert backend.articles(g1, ["a", "b"]) == {}
    assert sorted(backend.articles(backend.snapshot(), ["a", "b", "c"])) == ["a"]


def test_near_duplicates_collapse_as_in_files_backend(scratch, embedder, tmp_path):
    story = ("The regional water board said on Monday that reservoir levels had fallen to their lowest point in "
             "twenty years after a dry winter, and asked households to cut their use by a tenth until the autumn "
             "rains return, a spokeswoman for the board said.")
    first = article("wire-1", story, source="Wire", url="https://wire.example/1")
    copy = article("paper-1", story + " Readers can send us their photos.", source="Paper", url="https://paper.example/1")
    other = article("other", "A new bakery opened on the high street selling rye bread and pastries.")
    build_store(scratch, [first, other], embedder, SPEC, dedup=DedupSpec())
    store, report = update_store(scratch, embedder, SPEC, add=[copy], dedup=DedupSpec())
    assert report.collapsed == {"paper-1": "wire-1"} and report.added == []
    assert [a.id for a in store.articles["wire-1"].alternates] == ["paper-1"]
    # The files backend does the same with the same input.
    files = Settings(index_dir=tmp_path / "files")
    build_store(files, [first, other], embedder, SPEC, dedup=DedupSpec())
    fstore, freport = update_store(files, embedder, SPEC, add=[copy], dedup=DedupSpec())
    assert freport.collapsed == report.collapsed
    assert fstore.articles["wire-1"].alternates == store.articles["wire-1"].alternates
    # Re-adding the recorded copy is a no-op; chunks were not touched by the alternates-only change.
    _, again = update_store(scratch, embedder, SPEC, add=[copy], dedup=DedupSpec())
    assert again.unchanged == ["paper-1"]
    assert chunk_count(open_store(scratch)) == 2


def test_band_keys_match_when_a_band_matches():
    spec = DedupSpec()
    a, b = signatures(["one two three four five six seven " * 6, "one two three four five six seven " * 6 + "eight"], spec)
    ka, kb = band_keys(a[None, :], spec)[0], band_keys(b[None, :], spec)[0]
    for band in range(spec.bands):
        same = (a[band * 3:band * 3 + 3] == b[band * 3:band * 3 + 3]).all()
        assert (ka[band] == kb[band]) == same
    assert len(set(ka.tolist())) == spec.bands  # the band number is mixed in: equal values in two bands differ


def test_long_articles_round_trip(scratch, embedder):
    text = ("Ünïcode words and a long report. " * 1500).strip()  # > one 16,000-character part
    build_store(scratch, [article("long", text, published="2024-02-29", source="Archive")], embedder, SPEC)
    got = open_store(scratch, embedder).articles["long"]
    assert got.text == text and got.published == "2024-02-29"


def test_versioning_is_checked(scratch, embedder, tmp_path):
    assert not store_exists(scratch)
    with pytest.raises(IndexNotFound):
        open_store(scratch, embedder)
    build_store(scratch, [article("a", "Apples grow in the orchard.")], embedder, SPEC)

    class Other:
        name, dim = "another-embedder", 384

    with pytest.raises(IndexIncompatible, match="another-embedder"):
        open_store(scratch, Other())
    with pytest.raises(IndexIncompatible):
        update_store(scratch, Other(), SPEC, add=[article("b", "Bananas.")])
    backend = MilvusBackend(parse_location(scratch.store, scratch.index_dir).uri, "news_qa")
    pointer = backend.pointer() | {"format_version": 99}
    backend._switch(pointer)
    with pytest.raises(IndexIncompatible, match="format version 99"):
        open_store(scratch, embedder)


def test_rebuild_switches_sets_and_drops_old_ones(scratch, embedder):
    backend = MilvusBackend(parse_location(scratch.store, scratch.index_dir).uri, "news_qa")
    sets = []
    for n in range(3):
        build_store(scratch, [article(f"a{n}", f"Article number {n} about apples.")], embedder, SPEC, replace=n > 0)
        sets.append(backend.snapshot().set)
    with pytest.raises(IndexExists, match="--replace"):  # as the files backend: never replaced by accident
        build_store(scratch, [article("b", "Another article about pears.")], embedder, SPEC)
    with pytest.raises(QAError, match="nothing to index"):
        build_store(scratch, [], embedder, SPEC, replace=True)
    names = set(backend.client.list_collections())
    assert not any(sets[0] in name for name in names)  # older than the previous build: dropped
    assert all(backend.collection(s, "chunks") in names for s in sets[1:])
    assert list(open_store(scratch, embedder).articles) == ["a2"]


def test_missing_extra_is_one_line(monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_pymilvus(name, *args, **kwargs):
        if name == "pymilvus":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pymilvus)
    with pytest.raises(QAError, match=r"pip install 'news-qa\[milvus\]'"):
        store_exists(Settings(store=str(tmp_path / "x.db")))


def test_unreachable_server_is_one_line(embedder):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    backend = MilvusBackend(f"http://127.0.0.1:{port}", "news_qa", timeout=2)
    with pytest.raises(QAError, match=f"127.0.0.1:{port}"):
        backend.exists()


# ---- quotes and dates: speaker questions on Milvus answer as on the files backend ------------------

SANDERS = "What did Sanders say about a second meeting?"


@pytest.fixture(scope="module")
def milvus_service(lite, embedder, reader):
    from qa.answer import QAService

    return QAService(lite, embedder=embedder, reader=reader)


@pytest.mark.parametrize("question,history,filters", [
    (SANDERS, [], None),
    ("And what did she say about the letter?", [SANDERS], None),
    ("What did Ellen Park say about the bridge cost?", [], None),  # reported speech, in a dated article
    ("What did Ellen Park say about the bridge cost?", [], Filters(date_from="2024-03-01", date_to="2024-03-31")),
    ("What did Ellen Park say about the bridge cost?", [], Filters(date_to="2024-01-01")),  # her article is later
    ("What did Tom Reed say about the vote?", [], Filters(source="daily coast")),
    ("What did Sanders say about the weather in Paris?", [], None),  # no quote on the topic
    ("What did North Korea pledge at the summit?", [], None),  # no quotes by them: the reader answers
    (SANDERS, [], Filters(source="Nobody")),
    (SANDERS, [], Filters(date_from="2000-01-01")),  # the sample article has no date
])
def test_speaker_questions_answer_as_on_files_backend(milvus_service, service, question, history, filters):
    mine = milvus_service.ask(question, history=history, filters=filters).to_dict()
    assert mine == service.ask(question, history=history, filters=filters).to_dict()


def test_quote_search_as_on_files_backend(milvus_service, service):
    for speaker, about, filters in [("Ms Sanders", "the letter", None), ("Sarah Huckabee Sanders", None, None),
                                    ("Ellen Park", None, Filters(source="City Herald", date_from="2024-03-05")),
                                    ("Ellen Park", None, Filters(date_from="2024-03-06")), ("Nobody Atall", None, None)]:
        mine = [r.to_dict() for r in milvus_service.speakers.search(speaker, about, filters, limit=50)]
        assert mine == [r.to_dict() for r in service.speakers.search(speaker, about, filters, limit=50)], speaker
    assert len(milvus_service.speakers.search("Sanders", limit=50)) >= 6
    assert milvus_service.store.stats()["quotes"] == service.store.stats()["quotes"] > 6


def test_quotes_follow_their_articles_and_replicas_see_them(scratch, embedder, reader):
    from qa.answer import QAService

    parks = article("parks", '"We will plant a thousand trees," Mayor Ann Lee said on Monday.', published="2024-06-03")
    build_store(scratch, [parks, article("b", "Bananas are shipped from the port every week.")], embedder, SPEC)
    replica = QAService(scratch, embedder=embedder, reader=reader)  # opened once, like a running server
    store = open_store(scratch, embedder)
    assert [q.speaker for q in store.quotes_of(store.snapshot(), "parks")] == ["Ann Lee"]
    assert replica.ask("What did Ann Lee say about trees?").answer == "We will plant a thousand trees"
    update_store(scratch, embedder, SPEC, add=[article("parks", "The mayor planted trees on Monday.")])
    assert store.quotes_of(store.snapshot(), "parks") == []
    assert replica.speakers.search("Ann Lee") == []  # the update is seen without reopening
    update_store(scratch, embedder, SPEC, add=[parks])
    assert [r.quote.speaker for r in replica.speakers.search("Mayor Lee")] == ["Ann Lee"]
    update_store(scratch, embedder, SPEC, remove=["parks"])
    assert replica.speakers.search("Ann Lee") == [] and store.quotes_of(store.snapshot(), "parks") == []


def test_a_set_built_before_quotes_answers_without_them(scratch, embedder, reader):
    from qa.answer import QAService
    from qa.speakers import QuotesMissing

    build_store(scratch, [article("parks", '"We will plant a thousand trees," Mayor Ann Lee said on Monday.')], embedder, SPEC)
    backend = MilvusBackend(parse_location(scratch.store, scratch.index_dir).uri, "news_qa")
    pointer = backend.pointer()
    pointer.pop("quotes")  # as written before quotes were stored in Milvus
    backend._switch(pointer)
    service = QAService(scratch, embedder=embedder, reader=reader)
    assert service.ask("What did Ann Lee say about trees?").quote is None
    with pytest.raises(QuotesMissing, match="qa index upgrade"):
        service.speakers.search("Ann Lee")
    update_store(scratch, embedder, SPEC, add=[article("b", "Bananas are shipped from the port every week.")])
    assert sorted(open_store(scratch, embedder).articles) == ["b", "parks"]  # updates still work there


@pytest.mark.parametrize("collection_left", [True, False], ids=["quote-rows-ignored", "no-quotes-collection"])
def test_upgrade_adds_quotes_to_a_set_built_before_them(scratch, embedder, reader, collection_left):
    """`qa index upgrade` on Milvus: quotes extracted from the stored texts, no re-embedding, a running
    replica sees them on its next question; up to date the second time; --requote writes them again."""
    from click.testing import CliRunner

    from qa.answer import QAService
    from qa.cli import cli

    parks = article("parks", '"We will plant a thousand trees," Mayor Ann Lee said on Monday.')
    build_store(scratch, [parks, article("b", "Bananas are shipped from the port every week.")], embedder, SPEC)
    backend = MilvusBackend(parse_location(scratch.store, scratch.index_dir).uri, "news_qa")
    pointer = backend.pointer()
    pointer.pop("quotes")  # as written before quotes were stored in Milvus
    pointer["counts"].pop("quotes")
    if not collection_left:  # ... or before the set had a quotes collection at all
        backend.client.drop_collection(backend.collection(pointer["set"], "quotes"))
    backend._switch(pointer)
    store = open_store(scratch, embedder)
    snap = store.snapshot()
    vectors = store.chunk_vectors(snap, range(snap.chunks))
    replica = QAService(scratch, embedder=embedder, reader=reader)  # opened before the upgrade, like a server
    assert replica.ask("What did Ann Lee say about trees?").quote is None and store.stats()["quotes"] is None

    def upgrade(*args):
        result = CliRunner().invoke(cli, ["index", "upgrade", *args], env={"QA_STORE": scratch.store})
        assert result.exit_code == 0, result.output
        return result.output

    assert "Extracted 1 quote from 2 articles → " in upgrade()
    answer = replica.ask("What did Ann Lee say about trees?")
    assert answer.answer == "We will plant a thousand trees" and answer.quote.speaker == "Ann Lee"
    after = store.snapshot()
    assert after.generation == snap.generation + 1 and after.chunks == snap.chunks and after.set == snap.set
    again = store.chunk_vectors(after, range(after.chunks))
    assert vectors.keys() == again.keys() and all(np.array_equal(vectors[i], again[i]) for i in vectors)  # not re-embedded
    assert "is up to date (1 quote)" in upgrade()
    assert "Extracted 1 quote from 2 articles" in upgrade("--requote")
    assert [q.speaker for q in store.quotes_of(store.snapshot(), "parks")] == ["Ann Lee"]  # replaced, not doubled
    update_store(scratch, embedder, SPEC, add=[article("c", '"The port is busy," Ben Ode said on Monday.')])
    assert store.stats()["quotes"] == 2 and [r.quote.speaker for r in replica.speakers.search("Ben Ode")] == ["Ben Ode"]


def test_upgrade_without_an_index_is_one_line(scratch):
    from click.testing import CliRunner

    from qa.cli import cli

    result = CliRunner().invoke(cli, ["index", "upgrade"], env={"QA_STORE": scratch.store})
    assert result.exit_code == 1 and result.output.startswith("Error: no index in ") and result.output.count("\n") == 1


def test_a_failed_update_leaves_nothing_the_next_one_commits(scratch, embedder, monkeypatch):
    """An update that fails half-written (here: the articles insert, after its chunks were written
    and the old ones retired) is invisible, and the next update does not commit its leftovers."""
    from pymilvus import MilvusException

    from qa.index.milvus import MilvusUnavailable

    build_store(scratch, [article("a", "Apples grow in the northern orchards."),
                          article("b", "Bananas are shipped from the port every week.")], embedder, SPEC)
    backend = MilvusBackend(parse_location(scratch.store, scratch.index_dir).uri, "news_qa")
    built = backend.pointer()["generation"]
    insert = backend.client.insert

    def failing(collection, rows, *args, **kwargs):
        if collection.endswith("_articles"):
            raise MilvusException(message="connection lost")
        return insert(collection, rows, *args, **kwargs)

    monkeypatch.setattr(backend.client, "insert", failing)
    with pytest.raises(MilvusUnavailable, match="connection lost"):
        backend.update(embedder, SPEC, add=[article("a", "Apricots ripen in the southern valleys this year.")])
    monkeypatch.undo()
    store = open_store(scratch, embedder)
    assert store.articles["a"].text.startswith("Apples") and store.snapshot().generation == built
    update_store(scratch, embedder, SPEC, add=[article("c", "Cherries are picked by hand in June.")])
    snap = store.snapshot()
    rows = list(backend.query_all(backend.collection(snap.set, "chunks"), snap.visible, ["article_id", "text"]))
    assert sorted(r["article_id"] for r in rows) == ["a", "b", "c"] == sorted(store.articles) and snap.chunks == 3
    assert store.articles["a"].text.startswith("Apples") and "Apricots" not in str(rows)
