"""This project, measured like the peers (runs under the project's .venv).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/peers/run_ours.py [--docs FILE] ...

Our own pipeline and defaults (Settings.from_env): qa.ingest parses the files, build_index chunks
them sentence-aware (~150 words, 200 max, one sentence overlap), embeds headline + chunk and saves
the index; the Retriever then builds BM25 (bm25s) in memory. QAService.ask: dense + BM25 fused
with RRF, reader over the top 5 passages (384-token windows, stride 128); answers "" when the
reader's no-answer score wins (found: false). --dtype is ignored: QA_PRECISION (auto) decides.
build_s = chunk + embed + save + BM25 (file parsing excluded, as for the peers; ingest_s in notes);
model loading excluded (load_s).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import common

sys.path.insert(0, str(common.ROOT))


def main() -> None:
    p = common.parser(__doc__)
    p.add_argument("--k", type=int, default=None, help="passages read (default QA_TOP_K, 5)")
    args = p.parse_args()
    common.offline_env()
    common.set_threads(args.threads)

    from qa.answer import QAService
    from qa.chunk import ChunkSpec
    from qa.config import Settings
    from qa.embed import Embedder
    from qa.ingest import ingest_paths
    from qa.retrieve import Retriever
    from qa.index import build_index

    settings = Settings.from_env(reader_dir=args.reader, top_k=args.k)
    t0 = time.perf_counter()
    embedder = Embedder.from_settings(settings)
    embedder.model
    service_reader = QAService(settings, embedder=embedder).reader
    service_reader.model
    load_s = time.perf_counter() - t0

    t1 = time.perf_counter()
    ingested = ingest_paths([args.corpus / doc for doc in common.doc_list(args)])
    ingest_s = time.perf_counter() - t1
    spec = ChunkSpec.from_settings(settings)
    with tempfile.TemporaryDirectory() as tmp:
        settings = settings.with_(index_dir=Path(tmp))
        common.log(f"[ours] indexing {len(ingested.articles)} articles ({len(ingested.skipped)} skipped)")
        t2 = time.perf_counter()
        store, _ = build_index(ingested.articles, settings.index_dir, embedder, spec)
        retriever = Retriever(store, embedder, settings.candidates, settings.rrf_k)
        build_s = time.perf_counter() - t2
        common.log(f"[ours] {len(store.chunks)} chunks in {build_s:.1f} s")

        service = QAService(settings, store=store, embedder=embedder, reader=service_reader)
        service.__dict__["retriever"] = retriever  # the one just built (a cached_property)

        def ask(question: str) -> str:
            return service.ask(question).answer or ""

        questions = common.load_questions(args.questions)
        answers, latencies = common.timed_answers(ask, questions)
    common.emit("ours", common.versions("transformers", "bm25s", "faiss-cpu", "torch"),
                build_s, load_s, len(store.chunks), len(store.articles), answers, latencies,
                notes=f"sentence-aware chunks, RRF(dense 50, BM25 50) top {settings.top_k} -> reader; "
                      f"ingest_s {ingest_s:.1f}; precision {settings.precision} -> {embedder.model.precision}")


if __name__ == "__main__":
    main()
