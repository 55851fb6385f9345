"""Speakers: answer "what did X say about Y?" with X's own words (an answer stage beside read/answer).

1. `parse_speaker_question(question, history)` recognises questions that ask for a speaker's words:
   "what did/does X say/tell/claim/warn/argue/think … (about|on) Y", "how did X describe Y",
   "what was X's reaction to Y", "according to X, …", and follow-ups ("And what did she say about
   the letter?", "What about the summit?") whose speaker comes from the earlier questions.
2. `SpeakerAnswerer.answer` gathers X's quotes (qa.quotes, stored in the index) in the retrieved
   articles and, through `QuoteBook`, in the whole index (source and date filters apply), and
   ranks them by how well they match Y: dense similarity (the embedder) of Y to the quote's
   sentences, lexical overlap with the quote and with the sentence around it, and the reader's
   best span score inside the quote. The best quote above `Settings.quote_threshold` is the
   answer: the whole quotation, or for a long one the sentences that match Y; its citation points
   exactly at those words and `Answer.quote` says who said them.
3. No quote about Y: None, and QAService answers as for any other question; but a reader answer
   that lies inside one of X's quotes that were just judged off-topic becomes "not found" rather
   than a quote about something else.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterable, Sequence

import numpy as np

from .chunk import sentence_spans
from .conversation import content_stems, stem, user_questions
from .quotes import PARAGRAPH_BREAK, ROLE_NOUNS, name_key, speaker_keys, speaker_matches
from .records import Alternative, Answer, Article, Chunk, Citation, Passage, Quote, QuoteAttribution
from .errors import QAError
from .retrieve import Filters

MAX_HISTORY = 4  # earlier questions searched for the speaker of a follow-up
MAX_ALTERNATIVES = 4
DENSE_ALONE = 0.5  # similarity a quote needs when no topic word is in or around it (no loss on the dev set)
FULL_LENGTH_WORDS = 40  # the length feature saturates here
LONG_QUOTE_WORDS = 30  # longer quotes are answered with their sentences that match the topic
SENTENCE_KEEP = 0.9  # a neighbouring sentence joins the answer when it scores this share of the best

# ---- questions -------------------------------------------------------------------------------

_VERBS = (
    r"say|says|said|tell|tells|told|claim|claims|claimed|warn|warns|warned|argue|argues|argued|think|thinks|"
    r"thought|mean|meant|add|added|state|stated|predict|predicted|note|noted|explain|explained|insist|insisted|"
    r"suggest|suggested|admit|admitted|announce|announced|reveal|revealed|write|wrote|tweet|tweeted|comment|"
    r"commented|remark|remarked|stress|stressed|believe|believes|feel|feels|reply|replied|respond|responded|"
    r"answer|answered|promise|promised|pledge|pledged|have to say|had to say|has to say|say in response|"
    r"concede|conceded|acknowledge|acknowledged|forecast|expect|expects|expected"
)
_OBJECTS = r"(?:(?:to\s+)?(?:[\w.'’-]+\s+){0,4}?)"  # "tell reporters", "tell the Congressional committee"
_ABOUT = r"(?:about|on|of|regarding|concerning|over|as\s+to|in\s+response\s+to|when\s+asked\s+about|to)"
_ASPECTS = (
    r"reaction|response|view|views|position|stance|comment|comments|verdict|message|answer|reply|take|opinion|"
    r"assessment|explanation|argument|warning|prediction|forecast|outlook|words|thoughts|advice|criticism|"
    r"explanation|justification|defence|defense|promise|pledge|claim|assurance|remarks"
)
_PATTERNS = [
    re.compile(rf"^(?:what|which\s+\w+)\s+(?:did|does|do|has|have|had|will|would|is|was)\s+(?P<x>.+?)\s+"
               rf"(?-i:{_VERBS})\b\s*(?:{_OBJECTS}(?:{_ABOUT})\b\s*(?P<y>.*))?$", re.I),
    # No "about": what follows the verb is the topic ("What did Schlang think ChemLawn would do?").
    re.compile(rf"^(?:what|which\s+\w+)\s+(?:did|does|do|has|have|had|will|would)\s+(?P<x>.+?)\s+"
               rf"(?-i:{_VERBS})\b\s*(?P<y>.+)$", re.I),
    re.compile(rf"^what\s+(?:is|was|were|are|has\s+been|had\s+been)\s+(?P<x>.+?)(?:['’]s|['’])\s+(?:\w+\s+)?"
               rf"(?:{_ASPECTS})\b(?:\s+(?:{_ABOUT})\b\s*(?P<y>.*))?$", re.I),
    re.compile(r"^how\s+(?:did|does|do|has|have|had|would|will)\s+(?P<x>.+?)\s+(?:describe|describes|described|"
               r"characteri[sz]e|explain|assess|see|view|react|respond|justify|sum\s+up|summari[sz]e|judge|"
               r"rate|portray|defend|answer|reply|react)\b\s*(?:to\s+)?(?P<y>.*)$", re.I),
    re.compile(r"^according\s+to\s+(?P<x>[^,]+?)\s*,\s*(?P<y>.+)$", re.I),
    re.compile(r"^what\s+was\s+said\s+by\s+(?P<x>.+?)(?:\s+(?:about|on|regarding|concerning)\s+(?P<y>.+))?$", re.I),
    re.compile(rf"^did\s+(?P<x>.+?)\s+(?:say|comment|speak|talk)\s+(?:anything\s+)?(?:{_ABOUT})\s+(?P<y>.+)$", re.I),
    re.compile(rf"^what\s+(?:did|does|has|have)\s+(?P<x>.+?)\s+(?:had|have|has)\s+to\s+say\s+(?:{_ABOUT})\s+(?P<y>.+)$", re.I),
]
# A follow-up that only changes the topic: "What about the letter?", "And on sanctions?"
_TOPIC_ONLY = re.compile(r"^(?:(?:what|how)\s+about|and\s+(?:about|on|regarding)|about|on)\s+(?P<y>.+)$", re.I)
_OPENER = re.compile(r"^(?:and|but|so|also|then|ok|okay|now|well)\b[,\s]*", re.I)
_PRONOUNS = {"he", "she", "they", "it", "him", "her", "them"}
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


class QuotesMissing(QAError):
    """The index was written before quote extraction."""


@dataclass(frozen=True)
class SpeakerQuestion:
    speaker: str  # the speaker to look up: "Sanders" (for "she", taken from the conversation)
    topic: str  # Y, "" when the question names none ("What did Sanders say?")
    asked_as: str  # the speaker as the question writes it: "Sanders", "she"


def parse_speaker_question(question: str, history: Iterable[Any] = ()) -> SpeakerQuestion | None:
    """The speaker and topic of a question asking for someone's words, or None."""
    previous = user_questions(history)[-MAX_HISTORY:]
    text = _OPENER.sub("", " ".join(question.split())).rstrip(" ?.!")
    for pattern in _PATTERNS:
        m = pattern.match(text)
        if not m:
            continue
        speaker = _clean_speaker(m.group("x"))
        if speaker is None:
            continue
        topic = _clean_topic(m.group("y") or "")
        if speaker.lower() in _PRONOUNS:
            earlier = _earlier_speaker(previous)
            return SpeakerQuestion(earlier, topic, speaker) if earlier else None
        return SpeakerQuestion(speaker, topic, speaker)
    m = _TOPIC_ONLY.match(text)
    if m and previous:
        earlier = _earlier_speaker(previous)
        if earlier:
            return SpeakerQuestion(earlier, _clean_topic(m.group("y")), "")
    return None


