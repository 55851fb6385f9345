"""Quotes: Article → the quotations in it, each attributed to a resolved speaker (index time).

`extract_quotes(article) -> list[Quote]` finds, without any model:

- direct quotes in curly (“…”) and straight ("…") double quotation marks; single quotes inside
  them stay part of the quote. A quote that runs over several paragraphs (the closing mark left
  off every paragraph but the last) is one quote;
- its attribution, tried in this order: after the quote ("…," Sanders said / said Sanders /
  she told reporters / Trump tweeted), before it (Sanders said: "…" / X told a briefing, "…"),
  "according to X", a reporting verb earlier in the same sentence (X said the notes "…"), and
  last the speaker of the quote or reported speech just before it in the same or the previous
  paragraph (the second half of a split quote, a quote paragraph that continues the speaker's
  previous one);
- reported speech: "X said (that) …", "X told reporters (that) …", "…, X said.",
  "according to X, …" (outside direct quotes);
- the speaker: pronouns (he, she, they, it) and role nouns ("the minister", "the firm", "the
  spokeswoman") resolve to the most recent compatible speaker earlier in the article (gender
  from titles and role nouns; "the company" to the last organisation); a surname or titled
  name ("Ms Sanders") resolves to the full name the article gives ("Sarah Sanders").

Everything is regular expressions over the text and one pass of blingfire's sentence splitter
(qa.chunk): about a millisecond per article. `speaker_matches(name, quote)` tells whether a name
as a user writes it ("Sarah Huckabee Sanders", "Ms Sanders") names a quote's speaker.
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable

from .records import Article, Quote

EXTRACTOR_VERSION = 1  # stored in the index manifest; `qa index upgrade` re-extracts older quotes
MIN_QUOTE_WORDS = 3  # shorter quoted fragments ("nice letter") are titles or scare quotes

# ---- vocabulary ------------------------------------------------------------------------------

CUES = {  # reporting verb forms → lemma-ish cue kept in the record (the form as written is kept)
    w: w for w in """
    said says say saying told tells tell added adds stated states claimed claims warned warns argued argues
    explained explains insisted insists noted notes commented comments remarked remarks declared declares
    announced announces acknowledged acknowledges admitted admits asserted asserts conceded concedes
    contended contends predicted predicts suggested suggests wrote writes tweeted tweets replied replies
    responded responds answered answers asked asks quipped recalled recalls urged urges stressed stresses
    emphasised emphasized emphasises emphasizes reiterated reiterates repeated repeats maintained maintains
    cautioned cautions complained complains confirmed confirms denied denies estimated estimates
    observed observes pointed continued continues concluded concludes
    """.split()
}
# Cues strong enough to introduce reported speech without quotation marks.
REPORTING_CUES = frozenset(
    """said says told tells added adds stated states claimed claims warned warns argued argues explained
    explains insisted insists noted notes predicted predicts acknowledged acknowledges admitted admits
    asserted asserts conceded concedes contended contends stressed stresses maintained maintains
    cautioned cautions confirmed confirms estimated estimates reiterated reiterates
    say note warn argue predict estimate insist stress""".split()
)
# Words before a cue that make it no report: passive "is said to", infinitive, modal or negated.
NOT_REPORTING = frozenset("""is was are were be been being to would could should will can may might must
    not n't never did does do don't didn't doesn't""".split())
TITLES = {  # honorifics and titles that precede a name; value: gender implied
    "mr": "m", "mr.": "m", "mrs": "f", "mrs.": "f", "ms": "f", "ms.": "f", "miss": "f", "sir": "m", "lady": "f",
    "lord": "m", "dame": "f", "king": "m", "queen": "f", "prince": "m", "princess": "f", "dr": None, "dr.": None,
    "prof": None, "prof.": None, "professor": None, "sen.": None, "sens.": None, "senator": None, "rep.": None,
    "gov.": None, "gen.": None, "col.": None, "capt.": None, "lt.": None, "rev.": None, "father": "m",
    "sister": "f", "judge": None, "justice": None, "president": None, "chairman": "m", "chairwoman": "f",
    "chancellor": None, "governor": None, "secretary": None, "minister": None, "premier": None,
    "ambassador": None, "mayor": None, "commissioner": None, "director": None, "coach": None, "manager": None,
    "spokesman": "m", "spokeswoman": "f", "leader": None, "chief": None, "general": None, "deputy": None,
    "vice": None, "prime": None, "speaker": None, "representative": None, "congressman": "m",
    "congresswoman": "f", "pope": "m", "bishop": None, "archbishop": None, "officer": None, "executive": None,
    "treasurer": None, "attorney": None, "analyst": None, "economist": None, "strategist": None,
    "mp": None, "mep": None, "msp": None, "councillor": None, "cllr": None, "councilman": None,
    "councilwoman": "f", "alderman": None, "sheikh": "m", "emir": "m", "cardinal": "m", "rabbi": None,
}
HONORIFICS = frozenset("mr mr. mrs mrs. ms ms. miss dr dr. sir lady lord dame prof prof. rev. sheikh".split())
ROLE_NOUNS = {  # nouns that head an unnamed speaker phrase; value: speaker kind
    **{w: "person" for w in """
    spokesman spokeswoman spokesperson spokesmen official officials analyst analysts economist economists
    chairman chairwoman president minister secretary director executive executives manager managers leader
    leaders trader traders dealer dealers banker bankers source sources expert experts strategist strategists
    officer chief governor senator ambassador mayor commissioner chancellor premier adviser advisor advisers
    spokespeople lawyer lawyers attorney attorneys economist observer observers diplomat diplomats
    player players coach manager boss founder owner head aide aides member members witness witnesses
    author singer actor actress star director producer judge prosecutor prosecutors police officers
    congressman congresswoman lawmaker lawmakers legislator legislators negotiator negotiators
    arbitrageur arbitrageurs broker brokers investor investors researcher researchers scientist scientists
    confidant republican republicans democrat democrats conservative liberal spokespersons
    """.split()},
    **{w: "org" for w in """
    company firm bank group government ministry agency department commission union newspaper
    board committee council court report statement party club team corporation administration
    organisation organization association institute authority authorities regulator exchange
    """.split()},
}
PLURAL_ROLES = frozenset(w for w in ROLE_NOUNS if w.endswith("s") and w[:-1] in ROLE_NOUNS or w in {
    "spokesmen", "spokespeople", "police", "authorities", "sources"})
ORG_SUFFIXES = frozenset("""corp corp. inc inc. co co. ltd ltd. plc llc ag sa nv bv group bank
    holdings industries international partners association ministry department commission agency
    institute council committee union party board federation organisation organization""".split())
PRONOUNS = {"he": "m", "she": "f", "they": "plural", "it": "org"}
DETERMINERS = frozenset("a an the one another two three four several some many other its his her their our this that these those".split())
ADVERBS = frozenset("""also later earlier previously further then again once recently repeatedly flatly simply
    only still yesterday today tonight has had have was is were are would will had has did does do not
    separately privately publicly reportedly quickly finally""".split())
FUNCTION_WORDS = frozenset("""the a an and but or if in on at of for to by with from as that this these those
    however meanwhile when while after before since although though because so yet then there here it its
    he she they we i you his her their our my your what which who whom whose where why how no not all
    both each every some any many most more less also according last next first new""".split())
NAME_PARTICLES = frozenset("de van von bin bint al da di del der du la le ter ten dos das st st. ibn abu".split())


def _particle(t: "Tok") -> bool:
    """A lower-case part of a name: "de", "van", "al-Sabah"."""
    return t.low in NAME_PARTICLES or t.low.startswith(("al-", "el-", "bin-", "ibn-"))
MONTHS_DAYS = frozenset("""january february march april may june july august september october november
    december monday tuesday wednesday thursday friday saturday sunday""".split())
NOT_A_CLAUSE = frozenset("""in on at during after before for with from by to as when while about against
    of into over under through without within via than""".split())  # "said in a statement", "warned against"
OBJECT_WORDS = 8  # most words between a cue and the colon or comma before a quote ("told a White House briefing,")

TOKEN = re.compile(
    r"(?:Mrs|Mr|Ms|Dr|Sens?|Reps?|Gov|Gen|Col|Capt|Lt|Sgt|Jr|Sr|Prof|Rev|St|Co|Corp|Inc|Ltd|Bros|No)\."
    r"|(?:[A-Z]\.){1,3}(?![a-z])"
    r"|[^\W\d_](?:[\w'’&-]*\w)?"
    r"|\d+(?:[.,]\d+)*"
    r"|[^\w\s]"
)
PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n|\n[ \t]+(?=\S)")
LINE_BREAK = re.compile(r"\n")
SENTENCE_END = re.compile(r"[.!?](?=[\s\"”’)]|$)")
OPEN_MARKS, CLOSE_MARKS = "“„«", "”»"
TICKER = re.compile(r"\s*<[A-Z0-9.]{1,8}>")


# ---- tokens ----------------------------------------------------------------------------------


class Tok:
    """A token with its offsets (a plain slotted class: tokens are made by the hundred thousand)."""

    __slots__ = ("text", "start", "end", "low", "is_cap", "is_word")

    def __init__(self, text: str, start: int, end: int):
        self.text, self.start, self.end = text, start, end
        self.low = text.lower()
        self.is_cap = text[:1].isupper()
        self.is_word = text[:1].isalpha()


SENTENCE_BREAK = re.compile(r"(?P<end>[.!?]+[\"”’)]*)\s+(?=[\"“‘(]?[A-Z0-9])|\n[ \t]*\n\s*|\n[ \t]+(?=\S)")
ABBREVIATION = re.compile(
    r"(?:\b(?:Mr|Mrs|Ms|Dr|St|Sens?|Reps?|Gov|Gen|Col|Lt|Capt|Sgt|Prof|Rev|Jr|Sr|Co|Corp|Inc|Ltd|Bros|No|Vol|"
    r"Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept?|Oct|Nov|Dec)|(?<![\w.])[A-Z]|(?:[A-Z]\.)+[A-Z])\.$"
)


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence: a break after . ! ? (not after "Mr." or "U.S.") before a
    capital or digit, and at every paragraph break. Regular expressions only: this runs on every
    article at index time (blingfire's splitter, which qa.chunk uses, costs ~1 ms an article here)."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in SENTENCE_BREAK.finditer(text):
        end = m.end("end") if m.group("end") else m.start()
        if m.group("end") and m.group("end")[0] == "." and ABBREVIATION.search(text, max(0, m.start() - 6), m.start() + 1):
            continue
        if text[start:end].strip():
            spans.append((start, end))
        start = m.end()
    if text[start:].strip():
        spans.append((start, len(text.rstrip())))
    return spans


def tokens(text: str, start: int, end: int) -> list[Tok]:
    return [Tok(m.group(), *m.span()) for m in TOKEN.finditer(text, start, end)]


# ---- speakers ----------------------------------------------------------------------------------


@dataclass
class Entity:
    """One speaker of an article: a named person or organisation, or an unnamed role ("analysts")."""

    name: str  # canonical
    kind: str  # "person" | "org" | "role"
    gender: str | None = None  # "m" | "f" | None (unknown)
    roles: list[str] = field(default_factory=list)  # descriptors: "White House spokeswoman"
    aliases: set[str] = field(default_factory=set)
    plural: bool = False

    def role_words(self) -> set[str]:
        return {w.lower() for r in self.roles for w in r.split()}


@dataclass(frozen=True)
class Mention:
    """A speaker phrase as written at one attribution."""

    text: str
    start: int
    head: str  # "pronoun" | "name" | "role"
    name: str = ""  # the name words, titles stripped
    role: str = ""  # role words: "White House spokeswoman", "minister"
    gender: str | None = None
    org: bool = False
    plural: bool = False


def _strip_ticker(s: str) -> str:
    return TICKER.sub("", s).strip()


def _gender_of_words(words: Iterable[str]) -> str | None:
    for w in words:
        g = TITLES.get(w.lower())
        if g:
            return g
        low = w.lower()
        if low.endswith("woman") or low in {"she", "her", "actress", "mother", "daughter", "wife"}:
            return "f"
        if low.endswith(("man", "men")) and low not in {"german", "roman"} or low in {"he", "his", "father", "son", "husband"}:
            return "m"
    return None


def parse_mention(toks: list[Tok], text: str) -> Mention | None:
    """A speaker phrase (already cut out of its sentence): pronoun, [det] [modifiers] [role] [Name]."""
    toks = [t for t in toks if t.text not in {"<", ">"}]
    if not toks:
        return None
    raw = text[toks[0].start : toks[-1].end]
    if len(toks) == 1 and toks[0].low in PRONOUNS:
        return Mention(raw, toks[0].start, "pronoun", gender=PRONOUNS[toks[0].low] if toks[0].low in {"he", "she"} else None,
                       org=toks[0].low == "it", plural=toks[0].low == "they")
    words = [t for t in toks if t.is_word or t.text in {"&", "-"}]
    if not words or len(words) > 12:
        return None
    for i, w in enumerate(words[1:], 1):  # "an aide to Secretary Lyng", "a spokesman for the Department"
        if w.low in {"to", "for", "at", "with"} and words[i - 1].low in ROLE_NOUNS:
            role = " ".join(x.text for x in words[1 if words[0].low in DETERMINERS else 0 :])
            return Mention(raw, toks[0].start, "role", role=role, gender=_gender_of_words(x.text for x in words[:i]),
                           org=ROLE_NOUNS[words[i - 1].low] == "org", plural=words[i - 1].low in PLURAL_ROLES)
    i = 0
    while i < len(words) and words[i].low in DETERMINERS:
        i += 1
    words = words[i:]
    if not words:
        return None
    # The name: the trailing run of capitalised words that are not titles/role nouns.
    j = len(words)
    while j > 0 and (words[j - 1].is_cap or _particle(words[j - 1])) \
            and words[j - 1].low not in TITLES and words[j - 1].low not in ROLE_NOUNS:
        j -= 1
    name_words = words[j:]
    role_words = words[:j]
    owner = max((i for i, w in enumerate(name_words[:-1]) if w.low.endswith(("'s", "’s"))), default=-1)
    if owner >= 0:  # "Midland Montagu's Maude": the owner is an affiliation
        name_words = name_words[owner + 1 :]
    # "Analyst Rosemarie Morbelli of Ingalls": handled by the caller cutting at "of"; here a
    # capitalised run that contains an organisation suffix is an organisation.
    name = _strip_ticker(" ".join(w.text for w in name_words))
    if name_words and all(w.low in FUNCTION_WORDS or w.low in MONTHS_DAYS for w in name_words):
        name_words, name = [], ""
    if any(w.low == "and" for w in role_words):  # "Tom Smith and Jane Doe": keep the last name only
        role_words = []
    role = " ".join(w.text for w in role_words if w.low not in HONORIFICS)
    gender = _gender_of_words(w.text for w in role_words)
    org = bool(name_words) and any(w.low in ORG_SUFFIXES for w in name_words[1:] + name_words[-1:])
    if name_words:
        if any(w.low in FUNCTION_WORDS for w in name_words[:1]):
            return None
        return Mention(raw, toks[0].start, "name", name=name, role=role, gender=gender, org=org)
    head = role_words[-1].low if role_words else ""
    if head not in ROLE_NOUNS:
        return None
    return Mention(raw, toks[0].start, "role", role=role, gender=gender, org=ROLE_NOUNS[head] == "org",
                   plural=head in PLURAL_ROLES)


def _np_backward(toks: list[Tok], end: int) -> list[Tok]:
    """The speaker phrase ending just before toks[end] (the cue), read backwards."""
    k = end - 1
    while k >= 0 and toks[k].low in ADVERBS:
        k -= 1
    if k < 0:
        return []
    if toks[k].text == ",":  # "Tower, a longtime Reagan supporter, told": skip the appositive
        for j in range(k - 1, max(-1, k - 30), -1):
            if toks[j].text == "," and j > 0 and (toks[j - 1].is_cap or toks[j - 1].low in ROLE_NOUNS):
                phrase = _collect_back(toks, j - 1)
                return phrase + toks[j : k + 1] if phrase else []
            if toks[j].text in {".", ";", ":", "“", "”", '"'}:
                break
        return []
    if toks[k].text == ")":  # "Sens. Alan Cranston (D-Cal.)"
        while k >= 0 and toks[k].text != "(":
            k -= 1
        k -= 1
    return _collect_back(toks, k)


def _collect_back(toks: list[Tok], k: int) -> list[Tok]:
    if k < 0:
        return []
    if toks[k].low in PRONOUNS:
        return [toks[k]]
    out: list[Tok] = []
    lowercase = 0
    seen_role = False
    while k >= 0:
        t = toks[k]
        low = t.low
        if t.text == ">" and k >= 2 and toks[k - 2].text == "<":  # a ticker "<DF>"
            k -= 3
            continue
        if t.is_cap and t.is_word and low not in FUNCTION_WORDS:
            seen_role |= low in ROLE_NOUNS or low in TITLES
        elif _particle(t) and out and out[0].is_cap:
            pass
        elif low == "of" and out and out[0].is_cap and k > 0 and toks[k - 1].is_cap:  # Secretary of State
            pass
        elif low in {"to", "for"} and out and k > 0 and toks[k - 1].low in ROLE_NOUNS:  # "an aide to Lyng"
            pass
        elif low == "the" and out and out[0].is_cap and k > 0 and toks[k - 1].low in {"for", "to", "of"} \
                and k > 1 and toks[k - 2].low in ROLE_NOUNS:
            pass  # "a spokesman for the Department"
        elif low in ROLE_NOUNS or low in TITLES and not t.is_cap:
            seen_role = True
        elif low in DETERMINERS:
            out.insert(0, t)
            break
        elif t.is_word and not t.is_cap and seen_role and lowercase < 3 and low not in FUNCTION_WORDS \
                and low not in CUES:
            lowercase += 1  # "senior", "political" before a role noun
        elif (t.text in {"-", "&", "'s", "’s"} or low == "and" and k > 0 and toks[k - 1].is_cap) and out and out[0].is_cap:
            pass  # "Ingalls and Snyder", "AT&T"
        else:
            break
        out.insert(0, t)
        k -= 1
        if len(out) > 10:
            return []
    while out and out[0].low in FUNCTION_WORDS and out[0].low not in DETERMINERS:
        out.pop(0)
    return out


def _np_forward(toks: list[Tok], start: int) -> tuple[list[Tok], list[Tok]]:
    """(speaker phrase, appositive) starting at toks[start], after an inverted cue ("said Sanders, ...")."""
    out: list[Tok] = []
    k = start
    seen_role = False
    while k < len(toks):
        t = toks[k]
        low = t.low
        if not out and low in DETERMINERS:
            pass
        elif t.is_cap and t.is_word and low not in FUNCTION_WORDS:
            seen_role |= low in ROLE_NOUNS or low in TITLES
        elif _particle(t) and out and out[-1].is_cap:
            pass
        elif low in ROLE_NOUNS or low in TITLES:
            seen_role = True
        elif low == "and" and out and k + 1 < len(toks) and (toks[k + 1].is_cap or toks[k + 1].low in ROLE_NOUNS) \
                and (out[-1].is_cap or out[-1].low in ROLE_NOUNS or out[-1].low in TITLES):
            pass  # "former Nevada Sen. and Reagan confidant Paul Laxalt"
        elif t.is_word and not t.is_cap and low not in FUNCTION_WORDS and low not in CUES and len(out) < 5 \
                and any(x.low in ROLE_NOUNS or x.low in TITLES for x in toks[k + 1 : k + 4]):
            pass  # a modifier before a role noun ("one Republican political strategist")
        elif t.text in {"<", ">"} or (t.text.isupper() and out and out[-1].text == "<"):
            pass
        else:
            break
        out.append(t)
        k += 1
    if not out or (len(out) == 1 and out[0].low in PRONOUNS):
        return out, []
    appositive: list[Tok] = []
    if k < len(toks) and toks[k].text == ",":
        m = k + 1
        while m < len(toks) and toks[m].text not in {",", ".", ";", ":", "“", "”", '"'} and m - k < 20:
            m += 1
        appositive = toks[k + 1 : m]
    return out, appositive


# ---- the article's names ---------------------------------------------------------------------


# Capitalised words separated by spaces or one line break (Reuters wraps lines inside names).
NAME_RUN = re.compile(r"(?:[A-Z][\w’'-]*\.?(?:[ \t]*\n?[ \t]*(?:(?:de|van|von|bin|al|da|del|la|le)[ \t]+)?)?)+")


class _Lazy:
    """A value computed on first use (most articles never need their names or subjects)."""

    def __init__(self, make):
        self.make, self._value = make, None

    @property
    def value(self):
        if self._value is None:
            self._value = self.make()
        return self._value


class Names:
    """Full names in an article by their last word, to resolve "Sanders" and "Ms Sanders"."""

    def __init__(self, text: str):
        self.by_surname: dict[str, tuple[str, str | None]] = {}  # surname → (full name, gender)
        self.roles: dict[str, str] = {}  # full name → role words seen right before it
        for m in NAME_RUN.finditer(text):
            words = m.group().split()
            if len(words) < 2:
                continue
            cut = 0
            for i, w in enumerate(words):  # strip leading titles and sentence-initial function words
                if w.lower() in TITLES or w.lower().rstrip(".") in TITLES or w.lower() in FUNCTION_WORDS \
                        or w.lower() in ROLE_NOUNS:
                    cut = i + 1
            name_words = [w for w in words[cut:]]
            if len(name_words) < 2 or len(name_words) > 4:
                continue
            if any(w.lower().rstrip(".") in ORG_SUFFIXES or w.lower() in MONTHS_DAYS or w.isupper() and len(w) > 2
                   for w in name_words):
                continue
            surname = name_words[-1].lower()
            if surname in self.by_surname:
                continue
            before = text[max(0, m.start() - 60) : m.start()].split()
            gender = _gender_of_words(words[:cut] + before[-2:])
            self.by_surname[surname] = (" ".join(name_words), gender)
            role = [w for w in words[:cut] if w.lower() not in HONORIFICS and w.lower() not in FUNCTION_WORDS]
            if role:
                self.roles[" ".join(name_words)] = " ".join(role)

    def full(self, name: str) -> tuple[str, str | None]:
        """The article's full name for `name` ("Sanders" → "Sarah Sanders") and its gender if known."""
        words = name.split()
        if not words:
            return name, None
        found = self.by_surname.get(words[-1].lower())
        if found and (len(words) == 1 or found[0].split()[0].lower() == words[0].lower()):
            return found
        return name, None


