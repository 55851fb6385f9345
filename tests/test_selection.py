import json
import logging
import math
from dataclasses import replace

import pytest

from qa.config import DEFAULT_READER_DIR
from qa.errors import QAError
from qa.ingest import make_article
from qa.read import ReaderOutput
from qa.records import Chunk, Passage, Span
from qa.selection import (CALIBRATION_FILE, FEATURES, Calibration, answer_type_match, asks_for_change,
                          calibration_file, candidates, complete_unit, expected_answer_type, narrow_change,
                          narrow_to_measure, narrow_to_money, narrow_to_name, near_question_words, reader_fingerprint,
                          answer_echo)
from qa.timeframe import time_window


def passage(text, article_id, rank, published=None, dense=0.5, bm25=5.0, chunk_id=None):
    article = make_article("Title", text, explicit_id=article_id, published=published)
    chunk = Chunk(rank if chunk_id is None else chunk_id, article_id, text, 0, len(text))
    return Passage(chunk, article, score=1 / (61 + rank), rank=rank, dense_score=dense, bm25_score=bm25)


def span(p, answer, logit, null=0.0):
    start = p.chunk.text.index(answer)
    return Span(p, start, start + len(answer), 0.5, logit=logit, null_logit=null)


P1 = passage("The rebate was 44.819 Ecus at the tender.", "week-12", 0, "1987-03-18", dense=0.7, bm25=9.0)
P2 = passage("A rebate of 43.147 Ecus was set.", "week-10", 1, "1987-03-04", dense=0.6, bm25=6.0)
P3 = passage("Traders said 44.819 Ecus was expected.", "week-12b", 2, "1987-03-19", dense=0.5, bm25=3.0)


def read_output():
    spans = [span(P2, "43.147 Ecus", 9.0, 1.0), span(P1, "44.819 Ecus", 8.0, 2.0), span(P3, "44.819 Ecus", 7.0, 1.0)]
    return ReaderOutput(spans, {p.chunk.id: 0.3 for p in (P1, P2, P3)}, start_log_z=6.0, end_log_z=5.0)


def test_spans_with_the_same_answer_are_one_candidate_whose_votes_add_up():
    found = {c.key: c for c in candidates(read_output(), [P1, P2, P3])}
    assert set(found) == {"43147 ecus", "44819 ecus"}
    votes = found["44819 ecus"]
    assert [s.passage.article.id for s in votes.spans] == ["week-12", "week-12b"]
    f = votes.features
    assert f["log_prob"] == pytest.approx(8.0 - 11.0)
    assert f["log_votes"] == pytest.approx(math.log(math.exp(-3.0) + math.exp(-4.0)))
    assert f["articles"] == 1.0 and found["43147 ecus"].features["articles"] == 0.0
    assert f["margin"] == 6.0 and f["cosine"] == 0.7 and f["bm25"] == 1.0 and f["rank"] == 1.0
    assert f["max_cosine"] == 0.7 and set(f) == set(FEATURES)


def test_question_words_near_the_answer():
    text = ("Lenovo's profit for the three months was HK$327m. If the $1.75bn agreement Lenovo signed with IBM "
            "goes through, the PC maker grows. The pilot runs in the Huaral Valley, north of the capital Lima.")
    p = passage(text, "a", 0)
    read = ReaderOutput([span(p, "$1.75bn", 5.0), span(p, "HK$327m", 6.0)], {p.chunk.id: 0.3},
                        question="How much did Lenovo agree to pay IBM for its PC division?")
    near = {c.key: c.features["near"] for c in candidates(read, [p])}
    assert near["175bn"] > 2 * near["hk327m"] > 0  # "agreement Lenovo … IBM" beside it; "Lenovo's" far off
    words = {"capital", "peru"}
    # "capital" is the content word beside "Lima", two from "Huaral Valley"; "Peru" is not in the passage.
    assert near_question_words(words, span(p, "Lima", 1.0), {}) == pytest.approx(1.0)
    assert near_question_words(words, span(p, "Huaral Valley", 1.0), {}) == pytest.approx(0.5)
    # A question word inside the answer does not count; no question words, no feature.
    assert near_question_words({"lenovo"}, span(p, "Lenovo signed", 1.0), {}) == 0.0
    assert near_question_words(set(), span(p, "Lima", 1.0), {}) == 0.0