def _earlier_speaker(previous: list[str]) -> str | None:
    for i in range(len(previous) - 1, -1, -1):
        parsed = parse_speaker_question(previous[i], previous[:i])
        if parsed is not None:
            return parsed.speaker
    return None


def _clean_speaker(x: str) -> str | None:
    words = _WORD.findall(x)
    if not words or len(words) > 8:
        return None
    if len(words) == 1 and words[0].lower() in _PRONOUNS:
        return words[0].lower()
    # A speaker is named (a capitalised word after the first) or a role ("the minister").
    named = any(w[:1].isupper() for w in words) or any(w.lower() in ROLE_NOUNS for w in words)
    if not named or not name_key(x):
        return None
    return " ".join(x.split()).strip(" ,")


def _clean_topic(y: str) -> str:
    return " ".join(y.split()).strip(" ,?.!")


# ---- lexical features --------------------------------------------------------------------------


def term_weight(topic: set[str], text: str) -> float:
    """The topic's words in text, each counting tf / (tf + 1): a word said twice weighs more, within bounds."""
    if not topic:
        return 0.0
    counts: dict[str, int] = {}
    for w in _WORD.findall(text):
        word = stem(w)
        if word in topic:
            counts[word] = counts.get(word, 0) + 1
    return 2 * sum(tf / (tf + 1) for tf in counts.values()) / len(topic) if counts else 0.0