# ---- extraction --------------------------------------------------------------------------------


@dataclass
class _Raw:
    """A quote before its speaker is resolved."""

    start: int
    end: int
    kind: str
    mention: Mention | None
    cue: str
    paragraph: int = 0
    cue_at: int = -1  # offset of the cue: the two halves of a split quote share theirs


def extract_quotes(article: Article) -> list[Quote]:
    """The quotes in the article, in text order, each with a resolved speaker."""
    text = article.text
    if not text or ('"' not in text and "“" not in text and not _has_cue(text)):
        return []
    paragraphs = _paragraph_starts(text)
    sentences = sentence_spans(text)
    sent_starts = [s for s, _ in sentences]
    direct = _direct_spans(text)
    raws: list[_Raw] = []
    attribution_cues: set[int] = set()  # cues of direct quotes are not reported speech too
    for qs, qe, ms, me in direct:
        if len(text[qs:qe].split()) < MIN_QUOTE_WORDS or _is_title(text[qs:qe]):
            continue
        sentence = _sentence_around(sentences, sent_starts, ms, me, text)
        mention, cue, cue_at = _attribution(text, qs, qe, ms, me, sentence, direct)
        attribution_cues.add(cue_at)
        raws.append(_Raw(qs, qe, "direct", mention, cue, paragraph=bisect.bisect_right(paragraphs, ms), cue_at=cue_at))
    covered = [(ms, me) for _, _, ms, me in direct]
    for s, e in _split_at(sentences, paragraphs):
        reported = _reported(text, s, e, covered, attribution_cues)
        if reported:
            rs, re_, mention, cue = reported
            raws.append(_Raw(rs, re_, "reported", mention, cue, paragraph=bisect.bisect_right(paragraphs, s)))
    raws.sort(key=lambda r: r.start)
    return _resolve(article, raws)


