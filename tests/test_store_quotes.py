"""Quotes in the index: saved per generation under the manifest, kept in step with their articles,
and absent (then added by `qa index upgrade`) in indexes written before them."""

import hashlib
import json

import pytest

from qa.errors import IndexCorrupt
from qa.index import IndexStore, update_index
from qa.ingest import make_article
from qa.quotes import EXTRACTOR_VERSION

from .conftest import SPEC
from .test_store import built, built_once  # noqa: F401  (fixtures: the sample and news records, built)
from .test_store import current_gen as gen


def strip_quotes(index_dir):
    """Make the index look like one written before quote extraction."""
    manifest_path = gen(index_dir) / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["files"]["quotes.jsonl"]
    manifest.pop("quotes")
    manifest_path.write_text(json.dumps(manifest))
    (gen(index_dir) / "quotes.jsonl").unlink()


def test_quotes_are_saved_under_the_manifest(built, embedder):
    manifest = json.loads((gen(built) / "manifest.json").read_text())
    data = (gen(built) / "quotes.jsonl").read_bytes()
    assert manifest["files"]["quotes.jsonl"] == hashlib.sha256(data).hexdigest()
    assert manifest["quotes"] == {"extractor_version": EXTRACTOR_VERSION}
    store = IndexStore.load(built, embedder)
    sample = next(a for a in store.articles.values() if a.title.startswith("Trump receives"))
    speakers = {q.speaker for q in store.quotes[sample.id]}
    assert {"Sarah Sanders", "Donald Trump"} <= speakers
    assert store.stats()["quotes"] == sum(map(len, store.quotes.values())) == len(data.splitlines())


def test_replaced_and_removed_articles_take_their_quotes_along(built, embedder):
    article = make_article(title="Mayor on parks", text='"We will plant a thousand trees," Mayor Ann Lee said on Monday.',
                           explicit_id="parks")
    store, _ = update_index(built, embedder, SPEC, add=[article])
    assert [q.speaker for q in store.quotes["parks"]] == ["Ann Lee"]
    changed = make_article(title="Mayor on parks", text="The mayor planted trees on Monday.", explicit_id="parks")
    store, _ = update_index(built, embedder, SPEC, add=[changed])
    assert store.quotes["parks"] == []
    store, _ = update_index(built, embedder, SPEC, remove=["parks"])
    assert "parks" not in IndexStore.load(built, embedder).quotes


def test_index_written_before_quotes_loads_and_upgrades(built, embedder, tmp_path):
    from click.testing import CliRunner

    from qa.cli import cli

    strip_quotes(built)
    old = IndexStore.load(built, embedder)
    assert old.quotes is None and old.stats()["quotes"] is None
    result = CliRunner().invoke(cli, ["index", "upgrade", "--index", str(built)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Extracted") and "quotes from 4 articles" in result.output
    upgraded = IndexStore.load(built, embedder)
    assert upgraded.stats()["quotes"] > 10 and len(upgraded.chunks) == len(old.chunks)
    again = CliRunner().invoke(cli, ["index", "upgrade", "--index", str(built)])
    assert again.exit_code == 0 and "up to date" in again.output


def test_adding_to_an_old_index_extracts_quotes_for_all_articles(built, embedder):
    strip_quotes(built)
    article = make_article(title="t", text="Nothing quoted here.", explicit_id="plain")
    store, _ = update_index(built, embedder, SPEC, add=[article])
    assert set(store.quotes) == set(store.articles) and store.stats()["quotes"] > 10


def test_tampered_quotes_file_is_refused(built, embedder):
    with open(gen(built) / "quotes.jsonl", "a", encoding="utf-8") as f:
        f.write("{}\n")
    with pytest.raises(IndexCorrupt, match="quotes.jsonl"):
        IndexStore.load(built, embedder)