def overlap(topic: set[str], text: str) -> float:
    """Share of the topic's content words found in text."""
    if not topic:
        return 0.0
    return len(topic & content_stems(text)) / len(topic)


# ---- the index's quotes ----------------------------------------------------------------------


class QuoteBook:
    """The quotes of an IndexStore, found by speaker (qa.quotes.speaker_keys). SpeakerAnswerer
    reads the index only through a book: its articles, quotes, chunks and their vectors."""

    missing = "this index has no quotes (it was built before quote extraction): run `qa index upgrade`"

    def __init__(self, store):
        self.store = store
        self.by_key: dict[str, list[Quote]] = {}
        for quotes in (store.quotes or {}).values():
            for quote in quotes:
                for key in speaker_keys(quote):
                    self.by_key.setdefault(key, []).append(quote)
        self._chunks: dict[str, list] | None = None

    @staticmethod
    def of(store) -> QuoteBook:
        """The book for this store: in memory, or read from a server-side store (qa.index.milvus)."""
        return LiveQuoteBook(store) if hasattr(store, "quotes_with_speakers") else QuoteBook(store)

    @property
    def available(self) -> bool:
        return self.store.quotes is not None

    @property
    def articles(self):
        return self.store.articles

    def quotes_of(self, article_id: str) -> list[Quote]:
        return (self.store.quotes or {}).get(article_id, [])

    def _keyed(self, keys: Sequence[str]) -> list[Quote]:
        return [quote for key in keys for quote in self.by_key.get(key, ())]

    def find(self, speaker: str, filters: Filters | None = None) -> list[Quote]:
        """Every quote whose speaker `speaker` names, in the articles the filters allow."""
        words = name_key(speaker)
        if not words:
            return []
        seen: set[tuple[str, int]] = set()
        found: list[Quote] = []
        for quote in self._keyed((words[-1], words[0])):
            if (quote.article_id, quote.start) in seen or not speaker_matches(speaker, quote):
                continue
            seen.add((quote.article_id, quote.start))
            if filters is not None and filters.active and not _allowed(self.articles[quote.article_id], filters):
                continue
            found.append(quote)
        return found

    def chunks_of(self, article_id: str) -> list:
        """The article's chunks in text order."""
        if self._chunks is None:
            self._chunks = {}
            for chunk in self.store.chunks:
                self._chunks.setdefault(chunk.article_id, []).append(chunk)
        return self._chunks.get(article_id, [])

    def chunk_at(self, article_id: str, start: int, end: int):
        """The chunk that holds text[start:end] (the first that holds most of it)."""
        chunks = self.chunks_of(article_id)
        best, best_cover = None, -1
        i = max(0, bisect.bisect_right([c.start for c in chunks], start) - 1)
        for chunk in chunks[max(0, i - 1) : i + 3]:
            cover = min(end, chunk.end) - max(start, chunk.start)
            if cover > best_cover:
                best, best_cover = chunk, cover
        return best

    def chunk_vectors(self, quotes: list[Quote]) -> np.ndarray:
        """The stored vector of each quote's chunk (zeros where none holds it)."""
        out = np.zeros((len(quotes), self.store.dim), dtype=np.float32)
        for i, quote in enumerate(quotes):
            chunk = self.chunk_at(quote.article_id, quote.start, quote.end)
            if chunk is not None:
                out[i] = self.store.vectors.reconstruct(int(chunk.id))
        return out