def _split_at(spans: list[tuple[int, int]], cuts: list[int]) -> list[tuple[int, int]]:
    """The spans, each cut where a paragraph starts inside it (blingfire may miss a break that is
    only a newline and an indent)."""
    out = []
    for s, e in spans:
        for c in cuts[bisect.bisect_right(cuts, s) : bisect.bisect_left(cuts, e)]:
            out.append((s, c))
            s = c
        out.append((s, e))
    return out


def _is_title(words: str) -> bool:
    """A programme, book or film title ("Meet the Press"), not speech: a few words in title case."""
    parts = words.split()
    return len(parts) <= 6 and words[-1:].isalnum() and all(w[:1].isupper() or w.lower() in FUNCTION_WORDS for w in parts)


def _has_cue(text: str) -> bool:
    return " said" in text or " says" in text or "according to" in text or " told" in text


def _paragraph_starts(text: str) -> list[int]:
    breaks = list(PARAGRAPH_BREAK.finditer(text))
    if not breaks:  # only single newlines: each line is a paragraph
        breaks = list(LINE_BREAK.finditer(text))
    return [m.end() for m in breaks]


def _mark_kind(text: str, i: int) -> str | None:
    ch = text[i]
    if ch in OPEN_MARKS:
        return "open"
    if ch in CLOSE_MARKS:
        return "close"
    before = text[i - 1] if i > 0 else " "
    after = text[i + 1] if i + 1 < len(text) else " "
    if (before.isspace() or before in "([{—–-/") and not after.isspace():
        return "open"
    if not before.isspace() and (after.isspace() or after in ".,;:!?)]}—–-'’"):
        return "close"
    return None


