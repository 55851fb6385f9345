"""Index build and query latency on the BBC corpus (2,225 articles), printed as a table.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_index.py [--corpus DIR] [--threads N]

Reads ../shared/data/corpora/bbc_news/bbc (research-use licence: never copied into the repo).
Measures, in one process: ingest, chunk+embed+save (build), chunks, index load, query latency
p50/p95 over benchmarks/bbc_questions.jsonl (retrieve + read, top-5 passages), answer EM and
whether the evidence article is among the retrieved passages, and peak RSS. Embedding throughput
is also given as a share of the matmul ceiling (tokens/s if every matmul FLOP of the model ran at
a GEMM probe's speed): once against a probe run after the build, once side by side (probe, short
encode, probe, ...) because the probe alone drifts 2-3× on these VMs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "corpora" / "bbc_news" / "bbc"
TOPICS = ("business", "entertainment", "politics", "sport", "tech")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> tuple[float, float]:
    """(resident MB now, peak resident MB so far) of this process, from /proc (Linux)."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def matmul_probe_gflops(dtype, rounds: int = 7, seconds: float = 0.4) -> dict[str, float]:
    """Dense GEMM throughput at MiniLM's FFN shape (8192 tokens × 384 → 1536), the ceiling the
    embedder can approach, for two kernels: aten's linear (what a plain PyTorch model runs) and
    oneDNN's linear on a pre-packed weight (what qa.models.cpu runs in bfloat16). Rounds alternate
    between the kernels and each reports its median: on a shared VM one 2-second probe varied 2×.
    """
    import torch

    from qa.models.cpu import fused_linear_works

    x = torch.randn(8192, 384, dtype=dtype)
    w = torch.randn(1536, 384, dtype=dtype)
    kernels = {"aten linear": lambda: torch.nn.functional.linear(x, w)}
    if dtype == torch.bfloat16 and fused_linear_works():
        packed = torch.ops.mkldnn._reorder_linear_weight(w, 8192)
        kernels["oneDNN packed linear"] = lambda: torch.ops.mkldnn._linear_pointwise(x, packed, None, "none", [], "")
    results: dict[str, list[float]] = {name: [] for name in kernels}
    with torch.inference_mode():
        for _ in range(rounds):
            for name, linear in kernels.items():
                linear()
                runs, start = 0, time.perf_counter()
                while time.perf_counter() - start < seconds:
                    linear()
                    runs += 1
                results[name].append(runs * 2 * 8192 * 384 * 1536 / (time.perf_counter() - start) / 1e9)
    return {name: statistics.median(values) for name, values in results.items()}


def flops_per_token(lengths: list[int]) -> float:
    """Matmul FLOPs per token of MiniLM-L6-H384 (6 layers) over texts of these token lengths: the
    linear layers (query/key/value/output 4·384², FFN 2·384·1536) plus attention's QKᵀ and PV
    (2·L·384 each, L the length of the token's own text), ×2 for multiply-add. ~23 M at L = 181."""
    attended = sum(n * n for n in lengths) / max(1, sum(lengths))  # L averaged over tokens
    return 6 * 2 * (4 * 384 * 384 + 2 * 384 * 1536 + 2 * attended * 384)