class LiveQuoteBook(QuoteBook):
    """The quotes of a server-side store (qa.index.milvus.MilvusStore), read by query: `available`
    (the first lookup of every speaker question) takes the store's live generation, and the
    question's later lookups read that same generation, so replicas see updates at once."""

    missing = "this Milvus store has no quotes (it was built before they were stored there): add them with " \
              "`qa index upgrade` (no re-embedding)"

    def __init__(self, store):
        self.store = store
        self._snap = None
        self._articles = None
        self._spans: dict[str, list] = {}

    @property
    def available(self) -> bool:
        return self.store.has_quotes(self._snapshot(fresh=True))

    def _snapshot(self, fresh: bool = False):
        if fresh or self._snap is None:
            self._snap = self.store.snapshot()
            self._articles = self.store.article_map(self._snap)
            self._spans = {}
        return self._snap

    @property
    def articles(self):
        self._snapshot()
        return self._articles

    def _keyed(self, keys: Sequence[str]) -> list[Quote]:
        quotes = self.store.quotes_with_speakers(self._snapshot(), keys)
        self._chunks_of({q.article_id for q in quotes})  # their articles and chunks: one query each, not one per quote
        return quotes

    def quotes_of(self, article_id: str) -> list[Quote]:
        return self.store.quotes_of(self._snapshot(), article_id)

    def chunks_of(self, article_id: str) -> list:
        self._chunks_of([article_id])
        return self._spans[article_id]

    def _chunks_of(self, article_ids) -> None:
        missing = [a for a in article_ids if a not in self._spans]
        if not missing:
            return
        snap = self._snapshot()
        self._articles.fetch(missing)
        for article_id, spans in self.store.chunk_spans(snap, missing).items():
            text = self.articles[article_id].text
            self._spans[article_id] = [Chunk(i, article_id, text[s:e], s, e) for i, s, e in spans]

    def chunk_vectors(self, quotes: list[Quote]) -> np.ndarray:
        chunks = [self.chunk_at(q.article_id, q.start, q.end) for q in quotes]
        stored = self.store.chunk_vectors(self._snapshot(), [c.id for c in chunks if c is not None])
        out = np.zeros((len(quotes), self.store.dim), dtype=np.float32)
        for i, chunk in enumerate(chunks):
            if chunk is not None and chunk.id in stored:
                out[i] = stored[chunk.id]
        return out


def mentions(article: Article, speaker: str) -> bool:
    """Does the article name the speaker (the last word of the name, or a role noun, as a word)?"""
    words = name_key(speaker)
    if not words:
        return False
    return re.search(rf"\b{re.escape(words[-1])}\b", article.text, re.IGNORECASE) is not None


def _allowed(article: Article, filters: Filters) -> bool:
    from .retrieve import _matches  # the retriever's own filter rule, so both paths agree

    return _matches(article, filters)


# ---- ranking and answering ---------------------------------------------------------------------


@dataclass(frozen=True)
class RankedQuote:
    quote: Quote
    article: Article
    score: float
    start: int  # the answer's words in the article: the whole quote or its matching sentences
    end: int
    features: dict[str, float] = field(default_factory=dict)  # by Weights field: what the score adds up

    @property
    def text(self) -> str:
        return self.article.text[self.start : self.end]

    def to_dict(self) -> dict[str, Any]:
        """The JSON of `qa quotes --json` and GET /api/quotes."""
        q, a = self.quote, self.article
        return {
            "text": self.text, "speaker": q.speaker, "speaker_as_written": q.speaker_as_written, "cue": q.cue,
            "kind": q.kind, "role": q.role, "score": round(float(self.score), 4), "article_id": a.id,
            "title": a.title, "url": a.url, "date": a.published, "source": a.source,
            "start": self.start, "end": self.end,
        }


@dataclass(frozen=True)
class Weights:
    """How the features add up to a quote's relevance to the topic. Tuned with benchmarks/tune_quotes.py
    on the 113 development questions (benchmarks/dev): 84% right at thresholds 0.3-0.475 (0.4 taken)."""

    dense: float = 0.4  # cosine of the topic to the quote's best sentence(s)
    lexical: float = 0.3  # the topic's words in the quote (repeats count, saturating)
    context: float = 0.2  # the topic's words in the paragraph around the quote
    reader: float = 0.3  # the reader's best span score inside the quote
    retrieved: float = 0.05  # the quote's article was among the retrieved passages
    length: float = 0.0  # log length of the answer, up to FULL_LENGTH_WORDS: substance over a bare remark
    direct: float = 0.2  # a direct quotation rather than reported speech: the speaker's own words

    def score(self, features: dict[str, float]) -> float:
        return sum(getattr(self, name) * value for name, value in features.items())


