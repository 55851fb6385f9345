"""Shared by the peer runners; standard library only (each runner runs in its own venv).

Every runner takes the same arguments:

    --corpus DIR       BBC corpus (../shared/data/corpora/bbc_news/bbc); never copied into the repo
    --docs FILE        optional: relative paths ("sport/020.txt"), one a line; default all articles
    --questions FILE   JSONL {"question", "answers", "evidence_doc"}
    --reader DIR       the shipped reader (qa/models/reader)
    --dtype NAME       peers only: dtype the reader and embedder compute in (float32, bfloat16)
    --threads N        torch threads (default: all cores)

and prints one JSON line on stdout (progress goes to stderr):
    {"system", "version", "build_s", "load_s", "chunks", "articles", "p50_ms", "p95_ms",
     "peak_rss_mb", "answers": [{"question", "answer"}], "notes"}
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "corpora" / "bbc_news" / "bbc"
DEFAULT_QUESTIONS = ROOT / "benchmarks" / "bbc_questions.jsonl"
DEFAULT_READER = ROOT / "qa" / "models" / "reader"
TOPICS = ("business", "entertainment", "politics", "sport", "tech")
# The peers' chunking (the issue's spec): 200-word windows overlapping by 40 words.
CHUNK_WORDS, CHUNK_OVERLAP = 200, 40
TOP_K = 10  # passages the peers' readers read
CANDIDATES = 50  # per retriever before fusion (as ours: QA_CANDIDATES)
WORD = re.compile(r"\S+")


def offline_env() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ["HAYSTACK_TELEMETRY_ENABLED"] = "False"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    p.add_argument("--docs", type=Path, default=None, help="relative article paths, one a line (default: all)")
    p.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS)
    p.add_argument("--reader", type=Path, default=DEFAULT_READER)
    p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    return p


def set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def all_docs(corpus: Path) -> list[str]:
    return [f"{t}/{p.name}" for t in TOPICS for p in sorted((corpus / t).glob("*.txt"))]


def doc_list(args) -> list[str]:
    if args.docs:
        return [line.strip() for line in args.docs.read_text().splitlines() if line.strip()]
    return all_docs(args.corpus)


def decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def load_articles(corpus: Path, docs: list[str]) -> list[dict]:
    """{"doc", "title", "text"}: first non-empty line is the title, the rest the body."""
    articles = []
    for doc in docs:
        lines = decode((corpus / doc).read_bytes()).replace("\r\n", "\n").split("\n")
        while lines and not lines[0].strip():
            lines.pop(0)
        title = lines[0].strip() if lines else ""
        text = "\n".join(lines[1:]).strip()
        if text:
            articles.append({"doc": doc, "title": title, "text": text})
    return articles


def word_chunks(text: str, words: int = CHUNK_WORDS, overlap: int = CHUNK_OVERLAP) -> list[str]:
    """Windows of `words` whitespace-separated words, each overlapping the previous by `overlap`,
    cut from the original text (whitespace inside a chunk kept). For peers without a word splitter."""
    spans = [m.span() for m in WORD.finditer(text)]
    chunks, step = [], words - overlap
    for i in range(0, len(spans), step):
        run = spans[i : i + words]
        chunks.append(text[run[0][0] : run[-1][1]])
        if i + words >= len(spans):
            break
    return chunks


def load_questions(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def versions(*dists: str) -> str:
    from importlib.metadata import version

    return " ".join(f"{d}=={version(d)}" for d in dists)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed_answers(ask, questions: list[dict]) -> tuple[list[dict], list[float]]:
    """One warm-up question (not timed, not scored twice), then every question timed."""
    ask(questions[0]["question"])
    answers, latencies = [], []
    for q in questions:
        start = time.perf_counter()
        answer = ask(q["question"])
        latencies.append((time.perf_counter() - start) * 1000)
        answers.append({"question": q["question"], "answer": answer or ""})
    return answers, latencies


def emit(system: str, version: str, build_s: float, load_s: float, chunks: int, articles: int,
         answers: list[dict], latencies: list[float], notes: str = "") -> None:
    print(json.dumps({
        "system": system,
        "version": version,
        "build_s": round(build_s, 2),
        "load_s": round(load_s, 2),
        "chunks": chunks,
        "articles": articles,
        "p50_ms": round(statistics.median(latencies), 1),
        "p95_ms": round(percentile(latencies, 0.95), 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "answers": answers,
        "notes": notes,
    }), flush=True)
