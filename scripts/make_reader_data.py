#!/usr/bin/env python
"""Generate extractive QA training pairs from Reuters-21578 (SQuAD-format JSONL) for the reader.

    python scripts/make_reader_data.py --output runs/data/reuters_qa.jsonl

Two kinds of question, both deterministic for a given --seed:

- Recurring spans, cloze-translated (after "Unsupervised QA by cloze translation", Lewis et
  al. 2019, and Splinter's recurring-span selection, Ram et al. 2021): a name, number or date
  that occurs in two sentences of an article. The first sentence becomes the question, the span
  replaced by a wh-phrase ("Who said it would cut crude prices?", "... by how much?"); the
  sentence is removed from the context, so the answer is the *other* mention and the reader has
  to match the rest of the question against a different sentence, as in human-written questions.
  Pairs whose sentences share fewer than --min-overlap content words are dropped (no evidence).
- Speaker questions ("What did X say about Y?" → the quoted or reported words) from the quotes
  that qa.quotes extracts. Made only where qa.quotes exists (the quotes work); otherwise the
  script says so and writes the cloze questions alone.

Articles are cleaned (Reuters' hard line wraps joined, the "Reuter" sign-off dropped) and
articles that are mostly tables are skipped. Never run this on the BBC corpus: it is held out
for evaluation. The output holds corpus text: keep it under runs/ (git-ignored), never commit it.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for path in (REPO, REPO / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

MONTHS = ("January February March April May June July August September October November December "
          "Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec").split()
WEEKDAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
MONEY_UNITS = "dlrs dlr dollars cts cents yen marks francs pounds stg lire guilders rupees pesos".split()
COUNT_UNITS = ("tonnes tons barrels bpd shares units ounces bushels acres employees workers jobs people "
               "members vessels ships cars").split()
SCALE = r"(?:mln|billion|bln|trillion|million|thousand)"
NUMBER = re.compile(
    rf"\b\d[\d,]*(?:\.\d+)?(?: {SCALE})?(?: (?:{'|'.join(MONEY_UNITS + COUNT_UNITS)}|pct|per cent|percent))?\b"
)
DATE = re.compile(
    rf"\b(?:(?:{'|'.join(MONTHS)})\.? \d{{1,2}}(?:, \d{{4}})?|(?:{'|'.join(MONTHS[:12])}) \d{{4}}|"
    rf"(?:{'|'.join(WEEKDAYS)})|(?:19|20)\d\d)\b"
)
# A name: capitalised words, possibly joined by "of", "and", "&", "for", "de" ("Bank of Japan").
CAP = r"(?:[A-Z][A-Za-z'\-.]*[A-Za-z]|[A-Z]{2,}|[A-Z])"
NAME = re.compile(rf"\b{CAP}(?:(?: (?:of|and|&|for|de|the))? {CAP})*\b")
NAME_STOP = set("""The A An It He She They We I This That These Those Its His Her Their Our But And Or If In On At
    For From By With As To Of Under Over After Before Since While When Where What Who Which However Also
    Reuter Reuters REUTER Mr Mrs Ms Dr There Here Some Many Most All Both Each Other Such No Not One Two Three
    Four Five Six Seven Eight Nine Ten Last Next First Second Third New Total Net Shr Revs Qtr Year Oper
    Avg Shrs Mths NOTE Note Company""".split())
NAME_SUFFIX = re.compile(r"(?:,? (?:Inc|Corp|Co|Ltd|Plc|PLC|LP|L\.P|AG|SA|NV|Cos|Corporation|Company|Limited)\.?)+$")
PERSON_CONTEXT = re.compile(r"^(?:,[^,]{0,60},)? (?:said|says|told|added|declined|estimated|predicted|noted)\b")
STOPWORDS = set("""a an the and or but if of in on at to for from by with as is are was were be been being it its
    this that these those he she they we i you his her their our said says say told added would will could should
    may might can has have had do does did not no than then there which who whom what when where why how also
    about after before over under into out up down more most less last first new one two per pct mln dlrs year
    company""".split())
WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*|\d[\d,.]*")


@dataclass(frozen=True)
class Mention:
    start: int  # character offsets in the cleaned article text
    end: int
    kind: str  # "name" | "number" | "date"
    key: str  # what two mentions of one thing share (lower case, company suffix dropped)
    sentence: int


def clean_text(text: str) -> str:
    """Reuters body → paragraphs (blank line between), hard line wraps joined, sign-off dropped."""
    # <TICKER> tags go; <Private Co Ltd> keeps the name without the brackets.
    text = re.sub(r" ?<[A-Z0-9.\-]{1,12}>", "", text)
    text = re.sub(r"<([^<>\n]{1,80})>", r"\1", text)
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s+", text.strip())]
    paragraphs = [p for p in paragraphs if p and p.lower() not in {"reuter", "reuters"}]
    if paragraphs:
        paragraphs[-1] = re.sub(r"\s*\bReuter\s*$", "", paragraphs[-1], flags=re.I)
    return "\n\n".join(p for p in paragraphs if p)


def is_prose(text: str) -> bool:
    """Mostly words, not a table of figures (Reuters has many)."""
    tokens = text.split()
    if len(tokens) < 40:
        return False
    alpha = sum(1 for t in tokens if t[:1].isalpha())
    return alpha / len(tokens) >= 0.7


def find_mentions(text: str, sentences: list[tuple[int, int]]) -> list[Mention]:
    mentions: list[Mention] = []
    for s, (a, b) in enumerate(sentences):
        taken: list[tuple[int, int]] = []
        sentence = text[a:b]
        for kind, pattern in (("date", DATE), ("number", NUMBER), ("name", NAME)):
            for m in pattern.finditer(sentence):
                start, end = a + m.start(), a + m.end()
                surface = m.group()
                if kind == "name":
                    words = surface.split()
                    while words and words[0] in NAME_STOP:  # "The Bank of Japan" → "Bank of Japan"
                        start += len(words[0]) + 1
                        words = words[1:]
                    while words and words[-1] in {"of", "and", "&", "for", "de", "the"}:
                        words = words[:-1]
                    surface = re.sub(r"'s?$", "", " ".join(words))  # "Brazil's" → "Brazil"
                    end = start + len(surface)
                    if not words or surface in NAME_STOP or surface.isupper() and len(surface) > 5:
                        continue
                elif kind == "number" and re.fullmatch(r"[\d,.]+", surface) and len(surface) < 2:
                    continue  # a bare digit ("3") recurs by chance
                if any(start < e and s0 < end for s0, e in taken):
                    continue
                taken.append((start, end))
                key = NAME_SUFFIX.sub("", surface).lower() if kind == "name" else surface.lower()
                if key:
                    mentions.append(Mention(start, end, kind, key, s))
    return mentions


def resolve_short_names(mentions: list[Mention]) -> list[Mention]:
    """A one-word name that is the first or last word of exactly one longer name in the article
    ("Harlow" of "Harlow Mining Corp", "Whitfield" of "Dana Whitfield") gets that name's key."""
    longer: dict[str, set[str]] = defaultdict(set)
    for m in mentions:
        words = m.key.split()
        if m.kind == "name" and len(words) > 1:
            longer[words[0]].add(m.key)
            longer[words[-1]].add(m.key)
    return [Mention(m.start, m.end, m.kind, next(iter(longer[m.key])), m.sentence)
            if m.kind == "name" and len(longer.get(m.key, ())) == 1 else m for m in mentions]