def test_an_answer_that_only_repeats_the_question_loses_to_one_that_does_not():
    question = "What river is longer than the Rhine?"
    p = passage("Longer than the Rhine, the river Danube flows to the Black Sea.", "rivers", 0)
    read = ReaderOutput([span(p, "Rhine", 6.5), span(p, "Danube", 6.0)], {p.chunk.id: 0.3}, start_log_z=5.0,
                        end_log_z=4.0, question=question)
    found = candidates(read, [p])
    assert {c.key: c.features["echo"] for c in found} == {"rhine": 1.0, "danube": 0.0}
    silent = [replace(c, features={**c.features, "echo": 0.0}) for c in found]
    for precision in ("bfloat16", "int8"):  # each shipped calibration holds an echo against the answer
        calibration = Calibration.for_reader(DEFAULT_READER_DIR, precision)
        assert [c.key for c in calibration.rank(silent)] == ["rhine", "danube"]  # better read, nearer "longer"
        assert [c.key for c in calibration.rank(found)] == ["danube", "rhine"]
    assert answer_echo({"river", "longer", "rhine"}, "the Rhine delta") == 0.5
    assert answer_echo({"rhine"}, "the") == 0.0  # no content words: nothing repeated


@pytest.mark.parametrize("question, wanted", [
    ("By what percentage was U.S. electric output up from a year earlier?", "percent"),
    ("What share of Cyclops does Dixons hold now?", "percent"),
    ("How much did Lenovo agree to pay IBM for its PC division?", "money"),
    ("What were Conseco's revenues in 1986?", "money"),
    ("What price per share did Dixons Group offer for Cyclops?", "money"),
    ("How much did Suralco's alumina exports drop in February?", "number"),  # tonnes or a percentage
    ("By how much did Conseco's quarterly profits jump?", "number"),  # a percentage or an amount of money
    ("How many rotary rigs were active in the U.S.?", "count"),
    ("How many CPC shares were outstanding at the end of 1986?", "count"),
    ("How many dollars did the coin fetch?", "number"),  # a count of money is an amount like any other
    ("Which company owns 70 pct of Imperial Oil?", None),  # the percentage is given, not asked
    ("How much will City Resources get for a 50 pct interest?", "number"),
    ("What percentage of the vote did she win?", "percent"),
    ("By how many pct did exports rise?", "percent"),
    ("What was Saudi Arabia's crude oil output last month?", "number"),
    ("What money market surplus is projected for tomorrow?", "number"),
    ("What did the new Saudi share index reach in the week ended March 5?", "number"),
    ("What did Saudi output average in the first eight days of March?", "number"),
    ("What is today's hog slaughter guesstimated at?", "number"),
    ("What did the index committee decide?", None),
    ("When did Brazil suspend interest payments?", "date"),
    ("Until when did Cyacq extend its tender offer?", "date"),
    ("In what year did the firm list its shares?", "date"),
    ("Who is the chairman of Hughes Tool?", None),
    ("What is the capital of Peru?", None),
    ("What did Sanders say about a second meeting?", None),
])
def test_the_question_wording_says_which_kind_of_answer_it_wants(question, wanted):
    assert expected_answer_type(question) == wanted