def _direct_spans(text: str) -> list[tuple[int, int, int, int]]:
    """(quote start, quote end, opening mark, closing mark) of each direct quote: the marks are
    paired by their shape; an opening mark before the previous one closed continues it (a quote
    over several paragraphs, whose intermediate paragraphs have no closing mark)."""
    spans: list[tuple[int, int, int, int]] = []
    opened: int | None = None
    for m in re.finditer(r"[\"“”„«»]", text):
        i = m.start()
        kind = _mark_kind(text, i)
        if kind == "open":
            if opened is None:
                opened = i
            elif "\n" not in text[opened:i] and text[opened:i].count('"') == 0 and text[i] == '"':
                opened = i  # a stray mark inside one line: start again here
        elif kind == "close" and opened is not None:
            qs, qe = _trim(text, opened + 1, i)
            if qe > qs:
                spans.append((qs, qe, opened, i))
            opened = None
    return spans


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and (text[end - 1].isspace() or text[end - 1] in ",;:"):
        end -= 1
    if end > start and text[end - 1] == "." and not text[max(start, end - 3) : end] == "...":
        end -= 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _sentence_around(sentences, sent_starts, ms: int, me: int, text: str) -> tuple[int, int]:
    """The extent of the sentence(s) holding the marks: from the start of the sentence with the
    opening mark to the end of the one with the closing mark, within the paragraph."""
    i = max(0, bisect.bisect_right(sent_starts, ms) - 1)
    j = max(0, bisect.bisect_right(sent_starts, me) - 1)
    start = sentences[i][0] if sentences else 0
    end = sentences[j][1] if sentences else len(text)
    # A closing mark right after a sentence end belongs to that sentence; the attribution that
    # follows ("…,” Sanders said.) may have been split off as its own sentence.
    if j + 1 < len(sentences) and sentences[j][1] <= me + 2:
        end = sentences[j + 1][1]
    return start, end


