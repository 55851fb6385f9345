"""qa.quotes on real article text: the sample article, our own articles (tests/data) and
Reuters-21578 from ../shared (read in place, never copied)."""

import json
import time

import pytest

from qa.ingest import ingest_paths
from qa.quotes import extract_quotes, read_quotes, speaker_matches, write_quotes
from qa.records import Article, Quote

from .conftest import ROOT, SAMPLE_DIR, SHARED

OWN = ROOT / "tests" / "data" / "quotes_articles.jsonl"


@pytest.fixture(scope="module")
def sample():
    article = ingest_paths([SAMPLE_DIR]).articles[0]
    return article, extract_quotes(article)


@pytest.fixture(scope="module")
def own():
    return {a.id: (a, extract_quotes(a)) for a in ingest_paths([OWN]).articles}


@pytest.fixture(scope="module")
def reuters():
    if not (SHARED / "data" / "corpora" / "reuters21578").is_dir():
        pytest.skip("../shared/data/corpora/reuters21578 is not here")
    import sys

    sys.path.insert(0, str(ROOT))
    from benchmarks.corpora import reuters_articles

    wanted = {"reuters-18", "reuters-28", "reuters-32", "reuters-45", "reuters-308"}
    return {a.id: (a, extract_quotes(a)) for a in reuters_articles().articles if a.id in wanted}


def find(pair, start: str) -> Quote:
    article, quotes = pair
    hits = [q for q in quotes if article.text[q.start : q.end].startswith(start)]
    assert hits, f"no quote starts with {start!r}: {[article.text[q.start:q.start + 30] for q in quotes]}"
    return hits[0]


def words(pair, quote: Quote) -> str:
    return pair[0].text[quote.start : quote.end]


def test_every_quote_is_a_slice_of_its_article_without_marks(sample, own):
    for article, quotes in [sample, *own.values()]:
        assert quotes
        for q in quotes:
            text = article.text[q.start : q.end]
            assert text == text.strip() and text[0] not in "\"“”" and text[-1] not in "\"“”,"
            assert q.article_id == article.id and q.kind in {"direct", "reported"} and q.speaker


def test_attribution_after_the_quote_beats_according_to(sample):
    q = find(sample, "He did receive a letter")
    assert (q.speaker, q.speaker_as_written, q.cue, q.kind) == ("Sarah Sanders", "Sanders", "told", "direct")
    assert q.role == "White House spokeswoman"


def test_quote_paragraph_continues_the_previous_speaker(sample):
    first = find(sample, "He did receive a letter")
    second = find(sample, "There is not a second meeting")
    assert second.speaker == "Sarah Sanders" and second.utterance == first.utterance
    assert words(sample, second).endswith("there isn’t a meeting planned")


def test_pronoun_and_cue_verbs(sample):
    assert find(sample, "Thank you to Chairman Kim").speaker == "Donald Trump"
    assert find(sample, "Thank you to Chairman Kim").cue == "tweeted"
    added = find(sample, "I am not at all surprised")
    assert (added.speaker, added.speaker_as_written, added.cue) == ("Donald Trump", "he", "added")


def test_reported_speech(sample):
    q = find(sample, "Trump responded with a note")
    assert (q.speaker, q.kind, q.cue) == ("Sarah Sanders", "reported", "said")
    official = find(sample, "the US has concerns")
    assert official.kind == "reported" and official.speaker == "senior State Department official"


def test_role_noun_and_pronoun_resolve_to_an_unnamed_speaker(sample):
    assert find(sample, "the US has concerns").speaker_as_written == "The official"
    last = find(sample, "So the Secretary will use")
    assert (last.speaker, last.speaker_as_written) == ("senior State Department official", "he")


def test_partial_quote_inside_reported_speech(sample):
    q = find(sample, "addressed their commitment")
    assert q.speaker == "Sarah Sanders" and q.kind == "direct"  # "However, Sanders … but said the notes “…”"


@pytest.mark.parametrize("name,expected", [
    ("Sanders", True), ("Ms Sanders", True), ("Sarah Sanders", True), ("Sarah Huckabee Sanders", True),
    ("sanders", True), ("White House spokeswoman", True), ("Bernie Sanders", False), ("Trump", False),
    ("the minister", False),
])
def test_name_variants(sample, name, expected):
    assert speaker_matches(name, find(sample, "We have responded")) is expected


def test_split_quote_halves_share_speaker_and_utterance(own):
    pair = own["own-harbour-ferry"]
    a, b = find(pair, "Nobody wants to leave"), find(pair, "but the numbers no longer add up")
    assert a.speaker == b.speaker == "Helen Marsh" and a.utterance == b.utterance
    c, d = find(pair, "We have carried the losses"), find(pair, "We cannot carry them")
    assert c.speaker == d.speaker == "Helen Marsh" and c.utterance == d.utterance and c.speaker_as_written == "Dr Marsh"


