"""Near-duplicate collapse: qa.ingest.dedup alone, then through the index (update_index) with the real embedder."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from qa.ingest.dedup import (
    DedupSpec, NearDuplicateIndex, collapse, jaccard, rows_sharing_a_band, shingles, signature, signatures, words,
)
from qa.embed import Embedder
from qa.ingest import make_article
from qa.index import IndexStore, build_index, current_generation, update_index

from .conftest import SPEC

STORY = """Shares in Northwind Airlines fell 12% on Monday after the carrier warned that a strike by
baggage handlers would cut its summer profits by as much as 40 million euros. The airline said the
walkout, planned for the first two weeks of July, would force it to cancel about 300 flights from its
two largest hubs. Chief executive Maria Lindqvist said talks with the union had broken down over pay
and shift patterns, but that the company remained open to mediation. "We regret the disruption this
will cause to our passengers," she told reporters in Stockholm. Analysts at Nordbank cut their price
target for the stock, saying the dispute came at the worst possible time for an industry still
recovering from high fuel costs. The union, which represents about 2,000 ground workers, said its
members had rejected a 3% pay offer as far below inflation. A spokesman said further strike dates
could follow in August if no agreement was reached. Northwind carried 18 million passengers last
year and had forecast record earnings for the current year before the dispute."""

# The same wire story as another outlet runs it: other headline, boilerplate, two sentences edited.
COPY = (
    "By our business desk. "
    + STORY.replace("fell 12% on Monday", "dropped 12 percent on Monday")
    .replace('"We regret the disruption this\nwill cause to our passengers," she told reporters in Stockholm.',
             "She apologised to passengers for the disruption at a press conference in Stockholm.")
    + "\nThis article was syndicated from a news agency. Copyright 2024. All rights reserved. "
    "Sign up for our daily business newsletter."
)

# Same topic, same company, different story: must stay.
OTHER = """Northwind Airlines and the union representing its baggage handlers reached a deal late on
Thursday that ends the threat of a summer strike, both sides said. Under the agreement, ground workers
will receive a 5% raise this year and a further 2% next year, and the airline will drop plans to
change shift patterns at its hubs. Chief executive Maria Lindqvist called the deal fair and said all
flights planned for July would operate as scheduled. The union's members still have to approve the
agreement in a vote next week, but its leaders said they would recommend it. Shares in the carrier
rose 6% in Stockholm on Friday, recovering about half of the losses since the dispute began.
Analysts said the settlement removed the biggest risk to the airline's earnings this year, although
higher wage costs would weigh on margins. The mediator, appointed by the labour ministry two weeks
ago, said both sides had shown flexibility in the final round of talks."""


def test_thresholds_are_the_documented_ones():
    spec = DedupSpec()
    assert (spec.threshold, spec.shingle_words, spec.num_perm, spec.bands, spec.rows, spec.min_words, spec.seed) == (
        0.5, 5, 128, 42, 3, 30, 1)
    # Probability that LSH proposes a pair with Jaccard J: 1 - (1 - J^rows)^bands, with the spec's
    # own bands and rows, against the figures docs/ingest.md gives (0.996 at 0.5, 0.68 at 0.3, 0.04 at 0.1).
    candidate = lambda j: 1 - (1 - j**spec.rows) ** spec.bands  # noqa: E731
    assert (round(candidate(0.5), 3), round(candidate(0.3), 2), round(candidate(0.1), 2)) == (0.996, 0.68, 0.04)


def test_near_copy_collapses_and_same_topic_story_does_not():
    near = jaccard(shingles(words(STORY), 5), shingles(words(COPY), 5))
    other = jaccard(shingles(words(STORY), 5), shingles(words(OTHER), 5))
    assert 0.5 <= near < 0.95, near  # a real near-copy, not an exact one
    assert other < 0.1, other
    original = make_article("Northwind shares fall on strike threat", STORY, url="https://a.example/strike")
    copy = make_article("Airline stock slides as baggage staff plan walkout", COPY, url="https://b.example/x")
    different = make_article("Northwind strike averted", OTHER, url="https://a.example/deal")
    result = collapse([original, copy, different])
    assert [a.id for a in result.kept] == [original.id, different.id]
    [(dup, match)] = result.duplicates
    assert dup.id == copy.id and match.key == original.id and not match.exact
    assert match.similarity == pytest.approx(near, abs=1e-4)


def test_exact_duplicates_ignore_case_punctuation_and_spacing():
    a = make_article("A", STORY, url="https://a.example/1")
    b = make_article("B", STORY.upper().replace(",", " ").replace("\n", "  "), url="https://b.example/1")
    result = collapse([a, b])
    assert result.exact == 1 and result.near == 0 and result.duplicates[0][1].similarity == 1.0


def test_short_texts_are_never_collapsed():
    brief = "Qtly div 10 cts vs 10 cts prior, pay April 1, record March 15."
    result = collapse([make_article("A", brief, url="https://a.example/1"), make_article("B", brief, url="https://b.example/1")])
    assert len(result.kept) == 2 and signature(brief, DedupSpec()) is None


def test_signatures_are_stable_across_processes():
    # Stored in indexes: a change in hashing would silently break dedup against old signatures.
    sig = signature(STORY, DedupSpec())
    assert sig.dtype == np.uint32 and sig.shape == (128,)
    assert np.array_equal(sig, signatures([STORY], DedupSpec())[0])
    assert sig[:4].tolist() == [6099600, 16375162, 37845932, 812917]
    assert hashlib.sha256(sig.tobytes()).hexdigest()[:16] == "a9ae2cc89cc4a73a"


def test_signatures_equal_datasketch_minhash():
    # datasketch (a dev dependency) is the reference: indexes built with it must keep matching.
    from datasketch import MinHash

    spec = DedupSpec()
    texts = [STORY, COPY, OTHER, "Größere Äpfel, café naïve — déjà vu. " * 12, "日本語のテキスト、絵文字 🙂 も。 " * 40]
    for text, sig in zip(texts, signatures(texts, spec)):
        reference = MinHash(num_perm=spec.num_perm, seed=spec.seed, scheme="affine32")
        reference.update_batch([s.encode("utf-8") for s in shingles(words(text), spec.shingle_words)])
        assert sig.dtype == np.uint32 and np.array_equal(sig, reference.hashvalues), text[:30]


def test_band_prefilter_and_index_propose_what_datasketch_lsh_does():
    from datasketch import LeanMinHash, MinHashLSH

    spec = DedupSpec()
    rng = np.random.default_rng(0)
    # Values from a tiny alphabet, so that many rows share a band with some probe (each band matches
    # with probability 6^-3) and many do not.
    stored = rng.integers(0, 6, size=(300, 128), dtype=np.uint32)
    probes = rng.integers(0, 6, size=(5, 128), dtype=np.uint32)
    lsh = MinHashLSH(num_perm=128, params=(spec.bands, spec.rows))
    index = NearDuplicateIndex(spec, text_of=str)
    for i, row in enumerate(stored):
        lsh.insert(i, LeanMinHash(seed=1, hashvalues=row, scheme="affine32"))
        index.add(str(i), row)
    index.discard("7")
    lsh.remove(7)
    expected: set[int] = set()
    for row in probes:
        proposed = set(lsh.query(LeanMinHash(seed=1, hashvalues=row, scheme="affine32")))
        assert {int(k) for k in index.candidates(row)} == proposed
        expected |= proposed
    assert 50 < len(expected) < 250, len(expected)
    assert set(np.flatnonzero(rows_sharing_a_band(stored, probes, spec))) - {7} == expected


# ---- through the index --------------------------------------------------------------------------


def original():
    return make_article("Northwind shares fall on strike threat", STORY, url="https://a.example/strike",
                        source="A Times", published="2024-07-01")


def copy_article():
    return make_article("Airline stock slides as baggage staff plan walkout", COPY, url="https://b.example/x?utm_source=rss",
                        source="B Post", published="2024-07-01T12:00:00+02:00")


def current_gen(index_dir):
    return index_dir / current_generation(index_dir)


def test_collapse_through_update_index(tmp_path, embedder):
    index_dir = tmp_path / "idx"
    build_index([original()], index_dir, embedder, SPEC)
    store, report = update_index(index_dir, embedder, SPEC, add=[copy_article(), make_article("Northwind strike averted", OTHER, url="https://a.example/deal")])
    assert report.collapsed == {"https://b.example/x": "https://a.example/strike"}
    assert report.added == ["https://a.example/deal"]
    reloaded = IndexStore.load(index_dir, embedder)
    assert sorted(reloaded.articles) == ["https://a.example/deal", "https://a.example/strike"]
    [alt] = reloaded.articles["https://a.example/strike"].alternates
    assert (alt.id, alt.url, alt.source, alt.title, alt.published) == (
        "https://b.example/x", "https://b.example/x", "B Post", "Airline stock slides as baggage staff plan walkout",
        "2024-07-01T12:00:00+02:00")
    assert 0.5 <= alt.similarity < 1
    assert all(c.article_id != "https://b.example/x" for c in reloaded.chunks)
    assert reloaded.stats()["alternates"] == 1
    # Re-adding the copy (or the whole batch) is a no-op: no new generation.
    gen = current_gen(index_dir)
    _, again = update_index(index_dir, embedder, SPEC, add=[original(), copy_article()])
    assert again.added == [] and again.collapsed == {} and len(again.unchanged) == 2
    assert current_gen(index_dir) == gen


def test_a_batch_of_only_copies_still_records_them(tmp_path, embedder):
    """Nothing to embed, but the kept article's alternates change: a new generation is written."""
    index_dir = tmp_path / "idx"
    build_index([original()], index_dir, embedder, SPEC)
    gen = current_gen(index_dir)
    fresh = Embedder(embedder.model_dir)
    store, report = update_index(index_dir, fresh, SPEC, add=[copy_article()])
    assert report.collapsed == {"https://b.example/x": "https://a.example/strike"}
    assert report.added == [] and report.chunks_added == 0
    assert "model" not in fresh.__dict__, "nothing to embed: the model is not loaded"
    assert current_gen(index_dir) != gen
    reloaded = IndexStore.load(index_dir, embedder)
    assert [a.id for a in reloaded.articles["https://a.example/strike"].alternates] == ["https://b.example/x"]
    assert len(reloaded.chunks) == len(store.chunks)