def wh_phrase(mention: Mention, text: str) -> str:
    surface = text[mention.start : mention.end]
    if mention.kind == "date":
        return "when"
    if mention.kind == "number":
        if any(surface.endswith(u) for u in ("pct", "per cent", "percent")):
            return "what percentage"
        if any(surface.endswith(u) for u in MONEY_UNITS):
            return "how much"
        if any(surface.endswith(u) for u in COUNT_UNITS):
            return "how many " + surface.rsplit(" ", 1)[-1]
        return "how many"
    after = text[mention.end : mention.end + 80]
    return "who" if PERSON_CONTEXT.match(after) else "what"


def content_words(text: str) -> set[str]:
    return {w.lower() for w in WORD.findall(text) if w.lower() not in STOPWORDS and len(w) > 2}


def cloze_question(text: str, sentence: tuple[int, int], mention: Mention) -> str | None:
    """The sentence as a question: the mention replaced by its wh-phrase, fronted when it starts
    the sentence ("Who said ...?"), left in place otherwise ("... fell by how much?")."""
    a, b = sentence
    before = text[a : mention.start].strip()
    after = text[mention.end : b].strip().rstrip(".;:").strip()
    wh = wh_phrase(mention, text)
    if before.lower() in {"", "the"}:
        question = f"{wh[0].upper()}{wh[1:]} {after}"
    else:
        question = f"{before[0].upper()}{before[1:]} {wh} {after}".strip()
    question = " ".join(question.replace(" ,", ",").split()).rstrip(",") + "?"
    n = len(question.split())
    return question if 5 <= n <= 40 else None


