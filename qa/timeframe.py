"""Time in questions: "this week", "yesterday", "in March", "latest" → a TimeWindow, relative to an as-of day.

News questions carry time. "How much did M-1 rise this week?" has a different answer every week,
and "the latest figure" means the newest article. `time_window(question, as_of)` reads the first
time expression of the question and returns the dates it asks about:

    today, tonight, this morning/afternoon/evening      [as-of day]
    tomorrow                                            [as-of day] (what is due tomorrow is reported today)
    yesterday, last night                               [day before, as-of day] (reports come a day later)
    this week / last week / past week                   [Monday, as-of] / the previous Monday-Sunday / the last 7 days
    this month / last month / past month                calendar month so far / the previous month / 30 days
    this year / last year / past year                   calendar year so far / the previous year / 365 days
    in March, in March 2019, last March                 that month (without a year: the latest March by the as-of day)
    in 2019, during 2019                                that year
    latest, most recent, newest, recently, lately, now  no window; prefer newer articles

A window is a preference, not a filter: retrieval ranks articles published inside it higher and
answer selection weighs it (qa.selection), but an article outside it can still answer ("What was
Japan's output in February?" is usually answered by an article published in March). Articles
without a date are never preferred and never excluded. When the asker gives an as-of day,
articles published after it are left out (`until`): the index is read as it stood that day.

Pure functions, no models.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, datetime, timedelta

from .records import TimeWindow

MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
MONTHS |= {name.lower(): i for i, name in enumerate(calendar.month_abbr) if name and name != "May"}
_MONTH = r"(?P<month>" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
_YEAR = r"(?P<year>1[89]\d\d|2[01]\d\d)"

# Order matters: the first pattern that matches anywhere in the question wins.
_PATTERNS: list[tuple[str, re.Pattern]] = [
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in [
        ("today", r"\b(?:today|today's|tonight|this (?:morning|afternoon|evening))\b"),
        ("tomorrow", r"\b(?:tomorrow|tomorrow's)\b"),
        ("yesterday", r"\b(?:yesterday|yesterday's|last night)\b"),
        ("past_days", r"\b(?:past|last|previous) (?P<n>\d{1,3}|two|three|four|five|six|seven|ten|fourteen|thirty) days\b"),
        ("this_week", r"\bthis week(?:'s)?\b"),
        ("last_week", r"\b(?:last|previous) week(?:'s)?\b"),
        ("past_week", r"\b(?:past|recent) week\b"),
        ("this_month", r"\bthis month(?:'s)?\b"),
        ("last_month", r"\b(?:last|previous) month(?:'s)?\b"),
        ("past_month", r"\bpast month\b"),
        ("this_year", r"\b(?:this year(?:'s)?|so far this year|year to date)\b"),
        ("last_year", r"\b(?:last|previous) year(?:'s)?\b"),
        ("past_year", r"\b(?:past (?:year|12 months|twelve months))\b"),
        ("month_year", rf"\b(?:in|during|of|since|from|for)?\s*{_MONTH},? {_YEAR}\b"),
        ("last_month_name", rf"\blast {_MONTH}\b"),
        ("month", rf"\b(?:in|during|since|this|for) {_MONTH}(?! \d)\b"),
        ("year", rf"\b(?:in|during|since|for|of) (?:the year )?{_YEAR}\b(?!s|/)"),
        ("recency", r"\b(?:latest|most recent(?:ly)?|newest|recent(?:ly)?|lately|now|nowadays|at present|so far)\b"),
    ]
]
_SMALL_NUMBERS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "ten": 10, "fourteen": 14, "thirty": 30}


def parse_as_of(value: str | date | datetime | None) -> date | None:
    """An as-of day from an ISO date or datetime (string, date or datetime); None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date()
    except ValueError:
        raise ValueError(f"as-of must be an ISO date (YYYY-MM-DD) or date and time, got {text[:40]!r}") from None


