import numpy as np
import pytest

from qa.ingest import make_article
from qa.read import decode_spans, merge_overlapping
from qa.records import Chunk, Passage, Span


def passage(text: str, article_id: str = "a", chunk_id: int = 0, start: int = 0) -> Passage:
    article = make_article("Title", " " * start + text, explicit_id=article_id)
    chunk = Chunk(chunk_id, article_id, text, start, start + len(text))
    return Passage(chunk, article, score=1.0, rank=chunk_id)


# Tokens: [CLS] q [SEP] ctx0 ctx1 ctx2 [SEP]; ctx token k covers characters (4k, 4k+3).
CONTEXT = np.array([False, False, False, True, True, True, False])
OFFSETS = np.array([[0, 0], [0, 0], [0, 0], [0, 3], [4, 7], [8, 11], [0, 0]])


def logits(values):
    return np.array(values, dtype=np.float32)


def test_best_span_and_null():
    start = logits([0, 9, 9, 5, 1, 0, 9])  # question/separator tokens must be ignored
    end = logits([0, 9, 9, 0, 6, 1, 9])
    spans, null = decode_spans(start, end, CONTEXT, OFFSETS, max_answer_tokens=30, top_n=3)
    assert spans[0][:2] == (0, 7)  # ctx0..ctx1
    assert spans[0][2] > null
    assert all(a < b for a, b, _ in spans)


def test_null_wins_when_cls_is_strongest():
    start = logits([8, 0, 0, 1, 1, 1, 0])
    end = logits([8, 0, 0, 1, 1, 1, 0])
    spans, null = decode_spans(start, end, CONTEXT, OFFSETS, 30, 3)
    assert null > spans[0][2]


def test_inverted_and_too_long_spans_are_excluded():
    start = logits([0, 0, 0, 0, 0, 9, 0])
    end = logits([0, 0, 0, 9, 0, 0, 0])  # best end precedes best start
    spans, _ = decode_spans(start, end, CONTEXT, OFFSETS, max_answer_tokens=1, top_n=10)
    # Max one token: exactly the three one-token spans, never the inverted (8, 3) nor a longer one.
    assert sorted((a, b) for a, b, _ in spans) == [(0, 3), (4, 7), (8, 11)]


def test_overlapping_duplicates_merge_but_other_articles_stay():
    p1, p2, p3 = passage("Kim sent a letter", "a", 0), passage("a letter", "a", 1, start=9), passage("Kim sent", "b", 2)
    spans = [Span(p1, 9, 17, 0.7), Span(p2, 0, 8, 0.8), Span(p3, 0, 3, 0.5), Span(p1, 0, 3, 0.6)]
    merged = merge_overlapping(spans)
    assert [(s.passage.article.id, s.text, s.score) for s in merged] == [("a", "a letter", 0.8), ("a", "Kim", 0.6), ("b", "Kim", 0.5)]


def test_reader_answers_from_the_right_passage(reader):
    passages = [
        passage("The storm closed thirty schools on Friday.", "storm", 0),
        passage("In June, the two leaders held a summit in Singapore where North Korea pledged to stop "
                "its nuclear weapons programme.", "summit", 1),
    ]
    out = reader.read("Where was the summit held?", passages)
    assert out.spans[0].text == "Singapore"
    assert out.spans[0].passage.article.id == "summit"
    assert out.best_is_answer()


def test_reader_says_no_answer_for_unrelated_question(reader):
    out = reader.read("What is the capital of Peru?", [passage("The storm closed thirty schools on Friday.")])
    assert not out.best_is_answer()


def test_long_passage_is_read_in_strided_windows(reader):
    filler = " ".join(["The committee discussed the budget for the coming year at length."] * 60)
    text = filler + " The new stadium will be built in Leeds."
    p = passage(text)
    out = reader.read("Where will the new stadium be built?", [p])
    best = out.spans[0]
    assert best.text == "Leeds"
    assert text[best.start : best.end] == "Leeds" and best.start > 3000


def test_huge_question_is_clipped(reader):
    question = "Where was the summit held? " + "blah " * 5000
    assert len(reader.tokenizer.encode(reader.clip_question(question)).ids) <= reader.max_question_tokens + 2
    out = reader.read(question, [passage("The summit was held in Singapore.")])
    assert out.spans[0].text == "Singapore", "the passage still gets most of the window"


@pytest.mark.parametrize("architecture", ["distilbert", "roberta"])
def test_reader_model_without_token_types_reads(tmp_path, reader, architecture):
    # Through transformers, with the shipped reader's tokenizer. RoBERTa embeds one token type only:
    # passing the passage's type 1 would index past its table.
    import shutil

    import transformers

    if architecture == "distilbert":
        config = transformers.DistilBertConfig(vocab_size=30522, dim=32, n_layers=1, n_heads=2, hidden_dim=64)
        transformers.DistilBertForQuestionAnswering(config).save_pretrained(tmp_path)
    else:
        config = transformers.RobertaConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                            intermediate_size=64, max_position_embeddings=514, type_vocab_size=1)
        transformers.RobertaForQuestionAnswering(config).save_pretrained(tmp_path)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copy(reader.model_dir / name, tmp_path / name)
    from qa.read import Reader

    tiny = Reader(tmp_path, precision="float32")
    assert reader.takes_token_types and not tiny.takes_token_types
    text = "The summit was held in Singapore. " * 30  # two windows
    out = tiny.read("Where was the summit held?", [passage(text)])
    assert out.spans and set(out.null_scores) == {0}
    assert all(0 <= s.start < s.end <= len(text) for s in out.spans)


def test_empty_passages_list(reader):
    assert reader.read("Where?", []).spans == []


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
def test_blank_passages_give_no_span(reader, text):
    from qa.records import Article

    blank = Passage(Chunk(0, "a", text, 0, len(text)), Article("a", "Title", text), score=1.0, rank=0)
    out = reader.read("Where was the summit held?", [blank, passage("The summit was held in Singapore.", "b", 1)])
    assert out.spans and all(s.passage.article.id == "b" and s.text.strip() for s in out.spans)


def test_precision_choice(reader):
    import torch

    from qa.models.cpu import resolve_precision
    from qa.read import Reader

    import qa.models.cpu

    assert resolve_precision("float32") is torch.float32 and resolve_precision("bfloat16") is torch.bfloat16
    with pytest.MonkeyPatch.context() as mp:  # "auto" follows the CPU, both ways
        mp.setattr(qa.models.cpu, "cpu_has_native_bf16", lambda: True)
        assert resolve_precision("auto") is torch.bfloat16
        mp.setattr(qa.models.cpu, "cpu_has_native_bf16", lambda: False)
        assert resolve_precision("auto") is torch.float32
    with pytest.raises(ValueError):
        from qa.config import Settings

        Settings(precision="float16")
    fp32 = Reader(reader.model_dir, precision="float32")
    assert next(fp32.model.parameters()).dtype is torch.float32
    p = passage("In June, the two leaders held a summit in Singapore.")
    assert fp32.read("Where was the summit held?", [p]).spans[0].text == "Singapore"