def interleaved_efficiency(embedder, texts: list[str], flops: float, n_tokens: int, rounds: int = 7) -> dict:
    """Embedding throughput as a share of the matmul ceiling, each measured right after the other:
    `rounds` times a one-round probe, then an encode of `texts`. On these VMs the probe alone drifts
    2-3× from minute to minute, so a ceiling probed a minute away from the build says little."""
    shares, rates, ceilings = [], [], []
    for _ in range(rounds):
        ceiling = max(matmul_probe_gflops(embedder.model.dtype, rounds=1).values()) * 1e9 / flops
        start = time.perf_counter()
        embedder.encode(texts)
        rate = n_tokens / (time.perf_counter() - start)
        shares.append(rate / ceiling)
        rates.append(rate)
        ceilings.append(ceiling)
    return {"share": statistics.median(shares), "low": min(shares), "high": max(shares),
            "rate": statistics.median(rates), "ceiling": statistics.median(ceilings)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--questions", type=Path, default=Path(__file__).with_name("bbc_questions.jsonl"))
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--no-ceiling", action="store_true",
                        help="skip the matmul-ceiling probes (saves ~half the run on 2 cores)")
    args = parser.parse_args()
    if not args.corpus.is_dir():
        sys.exit(f"corpus not found: {args.corpus}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from qa.answer import QAService, normalize_answer
    from qa.chunk import ChunkSpec
    from qa.config import Settings
    from qa.embed import Embedder, passage_text
    from qa.ingest import ingest_paths
    from qa.index import build_index

    rows: list[tuple[str, str]] = []
    memory: list[tuple[str, tuple[float, float]]] = [("imports (torch, qa)", rss_mb())]
    embedder = Embedder.from_settings(Settings.from_env())
    embedder.model  # model load is not part of the build time
    memory.append(("embedder loaded", rss_mb()))
    with tempfile.TemporaryDirectory() as tmp:
        index_dir = Path(tmp) / "index"
        t0 = time.perf_counter()
        ingested = ingest_paths([args.corpus / t for t in TOPICS if (args.corpus / t).is_dir()])
        t1 = time.perf_counter()
        store, _ = build_index(ingested.articles, index_dir, embedder, ChunkSpec(), progress=True)
        t2 = time.perf_counter()
        memory.append(("index built (ingest, chunk, embed, save)", rss_mb()))
        titles = {a.id: a.title for a in store.articles.values()}
        texts = [passage_text(titles[c.article_id], c.text) for c in store.chunks]
        # Counted in slices: tokenizing all 6k chunks at once would itself raise the peak RSS reported below.
        # The embedder's tokenizer truncates at the model's max_seq_length.
        lengths = [
            len(encoding.ids)
            for i in range(0, len(texts), 512)
            for encoding in embedder.tokenizer.encode_batch(texts[i : i + 512])
        ]
        n_tokens, flops = sum(lengths), flops_per_token(lengths)
        dtype = embedder.model.dtype
        probes = {} if args.no_ceiling else {
            name: gflops * 1e9 / flops for name, gflops in matmul_probe_gflops(dtype).items()}
        sample = list(range(0, len(texts), max(1, len(texts) // 512)))[:512]
        sample_texts, sample_tokens = [texts[i] for i in sample], sum(lengths[i] for i in sample)
        rows += [
            ("articles (skipped)", f"{len(store.articles)} ({len(ingested.skipped)})"),
            ("chunks", str(len(store.chunks))),
            ("ingest s", f"{t1 - t0:.1f}"),
            ("chunk+embed+save s", f"{t2 - t1:.1f}"),
            ("index build s (total)", f"{t2 - t0:.1f}"),
            ("embedding chunks/s", f"{len(store.chunks) / (t2 - t1):.1f}"),
            ("tokens per chunk (embedder, truncated)", f"{n_tokens / len(store.chunks):.0f}"),
            ("matmul MFLOP per token (linear + attention)", f"{flops / 1e6:.1f}"),
            ("embedding tokens/s (build)", f"{n_tokens / (t2 - t1):.0f}"),
            *[(f"matmul-probe tokens/s ({dtype}, {name})", f"{rate:.0f}") for name, rate in probes.items()],
        ]
        if probes:
            rows.append(("build throughput / ceiling (best probe) %",
                         f"{100 * n_tokens / (t2 - t1) / max(probes.values()):.0f}"))
        del store
        t3 = time.perf_counter()
        service = QAService(Settings(index_dir=index_dir, top_k=args.k), embedder=embedder)
        service.retriever  # load index + BM25
        memory.append(("built store dropped", rss_mb()))
        service.reader.model
        memory.append(("index loaded + BM25 + reader loaded", rss_mb()))
        t4 = time.perf_counter()
        rows.append(("index load + BM25 + reader load s", f"{t4 - t3:.1f}"))

        questions = [json.loads(line) for line in args.questions.read_text().splitlines() if line.strip()]
        service.ask(questions[0]["question"])  # warm-up
        latencies, exact, recalled, found = [], 0, 0, 0
        articles = {a.origin: a.id for a in service.store.articles.values()}
        for q in questions:
            start = time.perf_counter()
            answer = service.ask(q["question"])
            latencies.append((time.perf_counter() - start) * 1000)
            found += answer.found
            exact += normalize_answer(answer.answer or "") in {normalize_answer(a) for a in q["answers"]}
            evidence = articles.get(str(args.corpus / q["evidence_doc"]))
            passages = service.retriever.retrieve(q["question"], args.k)
            recalled += any(p.article.id == evidence for p in passages)
        memory.append((f"{len(questions)} questions asked", rss_mb()))
        n = len(questions)
        rows += [
            (f"query p50 ms ({n} q, k={args.k})", f"{statistics.median(latencies):.0f}"),
            ("query p95 ms", f"{percentile(latencies, 0.95):.0f}"),
            ("answer EM %", f"{100 * exact / n:.1f}"),
            (f"evidence in top-{args.k} %", f"{100 * recalled / n:.1f}"),
            ("answered (found) %", f"{100 * found / n:.1f}"),
            ("peak RSS MB (build + queries)", f"{peak_rss_mb():.0f}"),
            ("torch threads", str(torch.get_num_threads())),
            ("precision (QA_PRECISION)", f"{Settings.from_env().precision} → {embedder.model.precision}"),
            *[(f"RSS MB now / peak so far: {stage}", f"{now:.0f} / {peak:.0f}") for stage, (now, peak) in memory],
        ]
        if embedder.model.precision != "float32":
            rows += cross_precision_rows(service, embedder, texts, questions, articles, args)
        if args.no_ceiling:
            print_rows(rows)
            return
        side_by_side = interleaved_efficiency(embedder, sample_texts, flops, sample_tokens)
        rows += [
            (f"embedding / ceiling, probed side by side, {len(sample_texts)} chunks × 7 rounds: median % (range)",
             f"{100 * side_by_side['share']:.0f} ({100 * side_by_side['low']:.0f}-{100 * side_by_side['high']:.0f})"),
            ("  its median tokens/s: embedding / ceiling",
             f"{side_by_side['rate']:.0f} / {side_by_side['ceiling']:.0f}"),
        ]
    print_rows(rows)


def print_rows(rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    print(f"\n{'metric'.ljust(width)} | value\n{'-' * width}-|------")
    for key, value in rows:
        print(f"{key.ljust(width)} | {value}")


def cross_precision_rows(service, embedder, texts: list[str], questions: list[dict], articles: dict, args) -> list:
    """The accuracy gates of a low precision against float32: embedding cosine on 512 of the
    index's chunks, and evidence-in-top-k when this index (built in the low precision) is queried
    by a float32 embedder, as an index built on another machine would be."""
    import numpy as np

    from qa.embed import Embedder
    from qa.retrieve import Retriever

    float32 = Embedder(embedder.model_dir, embedder.batch_tokens, precision="float32")
    sample = [texts[i] for i in range(0, len(texts), max(1, len(texts) // 512))][:512]
    cosines = (float32.encode(sample) * embedder.encode(sample)).sum(axis=1)
    retriever = Retriever(service.store, float32, service.settings.candidates, service.settings.rrf_k)
    recalled = sum(
        any(p.article.id == articles.get(str(args.corpus / q["evidence_doc"])) for p in retriever.retrieve(q["question"], args.k))
        for q in questions
    )
    return [
        (f"embedding cosine to float32, {len(sample)} chunks: min / 1st percentile / mean",
         f"{cosines.min():.4f} / {np.percentile(cosines, 1):.4f} / {cosines.mean():.4f}"),
        (f"evidence in top-{args.k} %, this index queried in float32", f"{100 * recalled / len(questions):.1f}"),
    ]


if __name__ == "__main__":
    main()
