"""Scale-out checks on the BBC corpus (../shared, held out: measured here, never tuned on):

1. a single-process FAISS build (the embedded default), timed;
2. the same build with `--engine ray` on N local actors: vectors equal?, speed-up;
3. the same corpus in a Milvus store (QA_STORE-style --store; default a milvus-lite file), then the
   BBC benchmark questions asked of both backends: same top answer? same passages?

    HF_HUB_OFFLINE=1 flock /tmp/qa-bench.lock .venv/bin/python benchmarks/bench_scale.py \
        [--store milvus://127.0.0.1:19530] [--workers 2] [--reuse DIR | --keep DIR] [--skip-full-ray]

Needs the extras .[milvus] and .[ray]. Step 3 reuses step 1's vectors (the embedder is
deterministic; re-embedding would only add minutes) so it measures the store and retrieval.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.bench_index import DEFAULT_CORPUS, TOPICS, peak_rss_mb  # noqa: E402


class CachedEmbedder:
    """An Embedder whose passage vectors come from a finished build (questions are embedded for real)."""

    def __init__(self, embedder, texts: list[str], vectors):
        self.embedder = embedder
        self.name, self.dim = embedder.name, embedder.dim
        self.cache = dict(zip(texts, vectors))

    def encode(self, texts, progress: bool = False):
        import numpy as np

        missing = [t for t in texts if t not in self.cache]
        if missing:
            self.cache.update(zip(missing, self.embedder.encode(missing)))
        return np.stack([self.cache[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--questions", type=Path, default=Path(__file__).with_name("bbc_questions.jsonl"))
    parser.add_argument("--store", default=None, help="Milvus store for step 3 [default: a milvus-lite file]")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--reuse", type=Path, default=None,
                        help="a single-process BBC index built before (step 1 is then not timed)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the FAISS index here (for bench_ann.py)")
    parser.add_argument("--speedup-chunks", type=int, default=2048,
                        help="chunks embedded by one process and by Ray, back to back, for the speed-up")
    parser.add_argument("--skip-full-ray", action="store_true", help="no full BBC build with Ray")
    parser.add_argument("--skip-milvus", action="store_true", help="no Milvus comparison")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from qa.chunk import ChunkSpec
    from qa.config import Settings
    from qa.embed import Embedder, passage_text
    from qa.index import IndexStore, build_index
    from qa.ingest import ingest_paths

    def row(key: str, value) -> None:
        print(f"{key:<40}  {value}", flush=True)

    settings = Settings()
    embedder = Embedder.from_settings(settings)
    embedder.model
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    articles = ingest_paths([args.corpus / t for t in TOPICS if (args.corpus / t).is_dir()]).articles
    if args.reuse:
        store = IndexStore.load(args.reuse, embedder, writable=True)
    else:
        t0 = time.perf_counter()
        store, _ = build_index(articles, args.keep or tmp / "index", embedder, ChunkSpec())
        row("single-process build (s)", f"{time.perf_counter() - t0:.1f}")
    row("articles, chunks", f"{len(store.articles)}, {len(store.chunks)}")
    vectors = store.vectors.reconstruct_n(0, store.vectors.ntotal)
    texts = [passage_text(store.articles[c.article_id].title, c.text) for c in store.chunks]

    # 3. Milvus against FAISS on the BBC benchmark questions.
    if not args.skip_milvus:
        compare_backends(args, settings, embedder, store, articles, texts, vectors, tmp, row)
    if args.speedup_chunks or not args.skip_full_ray:
        ray_steps(args, embedder, store, articles, texts, vectors, tmp, row)
    row("peak RSS (MB)", f"{peak_rss_mb():.0f}")


def compare_backends(args, settings, embedder, store, articles, texts, vectors, tmp, row) -> None:
    import numpy as np

    from qa.answer import QAService, normalize_answer
    from qa.chunk import ChunkSpec
    from qa.config import Settings
    from qa.index import build_store, open_store
    from qa.read import Reader

    milvus = Settings(store=args.store or str(tmp / "bbc.db"))
    cached = CachedEmbedder(embedder, texts, vectors)
    t0 = time.perf_counter()
    build_store(milvus, articles, cached, ChunkSpec())
    row("milvus store write (s, vectors reused)", f"{time.perf_counter() - t0:.1f}")
    reader = Reader.from_settings(settings)
    faiss_qa = QAService(settings, store=store, embedder=embedder, reader=reader)
    milvus_qa = QAService(milvus, store=open_store(milvus, embedder), embedder=embedder, reader=reader)
    questions = [json.loads(line) for line in args.questions.read_text(encoding="utf-8").splitlines() if line.strip()]
    same_answer = same_passages = 0
    times = {"faiss": [], "milvus": []}
    for q in questions:
        results = {}
        for name, service in (("faiss", faiss_qa), ("milvus", milvus_qa)):
            t0 = time.perf_counter()
            passages = service.retriever.retrieve(q["question"], settings.top_k)
            times[name].append(time.perf_counter() - t0)
            answer = service.ask(q["question"])
            results[name] = ([(p.article.id, p.chunk.start) for p in passages],
                             normalize_answer(answer.answer) if answer.found else None)
        same_passages += results["faiss"][0] == results["milvus"][0]
        same_answer += results["faiss"][1] == results["milvus"][1]
    n = len(questions)
    row("same top answer, FAISS vs Milvus", f"{same_answer}/{n} ({100 * same_answer / n:.0f}%)")
    row("same top-5 passages", f"{same_passages}/{n}")
    for name, values in times.items():
        row(f"retrieve p50 {name} (ms)", f"{1000 * float(np.median(values)):.1f}")



def ray_steps(args, embedder, store, articles, texts, vectors, tmp, row) -> None:
    """2. Ray: speed-up on the same chunks back to back, then the whole BBC build."""
    import numpy as np

    from qa.chunk import ChunkSpec
    from qa.distributed import RayEmbedder
    from qa.index import build_index

    sample = texts[: args.speedup_chunks]
    if sample:
        t0 = time.perf_counter()
        local = embedder.encode(sample)
        local_s = time.perf_counter() - t0
    with RayEmbedder(embedder, workers=args.workers) as ray_embedder:
        ray_embedder.encode(["warm-up: start Ray and load one model per actor"] * args.workers * 2)
        if sample:
            t0 = time.perf_counter()
            remote = ray_embedder.encode(sample)
            ray_s = time.perf_counter() - t0
            row(f"embed {len(sample)} chunks: 1 process (s)", f"{local_s:.1f}")
            row(f"embed {len(sample)} chunks: ray {args.workers} actors (s)", f"{ray_s:.1f}")
            row("ray speed-up", f"{local_s / ray_s:.2f}x (equal: {np.array_equal(local, remote)})")
        if not args.skip_full_ray:
            t0 = time.perf_counter()
            ray_store, _ = build_index(articles, tmp / "ray-index", ray_embedder, ChunkSpec())
            row(f"BBC build, ray {args.workers} actors (s)", f"{time.perf_counter() - t0:.1f}")
            ray_vectors = ray_store.vectors.reconstruct_n(0, ray_store.vectors.ntotal)
            row("BBC ray vectors equal single-process", str(np.array_equal(vectors, ray_vectors)))


if __name__ == "__main__":
    main()
