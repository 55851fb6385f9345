import numpy as np
import pytest

from qa.ingest import make_article
from qa.models.int8 import int8_linear_works
from qa.conversation import content_stems
from qa.read import Reader, decode_spans, focus_sentences, merge_overlapping
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


FOCUS_TEXT = ("The storm closed thirty schools on Friday. Roads were flooded across the county. "
              "In June, the two leaders held a summit in Singapore. North Korea pledged to stop its programme. "
              "Markets rose on the news.")


@pytest.mark.parametrize("sentences, expected", [
    (0, FOCUS_TEXT),  # off: the whole passage
    (1, "In June, the two leaders held a summit in Singapore."),
    (2, "Roads were flooded across the county. In June, the two leaders held a summit in Singapore."),
    (9, FOCUS_TEXT),  # no more sentences than asked for
])
def test_focus_is_the_run_of_sentences_sharing_most_question_words(sentences, expected):
    start, end = focus_sentences(content_stems("Where did the leaders hold the summit?"), FOCUS_TEXT, sentences)
    assert FOCUS_TEXT[start:end] == expected


def test_focused_reading_gives_offsets_in_the_whole_passage(reader):
    focused = Reader(reader.model_dir, precision=reader.precision, focus_sentences=1)
    p = passage(FOCUS_TEXT, "summit")
    span = focused.read("Where did the leaders hold the summit?", [p]).spans[0]
    assert span.text == "Singapore" and FOCUS_TEXT[span.start:span.end] == "Singapore"
    with pytest.raises(ValueError, match="QA_READ_SENTENCES"):
        Reader(reader.model_dir, focus_sentences=-1)


def test_long_passage_is_read_in_strided_windows(reader):
    filler = " ".join(["The committee discussed the budget for the coming year at length."] * 60)
    text = filler + " The new stadium will be built in Leeds."
    p = passage(text)
    out = reader.read("Where will the new stadium be built?", [p])
    best = out.spans[0]
    assert best.text == "Leeds"
    assert text[best.start : best.end] == "Leeds" and best.start > 3000


PRECISIONS_HERE = ["float32"] + (["int8"] if int8_linear_works() else [])


@pytest.mark.parametrize("precision", PRECISIONS_HERE)
def test_a_passage_reads_the_same_whatever_is_read_beside_it(reader, precision):
    """In int8 one quantization scale covers a whole call: batched with longer windows (and their
    padding), a window's logits moved by up to ~2 and its best span changed (6 of 15 development
    questions). So int8 reads each window alone; float32 batches exactly."""
    from qa.read import Reader

    one = Reader(reader.model_dir, precision=precision)
    assert one.windows_alone == (precision == "int8")
    target = passage("The two leaders met in Singapore in June; a second summit is planned for Hanoi.", "s", 0)
    others = [passage(" ".join(["Markets fell 4.5 pct on Tuesday after a 120 mln dlr loss was reported."] * k),
                      f"o{k}", k) for k in (3, 9, 15)]
    question = "Where was the second summit planned?"
    alone = [(s.start, s.end, s.logit) for s in one.read(question, [target]).spans][:3]
    beside = [(s.start, s.end, s.logit) for s in one.read(question, [*others, target]).spans
              if s.passage.article.id == "s"][:3]
    assert [where for *where, _ in beside] == [where for *where, _ in alone]
    assert [logit for *_, logit in beside] == pytest.approx([logit for *_, logit in alone], abs=1e-3)


@pytest.mark.parametrize("precision", PRECISIONS_HERE)
def test_adaptive_reading_stops_as_soon_as_it_is_told(reader, precision, monkeypatch):
    from qa.read import Reader

    one = Reader(reader.model_dir, precision=precision)
    passages = [passage(f"The meeting number {i} was held in Leeds on Friday.", f"m{i}", i) for i in range(5)]
    calls, asked = [], []
    original = one.read
    monkeypatch.setattr(one, "read", lambda q, ps: calls.append(len(ps)) or original(q, ps))

    def enough(output, rest):  # settled once at most two passages are left unread
        asked.append(len(rest))
        return len(rest) <= 2

    output = one.read_adaptively("Where was the meeting held?", passages, 1, enough)
    if one.windows_alone:  # int8: one passage a step, checked after each
        assert calls == [1, 1, 1] and asked == [4, 3, 2]
        assert {s.passage.article.id for s in output.spans} == {"m0", "m1", "m2"}
    else:  # batched: the others all at once
        assert calls == [1, 4] and asked == [4]


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