def _attribution(text, qs, qe, ms, me, sentence, direct) -> tuple[Mention | None, str, int]:
    """(speaker phrase, cue, offset of the cue) of a direct quote, or (None, "", -1)."""
    s_start, s_end = sentence
    # 1. After the quote: "…," Sanders said / said Sanders / he added / according to X.
    para_end = PARAGRAPH_BREAK.search(text, me)
    limit = min(len(text), me + 200, para_end.start() if para_end else len(text))
    nxt = next((o for _, _, o, _ in direct if o > me), None)
    if nxt is not None:
        limit = min(limit, nxt)
    after = tokens(text, me + 1, limit)
    ends_sentence = text[qe : me].strip().endswith((".",)) or text[qs:qe].endswith((".",))
    if after and not (ends_sentence and after[0].text in {".", "!", "?"}):
        found = _attribution_after(text, after, ends_sentence)
        if found:
            return found
    # 2. Before it: X said: "…" / X told a briefing, "…" / according to X, "…" / X said the notes "…".
    before = tokens(text, s_start, ms)
    found = _attribution_before(text, before)
    if found:
        return found
    return None, "", -1


def _attribution_after(text: str, after: list[Tok], ends_sentence: bool) -> tuple[Mention, str, int] | None:
    k = 1 if after[0].text in {",", "—", "–", "-"} else 0
    if k >= len(after):
        return None
    if after[k].low == "according" and k + 1 < len(after) and after[k + 1].low == "to":
        toks, _ = _np_forward(after, k + 2)
        mention = parse_mention(toks, text)
        return (mention, "according to", after[k].start) if mention else None
    if after[k].low in CUES and not after[k].is_cap or (after[k].is_cap and after[k].low in CUES and k == 0 and not ends_sentence):
        toks, appositive = _np_forward(after, k + 1)
        mention = _speaker(toks + ([Tok(",", 0, 0)] + appositive if appositive else []), text)
        if mention:
            return mention, after[k].low, after[k].start
        return None
    # Speaker then cue: "Sanders told", "a senior official said", "Trump Tweeted".
    depth = 0
    for c in range(k, min(len(after), k + 16)):
        t = after[c]
        depth += (t.text == "(") - (t.text == ")")
        if t.text in {".", ";", "!", "?", "“", "”", '"'} and depth <= 0:  # "Sen. David Boren (D-Okla.) said"
            return None
        if t.low in CUES and c > k and not (t.low == "says" and after[c - 1].low == "it"):
            if after[c - 1].low in {"is", "was", "are", "were", "be", "been"}:  # "is said to"
                return None
            toks = _np_backward(after[: c], c)
            if toks and toks[0] is not after[k] and after[k].text != "(":
                # the phrase must start right after the quote: "…," a senior official said
                if text[after[k].start : toks[0].start].strip(" ,"):
                    return None
            mention = _speaker(toks, text)
            if mention:
                return mention, t.low, t.start
            return None
    return None


def _attribution_before(text: str, before: list[Tok]) -> tuple[Mention, str, int] | None:
    if not before:
        return None
    # "according to X, “…”"
    for i in range(len(before) - 2, -1, -1):
        if before[i].low == "according" and before[i + 1].low == "to":
            toks, _ = _np_forward(before, i + 2)
            mention = parse_mention(toks, text)
            if mention:
                return mention, "according to", before[i].start
            break
    # The last reporting verb of the sentence before the quote, with its subject.
    for c in range(len(before) - 1, -1, -1):
        t = before[c]
        if t.low not in CUES or t.is_cap and c > 0:
            continue
        if c > 0 and (before[c - 1].low in {"is", "was", "are", "were", "be", "been", "to"} or _noun_use(before, c)):
            continue
        tail = before[c + 1 :]
        if tail and tail[-1].text in {":", ","} and len(tail) - 1 <= OBJECT_WORDS:
            pass  # X said: "…" / X told a press conference, "…"
        elif len([x for x in tail if x.is_word]) > 25:
            return None
        subject = _np_backward(before, c)
        if not subject and c > 0 and before[c - 1].low in {"and", "but", "as"}:
            # "…, but said the notes “…”"; "X was quoted by the daily as saying: “…”"
            subject = _sentence_subject(before[: c - 1])
        mention = _speaker(subject, text)
        if mention:
            return mention, t.low, t.start
        return None
    return None


def _noun_use(toks: list[Tok], c: int) -> bool:
    """"the notes", "his remarks", "its statement": a cue word used as a noun."""
    return c > 0 and (toks[c - 1].low in DETERMINERS - {"one", "two", "three", "four", "that"}
                      or toks[c - 1].low.endswith(("'s", "’s")))


def _sentence_subject(toks: list[Tok]) -> list[Tok]:
    """The subject at the start of a clause: "However, Sanders did not elaborate …, but said"."""
    k = 0
    while k < len(toks) and (toks[k].low in FUNCTION_WORDS or toks[k].text == ","):
        k += 1
    out: list[Tok] = []
    while k < len(toks) and (toks[k].is_cap and toks[k].is_word or _particle(toks[k]) or toks[k].low in ROLE_NOUNS
                             or toks[k].low in PRONOUNS):
        out.append(toks[k])
        if toks[k].low in PRONOUNS:
            break
        k += 1
    return out


