"""scripts/make_reader_data.py: cloze (recurring-span) and speaker questions on hand-written news."""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from make_reader_data import clean_text, cloze_examples, is_prose, parse_args, speaker_examples  # noqa: E402

# Written for this test in the style of a Reuters wire story (hard line wraps, indented paragraphs).
WIRE = """Harlow Mining Corp <HMC> said it agreed to
sell its copper smelter in Port Alden to <Keller Metals Ltd> for
120 mln dlrs, ending a two-year search for a buyer.
 Harlow said the sale of the Port Alden smelter would let it cut
its debt by about half and focus on its gold mines in Nevada.
 Keller Metals, which runs two smelters in Chile, said it would
keep all 800 workers at the plant.
 The deal, which needs approval from regulators, is expected to
close on June 30, Harlow said. Analysts said the price of 120 mln
dlrs was higher than expected for a smelter that lost money last year.
 Reuter
"""


def test_clean_text_joins_wrapped_lines_and_drops_tickers_and_sign_off():
    text = clean_text(WIRE)
    assert text.startswith("Harlow Mining Corp said it agreed to sell its copper smelter in Port Alden to Keller Metals Ltd")
    assert "<" not in text and "Reuter" not in text
    assert text.count("\n\n") == 3  # four paragraphs
    assert is_prose(text)
    assert not is_prose("Wheat 1,655.8 872.0 164.6\nMaize 48.0 48.0 nil\n" * 10)  # a table


def test_cloze_questions_are_answered_by_the_other_mention():
    text = clean_text(WIRE)
    rows = cloze_examples("wire-1", "", text, random.Random(0), per_article=10, min_overlap=2, max_words=220)
    assert rows
    for row in rows:
        gold = row["answers"][0]
        assert row["context"][gold["start"] : gold["start"] + len(gold["text"])] == gold["text"]
        assert row["question"].endswith("?") and gold["text"] not in row["question"]
        # The question's own sentence is not in the context: the answer is another mention.
        assert row["question"][:-1].split()[-1] in text
    by_answer = {row["answers"][0]["text"]: row for row in rows}
    assert "Port Alden" in by_answer or "120 mln dlrs" in by_answer
    if "120 mln dlrs" in by_answer:
        assert "how much" in by_answer["120 mln dlrs"]["question"]


def test_cloze_needs_shared_content_words():
    text = clean_text(WIRE)
    loose = cloze_examples("wire-1", "", text, random.Random(0), 10, min_overlap=0, max_words=220)
    strict = cloze_examples("wire-1", "", text, random.Random(0), 10, min_overlap=6, max_words=220)
    assert len(strict) < len(loose)


@dataclass(frozen=True)
class Quote:  # the fields of qa.records.Quote that the generator reads
    start: int
    end: int
    speaker: str
    kind: str


def test_speaker_questions_answer_with_the_quote():
    text = ('Dana Whitfield, the mayor of Port Alden, said the bridge would reopen in May. '
            '"We will not let the repairs drag on into the summer," Whitfield said.\n\n'
            'She added that the city council had approved another 2 mln dlrs for the harbour walls.')
    quotes = []
    for words, speaker, kind in (("the bridge would reopen in May", "Dana Whitfield", "reported"),
                                 ("We will not let the repairs drag on into the summer", "Dana Whitfield", "direct"),
                                 ("the city council had approved another 2 mln dlrs for the harbour walls",
                                  "Dana Whitfield", "reported"),
                                 ("nothing at all here", "she", "reported")):
        start = text.find(words) if words in text else 0
        quotes.append(Quote(start, start + len(words), speaker, kind))
    rows = speaker_examples("q-1", text, quotes, max_words=220)
    assert len(rows) == 3  # the unresolved "she" makes no question
    for row in rows:
        gold = row["answers"][0]
        assert row["context"][gold["start"] : gold["start"] + len(gold["text"])] == gold["text"]
        assert row["question"].startswith("What did Dana Whitfield say about ")
    assert len({row["question"] for row in rows}) == 3


def test_refuses_the_bbc_corpus(tmp_path):
    with pytest.raises(SystemExit):
        parse_args(["--output", str(tmp_path / "x.jsonl"), "--reuters", "../shared/data/corpora/bbc_news/bbc"])
