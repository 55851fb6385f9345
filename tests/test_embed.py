import time

import numpy as np
import pytest

from qa.chunk import ChunkSpec
from qa.embed import PAD_MULTIPLE, Embedder, SentenceModelConfig, length_batches, pooling_mode
from qa.errors import ModelNotFound
from qa.models.int8 import int8_linear_works


def test_length_batches_cover_every_row_once_within_the_token_budget():
    lengths = [5, 250, 33, 64, 64, 1, 200, 129, 31, 32]
    batches = length_batches(lengths, batch_tokens=256, multiple=32, max_width=256)
    rows = np.concatenate([r for r, _ in batches])
    assert sorted(rows.tolist()) == list(range(len(lengths)))
    widths = [w for _, w in batches]
    assert widths == sorted(widths, reverse=True), "longest first"
    for r, width in batches:
        assert all(lengths[i] <= width for i in r)
        assert width % 32 == 0
        assert len(r) == 1 or len(r) * width <= 256


def test_length_batches_never_pad_past_max_width_nor_cut_a_row():
    batches = length_batches([250, 300], batch_tokens=4096, multiple=32, max_width=256)
    assert [w for _, w in batches] == [300]
    assert length_batches([250], batch_tokens=4096, multiple=32, max_width=250)[0][1] == 250
    assert length_batches([], batch_tokens=4096, multiple=32, max_width=256) == []


@pytest.fixture(scope="module")
def embedder32(embedder) -> Embedder:
    """float32 whatever the CPU: the batching tests compare a text's vector across batches, and in
    int8 a text's vector also depends (cosine ~0.995) on its batch-mates, which share the
    activations' quantization scale."""
    return Embedder(embedder.model_dir, precision="float32")


def test_encode_keeps_input_order_and_normalizes(embedder32):
    embedder = embedder32
    texts = ["Kim Jong Un wrote a letter to Trump.", "x " * 400, "Stocks fell in Tokyo.", ""]
    vectors = embedder.encode(texts)
    assert vectors.shape == (4, embedder.dim) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    one_by_one = np.stack([embedder.encode([t])[0] for t in texts])
    np.testing.assert_allclose(vectors, one_by_one, atol=2e-2)
    assert (vectors @ one_by_one.T).argmax(axis=1).tolist() == [0, 1, 2, 3]


def test_encode_matches_sentence_transformers_in_float32(embedder):
    """Our loader reads the model's sentence-transformers config itself; the library is the reference."""
    from sentence_transformers import SentenceTransformer

    ours = Embedder(embedder.model_dir, batch_tokens=PAD_MULTIPLE * 3, precision="float32")
    texts = [
        "Sarah Sanders said there is not a second meeting locked in.",
        "The Bank of England held interest rates at 4.75%.",
        "  leading and trailing spaces are stripped like sentence-transformers does  ",
        "A much longer text about the Premier League " * 20,
    ]
    library = SentenceTransformer(str(embedder.model_dir), device="cpu", local_files_only=True)
    reference = library.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_allclose(ours.encode(texts), reference, atol=1e-5)


def test_empty_input_and_bad_batch_size(embedder):
    assert embedder.encode([]).shape == (0, embedder.dim)
    with pytest.raises(ValueError):
        Embedder(embedder.model_dir, batch_tokens=0)


def test_sentence_model_config_of_the_shipped_embedder(embedder):
    config = SentenceModelConfig.read(embedder.model_dir)
    assert (config.pooling, config.max_seq_length, config.lowercase) == ("mean", 256, False)