@pytest.mark.parametrize("wanted, answer, match", [
    ("percent", "3.2 pct", 1.0), ("percent", "12%", 1.0), ("percent", "44.17 billion", -1.0),
    ("money", "$1.75bn", 1.0), ("money", "HK$327m", 1.0), ("money", "54.9 mln stg", 1.0),
    ("money", "80 dlrs a share", 1.0), ("money", "capital expenditure", -1.0), ("money", "30 pct", -1.0),
    ("money", "36.15 mln shares", -1.0), ("money", "11,000 tonnes", -1.0),  # an amount, but not of money
    ("money", "3.5 per cent", -1.0), ("money", "a percentage point", -1.0), ("money", "12%", -1.0),
    ("money", "10 cents a share", 1.0), ("percent", "3.5 per cent", 1.0),
    ("money", "11.1 billion", 0.0),  # an amount without its unit may still be the money asked for
    ("count", "82.6 mln", 1.0), ("count", "391 working rigs", 1.0), ("count", "219.2 mln dlrs", -1.0),
    ("count", "three", 1.0), ("count", "the board", -1.0),
    ("number", "8.36 mln bpd", 1.0), ("number", "nine", 1.0), ("number", "natural gas liquids", -1.0),
    ("date", "February 20", 1.0), ("date", "in 1986", 1.0), ("date", "two weeks ago", 1.0), ("date", "next year", 1.0),
    ("date", "in spring", 1.0), ("date", "the board", -1.0),
    # a date's numbers are no amount; a figure with a unit stays one
    ("number", "fiscal 1986/87", -1.0), ("money", "January 31, 1987", -1.0), ("count", "March 20", -1.0),
    ("number", "25.1 mln dlrs in 1986", 1.0), ("number", "1987 tonnes", 1.0), ("date", "March 20", 1.0),
    (None, "William Mulholland", 0.0), (None, "12%", 0.0),
])
def test_an_answer_of_the_wanted_kind_matches(wanted, answer, match):
    assert answer_type_match(wanted, answer) == match


def test_type_match_is_a_candidate_feature():
    text = "Output rose 3.2 pct to 44.17 billion kilowatt-hours from a year earlier."
    p = passage(text, "eei", 0)
    read = ReaderOutput([span(p, "44.17 billion", 6.0), span(p, "3.2 pct", 5.0)], {p.chunk.id: 0.3},
                        question="By what percentage was electric output up from a year earlier?")
    found = {c.key: c.features["type_match"] for c in candidates(read, [p])}
    assert found == {"4417 billion": -1.0, "32 pct": 1.0}


@pytest.mark.parametrize("question, asks", [
    ("How much did Canada's M-1 money supply fall this week?", True),
    ("By how much did business loans at the major New York banks fall?", True),
    ("By what percentage did the index rise?", True),
    ("How many more jobs were added in March?", True),
    ("What was the total of business loans at major U.S. banks?", False),
    ("How many rotary rigs were active in the U.S.?", False),
    ("To what did McAdoo raise his earnings estimate?", False),
    ("", False),
])
def test_a_question_asks_for_a_change_or_a_level(question, asks):
    assert asks_for_change(question) is asks


@pytest.mark.parametrize("text, answer, asks_change, narrowed", [
    # a change and the new level: the part asked for
    ("M-1 fell 555 mln dlrs to 32.42 billion dlrs, the bank said.", "555 mln dlrs to 32.42 billion dlrs", True,
     "555 mln dlrs"),
    ("M-1 fell 555 mln dlrs to 32.42 billion dlrs, the bank said.", "555 mln dlrs to 32.42 billion dlrs", False,
     "32.42 billion dlrs"),
    ("The count rose 38 to a total of 801, Hughes said.", "38 to a total of 801", False, "801"),
    ("The index rose 10 pct to 1,234 from 1,122 last week.", "10 pct to 1,234 from 1,122", False, "1,234"),
    ("The index rose 10 pct to 1,234 from 1,122 last week.", "10 pct to 1,234 from 1,122", True, "10 pct"),
    # the new level, then the old one
    ("He raised his estimate to 7.50 dlrs a share from five dlrs.", "7.50 dlrs a share from five dlrs", False,
     "7.50 dlrs a share"),
    # not a change: a range, a route, a single figure
    ("He expects earnings of 35 to 45 cts a share.", "35 to 45 cts a share", False, "35 to 45 cts a share"),
    ("He expects earnings of 35 to 45 cts a share.", "35 to 45 cts a share", True, "35 to 45 cts a share"),
    ("Flights rose from London to Paris.", "London to Paris", False, "London to Paris"),
    ("Exports fell 12 pct in March.", "12 pct", True, "12 pct"),
    ("The number of rigs dropping by five to 761, Hughes said.", "five to 761", False, "761"),
    # a figure, then what it is compared with: the figure
    ("May earned 213 mln dlrs, or 1.38 dlrs a share, in the quarter.", "213 mln dlrs, or 1.38 dlrs a share", False,
     "213 mln dlrs"),
    ("Slaughter is put at about 120,000 to 125,000 head versus 130,000 week ago.",
     "about 120,000 to 125,000 head versus 130,000 week ago", False, "about 120,000 to 125,000 head"),
    ("Output declined 9.8 pct from year-ago levels.", "9.8 pct from year-ago levels", True, "9.8 pct"),
    ("Output was 8.36 mln bpd, down 8.1 pct.", "8.36 mln bpd, down 8.1 pct", False, "8.36 mln bpd"),
    # ... but only a span that opens with its figure, not a hyphenated word or a name
    ("It offered a 28-day securities repurchase agreement, offering banks funds.",
     "28-day securities repurchase agreement, offering banks funds", False,
     "28-day securities repurchase agreement, offering banks funds"),
    ("The bid came from David Smith, the chairman.", "David Smith, the chairman", False, "David Smith, the chairman"),
    ("Exports were 15,000 tonnes in March.", "15,000 tonnes", False, "15,000 tonnes"),
    # a part that would leave a bracket without its partner: the span stays whole
    ("Output rose 5 pct (or 3 mln to 10 mln tonnes).", "5 pct (or 3 mln to 10 mln tonnes)", True,
     "5 pct (or 3 mln to 10 mln tonnes)"),
    ("Sales were 12 mln dlrs (a record, up 5 pct).", "12 mln dlrs (a record, up 5 pct)", False,
     "12 mln dlrs (a record, up 5 pct)"),
])
def test_a_two_figure_change_is_narrowed_to_the_figure_asked_for(text, answer, asks_change, narrowed):
    p = passage(text, "a", 0)
    result = narrow_change(span(p, answer, 5.0), asks_change)
    assert result.text == narrowed
    assert p.chunk.text[result.start:result.end] == narrowed  # offsets still point into the passage (highlighting)
    assert result.logit == 5.0


