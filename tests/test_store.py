import json
import shutil

import pytest

from qa.errors import IndexCorrupt, IndexIncompatible, IndexNotFound, QAError
from qa.ingest import ingest_paths, make_article
from qa.index import IndexStore, build_index, current_generation, update_index, write_lock

from .conftest import SAMPLE_DIR, SPEC


def current_gen(index_dir):
    return index_dir / current_generation(index_dir)


@pytest.fixture
def built(tmp_path, embedder, news_file):
    index_dir = tmp_path / "idx"
    build_index(ingest_paths([SAMPLE_DIR, news_file]).articles, index_dir, embedder, SPEC)
    return index_dir


def test_roundtrip_keeps_articles_chunks_and_vectors(built, embedder):
    store = IndexStore.load(built, embedder)
    assert len(store.articles) == 4
    assert store.vectors.ntotal == len(store.chunks) > 4
    for i, chunk in enumerate(store.chunks):
        assert chunk.id == i
        assert store.articles[chunk.article_id].text[chunk.start : chunk.end] == chunk.text
    manifest = json.loads((current_gen(built) / "manifest.json").read_text())
    assert manifest["embedder"] == {"name": embedder.name, "dim": 384}
    assert manifest["counts"] == {"articles": 4, "chunks": len(store.chunks)}


def test_readding_identical_articles_changes_nothing(built, embedder, news_file):
    before = IndexStore.load(built, embedder)
    gen = current_gen(built)
    _, report = update_index(built, embedder, SPEC, add=ingest_paths([SAMPLE_DIR, news_file]).articles)
    assert report.added == [] and report.updated == [] and len(report.unchanged) == 4
    assert current_gen(built) == gen, "no new generation is written for a no-op"
    after = IndexStore.load(built, embedder)
    assert [c.text for c in after.chunks] == [c.text for c in before.chunks]


def test_changed_text_replaces_the_articles_chunks(built, embedder):
    changed = make_article(
        "Storm closes schools along the coast",
        "The storm has passed and all schools reopened on Monday morning.",
        explicit_id="coast-storm",
        source="Daily Coast",
    )
    store, report = update_index(built, embedder, SPEC, add=[changed])
    assert report.updated == ["coast-storm"]
    texts = [c.text for c in store.chunks if c.article_id == "coast-storm"]
    assert texts == ["The storm has passed and all schools reopened on Monday morning."]
    reloaded = IndexStore.load(built, embedder)
    assert len(reloaded.articles) == 4
    assert reloaded.vectors.ntotal == len(reloaded.chunks)
    assert not any("thirty schools" in c.text for c in reloaded.chunks)


def test_duplicates_within_one_batch_are_indexed_once(tmp_path, embedder):
    a = make_article("Same", "Same text.")
    store, report = build_index([a, a], tmp_path / "i", embedder, SPEC)
    assert len(store.articles) == 1 and len(store.chunks) == 1
    assert report.unchanged == [a.id]


def test_remove(built, embedder):
    store, report = update_index(built, embedder, SPEC, remove=["coast-storm", "nope"])
    assert report.removed == ["coast-storm"] and report.missing == ["nope"]
    reloaded = IndexStore.load(built, embedder)
    assert "coast-storm" not in reloaded.articles
    assert all(c.article_id != "coast-storm" for c in reloaded.chunks)
    assert [c.id for c in reloaded.chunks] == list(range(len(reloaded.chunks)))
    assert reloaded.vectors.ntotal == len(reloaded.chunks)
    # Vectors stay aligned with their chunks after the rows shift.
    row = reloaded.chunks[-1]
    expected = embedder.encode([f"{reloaded.articles[row.article_id].title}\n{row.text}"])[0]
    assert float(reloaded.vectors.reconstruct(row.id) @ expected) > 0.999


def test_failed_rebuild_leaves_previous_index_loadable(built, embedder):
    store = IndexStore.new(embedder, SPEC)
    store.add([make_article("New", "Only this.")], embedder)

    def crash():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.save(built, before_switch=crash)
    reloaded = IndexStore.load(built, embedder)
    assert len(reloaded.articles) == 4
    assert not [p for p in built.iterdir() if p.name.endswith(".tmp")]


def test_interrupted_embedding_leaves_store_unchanged(built, embedder, monkeypatch):
    store = IndexStore.load(built, embedder)
    chunks_before = list(store.chunks)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(embedder, "encode", interrupted)
    with pytest.raises(KeyboardInterrupt):
        store.add([make_article("Storm", "Changed.", explicit_id="coast-storm")], embedder)
    assert store.chunks == chunks_before and store.vectors.ntotal == len(chunks_before)


def test_missing_index(tmp_path, embedder):
    with pytest.raises(IndexNotFound, match="qa index build"):
        IndexStore.load(tmp_path / "nothing", embedder)


def test_truncated_vectors_file(built, embedder):
    path = current_gen(built) / "vectors.faiss"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(IndexCorrupt, match="vectors.faiss is missing, truncated or modified"):
        IndexStore.load(built, embedder)


def test_garbage_manifest(built, embedder):
    (current_gen(built) / "manifest.json").write_text("{oops")
    with pytest.raises(IndexCorrupt, match="unreadable manifest"):
        IndexStore.load(built, embedder)


def test_dangling_current_pointer(built, embedder):
    shutil.rmtree(current_gen(built))
    with pytest.raises(IndexCorrupt, match="missing generation"):
        IndexStore.load(built, embedder)


@pytest.mark.parametrize(
    "change,match",
    [
        ({"format_version": 99}, "format version 99"),
        ({"embedder": {"name": "other-embedder==1.0", "dim": 384}}, "built with embedder other-embedder"),
        ({"embedder": {"name": None, "dim": 768}}, "dim 768"),
    ],
)
def test_incompatible_index(built, embedder, change, match):
    path = current_gen(built) / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest.update(change)
    path.write_text(json.dumps(manifest))
    with pytest.raises(IndexIncompatible, match=match) as info:
        IndexStore.load(built, embedder)
    assert "\n" not in str(info.value)


def test_second_writer_is_refused(tmp_path):
    with write_lock(tmp_path):
        with pytest.raises(QAError, match="another process"):
            with write_lock(tmp_path):
                pass


def test_edited_text_file_replaces_its_previous_version(tmp_path, embedder):
    from qa.ingest import ingest_file

    path = tmp_path / "story.txt"
    path.write_text("Mayor resigns\n\nThe mayor resigned on Monday.", encoding="utf-8")
    index_dir = tmp_path / "idx"
    build_index(ingest_file(path).articles, index_dir, embedder, SPEC)
    path.write_text("Mayor resigns\n\nThe mayor resigned on Monday after a vote of no confidence.", encoding="utf-8")
    store, report = update_index(index_dir, embedder, SPEC, add=ingest_file(path).articles)
    assert len(report.updated) == 1 and report.added == []
    assert [a.text for a in store.articles.values()] == ["The mayor resigned on Monday after a vote of no confidence."]
    assert [c.text for c in store.chunks] == ["The mayor resigned on Monday after a vote of no confidence."]


def test_missing_embedder_model_dir(tmp_path):
    from qa.embed import Embedder
    from qa.errors import ModelNotFound

    with pytest.raises(ModelNotFound, match="no sentence-transformers model"):
        Embedder(tmp_path)
