from datetime import date, datetime

import pytest

from qa.records import TimeWindow
from qa.timeframe import describe, parse_as_of, time_window

FRIDAY = date(1987, 3, 20)  # a Friday; its week is Monday 16 to Sunday 22 March


@pytest.mark.parametrize(
    "question,start,end,reason",
    [
        ("What did the Fed do today?", FRIDAY, FRIDAY, "today"),
        ("How much will the Bank of Japan sell tomorrow?", FRIDAY, FRIDAY, "tomorrow"),
        ("What was today's hog slaughter?", FRIDAY, FRIDAY, "today"),
        ("What rebate was granted at yesterday's tender?", date(1987, 3, 19), FRIDAY, "yesterday"),
        ("How much did M-1 rise this week?", date(1987, 3, 16), FRIDAY, "this week"),
        ("What was the rebate at this week's EC sugar tender?", date(1987, 3, 16), FRIDAY, "this week"),
        ("How much did M-1 fall last week?", date(1987, 3, 9), date(1987, 3, 15), "last week"),
        ("What happened over the past week?", date(1987, 3, 14), FRIDAY, "the past week"),
        ("What happened in the past 3 days?", date(1987, 3, 18), FRIDAY, "past 3 days"),
        ("Which banks cut rates this month?", date(1987, 3, 1), FRIDAY, "this month"),
        ("What was the trade deficit last month?", date(1987, 2, 1), date(1987, 2, 28), "last month"),
        ("How much did output grow this year?", date(1987, 1, 1), FRIDAY, "this year"),
        ("What was the profit last year?", date(1986, 1, 1), date(1986, 12, 31), "last year"),
        ("What did OPEC agree in February?", date(1987, 2, 1), date(1987, 2, 28), "February 1987"),
        ("What did OPEC agree in March?", date(1987, 3, 1), date(1987, 3, 31), "March 1987"),
        ("What did OPEC agree in June?", date(1986, 6, 1), date(1986, 6, 30), "June 1986"),  # no June yet in 1987
        ("What did OPEC agree last March?", date(1986, 3, 1), date(1986, 3, 31), "March 1986"),
        ("What did OPEC agree in December 1985?", date(1985, 12, 1), date(1985, 12, 31), "December 1985"),
        ("Who won the election in 2019?", date(2019, 1, 1), date(2019, 12, 31), "2019"),
    ],
)
def test_relative_expressions_become_windows(question, start, end, reason):
    window = time_window(question, FRIDAY)
    assert (window.start, window.end, window.reason) == (start, end, reason)
    assert window.until == FRIDAY and not window.recency


@pytest.mark.parametrize("question", ["What is the latest M-1 figure?", "Who recently bought Cyclops?",
                                      "What is the most recent rebate?", "What share does Dixons hold now?"])
def test_recency_words_prefer_newer_articles_without_a_window(question):
    window = time_window(question, FRIDAY)
    assert window.recency and window.start is None and window.end is None


def test_no_time_expression_and_no_as_of_means_no_window():
    assert time_window("Who chairs the Senate Banking Committee?") is None


def test_as_of_alone_leaves_out_later_articles_only():
    window = time_window("Who chairs the Senate Banking Committee?", "1987-03-20")
    assert window == TimeWindow(None, None, "as of 20 March 1987", until=FRIDAY)
    assert window.to_dict() == {"from": None, "to": "1987-03-20", "reason": "as of 20 March 1987"}


def test_default_as_of_is_today_and_leaves_nothing_out():
    window = time_window("What happened this week?", today=date(2024, 3, 20))
    assert (window.start, window.end, window.until) == (date(2024, 3, 18), date(2024, 3, 20), None)


def test_words_that_only_look_like_time_are_ignored():
    # "May" the verb, "march" the verb, "current account", a year that is an amount
    for question in ("Which banks may cut rates?", "Did workers march on the ministry?",
                     "What is the current account deficit?", "How many shares, 1987 or more, were sold?"):
        assert time_window(question) is None, question


def test_window_membership_and_undated_articles():
    window = time_window("this week", FRIDAY)
    assert window.contains("1987-03-16") and window.contains("1987-03-20T23:59:00")
    assert not window.contains("1987-03-15") and not window.contains(None)
    assert window.allows(None) and window.allows("1987-03-20") and not window.allows("1987-03-21")


@pytest.mark.parametrize("value,expected", [("1987-03-20", FRIDAY), ("1987-03-20T10:00:00+02:00", FRIDAY),
                                            (datetime(1987, 3, 20, 9), FRIDAY), (FRIDAY, FRIDAY), (None, None)])
def test_parse_as_of(value, expected):
    assert parse_as_of(value) == expected


@pytest.mark.parametrize("value", ["yesterday", "20/03/1987", "1987-13-01"])
def test_bad_as_of(value):
    with pytest.raises(ValueError, match="as-of must be an ISO date"):
        parse_as_of(value)


def test_describe_for_people():
    assert describe(time_window("this week", date(2024, 3, 22))) == "articles from 18–22 March 2024 (this week)"
    assert describe(time_window("last month", FRIDAY)) == "articles from 1–28 February 1987 (last month)"
    assert describe(time_window("latest?", FRIDAY)) == "newest articles first (latest), as of 20 March 1987"
    assert describe(time_window("Who?", FRIDAY)) == "articles up to 20 March 1987"