def clip_context(text: str, sentences: list[tuple[int, int]], keep: set[int], focus: int,
                 max_words: int) -> tuple[str, dict[int, int]]:
    """The kept sentences nearest the focus sentence, in order, at most max_words words, with
    paragraph breaks kept; returns the context and the old → new offset shift per kept sentence."""
    order = sorted(keep, key=lambda s: (abs(s - focus), s))
    chosen, words = [], 0
    for s in order:
        n = len(text[sentences[s][0] : sentences[s][1]].split())
        if chosen and words + n > max_words:
            continue
        chosen.append(s)
        words += n
    parts, shift, position = [], {}, 0
    for i, s in enumerate(sorted(chosen)):
        a, b = sentences[s]
        if i:
            separator = "\n\n" if "\n\n" in text[sentences[prev][1] : a] else " "
            parts.append(separator)
            position += len(separator)
        shift[s] = position - a
        parts.append(text[a:b])
        position += b - a
        prev = s
    return "".join(parts), shift


def cloze_examples(article_id: str, title: str, text: str, rng: random.Random, per_article: int,
                   min_overlap: int, max_words: int) -> list[dict]:
    """Recurring-span questions of one cleaned article (see the module docstring)."""
    from qa.chunk import sentence_spans

    sentences = sentence_spans(text)
    if len(sentences) < 3:
        return []
    by_key: dict[str, list[Mention]] = defaultdict(list)
    for m in resolve_short_names(find_mentions(text, sentences)):
        by_key[m.key].append(m)
    words = [content_words(text[a:b]) for a, b in sentences]
    candidates = []
    for key, mentions in by_key.items():
        if len({m.sentence for m in mentions}) < 2:
            continue
        for q in mentions:
            others = [m for m in mentions if m.sentence != q.sentence]
            key_words = content_words(key)
            best = max(others, key=lambda m: (len((words[q.sentence] & words[m.sentence]) - key_words), -m.start))
            overlap = len((words[q.sentence] & words[best.sentence]) - key_words)
            if overlap >= min_overlap:
                candidates.append((q, best, overlap))
    rng.shuffle(candidates)
    examples, used_sentences = [], set()
    for q, answer, _ in candidates:
        if len(examples) >= per_article:
            break
        if q.sentence in used_sentences:
            continue
        question = cloze_question(text, sentences[q.sentence], q)
        if question is None:
            continue
        keep = set(range(len(sentences))) - {q.sentence}
        context, shift = clip_context(text, sentences, keep, answer.sentence, max_words)
        if answer.sentence not in shift:
            continue
        start = answer.start + shift[answer.sentence]
        gold = text[answer.start : answer.end]
        # Every other kept mention of the same thing is a correct answer too.
        answers = [{"text": gold, "start": start}] + [
            {"text": text[m.start : m.end], "start": m.start + shift[m.sentence]}
            for m in by_key[q.key] if m.sentence in shift and m is not answer
        ]
        assert context[start : start + len(gold)] == gold
        used_sentences.add(q.sentence)
        examples.append({
            "id": f"{article_id}-cloze-{len(examples)}", "title": "", "context": context,
            "question": question, "answers": answers, "kind": f"cloze-{q.kind}", "article": article_id,
        })
    return examples