def test_update_of_the_same_id_is_not_a_near_duplicate(tmp_path, embedder):
    index_dir = tmp_path / "idx"
    build_index([original(), copy_article()], index_dir, embedder, SPEC)  # collapsed within the batch
    edited = make_article("Northwind shares fall on strike threat", STORY.replace("fell 12%", "fell 14%"),
                          url="https://a.example/strike", source="A Times", published="2024-07-01")
    store, report = update_index(index_dir, embedder, SPEC, add=[edited])
    assert report.updated == ["https://a.example/strike"] and report.collapsed == {}
    article = store.articles["https://a.example/strike"]
    assert "fell 14%" in article.text and [a.id for a in article.alternates] == ["https://b.example/x"]
    assert any("fell 14%" in c.text for c in store.chunks) and not any("fell 12%" in c.text for c in store.chunks)


def test_dedup_can_be_turned_off(tmp_path, embedder):
    store, report = build_index([original(), copy_article()], tmp_path / "idx", embedder, SPEC, dedup=None)
    assert len(store.articles) == 2 and report.collapsed == {}


def test_index_written_before_alternates_and_signatures_still_loads(tmp_path, embedder):
    import hashlib

    index_dir = tmp_path / "idx"
    build_index([original()], index_dir, embedder, SPEC)
    gen = current_gen(index_dir)
    # Rewrite the generation as the previous version wrote it: no alternates field, no signatures.
    lines = [json.loads(line) for line in (gen / "articles.jsonl").read_text().splitlines()]
    (gen / "articles.jsonl").write_text("".join(json.dumps({k: v for k, v in r.items() if k != "alternates"}) + "\n" for r in lines))
    (gen / "signatures.npy").unlink()
    manifest = json.loads((gen / "manifest.json").read_text())
    del manifest["files"]["signatures.npy"], manifest["signatures"]
    manifest["files"]["articles.jsonl"] = hashlib.sha256((gen / "articles.jsonl").read_bytes()).hexdigest()
    (gen / "manifest.json").write_text(json.dumps(manifest))
    store = IndexStore.load(index_dir, embedder)
    assert store.articles["https://a.example/strike"].alternates == () and store.signatures == {}
    _, report = update_index(index_dir, embedder, SPEC, add=[copy_article()])  # signatures computed on the way
    assert report.collapsed == {"https://b.example/x": "https://a.example/strike"}
    assert len(IndexStore.load(index_dir, embedder).signatures) == 1


def test_cli_reports_collapsed(tmp_path):
    from click.testing import CliRunner

    from qa.cli import cli

    records = tmp_path / "wire.jsonl"
    records.write_text("".join(json.dumps(r) + "\n" for r in [
        {"title": "Northwind shares fall", "text": STORY, "url": "https://a.example/strike"},
        {"title": "Airline stock slides", "text": COPY, "url": "https://b.example/x"},
    ]))
    result = CliRunner().invoke(cli, ["index", "build", str(records), "--index", str(tmp_path / "i"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "Indexed 1 article (0 duplicates merged, 1 near-duplicate collapsed)" in result.output
    result = CliRunner().invoke(cli, ["index", "add", str(records), "--index", str(tmp_path / "i"), "--quiet"])
    assert "Added 0, updated 0, unchanged 2, collapsed 0" in result.output