class SpeakerAnswerer:
    def __init__(self, store, embedder, threshold: float = 0.4, candidates: int = 4, margin: float = 0.0,
                 weights: Weights = Weights()):
        self.store = store
        self.embedder = embedder
        self.threshold = threshold
        self.candidates = candidates
        self.margin = margin
        self.weights = weights

    @classmethod
    def from_settings(cls, settings, store, embedder) -> SpeakerAnswerer:
        # margin: the reader's span over its "no answer" score (0, as the old QA_NULL_THRESHOLD default);
        # whether a non-quote answer is found is QAService's calibrated decision (docs/answers.md).
        return cls(store, embedder, settings.quote_threshold, settings.quote_candidates)

    @cached_property
    def book(self) -> QuoteBook:
        return QuoteBook.of(self.store)

    def answer(self, question: str, history: Sequence[Any], passages: Sequence[Passage], read,
               filters: Filters | None = None) -> Answer | None:
        """The quote that answers a speaker question; None for any other question, and for a speaker
        question without a quote on the topic whose reader answer may stand (read on as usual).

        The reader's answer to "what did X say about Y?" may not stand, and the answer is "not
        found", when its article does not mention X (those cannot be X's words) or when it lies
        inside one of X's quotes, all of which were just judged off the topic."""
        asked = parse_speaker_question(question, history)
        if asked is None or not self.book.available:
            return None
        ranked = self.rank(asked, passages, read, filters)
        if ranked and ranked[0].score >= self.threshold:
            return self._compose(question, ranked)
        if read is None or not read.best_is_answer(self.margin):
            return None
        best = read.spans[0]
        article = best.passage.article
        inside_a_quote = any(q.article_id == article.id and q.start <= best.article_end and best.article_start <= q.end
                             for q in self.book.find(asked.speaker, filters))
        if inside_a_quote or not mentions(article, asked.speaker):
            return Answer(question, None, False, best.score)
        return None

    def rank(self, asked: SpeakerQuestion, passages: Sequence[Passage] = (), read=None,
             filters: Filters | None = None) -> list[RankedQuote]:
        """The speaker's quotes, best match to the topic first."""
        quotes = self.book.find(asked.speaker, filters)
        if not quotes:
            return []
        retrieved = {p.article.id for p in passages}
        articles = self.book.articles
        query = asked.topic or asked.speaker
        topic = content_stems(asked.topic) - content_stems(asked.speaker)
        # Cheap first pass over all the speaker's quotes: lexical overlap, and the stored vector of
        # the quote's chunk against the topic's.
        qvec = self.embedder.encode([query])[0]
        vectors = self.book.chunk_vectors(quotes)
        first = []
        for quote, vec in zip(quotes, vectors):
            article = articles[quote.article_id]
            words = article.text[quote.start : quote.end]
            pre = 0.5 * overlap(topic, words) + 0.2 * overlap(topic, _context(article.text, quote)) \
                + 0.3 * float(vec @ qvec) + 0.05 * (quote.article_id in retrieved)
            first.append((pre, quote))
        first.sort(key=lambda x: -x[0])
        shortlist = [q for _, q in first[: self.candidates]]
        # Second pass: the embedder on each sentence of the shortlisted quotes.
        units: list[tuple[int, int, int]] = []  # (quote index, start, end) in the article
        for i, quote in enumerate(shortlist):
            units.extend((i, s, e) for s, e in _sentences(articles[quote.article_id].text, quote))
        texts = [articles[shortlist[i].article_id].text[s:e] for i, s, e in units]
        sims = self.embedder.encode(texts) @ qvec if texts else np.zeros(0)
        reader_scores = _reader_scores(read)
        ranked: list[RankedQuote] = []
        w = self.weights
        for i, quote in enumerate(shortlist):
            article = articles[quote.article_id]
            mine = [(s, e, float(sims[j])) for j, (qi, s, e) in enumerate(units) if qi == i]
            start, end, dense = _best_sentences(mine, quote)
            words = article.text[start:end]
            features = dict(
                dense=dense,
                lexical=term_weight(topic, words) if topic else 0.0,
                context=overlap(topic, _context(article.text, quote)) if topic else 0.0,
                reader=max((sc for (aid, a, b), sc in reader_scores.items()
                            if aid == quote.article_id and a >= quote.start and b <= quote.end), default=0.0),
                retrieved=float(quote.article_id in retrieved),
                length=min(1.0, float(np.log1p(len(words.split())) / np.log1p(FULL_LENGTH_WORDS))),
                direct=float(quote.kind == "direct"),
            )
            score = w.score(features)
            if topic and not features["lexical"] and not features["context"] and dense < DENSE_ALONE:
                score = 0.0  # no word of the topic in or around the quote: the reader and kind alone never answer
            ranked.append(RankedQuote(quote, article, score, start, end, features))
        ranked.sort(key=lambda r: -r.score)
        return ranked

    def search(self, speaker: str, about: str | None = None, filters: Filters | None = None,
               limit: int = 10) -> list[RankedQuote]:
        """The speaker's quotes (`qa quotes`, GET /api/quotes): best match to `about` first, or
        without `about` the newest articles first, in text order within an article."""
        if not self.book.available:
            raise QuotesMissing(self.book.missing)
        if about and about.strip():
            asked = SpeakerQuestion(speaker, " ".join(about.split()), speaker)
            ranked = SpeakerAnswerer(self.store, self.embedder, self.threshold, max(limit, self.candidates),
                                     self.margin, self.weights)
            ranked.book = self.book  # share the speaker index (built once per store)
            return ranked.rank(asked, filters=filters)[:limit]
        quotes = self.book.find(speaker, filters)
        articles = self.book.articles
        quotes.sort(key=lambda q: (articles[q.article_id].published or "", q.article_id, -q.start), reverse=True)
        return [RankedQuote(q, articles[q.article_id], 0.0, q.start, q.end) for q in quotes[:limit]]

    def _compose(self, question: str, ranked: list[RankedQuote]) -> Answer:
        best = ranked[0]
        start, end, parts = _join_split(best, self.book.quotes_of(best.quote.article_id))
        article = best.article
        first = self.book.chunk_at(article.id, start, start + 1)
        last = self.book.chunk_at(article.id, end - 1, end)
        p_start = min(start, first.start if first else start)
        p_end = max(end, last.end if last else end)
        passage = article.text[p_start:p_end]
        citation = Citation.in_article(article, passage, p_start, start - p_start, end - p_start)
        q = best.quote
        attribution = QuoteAttribution(
            speaker=q.speaker, speaker_as_written=q.speaker_as_written, cue=q.cue, kind=q.kind, role=q.role,
            parts=tuple((s - p_start, e - p_start) for s, e in parts),
        )
        alternatives = [Alternative(r.text, min(1.0, max(0.0, r.score)), r.article.id) for r in ranked[1:]
                        if r.score >= self.threshold][:MAX_ALTERNATIVES]
        return Answer(question, article.text[start:end], True, min(1.0, max(0.0, best.score)), [citation],
                      alternatives, attribution)


