"""Quotes: extraction quality and speed, the development index, and speaker-question latency.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_quotes.py extraction
        precision and recall of (speaker, quote span) pairs against the hand labels in
        benchmarks/dev/quotes_extraction.jsonl (Reuters-21578, our own articles in
        tests/data/quotes_articles.jsonl, the sample article), by kind of quote
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_quotes.py speed
        extraction time per article over all of Reuters-21578 and the BBC corpus
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_quotes.py dev-index DIR
        builds the development index: Reuters-21578 NEWID 1-1000 (file 0: ~950 articles), our own articles and
        the sample; then: qa eval quotes benchmarks/dev/quotes_reuters.jsonl --index DIR
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_quotes.py latency [--index DIR]
        p50/p95 of speaker questions against ordinary questions (benchmarks/bbc_questions.jsonl) on
        the full BBC index (built in a temporary folder unless --index names one). The speaker
        questions are made at run time from the index's most quoted speakers and the headlines of
        their articles; nothing is tuned on them (the BBC corpus is held out), they only time the path.

Run timings under `flock /tmp/qa-bench.lock` so two timing runs never overlap.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.corpora import bbc_articles, reuters_articles  # noqa: E402

LABELS = ROOT / "benchmarks" / "dev" / "quotes_extraction.jsonl"
OWN_ARTICLES = ROOT / "tests" / "data" / "quotes_articles.jsonl"
SAMPLE = ROOT / "data" / "sample"
SPAN_IOU = 0.7  # a predicted span matches a labelled one when they overlap this much (characters)
DEV_REUTERS_MAX_ID = 1000


def _find(text: str, words: str, start: int = 0) -> re.Match | None:
    pattern = r"\s+".join(re.escape(w) for w in words.split())
    return re.compile(pattern).search(text, start)


def labelled_articles() -> dict:
    """The articles the labels refer to: "sample", own ids, "reuters-N"."""
    from qa.ingest import ingest_paths

    wanted = {json.loads(line)["doc"] for line in LABELS.read_text(encoding="utf-8").splitlines() if line.strip()}
    articles = {a.id: a for a in ingest_paths([OWN_ARTICLES]).articles if a.id in wanted}
    articles["sample"] = ingest_paths([SAMPLE]).articles[0]
    articles.update({a.id: a for a in reuters_articles().articles if a.id in wanted})
    return articles


def extraction() -> None:
    from qa.quotes import extract_quotes, speaker_matches

    articles = labelled_articles()
    gold: dict[str, list[dict]] = {}
    for line in LABELS.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        label = json.loads(line)
        text = articles[label["doc"]].text
        first = _find(text, label["from"])
        last = _find(text, label["to"], first.start()) if first else None
        if not first or not last:
            sys.exit(f"label not found in {label['doc']}: {label['from']!r} … {label['to']!r}")
        gold.setdefault(label["doc"], []).append(label | {"start": first.start(), "end": last.end()})
    rows = Counter()
    misses = []
    for doc, labels in gold.items():
        article = articles[doc]
        predicted = extract_quotes(article)
        used: set[int] = set()
        for label in labels:
            rows[(label["kind"], "gold")] += 1
            for i, q in enumerate(predicted):
                if i in used:
                    continue
                overlap = min(q.end, label["end"]) - max(q.start, label["start"])
                union = max(q.end, label["end"]) - min(q.start, label["start"])
                if overlap / union >= SPAN_IOU and any(speaker_matches(s, q) or speaker_matches(q.speaker, _as_quote(q, s))
                                                       for s in label["speaker"].split("|")):
                    used.add(i)
                    rows[(label["kind"], "matched")] += 1
                    break
            else:
                misses.append(f"missed {doc} {label['kind']} {label['speaker']}: {label['from']!r}")
        for i, q in enumerate(predicted):
            rows[(q.kind, "predicted")] += 1
            rows[(q.kind, "correct")] += i in used
            if i not in used:
                misses.append(f"wrong  {doc} {q.kind} {q.speaker}: {article.text[q.start:q.start + 40]!r}")
    print(f"\n{'kind':<10} | gold | predicted | precision | recall")
    print("-" * 50)
    for kind in ("direct", "reported", "all"):
        pick = (lambda k: True) if kind == "all" else (lambda k, kind=kind: k == kind)
        g = sum(v for (k, what), v in rows.items() if what == "gold" and pick(k))
        p = sum(v for (k, what), v in rows.items() if what == "predicted" and pick(k))
        c = sum(v for (k, what), v in rows.items() if what == "correct" and pick(k))
        m = sum(v for (k, what), v in rows.items() if what == "matched" and pick(k))
        print(f"{kind:<10} | {g:4d} | {p:9d} | {c / p if p else 0:9.3f} | {m / g if g else 0:6.3f}")
    print(f"\n{len(gold)} articles; a pair matches when the speaker matches and the spans overlap ≥ {SPAN_IOU:.0%}")
    if os.environ.get("SHOW_MISSES"):
        print("\n".join(misses))


def _as_quote(q, speaker: str):
    """The label's speaker as a quote record, to test the match in the other direction."""
    from dataclasses import replace

    return replace(q, speaker=speaker, aliases=(), role=None)


