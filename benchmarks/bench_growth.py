"""Cost growth: build time and query latency at BBC size (~6k chunks) and at BBC + Reuters-21578.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_growth.py [--threads N] [--bbc N] [--reuters N]

One process, one embedder and reader (QA_PRECISION decides, as for `qa`): builds an index of the
2,225 BBC articles, times benchmarks/bbc_questions.jsonl against it (retrieve + read, top 5), then
adds Reuters-21578 (`qa index add`'s path: load, embed the new articles, save) and times the same
questions against the grown index, reloaded from disk as `qa serve` would. The questions'
evidence is in BBC, so the Reuters chunks are pure distractors: the table also says whether each
question's evidence article is still among the passages read. Prints one row per size and the
growth ratios.

--random-vectors indexes random unit vectors instead of embedding the chunks (bench_memory's
RandomVectors; the questions are still embedded and the passages read by the real models): query
latency is then measured at full size in minutes instead of an hour of embedding on a busy 2-core
machine (a flat FAISS search costs the same whatever the vectors hold, and the reader reads 5
passages either way), but build times exclude embedding and evidence-in-top-5 reflects BM25
alone. Corpora are read in place from ../shared (never copied). Time it under
`flock /tmp/qa-bench.lock` on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_index import peak_rss_mb, percentile  # noqa: E402


def time_questions(service, questions: list[dict], k: int) -> dict:
    """p50/p95 of service.ask over the questions (one warm-up first) and evidence-in-top-k %."""
    service.ask(questions[0]["question"])
    latencies, recalled = [], 0
    for q in questions:
        start = time.perf_counter()
        service.ask(q["question"])
        latencies.append((time.perf_counter() - start) * 1000)
        passages = service.retriever.retrieve(q["question"], k)
        recalled += any(p.article.origin.endswith("/" + q["evidence_doc"]) for p in passages)
    return {"p50": statistics.median(latencies), "p95": percentile(latencies, 0.95),
            "evidence": 100 * recalled / len(questions)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--bbc", type=int, default=None, help="only the first N BBC articles (a quick check)")
    parser.add_argument("--reuters", type=int, default=None, help="only the first N Reuters articles")
    parser.add_argument("--random-vectors", action="store_true",
                        help="index random unit vectors (latency only; see above)")
    parser.add_argument("--questions", type=Path, default=Path(__file__).with_name("bbc_questions.jsonl"))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from corpora import bbc_articles, reuters_articles
    from qa.answer import QAService
    from qa.chunk import ChunkSpec
    from qa.config import Settings
    from qa.embed import Embedder
    from qa.index import build_index
    from qa.index.store import update_index
    from qa.read import Reader

    settings = Settings.from_env()
    embedder = Embedder.from_settings(settings)
    reader = Reader.from_settings(settings)
    embedder.model, reader.model  # model loading is not part of any time below
    if args.random_vectors:
        from bench_memory import RandomVectors

        indexer = RandomVectors()
    else:
        indexer = embedder
    questions = [json.loads(line) for line in args.questions.read_text().splitlines() if line.strip()]
    bbc = bbc_articles().articles[: args.bbc]
    reuters = reuters_articles().articles[: args.reuters]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        index_dir = Path(tmp) / "index"
        start = time.perf_counter()
        store, _ = build_index(bbc, index_dir, indexer, ChunkSpec.from_settings(settings), progress=True)
        build_s = time.perf_counter() - start
        chunks = len(store.chunks)
        del store
        service = QAService(settings.with_(index_dir=index_dir), embedder=embedder, reader=reader)
        rows.append(("BBC", len(service.store.articles), chunks, build_s, build_s,
                     time_questions(service, questions, settings.top_k)))
        del service
        start = time.perf_counter()
        store, _ = update_index(index_dir, indexer, ChunkSpec.from_settings(settings), add=reuters, progress=True)
        add_s = time.perf_counter() - start
        chunks = len(store.chunks)
        del store
        service = QAService(settings.with_(index_dir=index_dir), embedder=embedder, reader=reader)
        rows.append(("BBC + Reuters-21578", len(service.store.articles), chunks, add_s, build_s + add_s,
                     time_questions(service, questions, settings.top_k)))

    print(f"\nprecision {settings.precision} -> {embedder.model.precision}, torch threads {torch.get_num_threads()}, "
          f"{len(questions)} questions (evidence in BBC), top {settings.top_k}"
          + ("; RANDOM index vectors: build s without embedding, evidence from BBC's BM25 side only"
             if args.random_vectors else ""))
    print("| corpus | articles | chunks | embed+save s (this step) | total build s | chunks/s | "
          "query p50 ms | p95 ms | evidence in top 5 % |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    added_chunks = [rows[0][2], rows[1][2] - rows[0][2]]
    for (name, articles, chunks, step_s, total_s, q), new in zip(rows, added_chunks):
        print(f"| {name} | {articles:,} | {chunks:,} | {step_s:.1f} | {total_s:.1f} | {new / step_s:.1f} | "
              f"{q['p50']:.0f} | {q['p95']:.0f} | {q['evidence']:.1f} |")
    small, large = rows[0], rows[1]
    print(f"\nchunks ×{large[2] / small[2]:.1f}: query p50 ×{large[5]['p50'] / small[5]['p50']:.2f}, "
          f"p95 ×{large[5]['p95'] / small[5]['p95']:.2f}, total build time ×{large[4] / small[4]:.1f}; "
          f"peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