@pytest.mark.parametrize("answer, asks_change, amount, narrowed", [
    ("up 16 to 180", False, True, "180"),
    ("up 16 to 180", True, True, "16"),
    ("fell 600 mln dlrs", True, True, "600 mln dlrs"),
    # not an amount question: the reader's span as it is
    ("up 16 to 180", False, False, "up 16 to 180"),
    ("cut 500 jobs", False, False, "cut 500 jobs"),
])
def test_a_change_span_that_opens_with_its_verb(answer, asks_change, amount, narrowed):
    assert_narrowed(lambda s: narrow_change(s, asks_change, amount), f"The figure was {answer} this week.", answer,
                    narrowed)


@pytest.mark.parametrize("text, answer, completed", [
    ("M-1 fell 600 mln\ndlrs to 738.7 billion.", "600", "600 mln\ndlrs"),
    ("The deficit narrowed to 336.5 billion escudos from 354.8 billion.", "336.5 billion", "336.5 billion escudos"),
    ("Output rose 5% in March.", "5", "5%"),
    ("Each holder gets 1.2 shares of Fleet.", "1.2", "1.2 shares"),
    ("Loans rose 2.5 pct.", "2.5 pct", "2.5 pct"),  # the unit is there already
    ("The plant employs 600 people.", "600", "600"),  # no unit of amount after it
    ("The Bank of Japan said so.", "Bank of Japan", "Bank of Japan"),  # no figure
])
def test_a_figure_gets_the_scale_and_unit_written_after_it(text, answer, completed):
    assert_narrowed(complete_unit, text, answer, completed)


def test_candidates_complete_the_unit_only_for_amount_questions():
    text = "Portugal's trade deficit narrowed to 336.5 billion escudos from 354.8 billion."
    assert candidate_keys(text, "336.5 billion", "What was Portugal's trade deficit in 1986?") == [
        "3365 billion escudos"]
    assert candidate_keys(text, "336.5 billion", "What did Portugal report?") == ["3365 billion"]


@pytest.mark.parametrize("answer, narrowed", [
    ("Krupp Stahl AG <KRPG.F>", "Krupp Stahl AG"),
    ("<Fujitsu Ltd> of U.S.-based Fairchild", "Fujitsu Ltd"),
    ("Agricola Finanziaria SpA, a member of the Ferruzzi Group", "Agricola Finanziaria SpA"),
    # left alone: a name alone, a bracketed name alone, no name before the comma
    ("Fleet Financial Group", "Fleet Financial Group"),
    ("<Fujitsu Ltd>", "<Fujitsu Ltd>"),
    ("the company, a unit of Fiat", "the company, a unit of Fiat"),
])
def test_a_name_answer_without_ticker_or_apposition(answer, narrowed):
    assert_narrowed(narrow_to_name, f"Reuters said {answer} on Tuesday.", answer, narrowed)


