import json
import os
import shutil
import signal
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from qa.errors import IndexCorrupt, IndexExists, IndexIncompatible, IndexNotFound, IndexUnreadable, QAError
from qa.ingest import ingest_paths, make_article
from qa.interrupts import interrupts_deferred
from qa.ingest.dedup import DedupSpec
from qa.index import (
    IndexStore, build_index, current_generation, history, index_exists, list_generations, repair, rollback,
    update_index, write_lock,
)
from qa.index.ann import ANN_FILE
from qa.index.store import FILES, SAVE_STEPS

from .conftest import NEWS_RECORDS, SAMPLE_DIR, SPEC


def current_gen(index_dir):
    return index_dir / current_generation(index_dir)


@pytest.fixture(scope="module")
def built_once(tmp_path_factory, embedder, news_file):
    index_dir = tmp_path_factory.mktemp("store") / "idx"
    build_index(ingest_paths([SAMPLE_DIR, news_file]).articles, index_dir, embedder, SPEC)
    return index_dir


@pytest.fixture
def built(tmp_path, built_once):
    """A fresh copy of the sample + news index for each test (building costs seconds)."""
    index_dir = tmp_path / "idx"
    shutil.copytree(built_once, index_dir)
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
    # > 0.99, not ~1: in int8 (auto on AVX2 CPUs) activation scales are per call, so a text's
    # vector moves by up to ~0.01 with the batch it is embedded in; a shifted row would be far lower.
    assert float(reloaded.vectors.reconstruct(row.id) @ expected) > 0.99


def test_failed_rebuild_leaves_previous_index_loadable(built, embedder):
    store = IndexStore.new(embedder, SPEC)
    store.add([make_article("New", "Only this.")], embedder)

    def ctrl_c(step):
        if step == "written":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.save(built, checkpoint=ctrl_c)
    reloaded = IndexStore.load(built, embedder)
    assert len(reloaded.articles) == 4
    assert not [p for p in built.iterdir() if p.name.endswith(".tmp")]


def test_ctrl_c_in_a_save_is_taken_before_the_new_generation_goes_in(built, embedder):
    store = IndexStore.load(built, embedder)
    store.add([make_article("New", "Only this.")], embedder)
    before = current_gen(built)

    def ctrl_c(step):
        if step == "written":  # mid-save: only recorded, raised at the save's last safe point
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt), interrupts_deferred():
        store.save(built, checkpoint=ctrl_c)
    assert current_gen(built) == before
    assert len(IndexStore.load(built, embedder).articles) == 4
    assert not [p for p in built.iterdir() if p.name.endswith(".tmp")]


def test_interrupted_embedding_leaves_store_unchanged(built, embedder, monkeypatch):
    store = IndexStore.load(built, embedder)
    chunks_before, articles_before = list(store.chunks), dict(store.articles)
    signatures_before = {k: v.copy() for k, v in store.signatures.items()}
    vectors_before = store.vectors.reconstruct_n(0, store.vectors.ntotal)
    assert signatures_before, "the sample index has signatures to protect"

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(embedder, "encode", interrupted)
    with pytest.raises(KeyboardInterrupt):  # an update, a new article and a near-copy of an indexed one
        store.add([
            make_article("Storm", "Changed.", explicit_id="coast-storm"),
            make_article("Fresh", "A brand new article about the harbour ferry timetable.", explicit_id="fresh"),
            replace(articles_before["herald-bridge"], id="herald-copy", url=None),
        ], embedder, dedup=DedupSpec(min_words=5))
    assert store.chunks == chunks_before and store.vectors.ntotal == len(chunks_before)
    assert (store.vectors.reconstruct_n(0, store.vectors.ntotal) == vectors_before).all()
    assert store.articles == articles_before
    assert store.articles["herald-bridge"].alternates == ()
    assert store.signatures.keys() == signatures_before.keys()
    assert all((store.signatures[k] == v).all() for k, v in signatures_before.items())


# ---- durability: a crash at every step of a save ----------------------------------------------------


@pytest.mark.parametrize("step", SAVE_STEPS)
def test_a_crash_at_any_step_of_a_save_leaves_a_loadable_index(built, embedder, step):
    old = current_generation(built)
    store = IndexStore.load(built, embedder)
    store.remove(["coast-storm"])
    pid = os.fork()
    if pid == 0:  # the child dies at `step` with no clean-up, as a killed process does
        try:
            store.save(built, checkpoint=lambda s: os._exit(9) if s == step else None)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 9
    switched = SAVE_STEPS.index(step) >= SAVE_STEPS.index("switched")
    loaded = IndexStore.load(built, embedder)
    assert ("coast-storm" in loaded.articles) is not switched
    assert (current_generation(built) == old) is not switched
    assert repair(built)[0] == repair(built)[1] == current_generation(built)  # nothing to repair
    # The next write goes on from what is live and clears the dead writer's leftovers.
    store, _ = update_index(built, embedder, SPEC, remove=["herald-bridge"])
    assert "herald-bridge" not in store.articles and ("coast-storm" in store.articles) is not switched
    assert not [p.name for p in built.iterdir() if p.name.endswith((".tmp", ".trash"))]
    assert len(list_generations(built)) == 2


