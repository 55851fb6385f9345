"""Selection: the reader's spans from several passages → candidate answers with calibrated scores.

The reader scores spans inside each window; which passage to believe is decided here, from all of
them at once:

- **Votes.** Spans whose answers normalize to the same text are one candidate: its evidence adds
  up (summed probability under the reader's softmax over all windows, and the number of articles).
- **Features** of a candidate (`FEATURES`): the reader's span logit, its margin over the window's
  "no answer" logit, its log-probability under the softmax over all windows read (multi-passage
  BERT's global normalization), the votes, the retrieval scores of its best-retrieved passage
  (dense cosine, BM25, fused rank: BERTserini interpolates such scores with the reader's), how
  closely the question's words surround it there, how much of it the question already says,
  whether its article lies in the question's time window or is among the newest, the answer's
  length, and two question-level signals (the best cosine of any passage read; a time window no
  passage falls in).
- **Selection score** s = w · features picks the answer. The **calibrated score** P = sigmoid(c ·
  (s, its lead over the runner-up, and the question-level signals) + c0) is the estimated
  probability that the answer is right (exact match with a gold answer, SQuAD-normalized):
  Platt scaling over those few features. "Found" is P ≥ Settings.found_threshold.

w and c live in `calibration.json` beside the reader's weights, fitted on the development sets in
benchmarks/dev by `scripts/fit_calibration.py`; refit them whenever the reader changes (its logits
change). A calibration fitted for another reader is used with a warning.
"""

from __future__ import annotations

import bisect
import calendar
import hashlib
import json
import logging
import math
import re
import string
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

from .conversation import QUESTION_WORDS, STOPWORDS, content_stems, stem, words
from .errors import QAError
from .read import ReaderOutput, unbalanced_marks
from .records import Passage, Span, TimeWindow
from .retrieve import day_ordinal
from .timeframe import MONTHS

log = logging.getLogger("qa.selection")

CALIBRATION_FILE = "calibration.json"
MAX_SPANS = 40  # best spans considered (of 10 per window): later ones never win
MAX_LEAD = 5.0  # a candidate's lead over the runner-up counts up to this (an only candidate has it)
RECENCY_DAYS = 7.0  # with a recency preference, a candidate a week older than the newest passage scores 1/e

FEATURES = (
    "logit",  # start + end logit of the candidate's best span
    "margin",  # that logit minus its window's "no answer" logit
    "log_prob",  # log P(best span) under the softmax over all windows read
    "log_votes",  # log Σ P(span) over the candidate's spans (same answer, other places)
    "articles",  # distinct articles with the answer, minus one
    "cosine",  # dense cosine of the question and the answer's best-retrieved passage (of those with a span)
    "bm25",  # BM25 of that passage / the best BM25 of the passages read
    "rank",  # 1 / (1 + fused retrieval rank of that passage)
    "in_window",  # an article of the candidate is in the question's time window
    "recency",  # exp(-days older than the newest passage read / RECENCY_DAYS), with a recency preference
    "length",  # log(1 + words in the answer)
    "near",  # the question's words close to the answer in its passage (see near_question_words)
    "echo",  # share of the answer's words that the question already says ("Rhine" for "What river is larger than the Rhine?")
    "max_cosine",  # best dense cosine of any passage read (question level: is the index about this at all?)
    "window_miss",  # the question names a time window and no passage read is in it (question level)
    "type_match",  # +1 / -1: the answer is / is not the kind the question asks for; 0: unknown (answer_type_match,
    #                per_share_match, money_role_match)
)
# What the calibrated score is computed from: the selection score, its lead over the best other
# candidate (capped at MAX_LEAD), and candidate features (FEATURES).
CALIBRATION_FEATURES = ("score", "lead", *FEATURES)


@dataclass
class Candidate:
    """One answer text and every span that gives it, best first."""

    key: str  # normalized answer text
    spans: list[Span]
    features: dict[str, float] = field(default_factory=dict)
    score: float = 0.0  # selection score w · features
    lead: float = 0.0  # score minus the best other candidate's score, at most MAX_LEAD
    probability: float = 0.0  # calibrated: P(right)

    @property
    def text(self) -> str:
        return self.spans[0].text

    @property
    def best(self) -> Span:
        return self.spans[0]