def _speaker(toks: list[Tok], text: str) -> Mention | None:
    """The speaker in a phrase that may carry an appositive: "Dr Helen Marsh, the firm's chief
    executive" (role from the appositive) or "The transport minister, Alan Doyle" (name from it)."""
    comma = next((i for i, t in enumerate(toks) if t.text == ","), None)
    if comma is None:
        return parse_mention(_cut_of(toks), text)
    head, appositive = toks[:comma], [t for t in toks[comma + 1 :] if t.text != ","]
    words = [t for t in appositive if t.is_word]
    if words and len(words) <= 5 and all(t.is_cap or t.low in NAME_PARTICLES for t in words) \
            and head and (head[-1].low in ROLE_NOUNS or head[-1].low in TITLES):
        named = parse_mention(words, text)
        if named is not None and named.head == "name":
            role = " ".join(t.text for t in head if t.low not in DETERMINERS and not t.low.endswith(("'s", "’s")))
            return Mention(text[head[0].start : words[-1].end], head[0].start, "name", named.name,
                           named.role or role, named.gender or _gender_of_words(t.text for t in head), named.org)
    mention = parse_mention(_cut_of(head), text)
    return _with_appositive(mention, appositive, text) if mention else None


def _cut_of(toks: list[Tok]) -> list[Tok]:
    """Drop an affiliation ("Analyst Rosemarie Morbelli of Ingalls and Snyder") and an appositive."""
    for i, t in enumerate(toks):
        if t.text == ",":
            return toks[:i]
        if t.low == "of" and i > 0 and any(x.is_cap for x in toks[:i]) and not (
            toks[i - 1].low in TITLES or toks[i - 1].low in ROLE_NOUNS
        ):
            return toks[:i]
    return toks


def _appositive_of(toks: list[Tok]) -> list[Tok]:
    for i, t in enumerate(toks):
        if t.text == ",":
            return [x for x in toks[i + 1 :] if x.text != ","]
    return []


def _with_appositive(mention: Mention, appositive: list[Tok], text: str) -> Mention:
    """Role and gender from an appositive: "Debra Strohmaier, a ChemLawn spokeswoman"."""
    if not appositive or mention.head != "name":
        return mention
    words = [t for t in appositive if t.is_word]
    heads = [w for w in words if w.low in ROLE_NOUNS and ROLE_NOUNS[w.low] == "person" or w.low in TITLES]
    if not heads or words[0].low in {"who", "which", "that", "where", "when"}:
        return mention
    last = max(i for i, w in enumerate(words) if w in heads)
    start = 1 if words[0].low in DETERMINERS else 0
    role = " ".join(w.text for w in words[start : last + 1])
    gender = mention.gender or _gender_of_words(w.text for w in words)
    return Mention(mention.text, mention.start, mention.head, mention.name, mention.role or role, gender,
                   mention.org, mention.plural)


REPORTING = re.compile(r"\b(?:" + "|".join(sorted(REPORTING_CUES)) + r"|[Aa]ccording to)\b")
TAIL_WORDS = 7  # most words after a closing cue: "…, Holt said on Monday in a statement."


def _reported(text: str, s: int, e: int, covered: list[tuple[int, int]], skip: set[int]
              ) -> tuple[int, int, Mention, str] | None:
    """Reported speech in the sentence text[s:e]: (start, end, speaker, cue), or None."""
    if not REPORTING.search(text, s, e):
        return None
    inside = lambda pos: any(a <= pos <= b for a, b in covered)  # noqa: E731
    toks = tokens(text, s, e)
    # "According to X, …"
    if len(toks) > 3 and toks[0].low == "according" and toks[1].low == "to":
        np_toks, _ = _np_forward(toks, 2)
        comma = next((i for i, t in enumerate(toks) if t.text == ","), None)
        mention = parse_mention(np_toks, text)
        if mention and comma is not None and comma + 1 < len(toks):
            return _clause(text, toks[comma + 1].start, e, mention, "according to")
    # "…, according to X."
    for i in range(len(toks) - 2):
        if toks[i].text == "," and toks[i + 1].low == "according" and i + 2 < len(toks) and toks[i + 2].low == "to":
            np_toks, _ = _np_forward(toks, i + 3)
            mention = parse_mention(np_toks, text)
            if mention and not any(s <= a <= toks[i].start for a, _ in covered) and i > 3 and toks[i + 1].start not in skip:
                return _clause(text, s, toks[i].start, mention, "according to")
    # "X said (that) …" / "X told reporters (that) …"
    for c, t in enumerate(toks):
        if t.low not in REPORTING_CUES or inside(t.start) or (t.is_cap and c > 0) or t.start in skip:
            continue
        if c > 0 and (toks[c - 1].low in NOT_REPORTING or _noun_use(toks, c)):
            continue
        rest = c + 1
        if t.low in {"told", "tells"}:  # an object, then an optional "that"
            while rest < len(toks) and rest - c <= 4 and toks[rest].low not in {"that", ","} and not (
                toks[rest].is_word and toks[rest].low in PRONOUNS and rest > c + 1
            ):
                if toks[rest].low in {"the", "a", "an"} or toks[rest].is_word:
                    rest += 1
                    if rest < len(toks) and toks[rest - 1].low in {"reporters", "reuters", "journalists", "analysts", "parliament",
                                                                   "congress", "investors", "shareholders", "him", "her", "them",
                                                                   "me", "us"}:
                        break
                else:
                    break
        if t.low in {"told", "tells"}:  # "told reporters on Saturday that …"
            for skip_to in range(rest, min(rest + 4, len(toks))):
                if toks[skip_to].low == "that":
                    rest = skip_to
                    break
        if rest < len(toks) and toks[rest].low == "that":
            rest += 1
        if rest >= len(toks) - 2 or toks[rest].text in {",", ".", ":", "“", '"'} or toks[rest].low in NOT_A_CLAUSE:
            break  # "X said." ends a sentence; "X said: “…”" is direct speech
        subject = _np_backward(toks, c)
        if not subject and c > 0 and toks[c - 1].low in {"and", "but"}:
            subject = _sentence_subject(toks[: c - 1])
        mention = _speaker(subject, text)
        if mention is None:
            break
        return _clause(text, toks[rest].start, e, mention, t.low)
    # "…, X said." / "…, said X." (the attribution closes the sentence)
    found = _post_attribution(toks, text)
    if found is not None:
        comma, mention, cue = found
        if toks[comma].start - s > 15 and not any(s <= a <= toks[comma].start for a, _ in covered) \
                and toks[comma + 1].start not in skip and not any(t.start in skip for t in toks[comma:]):
            return _clause(text, s, toks[comma].start, mention, cue)
    return None