def test_save_makes_each_step_durable_before_the_next(built, embedder, monkeypatch):
    events = []
    real_fsync = os.fsync

    def fsync(fd):
        events.append(("fsync", Path(os.readlink(f"/proc/self/fd/{fd}")).name))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    store = IndexStore.load(built, embedder)
    store.remove(["coast-storm"])
    name = store.save(built, checkpoint=lambda s: events.append(("step", s))).name
    written = json.loads((built / name / "manifest.json").read_text())["files"]
    assert set(written) == set(FILES) - {ANN_FILE}  # every file (the IVF only past QA_ANN_THRESHOLD)
    files = {("fsync", f) for f in ("manifest.json", *written)}
    assert set(events[: len(files)]) == files
    assert events[len(files) :] == [
        ("fsync", f"{name}.tmp"),  # the directory's entries, before it is renamed
        ("step", "written"), ("step", "renamed"),
        ("fsync", built.name),  # the rename, before CURRENT may name it
        ("step", "renamed-synced"),
        ("fsync", "CURRENT.tmp"),  # the pointer's content, before it replaces CURRENT
        ("step", "pointer-written"), ("step", "switched"),
        ("fsync", built.name),  # the replacement of CURRENT
        ("step", "switch-synced"),
    ]


# ---- generations: never lose an index ------------------------------------------------------------


def test_missing_current_is_an_error_for_writers_not_an_empty_index(built, embedder):
    gen = current_generation(built)
    (built / "CURRENT").unlink()
    with pytest.raises(IndexCorrupt, match="no CURRENT file: run `qa index repair`"):
        update_index(built, embedder, SPEC, add=[make_article("New", "A small new article.")])
    with pytest.raises(IndexCorrupt, match="qa index repair"):
        IndexStore.load(built, embedder)
    with pytest.raises(IndexExists, match="without a readable CURRENT"):
        build_index([make_article("New", "A small new article.")], built, embedder, SPEC)
    assert list_generations(built) == [gen], "the generation is still there"
    assert repair(built) == (None, gen)
    assert len(IndexStore.load(built, embedder).articles) == 4


def test_build_into_an_existing_index_needs_replace_and_can_be_rolled_back(built, embedder):
    old = current_generation(built)
    with pytest.raises(IndexExists, match=r"already holds an index of 4 articles .*--replace"):
        build_index([make_article("New", "A small new article.")], built, embedder, SPEC)
    assert current_generation(built) == old
    store, _ = build_index([make_article("New", "A small new article.")], built, embedder, SPEC, replace=True)
    new = current_generation(built)
    assert len(store.articles) == 1 and new != old and list_generations(built) == [old, new]
    assert rollback(built) == (new, old)
    assert current_generation(built) == old and len(IndexStore.load(built, embedder).articles) == 4


def test_build_with_no_article_changes_nothing(built, embedder):
    old = current_generation(built)
    with pytest.raises(QAError, match="nothing to index"):
        build_index([], built, embedder, SPEC, replace=True)
    assert current_generation(built) == old and list_generations(built) == [old]
    with pytest.raises(QAError, match="nothing to index"):
        build_index([], built.parent / "new", embedder, SPEC)
    assert not index_exists(built.parent / "new")


def test_update_with_nothing_to_add_creates_no_index(tmp_path, embedder):
    store, report = update_index(tmp_path / "none", embedder, SPEC, add=[])
    assert not index_exists(tmp_path / "none") and not list_generations(tmp_path / "none")


def test_keeps_k_generations_history_and_rollback(built, embedder):
    first = current_generation(built)
    update_index(built, embedder, SPEC, remove=["coast-storm"], keep=3)
    second = current_generation(built)
    update_index(built, embedder, SPEC, remove=["herald-bridge"], keep=3)
    third = current_generation(built)
    assert list_generations(built) == [first, second, third]
    rows = history(built)
    assert [r.name for r in rows] == [third, second, first]
    assert [r.current for r in rows] == [True, False, False]
    assert [r.articles for r in rows] == [2, 3, 4] and all(r.problem is None for r in rows)
    assert rows[0].previous == second and rows[1].previous == first

    assert rollback(built) == (third, second)
    assert rollback(built) == (second, first)
    assert len(IndexStore.load(built, embedder).articles) == 4
    assert rollback(built, third) == (first, third)  # nothing was removed: forward again
    with pytest.raises(QAError, match="already the current"):
        rollback(built, third)
    with pytest.raises(QAError, match="not a generation name"):
        rollback(built, "../etc")

    # A damaged generation is shown as such and never rolled back to.
    (built / second / "chunks.jsonl").write_text("garbage")
    assert "damaged" in history(built)[1].problem
    with pytest.raises(IndexCorrupt):
        rollback(built, second)
    assert current_generation(built) == third

    # With the default keep=2, a write keeps the new generation and the one it replaced.
    update_index(built, embedder, SPEC, remove=["coast-bridge-delay"])
    assert list_generations(built) == [third, current_generation(built)]