def test_candidates_narrow_to_the_name_only_for_who_and_which_questions():
    text, answer = "It was sold to Agricola Finanziaria SpA, a member of the Ferruzzi Group.", \
        "Agricola Finanziaria SpA, a member of the Ferruzzi Group"
    assert candidate_keys(text, answer, "Who is buying the business?") == ["agricola finanziaria spa"]
    assert candidate_keys(text, answer, "What happened to the business?") == [
        "agricola finanziaria spa member of ferruzzi group"]


@pytest.mark.parametrize("answer, narrowed", [
    # the one amount of money in a longer span
    ("Pepsico Inc <PEP> for 160 mln dlrs", "160 mln dlrs"),
    ("25,000 tonnes U.S. soybeans today at 203.40 dlrs", "203.40 dlrs"),
    ("15 pct increase in earnings per share to 7.42 dlrs", "7.42 dlrs"),
    ("the Chinese firm agreed to pay $1.75bn in cash", "$1.75bn"),
    # ... with its qualifier
    ("annual sales of more than two billion dlrs", "more than two billion dlrs"),
    # left alone: an amount alone, a range, two amounts, no amount
    ("160 mln dlrs", "160 mln dlrs"),
    ("35 to 45 cts a share", "35 to 45 cts a share"),
    ("10 mln dlrs, or 19 dlrs a share", "10 mln dlrs, or 19 dlrs a share"),
    ("Allegheny Beverage Corp", "Allegheny Beverage Corp"),
    # an amount never holds a bracket or quote, so the cut leaves none unpartnered
    ("(for 160 mln dlrs)", "160 mln dlrs"),
])
def test_a_money_question_gets_the_amount_from_a_longer_span(answer, narrowed):
    assert_narrowed(narrow_to_money, f"Reuters reported that {answer} on Tuesday.", answer, narrowed)


def assert_narrowed(narrow, text, answer, narrowed):
    """`narrow` makes the span of `answer` in `text` the span of `narrowed`, offsets included."""
    p = passage(text, "n", 0)
    result = narrow(span(p, answer, 4.0))
    assert result.text == narrowed
    assert p.chunk.text[result.start:result.end] == narrowed


def candidate_keys(text, answer, question):
    """The candidates' keys when the reader's only span in `text` is `answer`."""
    p = passage(text, "k", 0)
    read = ReaderOutput([span(p, answer, 6.0)], {p.chunk.id: 0.3}, question=question)
    return [c.key for c in candidates(read, [p])]


def test_candidates_narrow_to_the_amount_only_for_amount_questions():
    text, answer = "Pepsico Inc <PEP> for 160 mln dlrs, the company said.", "Pepsico Inc <PEP> for 160 mln dlrs"
    assert candidate_keys(text, answer, "What did Pepsico pay for the unit?") == ["160 mln dlrs"]
    assert candidate_keys(text, answer, "Who bought the unit?") == ["pepsico inc pep for 160 mln dlrs"]
    text, answer = "Rolls Royce seeks a 250 mln stg multiple option facility.", "250 mln stg multiple option facility"
    assert candidate_keys(text, answer, "How large a credit facility is Rolls Royce seeking?") == ["250 mln stg"]


def test_candidates_answer_the_figure_the_question_asks_for():
    text = "Business loans fell 222 mln dlrs to 64.05 billion dlrs in the week, the Fed said."
    answer = "222 mln dlrs to 64.05 billion dlrs"
    assert candidate_keys(text, answer, "By how much did business loans fall this week?") == ["222 mln dlrs"]
    assert candidate_keys(text, answer, "What was the total of business loans this week?") == ["6405 billion dlrs"]