@pytest.mark.parametrize("pooling, mode", [
    ({"pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False}, "mean"),
    ({"pooling_mode_cls_token": True}, "cls"),
    ({"pooling_mode": "max"}, "max"),
    ({"pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": True}, None),
    ({"pooling_mode_weightedmean_tokens": True}, None),
    ({"pooling_mode": "lasttoken"}, None),
    ({}, None),
])
def test_pooling_mode(pooling, mode):
    assert pooling_mode(pooling) == mode


def test_unsupported_or_broken_model_directories_are_refused(tmp_path, embedder):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(embedder.model_dir, model)
    (model / "1_Pooling" / "config.json").write_text('{"pooling_mode_weightedmean_tokens": true}')
    with pytest.raises(ModelNotFound, match="unsupported pooling"):
        Embedder(model).encode(["x"])
    (model / "modules.json").write_text("not json")
    with pytest.raises(ModelNotFound, match="not a readable"):
        Embedder(model).encode(["x"])


def test_parallel_batches_give_the_same_vectors_and_restore_the_thread_count(embedder32):
    import torch

    embedder = embedder32
    texts = [f"Story {i}: " + "the council met again to discuss the harbour bridge " * (i % 7 + 1) for i in range(40)]
    small_batches = Embedder(embedder.model_dir, batch_tokens=64, precision="float32")
    threads = torch.get_num_threads()
    parallel = small_batches.encode(texts)
    assert torch.get_num_threads() == threads
    serial = np.stack([embedder.encode([t])[0] for t in texts])
    np.testing.assert_allclose(parallel, serial, atol=2e-2)
    assert ((parallel * serial).sum(axis=1) > 0.999).all()


def test_slices_are_pipelined_in_input_order(embedder32, monkeypatch):
    """Several slices in flight at once (the next is tokenized while one is embedded) still
    fill every row with its own text's vector."""
    import qa.embed

    monkeypatch.setattr(qa.embed, "TEXTS_PER_SLICE", 3)
    texts = [f"Item {i}: " + ("shares in the bank rose " if i % 2 else "the striker scored twice ") * (i % 5 + 1)
             for i in range(11)]
    sliced = Embedder(embedder32.model_dir, batch_tokens=64, precision="float32").encode(texts)
    whole = np.stack([embedder32.encode([t])[0] for t in texts])
    assert ((sliced * whole).sum(axis=1) > 0.999).all()


def test_a_failing_batch_raises_and_stops_the_workers(embedder, monkeypatch):
    import torch

    failing = Embedder(embedder.model_dir, batch_tokens=16)  # one text per batch
    calls = []

    def broken(*args):
        calls.append(1)
        time.sleep(0.05)
        raise RuntimeError("out of memory")

    monkeypatch.setattr(failing, "_embed_batch", broken)
    threads = torch.get_num_threads()
    # 100 batches per worker: running them all takes 5 s, so stopping early is not a matter of
    # how many threads there are or how busy the machine is.
    batches = 100 * max(2, threads)
    with pytest.raises(RuntimeError, match="out of memory"):
        failing.encode(["a long enough text about the harbour bridge"] * batches)
    assert torch.get_num_threads() == threads
    assert len(calls) < batches // 2, "queued batches were cancelled"


needs_int8 = pytest.mark.skipif(not int8_linear_works(), reason="no int8 kernels on this CPU/torch "
                                "(the float32 fallback is tested in test_int8.py)")
NEWS_TEXTS = [
    "Council approves harbour bridge\nThe city council approved the new harbour bridge on Tuesday. It will cost "
    "40 million pounds and open in 2027, the mayor said.",
    "Storm closes schools\nA winter storm closed thirty schools along the coast on Friday, and ferries to the "
    "islands were cancelled.",
    "Bank warns on profits\nShares in the bank fell 6% after it said profits would halve because of bad loans.",
    "United win derby\nThe striker scored twice as United beat City 2-0 in front of 70,000 fans.",
    "Phone sales slow\nSmartphone shipments dropped for a third quarter as buyers kept their handsets longer.",
]
QUESTIONS = ["When will the new bridge open?", "Why were the ferries cancelled?", "Why did the bank's shares fall?",
             "Who won the derby?", "Are people buying fewer phones?"]


@needs_int8
def test_int8_vectors_stay_close_to_float32_and_rank_alike(embedder32):
    """The accuracy gate of precision int8 (cosine >= 0.99), and why an index built in one precision
    can be queried in another: every mix of precisions finds each question's passage first, with
    question-passage similarities within 0.03 (only near-ties among unrelated passages may swap)."""
    int8 = Embedder(embedder32.model_dir, precision="int8")
    assert int8.model.precision == "int8"
    passages32, passages8 = embedder32.encode(NEWS_TEXTS), int8.encode(NEWS_TEXTS)
    questions32, questions8 = embedder32.encode(QUESTIONS), int8.encode(QUESTIONS)
    assert ((passages32 * passages8).sum(axis=1) >= 0.99).all()
    assert ((questions32 * questions8).sum(axis=1) >= 0.99).all()
    expected = questions32 @ passages32.T
    assert expected.argmax(axis=1).tolist() == list(range(len(QUESTIONS)))
    for questions, passages in [(questions8, passages32), (questions32, passages8), (questions8, passages8)]:
        similarities = questions @ passages.T
        assert similarities.argmax(axis=1).tolist() == list(range(len(QUESTIONS)))
        np.testing.assert_allclose(similarities, expected, atol=0.03)


@needs_int8
def test_an_index_built_in_float32_answers_alike_in_int8(embedder32, tmp_path):
    from qa.index import build_index
    from qa.ingest import make_article
    from qa.retrieve import Retriever

    articles = [make_article(text.split("\n")[0], text.split("\n", 1)[1], explicit_id=f"n{i}")
                for i, text in enumerate(NEWS_TEXTS)]
    store, _ = build_index(articles, tmp_path / "index", embedder32, ChunkSpec())
    int8 = Embedder(embedder32.model_dir, precision="int8")
    assert int8.name == embedder32.name  # one index serves both
    for i, question in enumerate(QUESTIONS):
        for embedder in (embedder32, int8):
            best = Retriever(store, embedder).retrieve(question, k=3)[0]
            assert best.article.id == f"n{i}", (question, embedder.precision)