def speed() -> None:
    from qa.quotes import extract_quotes

    print(f"\n{'corpus':<14} | articles | quotes (direct) | ms/article | total s")
    print("-" * 64)
    for name, load in (("Reuters-21578", lambda: reuters_articles().articles), ("BBC", lambda: bbc_articles().articles)):
        articles = load()
        start = time.perf_counter()
        quotes = [q for a in articles for q in extract_quotes(a)]
        took = time.perf_counter() - start
        direct = sum(q.kind == "direct" for q in quotes)
        print(f"{name:<14} | {len(articles):8d} | {len(quotes):6d} ({direct:5d}) | {1000 * took / len(articles):10.2f} | {took:7.1f}")


def dev_index(index_dir: Path) -> None:
    from qa.chunk import ChunkSpec
    from qa.config import Settings
    from qa.embed import Embedder
    from qa.index import build_index
    from qa.ingest import ingest_paths

    articles = [a for a in reuters_articles().articles if int(a.id.split("-")[1]) <= DEV_REUTERS_MAX_ID]
    articles += ingest_paths([OWN_ARTICLES, SAMPLE]).articles
    settings = Settings.from_env()
    store, report = build_index(articles, index_dir, Embedder.from_settings(settings), ChunkSpec.from_settings(settings),
                                progress=True)
    print(f"{len(store.articles)} articles, {len(store.chunks)} chunks, {store.stats()['quotes']} quotes → {index_dir}")


def speaker_questions(store, n: int) -> list[str]:
    """Questions for the n most quoted named speakers, each about the headline of one of their articles."""
    from qa.conversation import STOPWORDS

    counts = Counter()
    where: dict[str, str] = {}
    for article_id, quotes in (store.quotes or {}).items():
        for q in quotes:
            if q.kind == "direct" and len(q.speaker.split()) >= 2 and q.speaker[:1].isupper():
                counts[q.speaker] += 1
                where.setdefault(q.speaker, article_id)
    questions = []
    for speaker, _ in counts.most_common(n):
        words = [w for w in re.findall(r"[A-Za-z]+", store.articles[where[speaker]].title) if w.lower() not in STOPWORDS]
        questions.append(f"What did {speaker.split()[-1]} say about {' '.join(words[:3]).lower() or 'it'}?")
    return questions


def latency(index_dir: Path | None, n: int) -> None:
    from qa.answer import QAService
    from qa.chunk import ChunkSpec
    from qa.config import Settings
    from qa.embed import Embedder
    from qa.index import build_index

    settings = Settings.from_env()
    embedder = Embedder.from_settings(settings)
    with tempfile.TemporaryDirectory() as tmp:
        if index_dir is None:
            index_dir = Path(tmp) / "index"
            start = time.perf_counter()
            build_index(bbc_articles().articles, index_dir, embedder, ChunkSpec(), progress=True)
            print(f"built the BBC index in {time.perf_counter() - start:.0f} s")
        service = QAService(settings.with_(index_dir=index_dir), embedder=embedder)
        ordinary = [json.loads(line)["question"] for line in
                    (ROOT / "benchmarks" / "bbc_questions.jsonl").read_text().splitlines() if line.strip()][:n]
        speakers = speaker_questions(service.store, n)
        service.ask(ordinary[0])  # warm-up: models and BM25
        service.ask(speakers[0])
        timings: dict[str, list[float]] = {"ordinary": [], "speaker": []}
        quoted = 0
        for a, b in zip(ordinary, speakers):  # alternate, so load on the machine hits both alike
            for kind, question in (("ordinary", a), ("speaker", b)):
                start = time.perf_counter()
                answer = service.ask(question)
                timings[kind].append(1000 * (time.perf_counter() - start))
                quoted += kind == "speaker" and answer.quote is not None
        p50 = {k: statistics.median(v) for k, v in timings.items()}
        print(f"\n{'questions':<10} | n  | p50 ms | p95 ms")
        print("-" * 36)
        for kind, values in timings.items():
            values = sorted(values)
            print(f"{kind:<10} | {len(values):2d} | {p50[kind]:6.0f} | {values[round(0.95 * (len(values) - 1))]:6.0f}")
        print(f"\nspeaker p50 / ordinary p50 = {p50['speaker'] / p50['ordinary']:.2f} "
              f"({quoted} of {len(speakers)} speaker questions answered with a quote)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("extraction")
    sub.add_parser("speed")
    dev = sub.add_parser("dev-index")
    dev.add_argument("index_dir", type=Path)
    lat = sub.add_parser("latency")
    lat.add_argument("--index", type=Path, default=None)
    lat.add_argument("--n", type=int, default=40, help="questions of each kind")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.command == "extraction":
        extraction()
    elif args.command == "speed":
        speed()
    elif args.command == "dev-index":
        dev_index(args.index_dir)
    else:
        latency(args.index, args.n)


if __name__ == "__main__":
    main()