def speaker_examples(article_id: str, text: str, quotes, max_words: int) -> list[dict]:
    """"What did X say about Y?" → the quoted (or reported) words, from qa.quotes' Quote records
    (start, end, speaker, kind). Y is the quote's first name-like phrase or longest content word
    that the speaker's other quotes lack; a speaker's only quote gets "What did X say?"."""
    from qa.chunk import sentence_spans

    sentences = sentence_spans(text)
    by_speaker: dict[str, list] = defaultdict(list)
    for quote in quotes:
        if quote.speaker and len(text[quote.start : quote.end].split()) >= 4:
            by_speaker[quote.speaker].append(quote)
    examples = []
    for speaker, said in by_speaker.items():
        if speaker.lower() in {"he", "she", "they", "it", "we", "i"}:
            continue  # unresolved pronoun
        for quote in said:
            words = text[quote.start : quote.end]
            other = set().union(*(content_words(text[o.start : o.end]) for o in said if o is not quote))
            names = [m.group() for m in NAME.finditer(words) if m.group() not in NAME_STOP
                     and m.group().lower() not in other]
            topics = names or sorted(content_words(words) - other - content_words(speaker), key=len, reverse=True)
            if len(said) > 1 and not topics:
                continue
            question = f"What did {speaker} say" + (f" about {topics[0]}?" if len(said) > 1 else "?")
            focus = next((i for i, (a, b) in enumerate(sentences) if a <= quote.start < b), 0)
            context, shift = clip_context(text, sentences, set(range(len(sentences))), focus, max_words)
            first = next((i for i, (a, b) in enumerate(sentences) if a <= quote.start < b), None)
            last = next((i for i, (a, b) in enumerate(sentences) if a < quote.end <= b), None)
            if first is None or last is None or any(i not in shift for i in range(first, last + 1)):
                continue  # the quote does not fit in the clipped context
            start = quote.start + shift[first]
            if context[start : start + len(words)] != words:
                continue  # the quote spans a paragraph break that clipping changed
            examples.append({
                "id": f"{article_id}-speaker-{len(examples)}", "title": "", "context": context, "question": question,
                "answers": [{"text": words, "start": start}], "kind": f"speaker-{quote.kind}", "article": article_id,
            })
    return examples


def quote_extractor():
    """qa.quotes.extract_quotes where the quotes work is present, else None."""
    try:
        from qa.quotes import extract_quotes
    except ImportError:
        return None
    return extract_quotes


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--output", type=Path, required=True, help="JSONL file to write (keep it under runs/)")
    p.add_argument("--reuters", type=Path, default=None,
                   help="folder of Reuters-21578 .sgm files [default: ../shared/data/corpora/reuters21578/data]")
    p.add_argument("--max-articles", type=int, default=None, help="use a seeded sample of N articles")
    p.add_argument("--per-article", type=int, default=2, help="cloze questions per article at most")
    p.add_argument("--min-overlap", type=int, default=2,
                   help="content words the question's and the answer's sentences must share")
    p.add_argument("--max-context-words", type=int, default=220, help="context clipped around the answer")
    p.add_argument("--no-speakers", action="store_true", help="no speaker questions even where qa.quotes exists")
    p.add_argument("--seed", type=int, default=13)
    args = p.parse_args(argv)
    if "bbc" in str(args.reuters or "").lower():
        p.error("the BBC corpus is held out for evaluation: never generate training data from it")
    return args


def main(argv: list[str] | None = None) -> None:
    from corpora import REUTERS_DIR, reuters_articles
    from tqdm.auto import tqdm

    from qa.records import Article

    args = parse_args(argv)
    articles = reuters_articles(args.reuters or REUTERS_DIR).articles
    if not articles:
        sys.exit(f"error: no Reuters articles in {args.reuters or REUTERS_DIR}")
    rng = random.Random(args.seed)
    if args.max_articles is not None and args.max_articles < len(articles):
        articles = rng.sample(articles, args.max_articles)
    extract = None if args.no_speakers else quote_extractor()
    if extract is None and not args.no_speakers:
        print("note: qa.quotes is not available (the quotes work has not been merged): no speaker questions",
              file=sys.stderr)
    counts: dict[str, int] = defaultdict(int)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_name(args.output.name + ".tmp")
    seen: set[str] = set()
    with open(tmp, "w", encoding="utf-8") as out:
        for article in tqdm(articles, desc="articles", unit="article", file=sys.stderr):
            text = clean_text(article.text)
            if not is_prose(text) or text in seen:  # Reuters repeats some stories verbatim
                continue
            seen.add(text)
            rows = cloze_examples(article.id, article.title, text, rng, args.per_article, args.min_overlap,
                                  args.max_context_words)
            if extract is not None:
                quotes = extract(Article(id=article.id, title=article.title, text=text))
                rows += speaker_examples(article.id, text, quotes, args.max_context_words)
            for row in rows:
                counts[row["kind"]] += 1
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(args.output)
    print(json.dumps({"output": str(args.output), "examples": sum(counts.values()), **dict(sorted(counts.items()))}))


if __name__ == "__main__":
    main()