def time_window(question: str, as_of: str | date | datetime | None = None, today: date | None = None) -> TimeWindow | None:
    """The dates `question` asks about, relative to `as_of` (default: `today`, itself default the
    local date). None when the question has no time expression and no as-of day was given."""
    given = parse_as_of(as_of)
    day = given or today or date.today()
    until = given  # only an explicit as-of day leaves out later articles
    for name, pattern in _PATTERNS:
        match = pattern.search(question)
        if match:
            window = _resolve(name, match, day, until)
            if window is not None:
                return window
    if given is not None:
        return TimeWindow(None, None, f"as of {describe_day(given)}", until=given)
    return None


def _resolve(name: str, match: re.Match, day: date, until: date | None) -> TimeWindow | None:
    words = " ".join(match.group(0).split()).lower()
    monday = day - timedelta(days=day.weekday())
    if name == "today":
        return TimeWindow(day, day, "today", until=until)
    if name == "tomorrow":  # what is due tomorrow is reported today
        return TimeWindow(day, day, "tomorrow", until=until)
    if name == "yesterday":
        return TimeWindow(day - timedelta(days=1), day, "yesterday", until=until)
    if name == "past_days":
        n = match.group("n")
        days = int(n) if n.isdigit() else _SMALL_NUMBERS[n]
        return TimeWindow(day - timedelta(days=max(days - 1, 0)), day, words, until=until)
    if name == "this_week":
        return TimeWindow(monday, day, "this week", until=until)
    if name == "last_week":
        return TimeWindow(monday - timedelta(days=7), monday - timedelta(days=1), "last week", until=until)
    if name == "past_week":
        return TimeWindow(day - timedelta(days=6), day, "the past week", until=until)
    if name == "this_month":
        return TimeWindow(day.replace(day=1), day, "this month", until=until)
    if name == "last_month":
        end = day.replace(day=1) - timedelta(days=1)
        return TimeWindow(end.replace(day=1), end, "last month", until=until)
    if name == "past_month":
        return TimeWindow(day - timedelta(days=30), day, "the past month", until=until)
    if name == "this_year":
        return TimeWindow(day.replace(month=1, day=1), day, "this year", until=until)
    if name == "last_year":
        return TimeWindow(date(day.year - 1, 1, 1), date(day.year - 1, 12, 31), "last year", until=until)
    if name == "past_year":
        return TimeWindow(day - timedelta(days=365), day, "the past year", until=until)
    if name in ("month_year", "last_month_name", "month"):
        month = MONTHS[match.group("month").lower()]
        if name == "month_year":
            year = int(match.group("year"))
        else:  # the latest such month on or before the as-of day ("last March": the one before that)
            year = day.year if month <= day.month else day.year - 1
            if name == "last_month_name" and month == day.month:
                year -= 1
        first = date(year, month, 1)
        last = date(year, month, calendar.monthrange(year, month)[1])
        return TimeWindow(first, last, f"{calendar.month_name[month]} {year}", until=until)
    if name == "year":
        year = int(match.group("year"))
        return TimeWindow(date(year, 1, 1), date(year, 12, 31), str(year), until=until)
    if name == "recency":
        return TimeWindow(None, None, words, recency=True, until=until)
    return None


def describe_day(day: date) -> str:
    return f"{day.day} {calendar.month_name[day.month]} {day.year}"


def describe(window: TimeWindow) -> str:
    """One line for people: "articles from 16–22 March 2024", "newest articles first, as of 20 March 1987"."""
    start, end = window.start, window.end
    if start and end:
        if start == end:
            span = f"articles from {describe_day(start)}"
        elif (start.year, start.month) == (end.year, end.month):
            span = f"articles from {start.day}–{end.day} {calendar.month_name[end.month]} {end.year}"
        elif start.year == end.year:
            span = f"articles from {start.day} {calendar.month_name[start.month]} – {describe_day(end)}"
        else:
            span = f"articles from {describe_day(start)} – {describe_day(end)}"
    elif start:
        span = f"articles from {describe_day(start)} on"
    elif end:
        span = f"articles up to {describe_day(end)}"
    elif window.recency:
        span = "newest articles first"
    elif window.until:
        return f"articles up to {describe_day(window.until)}"
    else:
        span = "all articles"
    if window.reason and not window.reason.startswith("as of"):
        span += f" ({window.reason})"
    if window.until and window.until != end and not (end and end < window.until):
        span += f", as of {describe_day(window.until)}"
    return span
