import pytest

from qa.chunk import ChunkSpec, _sentence_offsets, chunk_article, sentence_spans
from qa.ingest import make_article

from .conftest import SAMPLE_FILE


def sample_article():
    from qa.ingest import article_from_text

    return article_from_text(SAMPLE_FILE.read_text(encoding="utf-8"))


def test_offsets_slice_the_article_exactly():
    article = sample_article()
    chunks = chunk_article(article, ChunkSpec())
    assert len(chunks) > 1
    for chunk in chunks:
        assert article.text[chunk.start : chunk.end] == chunk.text
        assert chunk.article_id == article.id


def test_chunks_respect_word_bounds_and_overlap_by_a_sentence():
    article = sample_article()
    spec = ChunkSpec(target_words=60, max_words=90, overlap_sentences=1)
    chunks = chunk_article(article, spec)
    assert all(len(c.text.split()) <= spec.max_words for c in chunks)
    for prev, nxt in zip(chunks, chunks[1:]):
        assert nxt.start < prev.end, "consecutive chunks share their boundary sentence"
        assert nxt.start > prev.start


def test_every_sentence_is_covered():
    article = sample_article()
    chunks = chunk_article(article, ChunkSpec(target_words=40, max_words=60))
    for start, end in sentence_spans(article.text):
        assert any(c.start <= start and end <= c.end for c in chunks) or len(article.text[start:end].split()) > 60


def test_paragraph_breaks_split_headlines_from_sentences():
    text = "Breaking news without a period\n\nThe minister resigned on Monday. She gave no reason."
    spans = sentence_spans(text)
    assert [text[a:b] for a, b in spans] == [
        "Breaking news without a period",
        "The minister resigned on Monday.",
        "She gave no reason.",
    ]


@pytest.mark.parametrize("text", [
    "Hello world. This is Mr. Smith's test! Is it? Yes.",
    "Café au lait coûte 3 €. Zürich — “quoted” text… Next one here. 日本語の文です。次の文。 Emoji 😀 test. Done.",
    "Ünïcödé at the start. 😀😀 Another one 😀.",
    "   Leading spaces. And trailing.   ",
    "No punctuation at all",
    "Line one\nline two. Sentence three.",
])
def test_sentence_offsets_equal_blingfires_own_wrapper(text):
    """We call blingfire's C entry point and map UTF-8 byte offsets to characters ourselves."""
    import blingfire

    assert _sentence_offsets(text) == blingfire.text_to_sentences_and_offsets(text)[1]


def test_sentence_offsets_fall_back_to_the_wrapper_without_the_entry_point(monkeypatch):
    import blingfire

    text = "Zürich won. 😀 Then Basel lost."
    expected = blingfire.text_to_sentences_and_offsets(text)[1]
    monkeypatch.delattr(blingfire.blingfire, "TextToSentencesWithOffsets")
    assert _sentence_offsets(text) == expected


def test_run_on_sentence_is_cut_by_words():
    article = make_article("Long", " ".join(f"word{i}" for i in range(500)))
    chunks = chunk_article(article, ChunkSpec(target_words=100, max_words=120, overlap_sentences=0))
    assert all(len(c.text.split()) <= 120 for c in chunks)
    assert " ".join(c.text for c in chunks).split() == article.text.split()


def test_short_article_is_one_chunk():
    article = make_article("Short", "Only one sentence here.")
    chunks = chunk_article(article, ChunkSpec(), first_id=7)
    assert [(c.id, c.text) for c in chunks] == [(7, "Only one sentence here.")]


@pytest.mark.parametrize("target,maximum,overlap", [(0, 10, 1), (20, 10, 1), (10, 20, -1)])
def test_invalid_spec(target, maximum, overlap):
    with pytest.raises(ValueError):
        ChunkSpec(target, maximum, overlap)