def _context(text: str, quote: Quote, width: int = 200) -> str:
    """The words around a quote within its paragraph(s): what leads to it and its attribution."""
    before = text[max(0, quote.start - width) : quote.start]
    after = text[quote.end : quote.end + width // 2]
    before = PARAGRAPH_BREAK.split(before)[-1]
    after = PARAGRAPH_BREAK.split(after)[0]
    return before + " " + after


def _sentences(text: str, quote: Quote) -> list[tuple[int, int]]:
    """The quote's sentences as article offsets (the whole quote when it is short)."""
    words = text[quote.start : quote.end]
    if len(words.split()) <= LONG_QUOTE_WORDS:
        return [(quote.start, quote.end)]
    spans = [(quote.start + s, quote.start + e) for s, e in sentence_spans(words)]
    return spans or [(quote.start, quote.end)]


def _best_sentences(units: list[tuple[int, int, float]], quote: Quote) -> tuple[int, int, float]:
    """The best-matching sentence and its neighbours that match almost as well: (start, end, score)."""
    if not units:
        return quote.start, quote.end, 0.0
    best = max(range(len(units)), key=lambda i: units[i][2])
    top = units[best][2]
    lo = hi = best
    while lo > 0 and units[lo - 1][2] >= SENTENCE_KEEP * top:
        lo -= 1
    while hi + 1 < len(units) and units[hi + 1][2] >= SENTENCE_KEEP * top:
        hi += 1
    start, end = units[lo][0], units[hi][1]
    if len(units) > 1:  # sentence ends keep their full stop except the last, as the quote does
        end = min(end, quote.end)
    return start, end, top


def _join_split(best: RankedQuote, article_quotes: list[Quote]) -> tuple[int, int, list[tuple[int, int]]]:
    """A quote cut off by its attribution mid-sentence ("We are," she said, "very happy") is
    answered whole: the span runs from the first to the last quoted word, and `parts` lists the
    quoted words alone."""
    q = best.quote
    text = best.article.text
    start, end = best.start, best.end
    parts = [(start, end)]
    if (start, end) != (q.start, q.end) or end >= len(text) or text[q.end : q.end + 1] != ",":
        return start, end, parts
    later = [o for o in article_quotes if o.utterance == q.utterance and o.start > q.end and o.kind == q.kind]
    if later and text[later[0].start : later[0].start + 1].islower() and "\n" not in text[q.end : later[0].start]:
        parts.append((later[0].start, later[0].end))
        end = later[0].end
    return start, end, parts


def _reader_scores(read) -> dict[tuple[str, int, int], float]:
    if read is None:
        return {}
    return {(s.passage.article.id, s.article_start, s.article_end): s.score for s in read.spans}