@dataclass(frozen=True)
class Calibration:
    weights: dict[str, float]  # selection: score = Σ weights[f] × feature f
    calibrator: dict[str, float]  # P = sigmoid(bias + Σ calibrator[f] × f), f in CALIBRATION_FEATURES
    bias: float = 0.0
    reader: str = ""  # fingerprint of the reader weights it was fitted for
    meta: dict[str, Any] = field(default_factory=dict)  # how and on what it was fitted

    @classmethod
    def uncalibrated(cls) -> Calibration:
        """The reader's own ranking (span logit) and score (sigmoid of 0.1 × logit), for a reader
        without a calibration.json."""
        return cls({"logit": 1.0}, {"score": 0.1}, meta={"uncalibrated": True})

    @classmethod
    def for_reader(cls, reader_dir: Path, precision: str | None = None) -> Calibration:
        """The calibration stored beside the reader's weights: the one fitted for the inference
        `precision` the reader runs in (calibration_file: int8 logits differ from bfloat16 ones by
        up to ~2) where there is one, else calibration.json; the uncalibrated one (with a warning)
        when there is none. A file fitted for other weights is used, with a warning."""
        path = Path(reader_dir) / calibration_file(precision)
        if not path.is_file():
            path = Path(reader_dir) / CALIBRATION_FILE
        if not path.is_file():
            log.warning("no %s beside the reader in %s: scores are not calibrated; run "
                        "`python scripts/fit_calibration.py --reader %s`", CALIBRATION_FILE, reader_dir, reader_dir)
            return cls.uncalibrated()
        calibration = cls.load(path)
        fingerprint = reader_fingerprint(reader_dir)
        if calibration.reader and fingerprint and calibration.reader != fingerprint:
            log.warning("%s was fitted for other reader weights (%s, these are %s): scores may be off; refit "
                        "with `python scripts/fit_calibration.py`", path, calibration.reader, fingerprint)
        return calibration

    @classmethod
    def load(cls, path: Path) -> Calibration:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            weights = {str(k): float(v) for k, v in data["weights"].items()}
            calibrator = {str(k): float(v) for k, v in data["calibrator"].items()}
            bias = float(data["bias"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise QAError(f"{path}: not a readable calibration file ({exc})") from None
        for names, known in ((weights, FEATURES), (calibrator, CALIBRATION_FEATURES)):
            unknown = set(names) - set(known)
            if unknown:
                raise QAError(f"{path}: unknown features {', '.join(sorted(unknown))} (known: {', '.join(known)})")
        return cls(weights, calibrator, bias, str(data.get("reader", "")), dict(data.get("meta", {})))

    def save(self, path: Path) -> None:
        data = {"weights": self.weights, "calibrator": self.calibrator, "bias": self.bias, "reader": self.reader,
                "meta": self.meta}
        Path(path).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")

    def score(self, features: dict[str, float]) -> float:
        return sum(w * features.get(name, 0.0) for name, w in self.weights.items())

    def probability(self, candidate: Candidate) -> float:
        values = {"score": candidate.score, "lead": candidate.lead, **candidate.features}
        return _sigmoid(self.bias + sum(w * values.get(name, 0.0) for name, w in self.calibrator.items()))

    def rank(self, candidates: list[Candidate]) -> list[Candidate]:
        """Score and calibrate every candidate; best first."""
        for c in candidates:
            c.score = self.score(c.features)
        ranked = sorted(candidates, key=lambda c: -c.score)
        for i, c in enumerate(ranked):
            others = [o.score for j, o in enumerate(ranked[:2]) if j != i]
            c.lead = min(c.score - others[0], MAX_LEAD) if others else MAX_LEAD
            c.probability = self.probability(c)
        return ranked


def calibration_file(precision: str | None) -> str:
    """The calibration file for a concrete inference precision: calibration.json for bfloat16 (and
    float32, whose logits bfloat16's follow closely), calibration-<precision>.json for another."""
    return CALIBRATION_FILE if precision in (None, "bfloat16", "float32") else f"calibration-{precision}.json"


def reader_fingerprint(reader_dir: Path) -> str:
    """First 16 hex digits of the SHA-256 of the reader's weights file ("" if there is none)."""
    for name in ("model.safetensors", "pytorch_model.bin"):
        path = Path(reader_dir) / name
        if path.is_file():
            digest = hashlib.sha256()
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            return digest.hexdigest()[:16]
    return ""


def candidates(read: ReaderOutput, passages: Sequence[Passage], window: TimeWindow | None = None,
               max_spans: int = MAX_SPANS) -> list[Candidate]:
    """The reader's best spans grouped by normalized answer, with their features (unscored)."""
    groups: dict[str, Candidate] = {}
    asks_change = asks_for_change(read.question)
    wanted = expected_answer_type(read.question)
    per_share = wanted == "money" and _ASKS_PER_SHARE.search(read.question) is not None
    money_role = next(iter(money_roles(read.question)), None) if wanted == "money" else None
    asks_name = _ASKS_NAME.search(read.question) is not None
    for span in read.spans[:max_spans]:
        span = narrow_change(span, asks_change, wanted in _AMOUNT_TYPES)
        if wanted in ("money", "number"):
            span = narrow_to_money(span)
        if wanted in _AMOUNT_TYPES:
            span = narrow_to_measure(complete_unit(span))
        elif wanted is None and asks_name:
            span = narrow_to_name(span)
        key = normalize_answer(span.text)
        if not key:
            continue
        groups.setdefault(key, Candidate(key, [])).spans.append(span)
    if not groups:
        return []
    cosines = [p.dense_score for p in passages if p.dense_score is not None]
    floor = min(cosines) if cosines else 0.0  # a passage outside the dense list scores below all in it
    best_bm25 = max((p.bm25_score or 0.0 for p in passages), default=0.0) or 1.0
    newest = max((day_ordinal(p.article.published) for p in passages), default=-1)
    dated_window = window is not None and window.prefers_dates
    window_miss = float(dated_window and not any(window.contains(p.article.published) for p in passages))
    question_level = {"max_cosine": max(cosines) if cosines else 0.0, "window_miss": window_miss}
    question_stems = content_stems(read.question)
    question_words = question_stems - QUESTION_WORDS
    passage_words: dict[int, dict] = {}  # chunk id → where each question word occurs in it
    for c in groups.values():
        best = c.best
        supporting = list({id(s.passage): s.passage for s in c.spans}.values())
        log_probs = [read.log_prob(s) for s in c.spans]
        c.features = {
            "logit": best.logit,
            "margin": best.logit - best.null_logit,
            "log_prob": log_probs[0],
            "log_votes": _log_sum_exp(log_probs),
            "articles": float(len({s.passage.article.id for s in c.spans}) - 1),
            # Retrieval evidence of the answer: its best-retrieved passage, whichever span scored highest.
            "cosine": max(p.dense_score if p.dense_score is not None else floor for p in supporting),
            "bm25": max(p.bm25_score or 0.0 for p in supporting) / best_bm25,
            "rank": 1.0 / (1 + min(p.rank for p in supporting)),
            "in_window": float(dated_window and any(window.contains(s.passage.article.published) for s in c.spans)),
            "recency": _recency(c.spans, newest) if window is not None and window.recency else 0.0,
            "length": math.log1p(len(c.text.split())),
            "near": max(near_question_words(question_words, s, passage_words) for s in c.spans),
            "echo": answer_echo(question_stems, c.text),
            "type_match": money_role_match(money_role, c.best,
                                           per_share_match(per_share, c.text, answer_type_match(wanted, c.text))),
            **question_level,
        }
    return list(groups.values())


def near_question_words(question_words: set[str], span: Span, cache: dict[int, dict]) -> float:
    """How closely the question's content words surround the answer in its passage: for each one that
    occurs in the passage outside the answer, 1 / (content words from the answer to its nearest
    occurrence), averaged over them. An answer right beside "capital" for "What is the capital of
    Peru?", or beside "agreement … IBM" for "How much did Lenovo agree to pay IBM?", outscores one
    from the sentence next door: the reader's window holds both and cannot tell. A word matches by
    stem or as a prefix of at least 4 letters ("agree" in "agreement")."""
    if not question_words:
        return 0.0
    chunk = span.passage.chunk
    starts, ends, by_stem, stems = _passage_words(chunk.text)
    positions = cache.get(chunk.id)
    if positions is None:  # per passage and question: where each question word occurs, in order
        positions = cache[chunk.id] = {w: _occurrences(w, by_stem, stems) for w in question_words}
    first = bisect.bisect_right(ends, span.start)  # the answer's first content word (or the next one)
    last = bisect.bisect_left(starts, span.end) - 1  # its last (first - 1 when it has none)
    total, asked = 0.0, 0
    for where in positions.values():
        if not where:
            continue
        after = bisect.bisect_left(where, first)
        if after < len(where) and where[after] <= last:
            continue  # part of the answer ("Which bank…?" → "the World Bank"): says nothing about place
        distances = []
        if after > 0:
            distances.append(first - where[after - 1])
        if after < len(where):
            distances.append(where[after] - last)
        asked += 1
        total += 1.0 / min(distances)
    return total / asked if asked else 0.0


def answer_echo(question_stems: set[str], answer: str) -> float:
    """Share of the answer's content words that the question itself uses: an answer repeats the
    question's words rarely ("the Rhine" for "What river is larger than the Rhine?")."""
    answer_stems = content_stems(answer)
    return len(answer_stems & question_stems) / len(answer_stems) if answer_stems else 0.0


# Answer types. The reader often takes another figure of the right article: "44.17 billion" for
# "By what percentage was output up?", "capital expenditure" for "What was the pre-tax profit?".
# The question's wording says which kind of answer it wants (the answer-type classes of factoid QA),
# and the answer's own text whether it is one. Both spellings of news copy count: "pct", "mln dlrs"
# (wire style) as well as "%", "$1.75bn".
_NUMBER_WORDS = ("one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|"
                 "sixty|seventy|eighty|ninety|hundred|thousand|million|billion|trillion|mln|bln|bn|dozen|half")
_HAS_NUMBER = re.compile(rf"\d|\b(?:{_NUMBER_WORDS})\b", re.I)
_HAS_PERCENT = re.compile(r"%|\b(?:pct|per ?cent|percent(?:age)?)\b", re.I)
# Currency words ("cents" apart: "per cent" is no money) and units of measure other than money.
_CURRENCY_WORDS = ("dlrs?|dollars?|cts|stg|sterling|pounds?|pence|yen|marks|francs|lire|lira|ecus?|euros?|yuan|rupees?|"
                   "pesos?|guilders|crowns|kronor|rand|riyals?|roubles?|rubles?|won")
_MEASURE_UNITS = "tonnes?|tons?|barrels?|bpd|shares?|ounces?|bushels?|points?|head"
_HAS_MONEY = re.compile(rf"[$£€¥]|\b(?:(?<!per )cents?|{_CURRENCY_WORDS})\b", re.I)
_DATE_WORDS = (*MONTHS, "sept", *(day.lower() for day in calendar.day_name), "today", "yesterday", "tomorrow", "tonight",
               "weekend", "week", "month", "year", "decade", "quarter", "spring", "summer", "autumn", "fall", "winter",
               "morning", "afternoon", "evening", "night", "ago", "soon", "later")
_HAS_DATE = re.compile(rf"\b(?:{'|'.join(_DATE_WORDS)})\b|\b(?:1[89]|20)\d\d\b", re.I)
_ASKS_DATE = re.compile(r"^\W*(?:until |since |by )?when\b|\b(?:what|which) (?:date|day|year|month)\b", re.I)
_ASKS_PERCENT = re.compile(r"\b(?:percentage|per ?cent|pct)\b|\bwhat (?:share|proportion|fraction) of\b", re.I)
# A percentage the question gives is not what it asks for: "Which company owns 70 pct of Imperial Oil?",
# "How much will City Resources get for a 50 pct interest?".
_GIVEN_PERCENT = re.compile(r"\d[\d.,/-]*\s*(?:%|pct\b|per ?cent\b|percent\b)", re.I)
_ASKS_COUNT = re.compile(r"\bhow many\b", re.I)
_AMOUNT_NOUNS = ("level|amount|total|number|figures?|volume|output|production|demand|supply|surplus|shortage|deficit|"
                 "reserves|count")
# "How many …", "What was the output …", "What money market surplus …"; after "what was/is", also a
# rate, value, size, price or cost ("What is the rate?" but not "What rate cut did …"); "What did output
# average / the index reach …"; "What is the hog slaughter estimated at?".
_ASKS_AMOUNT = re.compile(rf"\bhow (?:much|many|big|large|high|low|far|long|old)\b|^\W*what\b.*\b(?:{_AMOUNT_NOUNS})\b|"
                          rf"\bwhat (?:was|is|were|are|will)\b.*\b(?:{_AMOUNT_NOUNS}|rate|value|size|price|cost)\b|"
                          r"\bwhat (?:did|does|do|will)\b.*\b(?:reach(?:ed)?|average[sd]?|total(?:l?ed)?)\b|"
                          r"\b(?:estimated|guesstimated|forecast|projected|put|seen|valued|pegged)\s+at\W*$", re.I)
_STARTS_WHAT = re.compile(r"^\W*what\b", re.I)
# An amount in another unit is not money: "36.15 mln shares" for "How much will the rights issue raise?"
# (a percentage is one too: answer_type_match tests _HAS_PERCENT as well).
_HAS_OTHER_UNIT = re.compile(rf"\b(?:{_MEASURE_UNITS}|kilos?|rigs|acres|hectares|units|vehicles|cars|employees|jobs|"
                             r"workers)\b", re.I)
_MONEY_WORDS = re.compile(r"\b(?:prices?|priced|costs?|pa(?:y|ys|id|ying)|owe[sd]?|worth|fined?|spen[dt]|salary|fees?|"
                          r"revenues?|profits?|loss(?:es)?|earn(?:s|ed|ings)?|income|sales|turnover|dividends?|valued?)\b", re.I)
# "How much did exports drop?" may want tonnes or a percentage: a change is only asked to be a number.
_CHANGE_WORDS = re.compile(r"\b(?:rise|rose|risen|fall|fell|fallen|drop(?:ped)?|increased?|decreased?|grow|grew|grown|"
                           r"declined?|up|down|gain(?:ed)?|climb(?:ed)?|jump(?:ed)?|slip(?:ped)?|soar(?:ed)?|surged?|"
                           r"slump(?:ed)?|plunged?|tumbled?|shr[ai]nk)\b", re.I)


# A change in news copy carries two figures: "fell 555 mln dlrs to 32.42 billion dlrs", "raised
# its estimate to 7.50 dlrs a share from five dlrs", and the reader often takes both as one answer.
# "By how much did it fall?" asks for the change, "What was the total?" for the new level. A span
# "A to B" is narrowed only right after a verb of change, so a range ("earnings of 35 to 45 cts")
# stays whole. Chosen on the development questions (benchmarks/dev/reuters_fit.jsonl).
_CHANGE_VERBS = (
    r"\b(?:rose|rise[sn]?|fell|fall(?:s|en)?|increased?|increases|decreased?|decreases|gained?|gains|lost|"
    r"loses?|dropped|drops?|declined?|declines|climbed|climbs?|jumped|jumps?|slipped|slips?|eased|eases?|"
    r"grew|grows?|expanded|expands?|shrank|contracted|up|down|raised?|raises|cut|lowered|lifted|added|adds?|"
    r"rising|falling|increasing|decreasing|gaining|losing|dropping|declining|climbing|jumping|slipping|easing|"
    r"growing|expanding|shrinking|raising|cutting|lowering|lifting|adding)")
_CHANGE_VERB_BEFORE = re.compile(_CHANGE_VERBS + r"\s+(?:by\s+)?$", re.I)
# A span that opens with the verb ("up 16 to 180", "fell 555 mln dlrs"): the reader took it too.
_OPENS_WITH_CHANGE = re.compile(rf"^{_CHANGE_VERBS}\s+(?:by\s+)?(?=[$£€¥]?\d|(?:{_NUMBER_WORDS})\b)", re.I)
_CHANGE_TO = re.compile(r"\s+to\s+(?:a\s+(?:total|record|level)\s+(?:of\s+)?)?", re.I)  # "... to a total of 801"
_LEVEL_FROM = re.compile(r"\s+from\s+", re.I)  # "to 7.50 dlrs a share from five dlrs": the new level, then the old
_ARRIVED_BEFORE = re.compile(r"\b(?:to|at)\s+$|" + _CHANGE_VERB_BEFORE.pattern, re.I)
_ASKS_CHANGE = re.compile(
    r"\bby (?:how much|what (?:percentage|percent|pct|amount|margin))\b|"
    r"\bhow (?:much|many) (?:higher|lower|more|less|fewer)\b|"
    r"\bhow (?:much|many)\b.*\b(?:rise|rose|risen|fall|fell|fallen|drop|dropped|increase|increased|decrease|"
    r"decreased|grow|grew|grown|decline|declined|gain|gained|climb|climbed|jump|jumped|lose|lost|add|added|cut|"
    r"shrink|shrank)\b", re.I)


def asks_for_change(question: str) -> bool:
    """Whether the question asks by how much something changed rather than where it ended up."""
    return bool(question) and _ASKS_CHANGE.search(question) is not None


def narrow_change(span: Span, asks_change: bool, amount: bool = False) -> Span:
    """The part of a two-figure change span ("555 mln dlrs to 32.42 billion dlrs") that the question
    asks for: the change when `asks_change`, else the new level; a span opening with a figure also
    loses what the figure is compared with ("213 mln dlrs, or 1.38 dlrs a share" -> "213 mln dlrs").
    For a question asking for an amount (`amount`), a span opening with the verb loses it too ("up 16
    to 180" -> "180"). Any other span as it is (also when the part would leave a bracket or quote
    unpartnered)."""
    verb = _OPENS_WITH_CHANGE.match(span.text) if amount or asks_change else None
    skip = verb.end() if verb else 0  # the figures start after the verb; what precedes them includes it
    text = span.text[skip:]
    before = span.passage.chunk.text[max(0, span.start + skip - 40):span.start + skip]
    part = (0, len(text))  # (start, end) in `text`
    to = _CHANGE_TO.search(text)
    if (to is not None and _CHANGE_VERB_BEFORE.search(before) and _HAS_NUMBER.search(text[:to.start()])
            and re.search(r"\d", text[to.end():])):
        part = (0, to.start()) if asks_change else (to.end(), to.end() + _old_level_cut(text[to.end():]))
    elif _ARRIVED_BEFORE.search(before):  # "raised it to 7.50 dlrs a share from five dlrs"
        cut = _old_level_cut(text)
        if cut < len(text) and re.search(r"\d", text[:cut]):
            part = (0, cut)
    part = (part[0], part[0] + _comparison_cut(text[part[0]:part[1]]))
    if (part == (0, len(text)) and not skip) or unbalanced_marks(text[part[0]:part[1]]):
        return span
    return replace(span, start=span.start + skip + part[0], end=span.start + skip + part[1])


# A figure followed by what it is compared with: "213 mln dlrs, or 1.38 dlrs a share", "about 120,000 to
# 125,000 head versus 130,000 week ago", "9.8 pct from year-ago levels", "632,000 tonnes, increasing to
# 640,000". Only a span that opens with its figure is cut, so "Smith, the chairman" stays whole.
_FIGURE_QUALIFIERS = "about|around|some|nearly|almost|over|under|more than|less than|a record|an estimated|up to"
_SCALES = "mln|million|billion|bln|bn"
_SCALE_WORD = rf"(?:{_SCALES}|trillion)\b"
_OPENS_WITH_FIGURE = re.compile(rf"^(?:(?:{_FIGURE_QUALIFIERS}|a total of|[$£€¥]|[A-Z]{{1,3}}\$)\s*)?"
                                rf"(?:\d[\d,.]*+(?:-\d[\d/]*+)?+|(?:{_NUMBER_WORDS})\b)(?!-[A-Za-z])", re.I)
_COMPARISON = re.compile(r",\s+|\s+(?:versus|vs\.?|against|compared\s+(?:with|to)|from)\s+", re.I)


def _comparison_cut(text: str) -> int:
    """Where a comparison clause after the opening figure of `text` starts; its length when none."""
    if not _OPENS_WITH_FIGURE.search(text):
        return len(text)
    for m in _COMPARISON.finditer(text):
        if m.start() > 0:
            return m.start()
    return len(text)


# A figure and its unit, then what it is of or when: "1,900 tonnes of tin in calendar 1987", "68.72
# points in the week ended March 5", "around two pct last year". For a question asking for an amount
# the figure and unit answer it; "per day" and "a share" stay. "99.00 pct for an effective yield" stays
# whole: after "for" comes as often the purpose as the thing measured (chosen on reuters_fit.jsonl).
_AMOUNT_TYPES = frozenset({"money", "number", "count", "percent"})
_MEASURE = re.compile(rf"{_OPENS_WITH_FIGURE.pattern}(?:\s+(?:{_SCALES}))?\s*"
                      r"(?!(?:of|in|on|for|to|and|or|from|at|a|an|the)\b)[^\W\d]\S*"
                      r"(?:\s+(?:a|per)\s+(?:\d[\d,.]*\s+)?[^\W\d]+)?", re.I)
_AFTER_MEASURE = re.compile(r"\s+(?:of|in|during|last|this|next|since)\b", re.I)


def narrow_to_measure(span: Span) -> Span:
    """A span opening with a figure and its unit ("1,900 tonnes of tin in calendar 1987") narrowed to
    them when what follows says what it is of or when; any other span as it is."""
    m = _MEASURE.match(span.text)
    if m is None or m.end() == len(span.text) or not _AFTER_MEASURE.match(span.text, m.end()):
        return span
    return replace(span, end=span.start + m.end())


# The reader often stops at the figure: "600" of "fell 600 mln\ndlrs", "336.5 billion" of "336.5 billion
# escudos". For a question asking for an amount, the scale and unit written right after the figure
# belong to the answer.
# (Escudos, pesetas, schillings, drachmas and dinars are units here but not yet money to answer_type_match.)
_UNITS = (rf"{_CURRENCY_WORDS}|cents?|escudos|pesetas|schillings|drachmas|dinars?|pct|per ?cent|percent|"
          rf"{_MEASURE_UNITS}")
_ENDS_WITH_FIGURE = re.compile(rf"(?:\d|\b{_SCALE_WORD})$", re.I)
_GAP = r"[ \t]*\n?[ \t]*"  # a space, or a line break of wrapped wire copy
_UNIT_AFTER = re.compile(rf"{_GAP}(?:(?:{_SCALE_WORD}{_GAP})?(?:(?:{_UNITS})\b|%)|{_SCALE_WORD})", re.I)


def complete_unit(span: Span) -> Span:
    """A span ending with its figure ("600", "336.5 billion") widened over the scale and unit written
    right after it in the passage ("600 mln dlrs", "336.5 billion escudos", "1.2 shares"); any other
    span as it is."""
    if not _ENDS_WITH_FIGURE.search(span.text):
        return span
    m = _UNIT_AFTER.match(span.passage.chunk.text, span.end)
    if m is None:
        return span
    return replace(span, end=m.end())


def _old_level_cut(text: str) -> int:
    """Where "from <old figure>" starts in `text`; its length when there is none."""
    for m in _LEVEL_FROM.finditer(text):
        if _HAS_NUMBER.search(text[m.end():m.end() + 20]):
            return m.start()
    return len(text)


# One amount of money with its unit: "160 mln dlrs", "$1.75bn", "HK$327m", "203.40 dlrs a tonne".
_MONEY_FIGURE = re.compile(
    rf"(?:[$£€¥]|\b[A-Z]{{1,3}}\$)?\s?(?:\d[\d,.]*\d|\d|\b(?:{_NUMBER_WORDS})\b)"
    rf"(?:[-\s]?(?:{_SCALES}|trillion|m)\b)?"
    r"(?:[-\s]?(?:dlrs?|dollars?|cts|cents|stg|sterling|pounds|yen|marks|francs|guilders|ecus)\b)?"
    r"(?:\s+(?:a|per)\s+(?:share|tonne|ton|barrel|ounce))?", re.I)
_RANGE_BEFORE = re.compile(rf"(?:\d|\b(?:{_NUMBER_WORDS}))\s*(?:{_SCALES})?\s*(?:to|-|and|or)\s*$", re.I)
_QUALIFIER_BEFORE = re.compile(rf"\b(?:{_FIGURE_QUALIFIERS}|roughly|approximately)\s+$", re.I)


def narrow_to_money(span: Span) -> Span:
    """Where the question asks for an amount of money and the span holds exactly one, with other words
    around it ("Pepsico Inc <PEP> for 160 mln dlrs", "25,000 tonnes U.S. soybeans today at 203.40
    dlrs"), the amount; any other span as it is."""
    amounts = [m for m in _MONEY_FIGURE.finditer(span.text) if _HAS_MONEY.search(m.group())]
    if len(amounts) != 1:
        return span
    start, end = amounts[0].span()
    start += len(span.text[start:end]) - len(span.text[start:end].lstrip())
    if _RANGE_BEFORE.search(span.text[:start]):  # "35 to 45 cts a share" stays a range
        return span
    if qualifier := _QUALIFIER_BEFORE.search(span.text[:start]):  # "about 50 mln dlrs" keeps its "about"
        start = qualifier.start()
    if (start, end) == (0, len(span.text)):  # (an amount holds no bracket or quote to leave unpartnered)
        return span
    return replace(span, start=span.start + start, end=span.start + end)


# "What price per share …?" is not answered by a total ("4.1 mln shares", "8.2 mln dlrs").
_ASKS_PER_SHARE = re.compile(r"\b(?:per|a|each)[- ]share\b", re.I)
_SCALED = re.compile(rf"\b{_SCALE_WORD}|\d(?:m|bn)\b", re.I)


def per_share_match(per_share: bool, answer: str, type_match: float) -> float:
    """The answer-type match, -1 for a total where the question asks for an amount per share."""
    return -1.0 if per_share and _SCALED.search(answer) else type_match


# What an amount of money is: a company's profit, its sales, a price paid, its assets. "How much did
# Lenovo agree to pay?" is not answered by "its profit was HK$327m", nor "What were Tonka's net
# earnings?" by "revenues of 125.4 mln dlrs". The word for it stands near the amount, in its sentence.
_MONEY_ROLES = (
    ("profit", re.compile(r"\b(?:net|profits?|earn(?:s|ed|ings?)?|income|loss(?:es)?|lost)\b", re.I)),
    ("sales", re.compile(r"\b(?:revenues?|revs|sales|turnover)\b", re.I)),
    ("price", re.compile(r"\b(?:pa(?:y|ys|id|ying)|prices?|priced|costs?|bid|offer(?:s|ed|ing)?|acqui(?:re|red|sition)|"
                         r"purchased?|buy(?:s|ing)?|bought|s[eo]ll?|sold|worth|valued?)\b", re.I)),
    ("assets", re.compile(r"\bassets\b", re.I)),
)
_ROLE_REACH = 50  # characters around the amount where its role word counts


def money_roles(text: str) -> list[str]:
    """The money roles `text` names, in the order they first occur."""
    found = sorted((m.start(), role) for role, pattern in _MONEY_ROLES if (m := pattern.search(text)))
    return [role for _, role in found]


def money_role_match(role: str | None, span: Span, type_match: float) -> float:
    """The answer-type match, -1 when the question asks for one kind of amount (`role`) and the words
    right around the answer, in its sentence, name only another kind."""
    if role is None or type_match < 0:
        return type_match
    text = span.passage.chunk.text
    before = re.split(r"[.;]\s", text[max(0, span.start - _ROLE_REACH):span.start])[-1]
    after = re.split(r"[.;]\s", text[span.end:span.end + _ROLE_REACH])[0]
    near = set(money_roles(before)) | set(money_roles(after))
    return -1.0 if near and role not in near else type_match


# A name answer with more than the name: wire copy puts a listed company's ticker after it ("Krupp
# Stahl AG <KRPG.F>") and an unlisted one in angle brackets ("<Fujitsu Ltd> of U.S.-based ..."), and
# an apposition follows a name ("Agricola Finanziaria SpA, a member of the Ferruzzi Group").
_TRAILING_TICKER = re.compile(r"\s+<[A-Z][A-Z0-9.]*>$")
_BRACKETED_NAME = re.compile(r"^<([A-Z][^<>\n]*)>(?=\s)")
_APPOSITION = re.compile(r"^(?:[A-Z][\w.&'-]*\s+)*[A-Z][\w.&'-]*(?=,\s+(?:a|an|the|which|who)\s)")
_ASKS_NAME = re.compile(r"^\W*(?:who|whom|which)\b", re.I)


def narrow_to_name(span: Span) -> Span:
    """A name answer without the ticker, the words after a bracketed company name, or the apposition
    after a name; any other span as it is."""
    text = span.text
    if ticker := _TRAILING_TICKER.search(text):
        start, end = 0, ticker.start()
    elif bracketed := _BRACKETED_NAME.search(text):
        start, end = bracketed.span(1)
    elif apposition := _APPOSITION.search(text):
        start, end = apposition.span()
    else:
        return span
    if not 0 < end - start < len(text):
        return span
    return replace(span, start=span.start + start, end=span.start + end)


def expected_answer_type(question: str) -> str | None:
    """The kind of answer the question's wording asks for: "date", "percent", "money", "count" (how
    many things: never an amount of money), "number", or None when the wording does not say
    (who/which/what-is questions)."""
    if _ASKS_DATE.search(question):
        return "date"
    question = _GIVEN_PERCENT.sub(" ", question)
    if _ASKS_PERCENT.search(question):
        return "percent"
    money = _MONEY_WORDS.search(question) is not None
    if _ASKS_AMOUNT.search(question) or (money and _STARTS_WHAT.search(question)):
        if money and not _CHANGE_WORDS.search(question):
            return "money"
        # "How many shares …" is answered "82.6 mln", not "219.2 mln dlrs" (unless it asks how many dollars).
        return "count" if _ASKS_COUNT.search(question) and not _HAS_MONEY.search(question) else "number"
    return None


# A date's numbers are no amount: "fiscal 1986/87" or "January 31, 1987" does not answer "How much …?".
_MONTH_WORDS = "|".join(MONTHS)
_DATE_NUMBERS = re.compile(rf"\b(?:{_MONTH_WORDS})\.?\s+\d{{1,2}}\b|\b\d{{1,2}}\s+(?:{_MONTH_WORDS})\b|"
                           r"\b(?:19|20)\d\d(?:/\d\d)?\b(?!\s*(?:[$%]|[a-z]))", re.I)


def answer_type_match(wanted: str | None, answer: str) -> float:
    """+1 when `answer` is of the `wanted` kind, -1 when it plainly is not (money: no number, or a
    number in another unit; an amount: only a date's numbers), 0 when either is unknown (an amount
    without a unit could still be money)."""
    if wanted is None:
        return 0.0
    if wanted != "date":
        answer = _DATE_NUMBERS.sub(" ", answer)
    number = _HAS_NUMBER.search(answer) is not None
    if wanted == "date":
        return 1.0 if number or _HAS_DATE.search(answer) else -1.0
    if wanted == "percent":
        return 1.0 if _HAS_PERCENT.search(answer) else -1.0
    if wanted == "money":
        if _HAS_MONEY.search(answer):
            return 1.0
        other_unit = _HAS_PERCENT.search(answer) or _HAS_OTHER_UNIT.search(answer)
        return -1.0 if not number or other_unit else 0.0
    if wanted == "count":
        return 1.0 if number and not _HAS_MONEY.search(answer) else -1.0
    return 1.0 if number else -1.0


@lru_cache(maxsize=256)
def _passage_words(text: str) -> tuple[list[int], list[int], dict[str, list[int]], list[str]]:
    """A passage's content words: their start and end offsets, the positions of each stem, and the
    stems sorted (for prefix lookups)."""
    starts: list[int] = []
    ends: list[int] = []
    by_stem: dict[str, list[int]] = {}
    for m in words(text):
        if m.group().lower() not in STOPWORDS:
            by_stem.setdefault(stem(m.group()), []).append(len(starts))
            starts.append(m.start())
            ends.append(m.end())
    return starts, ends, by_stem, sorted(by_stem)


def _occurrences(word: str, by_stem: dict[str, list[int]], stems: list[str]) -> list[int]:
    """Positions of the passage's words that match `word`: the same stem, or one a prefix of the other
    with at least 4 letters ("agree" and "agreement")."""
    found = list(by_stem.get(word, ()))
    if len(word) >= 4:
        for other in stems[bisect.bisect_right(stems, word):]:  # longer stems that start with word
            if not other.startswith(word):
                break
            found += by_stem[other]
        for k in range(4, len(word)):  # shorter stems that word starts with
            found += by_stem.get(word[:k], ())
    return sorted(found)


def _recency(spans: list[Span], newest: int) -> float:
    newest_span = max(day_ordinal(s.passage.article.published) for s in spans)
    if newest_span < 0 or newest < 0:
        return 0.0
    return math.exp(-(newest - newest_span) / RECENCY_DAYS)


def _log_sum_exp(values: list[float]) -> float:
    top = max(values)
    if top == float("-inf"):
        return top
    return top + math.log(sum(math.exp(v - top) for v in values))


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


_PUNCT = set(string.punctuation) | {"‘", "’", "“", "”", "–", "—", "…"}


def normalize_answer(text: str) -> str:
    """SQuAD normalization: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())
