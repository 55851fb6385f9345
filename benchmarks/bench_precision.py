"""Precisions side by side on BBC: the accuracy gates of a low precision against float32, and its speed.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_precision.py [--limit-articles N] [--precisions float32,int8]

One process, the same articles and chunks for every precision. For each precision: build the
index (chunk + embed + save; model loading excluded), then ask benchmarks/bbc_questions.jsonl
with that precision's embedder and reader (p50/p95, answer EM, evidence article among the top 5
passages). Then the gates against the first precision (float32): cosine of every chunk's vector
to its float32 vector, and evidence-in-top-5 for every pairing of an index built in one precision
with questions embedded in another (an index must answer equally well whichever precision
queries it). The reader's gate is XQuAD F1: `qa eval reader ../shared/data/qa/eval_xquad_en.jsonl`
under each QA_PRECISION.

--limit-articles N indexes every question's evidence article plus the first articles of each
topic, round robin, up to N (benchmarks/peers/compare.py's subset): on a busy 2-core machine the
full corpus takes most of an hour per precision. BBC is held out: measure on it, never tune on it.
Time it under `flock /tmp/qa-bench.lock`.
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
sys.path.insert(0, str(ROOT / "benchmarks" / "peers"))

from bench_index import percentile  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit-articles", type=int, default=None)
    parser.add_argument("--precisions", default="float32,int8")
    parser.add_argument("--questions", type=Path, default=Path(__file__).with_name("bbc_questions.jsonl"))
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import numpy as np
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from compare import cpu_description, subset
    from corpora import BBC_DIR
    from qa.answer import QAService, normalize_answer
    from qa.chunk import ChunkSpec
    from qa.config import Settings
    from qa.embed import Embedder
    from qa.index import build_index
    from qa.ingest import ingest_paths
    from qa.read import Reader
    from qa.retrieve import Retriever

    questions = [json.loads(line) for line in args.questions.read_text().splitlines() if line.strip()]
    docs = subset(BBC_DIR, questions, args.limit_articles)
    if docs is None:
        paths = [BBC_DIR / t for t in ("business", "entertainment", "politics", "sport", "tech")]
    else:
        paths = [BBC_DIR / d for d in docs]
    articles = ingest_paths(paths).articles
    evidence_id = {"/".join(Path(a.origin).parts[-2:]): a.id for a in articles}  # "business/001.txt"
    settings = Settings.from_env()
    k = settings.top_k
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    results, stores, embedders = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for precision in precisions:
            embedder = Embedder(settings.embedder_dir, settings.embed_batch_tokens, precision=precision)
            reader = Reader.from_settings(settings.with_(precision=precision))
            embedder.model, reader.model
            start = time.perf_counter()
            store, _ = build_index(articles, Path(tmp) / precision, embedder, ChunkSpec.from_settings(settings),
                                   progress=True)
            build_s = time.perf_counter() - start
            service = QAService(settings.with_(index_dir=Path(tmp) / precision), store=store,
                                embedder=embedder, reader=reader)
            service.ask(questions[0]["question"])  # warm-up
            latencies, exact = [], 0
            for q in questions:
                start = time.perf_counter()
                answer = service.ask(q["question"])
                latencies.append((time.perf_counter() - start) * 1000)
                exact += normalize_answer(answer.answer or "") in {normalize_answer(a) for a in q["answers"]}
            results[precision] = {"ran as": embedder.model.precision, "chunks": len(store.chunks),
                                  "build_s": build_s, "p50": statistics.median(latencies),
                                  "p95": percentile(latencies, 0.95), "em": 100 * exact / len(questions)}
            stores[precision], embedders[precision] = store, embedder

        def evidence_in_top_k(store, embedder) -> float:
            retriever = Retriever(store, embedder, settings.candidates, settings.rrf_k)
            hits = sum(any(p.article.id == evidence_id.get(q["evidence_doc"])
                           for p in retriever.retrieve(q["question"], k)) for q in questions)
            return 100 * hits / len(questions)

        mixes = {(built, asked): evidence_in_top_k(stores[built], embedders[asked])
                 for built in precisions for asked in precisions}
        reference = stores[precisions[0]].vectors
        ref_vectors = reference.reconstruct_n(0, reference.ntotal)

    print(f"\nCPU: {cpu_description()}; torch threads {torch.get_num_threads()}")
    print(f"BBC {'all' if docs is None else 'subset'}: {len(articles)} articles, {len(questions)} questions, top {k}")
    print("| precision (ran as) | chunks | build s | chunks/s | query p50 ms | p95 ms | answer EM % | "
          f"evidence in top {k} % | cosine to {precisions[0]}: min / 1st pct / mean |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for precision, r in results.items():
        vectors = stores[precision].vectors.reconstruct_n(0, stores[precision].vectors.ntotal)
        cosines = (vectors * ref_vectors).sum(axis=1)
        print(f"| {precision} ({r['ran as']}) | {r['chunks']} | {r['build_s']:.1f} | {r['chunks'] / r['build_s']:.1f} | "
              f"{r['p50']:.0f} | {r['p95']:.0f} | {r['em']:.1f} | {mixes[precision, precision]:.1f} | "
              f"{cosines.min():.4f} / {np.percentile(cosines, 1):.4f} / {cosines.mean():.4f} |")
    print(f"\nevidence in top {k} %, index built in (row) and queried in (column):")
    print("| built \\ queried | " + " | ".join(precisions) + " |")
    print("|---|" + "---:|" * len(precisions))
    for built in precisions:
        print(f"| {built} | " + " | ".join(f"{mixes[built, asked]:.1f}" for asked in precisions) + " |")


if __name__ == "__main__":
    main()