@pytest.mark.parametrize("answer, narrowed", [
    ("1,900 tonnes of tin in calendar 1987", "1,900 tonnes"),
    ("around two pct last year", "around two pct"),
    ("2.6 mln barrels per day in March", "2.6 mln barrels per day"),
    ("56 pct of the fully diluted shares", "56 pct"),
    # left alone: nothing after the unit that says of what or when, a range, no unit, no opening figure
    ("6.5 billion marks", "6.5 billion marks"),
    ("100 mln to 150 mln dlrs", "100 mln to 150 mln dlrs"),
    ("99.00 pct for an effective yield", "99.00 pct for an effective yield"),
    ("one of the largest banks", "one of the largest banks"),
    ("the Bank of Japan", "the Bank of Japan"),
])
def test_an_amount_question_gets_the_figure_and_its_unit(answer, narrowed):
    assert_narrowed(narrow_to_measure, f"Officials said {answer}, traders noted.", answer, narrowed)


def test_candidates_narrow_to_the_measure_only_for_amount_questions():
    text, answer = "Zaire expects to produce 1,900 tonnes of tin in calendar 1987.", "1,900 tonnes of tin in calendar 1987"
    assert candidate_keys(text, answer, "How much tin will Zaire produce in 1987?") == ["1900 tonnes"]
    assert candidate_keys(text, answer, "What does Zaire expect?") == ["1900 tonnes of tin in calendar 1987"]


def type_matches(text, question, answers):
    p = passage(text, "r", 0)
    read = ReaderOutput([span(p, a, 5.0) for a in answers], {p.chunk.id: 0.3}, question=question)
    return {c.text: c.features["type_match"] for c in candidates(read, [p])}


def test_a_per_share_question_is_not_answered_by_a_total():
    text = "Dixons offered 90.25 dlrs a share for the 4.1 mln shares, or 370 mln dlrs in all."
    assert type_matches(text, "What price per share did Dixons offer?", ["90.25 dlrs", "370 mln dlrs"]) == {
        "90.25 dlrs": 1.0, "370 mln dlrs": -1.0}
    assert type_matches(text, "How much did Dixons offer?", ["90.25 dlrs", "370 mln dlrs"]) == {
        "90.25 dlrs": 1.0, "370 mln dlrs": 1.0}


@pytest.mark.parametrize("question, profit, price", [
    ("How much did Lenovo agree to pay IBM for its PC division?", -1.0, 1.0),
    ("What was Lenovo's profit for the quarter?", 1.0, -1.0),
    ("How much does Lenovo have?", 1.0, 1.0),  # the question names no kind of amount
])
def test_a_money_question_is_not_answered_by_another_kind_of_amount(question, profit, price):
    text = ("Lenovo's profit for the three months was HK$327m. Separately, the firm will pay $1.75bn for "
            "IBM's PC unit.")
    assert type_matches(text, question, ["HK$327m", "$1.75bn"]) == {"HK$327m": profit, "$1.75bn": price}


def test_time_features():
    week = time_window("this week", "1987-03-20")  # 16-20 March
    found = {c.key: c.features for c in candidates(read_output(), [P1, P2, P3], week)}
    assert found["44819 ecus"]["in_window"] == 1.0 and found["43147 ecus"]["in_window"] == 0.0
    assert found["44819 ecus"]["window_miss"] == 0.0
    latest = {c.key: c.features for c in candidates(read_output(), [P1, P2, P3], time_window("latest", "1987-03-20"))}
    assert latest["44819 ecus"]["recency"] == pytest.approx(1.0)  # has the newest passage (19 March)
    assert latest["43147 ecus"]["recency"] == pytest.approx(math.exp(-15 / 7))
    january = {c.key: c.features for c in candidates(read_output(), [P1, P2, P3], time_window("in January", "1987-03-20"))}
    assert all(f["window_miss"] == 1.0 and f["in_window"] == 0.0 for f in january.values())


def test_calibration_ranks_and_calibrates():
    calibration = Calibration({"log_votes": 1.0, "in_window": 5.0}, {"score": 1.0, "lead": 0.5, "max_cosine": 2.0}, -3.0)
    week = time_window("this week", "1987-03-20")
    ranked = calibration.rank(candidates(read_output(), [P1, P2, P3], week))
    assert ranked[0].text == "44.819 Ecus"
    best, other = ranked
    assert best.lead == pytest.approx(best.score - other.score) and other.lead == pytest.approx(-best.lead)
    assert best.probability == pytest.approx(1 / (1 + math.exp(-(best.score + 0.5 * best.lead + 2.0 * 0.7 - 3.0))))
    assert best.probability > other.probability