def test_repair_points_current_at_the_newest_verified_generation(built, embedder):
    first = current_generation(built)
    update_index(built, embedder, SPEC, remove=["coast-storm"], keep=3)
    second = current_generation(built)
    (built / second / "vectors.faiss").write_bytes(b"damaged")
    with pytest.raises(IndexCorrupt, match="damaged"):
        IndexStore.load(built, embedder)
    assert repair(built) == (second, first)
    assert len(IndexStore.load(built, embedder).articles) == 4
    (built / "CURRENT").write_text("gen-garbage\n")
    assert repair(built) == ("gen-garbage", first)
    shutil.rmtree(built / first)
    (built / "CURRENT").unlink()
    with pytest.raises(IndexCorrupt, match="no complete generation"):
        repair(built)


# ---- readers during writes -------------------------------------------------------------------------


def test_a_generation_being_loaded_is_kept_until_a_later_write(built, embedder, monkeypatch):
    old = current_generation(built)
    inside, release = threading.Event(), threading.Event()
    real_read = IndexStore._read.__func__
    result = {}

    def slow_read(cls, index_dir, gen, *args):
        if gen.name == old and not inside.is_set():
            inside.set()
            release.wait(30)
        return real_read(cls, index_dir, gen, *args)

    monkeypatch.setattr(IndexStore, "_read", classmethod(slow_read))
    reader = threading.Thread(target=lambda: result.update(store=IndexStore.load(built, embedder)))
    reader.start()
    assert inside.wait(30)
    update_index(built, embedder, SPEC, remove=["coast-storm"], keep=1)  # would remove `old` at once
    assert (built / old).is_dir(), "a generation a reader is loading stays"
    release.set()
    reader.join(30)
    assert len(result["store"].articles) == 4  # the reader got the generation it started on, whole
    update_index(built, embedder, SPEC, remove=["herald-bridge"], keep=1)
    assert list_generations(built) == [current_generation(built)]


def test_a_reader_whose_generation_vanished_retries_with_the_new_current(built, embedder, monkeypatch):
    import qa.index.store as store_module

    real = store_module._read_current
    old, armed, seen = current_generation(built), [True], []

    def current_then_a_write(index_dir):
        name = real(index_dir)
        if armed and armed.pop():  # between reading CURRENT and opening it, a writer switches and removes it
            update_index(built, embedder, SPEC, remove=["coast-storm"], keep=1)
            assert not (built / name).exists()
        seen.append(name)
        return name

    monkeypatch.setattr(store_module, "_read_current", current_then_a_write)
    store = IndexStore.load(built, embedder)
    assert seen[-2] == old and seen[-1] == current_generation(built) != old
    assert "coast-storm" not in store.articles and len(store.articles) == 3


def test_readers_never_fail_while_a_writer_switches_generations(built, embedder):
    """Issue 16 (2): loads in other threads during a stream of updates, old generations removed
    at once (keep=1): no error, never a false "damaged"."""
    stop, errors, loads = threading.Event(), [], []
    extra = make_article("Ferry strike", "Ferry crews walked out on Monday over pay and the timetable.", explicit_id="extra")

    def read():
        while not stop.is_set():
            try:
                loads.append(len(IndexStore.load(built, embedder).articles))
            except Exception as exc:  # noqa: BLE001 - counted: the test fails on any
                errors.append(repr(exc))

    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in readers:
        t.start()
    try:
        for i in range(8):
            if i % 2:
                update_index(built, embedder, SPEC, remove=["extra"], keep=1)
            else:
                update_index(built, embedder, SPEC, add=[extra], keep=1)
    finally:
        stop.set()
        for t in readers:
            t.join()
    assert errors == []
    assert len(loads) >= 8 and set(loads) <= {4, 5}


def test_unreadable_index_file_is_a_one_line_error_not_damage(built, embedder, monkeypatch):
    import qa.index.store as store_module

    real = store_module._sha256

    def denied(path):
        if path.name == "vectors.faiss":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(store_module, "_sha256", denied)
    with pytest.raises(IndexUnreadable, match=r"cannot read index .*: vectors.faiss: Permission denied") as info:
        IndexStore.load(built, embedder)
    assert "\n" not in str(info.value) and "damaged" not in str(info.value)


def test_streamed_add_in_batches_equals_one_batch(tmp_path, embedder, news_file):
    articles = ingest_paths([SAMPLE_DIR, news_file]).articles + [
        make_article("Harbour bridge approved", NEWS_RECORDS[0]["text"] + " Updated.", explicit_id="herald-bridge"),
    ]
    one = IndexStore.new(embedder, SPEC)
    whole = one.add(articles, embedder, dedup=DedupSpec())
    many = IndexStore.new(embedder, SPEC)
    batched = many.add_batches(iter(articles), embedder, dedup=DedupSpec(), batch_articles=2)
    assert sorted(batched.added) == sorted(whole.added) and batched.updated == whole.updated == []
    assert {a.id: a.text for a in many.articles.values()} == {a.id: a.text for a in one.articles.values()}
    assert many.articles["herald-bridge"].text.endswith("Updated.")
    assert len(many.chunks) == len(one.chunks) == many.vectors.ntotal


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