def test_multi_paragraph_quote_is_one_quote(own):
    pair = own["own-library-plan"]
    q = find(pair, "We looked at every option")
    assert "\n\n" in words(pair, q) and words(pair, q).endswith("the Sunday opening is the result")
    assert q.speaker == "Priya Natarajan"


def test_nested_single_quotes_stay_inside(own):
    pair = own["own-library-plan"]
    q = find(pair, "My son calls it")
    assert words(pair, q) == "My son calls it 'the quiet castle' and asks to go every week"
    assert q.speaker == "Anna Kowalski"


def test_pronoun_resolves_to_a_person_introduced_as_subject(own):
    pair = own["own-library-plan"]
    q = find(pair, "No. I have said it before")
    assert q.speaker == "Sarah Whitfield"  # "The council leader, Sarah Whitfield, backed the plan. … she said"


def test_role_nouns_the_minister_and_the_firm(own):
    pair = own["own-harbour-ferry"]
    minister = find(pair, "remains available as a last resort")
    assert (minister.speaker, minister.speaker_as_written) == ("Alan Doyle", "The minister")
    firm = find(pair, "it had offered to share")
    assert (firm.speaker, firm.kind) == ("Northsound Ferries Ltd", "reported")
    company = find(pair, "passenger numbers on the winter routes")
    assert (company.speaker, company.cue) == ("Northsound Ferries Ltd", "according to")


def test_appositives_give_name_and_role(own):
    holt = find(own["own-river-flood"], "the flood defences had held")  # "Its area manager, James Holt, told reporters that"
    assert (holt.speaker, holt.role, holt.kind, holt.cue) == ("James Holt", "area manager", "reported", "told")
    marsh = find(own["own-harbour-ferry"], "Northsound Ferries Ltd will cut")  # "…, the firm's chief executive, Dr Helen Marsh, said"
    assert (marsh.speaker, marsh.role) == ("Helen Marsh", "chief executive")


def test_straight_quotes_and_and_said(own):
    pair = own["own-chipmaker-results"]
    assert find(pair, "The car is becoming").speaker == "Martin Osei"
    assert find(pair, "demand from carmakers").speaker == "Veltron Semiconductor Corp"  # "X reported … and said"
    assert find(pair, "When everyone builds").speaker == "Julia Brandt"  # "…," said Julia Brandt, an analyst …


def test_reuters_constructions(reuters):
    tower = reuters["reuters-28"]
    nested = find(tower, "What can we say except")
    assert words(tower, nested).endswith("'we're sorry, we\nwon't do it again'?")
    assert nested.speaker == "Republican political strategist"  # "…," said one Republican political strategist.
    assert find(tower, "This is certification").speaker == "Stephen Hess"
    cranston = reuters["reuters-32"]
    a, b = find(cranston, "Our reforms should reduce"), find(cranston, "I am convinced")
    assert a.speaker == b.speaker == "Alan Cranston" and a.utterance == b.utterance  # split by "he told reporters."
    chem = reuters["reuters-45"]
    spokeswoman = find(chem, "This is totally by surprise")
    assert (spokeswoman.speaker, spokeswoman.role) == ("Debra Strohmaier", "ChemLawn spokeswoman")
    assert find(chem, "a statement was expected").speaker == "Debra Strohmaier"  # "She said …"
    dean = reuters["reuters-18"]
    assert find(dean, "It provides ann entry").speaker == "Kenneth Douglas"  # "Douglas told analysts"


def test_reuters_quote_over_three_paragraphs(reuters):
    pair = reuters["reuters-308"]
    q = find(pair, "In the worst case")
    text = words(pair, q)
    assert "Another alternative" in text and text.endswith("only with the attendance of LDP MPs")
    assert q.speaker == "Rei Shiratori"


@pytest.mark.parametrize("text", [
    "", "No quotes here at all.", '"', '"""""', "“unclosed quote that never ends, he said",
    'He said "', '"A," said. "B"', "x " * 5000 + '"' * 3000,
])
def test_odd_input_does_not_fail(text):
    quotes = extract_quotes(Article(id="a", title="t", text=text))
    assert all(0 <= q.start < q.end <= len(text) for q in quotes)


def test_hostile_input_stays_fast():
    text = ('"a" b, said ' * 2000) + ("“x ” " * 2000)
    start = time.perf_counter()
    extract_quotes(Article(id="a", title="t", text=text))
    assert time.perf_counter() - start < 10  # linear: no regex backtracking blow-up


def test_write_and_read_round_trip(tmp_path, sample):
    article, quotes = sample
    path = tmp_path / "quotes.jsonl"
    write_quotes(path, quotes)
    assert read_quotes(path, {article.id: article}) == {article.id: quotes}
    line = json.loads(path.read_text().splitlines()[0])
    path.write_text(json.dumps(line | {"end": len(article.text) + 5}) + "\n")
    with pytest.raises(ValueError, match="outside"):
        read_quotes(path, {article.id: article})