def test_only_candidate_has_the_full_lead():
    one = ReaderOutput([span(P1, "44.819 Ecus", 8.0)], {P1.chunk.id: 0.3}, 6.0, 5.0)
    [only] = Calibration({"logit": 1.0}, {"lead": 1.0}).rank(candidates(one, [P1]))
    assert only.lead == 5.0 and only.probability == pytest.approx(1 / (1 + math.exp(-5.0)))


def test_calibration_file_round_trip(tmp_path):
    calibration = Calibration({"logit": 0.5, "margin": 0.25}, {"score": 1.5, "max_cosine": 3.0}, -2.0, "abc",
                              {"fitted": "today"})
    calibration.save(tmp_path / CALIBRATION_FILE)
    assert Calibration.load(tmp_path / CALIBRATION_FILE) == calibration


@pytest.mark.parametrize("content,message", [
    ("{", "not a readable calibration"),
    ('{"weights": {"logit": 1}}', "not a readable calibration"),
    ('{"weights": {"shoe_size": 1}, "calibrator": {}, "bias": 0}', "unknown features shoe_size"),
    ('{"weights": {}, "calibrator": {"colour": 1}, "bias": 0}', "unknown features colour"),
])
def test_bad_calibration_file(tmp_path, content, message):
    (tmp_path / CALIBRATION_FILE).write_text(content)
    with pytest.raises(QAError, match=message):
        Calibration.load(tmp_path / CALIBRATION_FILE)


def test_reader_without_calibration_ranks_by_its_logits(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="qa.selection"):
        calibration = Calibration.for_reader(tmp_path)
    assert calibration == Calibration.uncalibrated() and "fit_calibration.py" in caplog.text
    ranked = calibration.rank(candidates(read_output(), [P1, P2, P3]))
    assert ranked[0].text == "43.147 Ecus"  # the highest logit
    assert ranked[0].probability == pytest.approx(1 / (1 + math.exp(-0.9)))


@pytest.mark.parametrize("precision", ["bfloat16", "int8"])
def test_shipped_calibration_was_fitted_for_the_shipped_reader(precision):
    """A retrained reader needs a refit: `python scripts/fit_calibration.py` (docs/answers.md)."""
    path = DEFAULT_READER_DIR / calibration_file(precision)
    data = json.loads(path.read_text())
    assert data["reader"] == reader_fingerprint(DEFAULT_READER_DIR) and data["meta"]["precision"] == precision
    calibration = Calibration.load(path)
    # The chosen answer's probability rises with its selection score (directly and through its lead).
    assert calibration.calibrator.get("score", 0.0) + calibration.calibrator.get("lead", 0.0) > 0


def test_each_precision_gets_its_own_calibration_where_there_is_one(tmp_path):
    Calibration({"logit": 1.0}, {"score": 0.1}, 0.0).save(tmp_path / CALIBRATION_FILE)
    assert calibration_file("float32") == calibration_file("bfloat16") == CALIBRATION_FILE
    assert Calibration.for_reader(tmp_path, "int8").weights == {"logit": 1.0}  # none for int8: the default one
    Calibration({"logit": 2.0}, {"score": 0.1}, 0.0).save(tmp_path / calibration_file("int8"))
    assert Calibration.for_reader(tmp_path, "int8").weights == {"logit": 2.0}
    assert Calibration.for_reader(tmp_path, "bfloat16").weights == {"logit": 1.0}
    assert Calibration.for_reader(tmp_path).weights == {"logit": 1.0}


def test_calibration_for_other_weights_warns(tmp_path, caplog):
    (tmp_path / "model.safetensors").write_bytes(b"other weights")
    Calibration({"logit": 1.0}, {"score": 0.1}, 0.0, "0000000000000000").save(tmp_path / CALIBRATION_FILE)
    with caplog.at_level(logging.WARNING, logger="qa.selection"):
        Calibration.for_reader(tmp_path)
    assert "fitted for other reader weights" in caplog.text