def _post_attribution(toks: list[Tok], text: str) -> tuple[int, Mention, str] | None:
    """(index of the comma before the attribution, speaker, cue) when the sentence ends with one."""
    n = len(toks) - (1 if toks and toks[-1].text in {".", "!"} else 0)
    for c in range(max(1, n - TAIL_WORDS - 1), n):
        t = toks[c]
        if t.low not in REPORTING_CUES or t.is_cap or _noun_use(toks, c) or toks[c - 1].low in NOT_REPORTING:
            continue
        if any(x.text in {",", ";", ":", '"', "“", "”"} for x in toks[c + 1 : n]):
            return None
        if toks[c - 1].text == ",":  # "…, said Julia Brandt"
            phrase, appositive = _np_forward(toks, c + 1)
            mention = _speaker(phrase + ([Tok(",", 0, 0)] + appositive if appositive else []), text) if phrase else None
            if mention:
                return c - 1, mention, t.low
        subject = _np_backward(toks, c)
        if not subject:
            return None
        first = toks.index(subject[0])
        if first == 0 or toks[first - 1].text != ",":
            return None
        mention = _speaker(subject, text)
        return (first - 1, mention, t.low) if mention else None
    return None


def _clause(text: str, start: int, end: int, mention: Mention, cue: str):
    start, end = _trim(text, start, end)
    if len(text[start:end].split()) < MIN_QUOTE_WORDS:
        return None
    return start, end, mention, cue


def _resolve(article: Article, raws: list[_Raw]) -> list[Quote]:
    """Speakers for the raw quotes: names to full names, pronouns and role nouns to earlier speakers,
    unattributed direct quotes to the speaker just before them."""
    text = article.text
    names = _Lazy(lambda: Names(text))
    entities: list[Entity] = []
    by_name: dict[str, Entity] = {}
    history: list[Entity] = []  # speaker of each resolved quote, in text order
    spoken_at: list[int] = []  # where each of them is named
    subjects = _Lazy(lambda: _subject_persons(text))
    first_org = _first_org(text)

    def entity_for(mention: Mention) -> Entity | None:
        if mention.head == "name":
            if mention.org:
                key = _strip_ticker(mention.name)
                full, gender = key, None
            else:
                full, gender = names.value.full(mention.name)
            ent = by_name.get(full.lower())
            if ent is None:
                kind = "org" if mention.org or (not mention.gender and not gender and mention.role.lower() in {"", "the"}
                                                and len(full.split()) == 1 and full.isupper()) else "person"
                ent = Entity(full, kind, mention.gender or gender)
                if not mention.role and full in names.value.roles:
                    ent.roles.append(names.value.roles[full])
                entities.append(ent)
                by_name[full.lower()] = ent
            if mention.role and mention.role not in ent.roles:
                ent.roles.append(mention.role)
            ent.gender = ent.gender or mention.gender
            ent.aliases.add(mention.name)
            return ent
        if mention.head == "pronoun":
            want = mention.gender
            # A person introduced as a sentence's subject after the last speaker ("The council leader,
            # Sarah Whitfield, backed the plan. … she said") is a nearer antecedent for he/she.
            last_speaker_at = spoken_at[-1] if spoken_at else -1
            if want is not None:
                for at, name, role in reversed(subjects.value):
                    if last_speaker_at < at < mention.start:
                        ent = entity_for(Mention(name, at, "name", name=name, role=role, gender=_gender_of_words(role.split())))
                        if ent is not None and ent.gender in (None, want):
                            ent.gender = want
                            return ent
                        break
            for ent in reversed(history):
                if mention.org:
                    if ent.kind == "org":
                        return ent
                    continue
                if mention.plural:
                    if ent.plural or ent.kind == "org":
                        return ent
                    continue
                if ent.kind == "person" or (ent.kind == "role" and not ent.plural):
                    if want is None or ent.gender in (None, want):
                        if want and not ent.gender:
                            ent.gender = want
                        return ent
            return None
        # A role noun: the last speaker with that role, else the last organisation for "the firm".
        head = mention.role.split()[-1].lower()
        determiner = mention.text.split()[0].lower()
        definite = determiner in {"the", "this", "that"}
        if definite:
            for ent in reversed(history):
                if head in ent.role_words() or (ROLE_NOUNS.get(head) == "org" and ent.kind == "org" and head in {
                        "company", "firm", "bank", "group", "corporation"}):
                    return ent
            for ent in reversed(entities):
                if head in ent.role_words():
                    return ent
            if ROLE_NOUNS.get(head) == "org" and head in {"company", "firm", "group", "corporation"} and first_org:
                ent = by_name.get(first_org.lower())
                if ent is None:
                    ent = Entity(first_org, "org")
                    entities.append(ent)
                    by_name[first_org.lower()] = ent
                return ent
            for full, role in names.value.roles.items():  # "Trade Minister Hajime Tamura" … "the minister said"
                if head in role.lower().split():
                    return entity_for(Mention(full, 0, "name", name=full, role=role))
        label = mention.role
        ent = by_name.get(label.lower())
        if ent is None:
            ent = Entity(label, "org" if mention.org else "role", mention.gender, [label], plural=mention.plural)
            entities.append(ent)
            by_name[label.lower()] = ent
        return ent

    quotes: list[Quote] = []
    last: tuple[_Raw, Entity, str, int] | None = None  # the previous quote: raw, speaker, as written, utterance
    for raw in raws:
        ent = entity_for(raw.mention) if raw.mention else None
        as_written = raw.mention.text if raw.mention else ""
        utterance = len(quotes)
        if ent is None and raw.kind == "direct" and raw.mention is None and last is not None \
                and last[0].paragraph >= raw.paragraph - 1:
            # An unattributed quote continues the speaker just before it (same or previous paragraph).
            ent, as_written, utterance = last[1], last[2], last[3]
            raw.cue = last[0].cue
        elif ent is not None and last is not None and raw.cue_at >= 0 and raw.cue_at == last[0].cue_at:
            utterance = last[3]  # "A," she said, "B."
        if ent is None:
            continue
        history.append(ent)
        spoken_at.append(raw.mention.start if raw.mention else raw.start)
        last = (raw, ent, as_written, utterance)
        quotes.append(Quote(
            article_id=article.id, start=raw.start, end=raw.end, speaker=ent.name,
            speaker_as_written=" ".join(_strip_ticker(as_written).split()), cue=raw.cue, kind=raw.kind,
            utterance=utterance,
        ))
    # Speakers gain aliases and roles as the article goes on: every quote gets the final ones.
    final = {e.name: e for e in entities}
    return [
        replace(q, role=final[q.speaker].roles[0] if final[q.speaker].roles else None,
                aliases=tuple(sorted(a for a in final[q.speaker].aliases if a and a != q.speaker)))
        for q in quotes
    ]