# ---- boundary repair -----------------------------------------------------------------------------

from qa.read import is_balanced, repair_span, unbalanced_marks  # noqa: E402

REPAIR_TEXT = ("Lenovo said profit was HK$327m (£21m), while IBM gets $1.75bn. He said \"a nice letter\" was "
               "sent; Sanders' aide agreed with Smith Inc. The rate (set in 1986) rose 5% to 17.30m today.")


@pytest.mark.parametrize(
    "cut,repaired",
    [
        ("$327m", "HK$327m"),  # the currency prefix the tokenizer split off
        ("327m", "HK$327m"),
        ("17.30", "17.30m"),  # a unit glued to the number
        ("rose 5", "rose 5%"),
        ("£21m)", "(£21m)"),  # a closing bracket whose opener is just before
        ("(£21m", "(£21m)"),
        ("\"a nice", "\"a nice letter\""),  # a quote closed a few words later
        ("nice letter\" was", "\"a nice letter\" was"),
        ("$1.75bn.", "$1.75bn"),  # the sentence's full stop
        ("Smith Inc.", "Smith Inc."),  # an abbreviation's full stop stays
        ("Sanders'", "Sanders'"),  # an apostrophe is no quotation mark
        ("1986) rose 5", "(set in 1986) rose 5%"),
    ],
)
def test_repair_span(cut, repaired):
    start = REPAIR_TEXT.index(cut)
    s, e = repair_span(REPAIR_TEXT, start, start + len(cut))
    assert REPAIR_TEXT[s:e] == repaired


def test_stray_mark_far_from_its_partner_is_cut_off():
    text = "The board (which met on Tuesday after a long and difficult review of all the options open to it) voted."
    start = text.index("(which")
    s, e = repair_span(text, start, start + len("(which met"))
    assert text[s:e] == "which met"


@pytest.mark.parametrize("text,stray", [("(a", [0]), ("a)", [1]), ("“a", [0]), ("‘a’ b", []), ("don’t", []),
                                        ("'a b", [0]), ("'a b'", []), ('"a', [0]), ('"a" "b"', []), ("[a (b] c)", [0, 5])])
def test_unbalanced_marks(text, stray):
    assert unbalanced_marks(text) == stray


def test_no_repaired_span_is_ever_unbalanced():
    import random

    rng = random.Random(13)
    pieces = ["HK$327m", "(£21m)", "<KRPG.F>", "<open", "\"nice letter\"", "‘quoted’", "“double”", "[note]", "don’t", "Sanders'", "'single'",
              "U.S.", "1.75bn.", "word", "and", "(open", "close)", "\"stray", "«guillemets»", "{x}", ",", "\n"]
    for _ in range(3000):
        text = " ".join(rng.choice(pieces) for _ in range(rng.randint(1, 14)))
        start = rng.randrange(len(text))
        end = rng.randint(start + 1, len(text))
        repaired = repair_span(text, start, end)
        if repaired is not None:
            s, e = repaired
            assert 0 <= s < e <= len(text)
            assert is_balanced(text[s:e]), (text, text[start:end], text[s:e])
            assert text[s:e] == text[s:e].strip()


def test_reader_answers_are_balanced_and_whole(reader):
    p = passage("Lenovo will pay $1.25bn (£650m) in cash and shares to IBM, while its own quarterly profit was "
                "HK$327m. The deal, worth \"about $1.75bn\" with debt, makes Lenovo the third-largest PC maker.")
    out = reader.read("How much was Lenovo's quarterly profit?", [p])
    assert out.spans
    for span in out.spans:
        assert is_balanced(span.text), span.text
        assert not span.text.startswith("$327")  # never "$327m" cut out of "HK$327m"