_PERSON_ROLES = sorted({w for w, kind in ROLE_NOUNS.items() if kind == "person"} | {t.rstrip(".") for t in TITLES}, key=len,
                       reverse=True)
_ROLE_WORD = r"(?i:" + "|".join(re.escape(w) for w in _PERSON_ROLES) + r")\.?"
_NAME = r"[A-Z][\w’'-]+(?:\s+(?:[A-Z][\w’'.-]*|al-\w+))+"
# "The council leader, Sarah Whitfield, backed …" / "Finance Secretary Jaime Ongpin told …"
SUBJECT_ROLE_NAME = re.compile(rf"(?:(?:The|A|An|Its|His|Her|Their)\s+)?(?:[\w’'-]+\s+){{0,4}}?(?P<role>{_ROLE_WORD})\s*,?\s+(?P<name>{_NAME})(?=\s*[,\s])")
# "Seizaburo Sato, professor of politics at Tokyo University, thought …"
SUBJECT_NAME_ROLE = re.compile(rf"(?P<name>{_NAME}),\s+(?:(?:an?|the)\s+)?(?:[\w’'-]+\s+){{0,3}}?(?P<role>{_ROLE_WORD})\b")


def _subject_persons(text: str) -> list[tuple[int, str, str]]:
    """(offset, name, role) of people introduced as a sentence's subject with their role."""
    found = []
    for start in [0, *(m.end() for m in re.finditer(r"[.!?][\"”’]?\s+|\n\s*", text))]:
        m = SUBJECT_ROLE_NAME.match(text, start, start + 120) or SUBJECT_NAME_ROLE.match(text, start, start + 120)
        if m is None or any(w.lower().rstrip(".") in ORG_SUFFIXES for w in m.group("name").split()):
            continue
        if m.re is SUBJECT_ROLE_NAME:
            role = re.sub(r"^(?:The|A|An|Its|His|Her|Their)\s+", "", text[start : m.start("name")].strip(" ,"))
        else:
            role = m.group("role")
        found.append((m.start("name"), " ".join(m.group("name").split()), role))
    return found


FIRST_ORG = re.compile(r"\b((?:[A-Z][\w&'’.-]*\s+){0,4}(?:Corp|Inc|Co|Ltd|Plc|PLC|LLC|AG|SA|NV|Group|Bank)\b\.?)")


def _first_org(text: str) -> str | None:
    m = FIRST_ORG.search(text[:600])
    if not m:
        return None
    words = [w for w in m.group(1).split() if w.lower() not in FUNCTION_WORDS]
    return " ".join(words).rstrip(".") or None


# ---- matching names ----------------------------------------------------------------------------

_NAME_WORD = re.compile(r"[^\W\d_][\w'’.-]*")


def name_key(name: str) -> list[str]:
    """A name as comparable words: lower case, no titles, determiners, possessive or org suffixes."""
    words = [w.lower().rstrip(".") for w in _NAME_WORD.findall(_strip_ticker(name))]
    words = [re.sub(r"['’]s$", "", w) for w in words]
    while words and (words[0] in TITLES or words[0] + "." in TITLES or words[0] in DETERMINERS):
        words = words[1:]
    while len(words) > 1 and words[-1] in ORG_SUFFIXES:
        words = words[:-1]
    return words


def speaker_matches(name: str, quote: Quote) -> bool:
    """Does `name`, as a user writes it, name the quote's speaker?

    "Sanders", "Ms Sanders", "Sarah Sanders" and "Sarah Huckabee Sanders" all name "Sarah Sanders"
    (same last word; a first name, when given, must agree); "Dean Foods" names "Dean Foods Co";
    a role ("the White House spokeswoman") names a speaker the article describes with those words.
    """
    asked = name_key(name)
    if not asked:
        return False
    full = name_key(quote.speaker)
    for candidate in (quote.speaker, *quote.aliases):
        words = name_key(candidate)
        if not words:
            continue
        # A lone surname names the speaker; a first name, when both sides have one, must agree
        # (an alias "Sanders" of "Sarah Sanders" does not make "Bernie Sanders" match).
        first = full if len(words) == 1 and len(full) > 1 else words
        if asked[-1] == words[-1] and (len(asked) == 1 or len(first) == 1 or asked[0] == first[0]
                                       or len(asked[0]) == 1 and first[0][:1] == asked[0]):
            return True
        if len(asked) < len(words) and words[: len(asked)] == asked and asked[0] not in ROLE_NOUNS:
            return True  # "Dean Foods" for "Dean Foods Co"; "Kim" for "Kim Jong Un"
    if asked[-1] in ROLE_NOUNS:
        # "the minister": the article's description of the speaker, or the words of this attribution ("the firm").
        described = {w.lower() for w in _NAME_WORD.findall(quote.role or "")} | set(name_key(quote.speaker))
        written = name_key(quote.speaker_as_written)
        if set(asked) <= described or (written and written[-1] in ROLE_NOUNS and set(asked) <= set(written)):
            return True
    return False


def speaker_keys(quote: Quote) -> set[str]:
    """Words under which a quote is found by speaker_matches: last and first words of its names,
    and its role nouns."""
    keys: set[str] = set()
    for candidate in (quote.speaker, *quote.aliases):
        words = name_key(candidate)
        if words:
            keys.add(words[-1])
            keys.add(words[0])
    for described in (quote.role or "", quote.speaker_as_written):
        keys |= {w.lower() for w in _NAME_WORD.findall(described) if w.lower() in ROLE_NOUNS}
    return keys


# ---- storage ------------------------------------------------------------------------------------


def write_quotes(path: Path, quotes: Iterable[Quote]) -> None:
    """quotes.jsonl: one Quote per line (its words are article.text[start:end], not repeated)."""
    with open(path, "w", encoding="utf-8") as f:
        for q in quotes:
            f.write(json.dumps(q.to_dict(), ensure_ascii=False) + "\n")


def read_quotes(path: Path, articles: dict[str, Article]) -> dict[str, list[Quote]]:
    """Quotes by article id; ValueError when a line is malformed or points outside its article."""
    by_article: dict[str, list[Quote]] = {a: [] for a in articles}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            quote = Quote.from_dict(json.loads(line))
            article = articles.get(quote.article_id)
            if article is None or not 0 <= quote.start < quote.end <= len(article.text):
                raise ValueError(f"quotes.jsonl line {n} points outside its article")
            by_article[quote.article_id].append(quote)
    return by_article


def quote_text(quote: Quote, article: Article) -> str:
    return article.text[quote.start : quote.end]
