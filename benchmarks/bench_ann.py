"""Flat vs approximate (qa.index.ann IVF-Flat, memory-mapped) at up to 1M chunks on one node.

The 1M vectors are real BBC chunk vectors (from a built index: `bench_scale.py --keep DIR`) plus
synthetic ones made from them (a real vector + 0.3 x another real vector + Gaussian noise, then
normalized: neighbourhoods shaped like the real ones; embedding 1M texts on 2 cores would take
days). Queries are the BBC benchmark questions embedded for real, plus held-out perturbed real
vectors, up to --queries.

Prints: flat search p50 by index size (where flat stops paying: the threshold), then at --n:
build time, query p50, recall@10 against flat, and RSS of a fresh process that loads the index
as the server does (flat read into memory vs both files memory-mapped), with its private
(anonymous) share — mapped pages are shared by every process serving the same index.

    HF_HUB_OFFLINE=1 flock /tmp/qa-bench.lock .venv/bin/python benchmarks/bench_ann.py --index /tmp/bbc-index
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def synthetic(real: np.ndarray, n: int, seed: int = 7, block: int = 100_000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, real.shape[1]), dtype=np.float32)
    out[: len(real)] = real[:n]
    for first in range(len(real), n, block):
        m = min(block, n - first)
        x = real[rng.integers(0, len(real), m)] + 0.3 * real[rng.integers(0, len(real), m)]
        x += rng.normal(scale=0.35 / np.sqrt(real.shape[1]), size=x.shape).astype(np.float32)
        out[first : first + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def p50_ms(fn, queries: np.ndarray) -> float:
    times = []
    for q in queries:
        t0 = time.perf_counter()
        fn(q[None, :])
        times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times))


def probe_memory(index_dir: Path, queries: Path, args_threads: int = 1) -> dict:
    """RSS of a fresh process that loads the live generation as `qa serve` does and runs the queries."""
    code = f"""
import json, sys, numpy as np
sys.path.insert(0, {str(ROOT)!r})
from qa.index import IndexStore, ann
def status():
    fields = dict(line.split(':', 1) for line in open('/proc/self/status'))
    return {{k: int(fields[k].split()[0]) // 1024 for k in ('VmRSS', 'RssAnon', 'RssFile')}}
base = status()
import faiss
faiss.omp_set_num_threads({args_threads})
store = IndexStore.load({str(index_dir)!r})
loaded = status()
for q in np.load({str(queries)!r}):
    ann.search(store.vectors, store.ann, q[None, :], 50)
print(json.dumps({{"base": base, "loaded": loaded, "queried": status(), "mapped": store.read_only}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True, help="a built FAISS index (real vectors)")
    parser.add_argument("--questions", type=Path, default=Path(__file__).with_name("bbc_questions.jsonl"))
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--sizes", default="25000,50000,100000,200000,500000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--nprobes", default="8,16,32,64,128")
    parser.add_argument("--threads", type=int, default=1,
                        help="FAISS threads per query (1: the per-question CPU cost, steady on a shared machine)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import faiss

    faiss.omp_set_num_threads(args.threads)

    from qa.chunk import ChunkSpec
    from qa.embed import Embedder
    from qa.index import IndexStore, ann
    from qa.records import Article, Chunk

    store = IndexStore.load(args.index, writable=True)
    real = store.vectors.reconstruct_n(0, store.vectors.ntotal)
    rng = np.random.default_rng(11)
    held_out = real[rng.choice(len(real), size=min(len(real) // 10, args.queries), replace=False)]
    questions = [json.loads(line)["question"] for line in args.questions.read_text(encoding="utf-8").splitlines() if line.strip()]
    asked = Embedder().encode(questions)
    noisy = held_out + rng.normal(scale=0.3 / np.sqrt(real.shape[1]), size=held_out.shape).astype(np.float32)
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    queries = np.concatenate([asked, noisy])[: args.queries].astype(np.float32)
    data = synthetic(real, args.n)
    print(f"{len(real)} real vectors, {args.n} in all; {len(queries)} queries ({len(asked)} BBC questions); "
          f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads", flush=True)

    print("\nflat search by index size (where flat stops paying)")
    print(f"{'chunks':>9}  {'flat p50 ms':>11}")
    for size in [int(s) for s in args.sizes.split(",")] + [args.n]:
        flat = faiss.IndexFlatIP(data.shape[1])
        flat.add(data[:size])
        print(f"{size:>9}  {p50_ms(lambda q: flat.search(q, 50), queries):>11.2f}", flush=True)

    t0 = time.perf_counter()
    flat = faiss.IndexFlatIP(data.shape[1])
    flat.add(data)
    flat_build = time.perf_counter() - t0
    faiss.omp_set_num_threads(os.cpu_count() or 1)  # building uses every core, as `qa index build` does
    t0 = time.perf_counter()
    ivf = ann.build(flat)
    ivf_build = time.perf_counter() - t0
    faiss.omp_set_num_threads(args.threads)
    _, exact = flat.search(queries, 10)

    print(f"\nIVF-Flat, {ivf.nlist} lists: recall@10 against flat by lists probed")
    print(f"{'nprobe':>7}  {'recall@10':>9}  {'p50 ms':>7}")
    for nprobe in [int(p) for p in args.nprobes.split(",")] + [ann.default_nprobe(ivf.nlist)]:
        params = faiss.SearchParametersIVF(nprobe=nprobe)
        _, got = ivf.search(queries, 10, params=params)
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, got)])
        p50 = p50_ms(lambda q: ivf.search(q, 50, params=params), queries)
        mark = "  (default)" if nprobe == ann.default_nprobe(ivf.nlist) else ""
        print(f"{nprobe:>7}  {recall:>9.3f}  {p50:>7.2f}{mark}", flush=True)
    default = faiss.SearchParametersIVF(nprobe=ann.default_nprobe(ivf.nlist))
    _, got = ivf.search(queries, 10, params=default)
    recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, got)]))
    rows = {
        "flat": {"build s": flat_build, "p50 ms": p50_ms(lambda q: flat.search(q, 50), queries), "recall@10": 1.0},
        "ivf": {"build s": ivf_build, "p50 ms": p50_ms(lambda q: ivf.search(q, 50, params=default), queries),
                "recall@10": recall},
    }
    # Two on-disk indexes as the store writes them (same vectors, dummy article): in memory vs mapped.
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        text = "x " * 10
        article = Article(id="a", title="", text=text)
        chunks = [Chunk(i, "a", text[:1], 0, 1) for i in range(args.n)]
        big = IndexStore(store.embedder_name, store.dim, ChunkSpec(), {"a": article}, chunks, flat)
        np.save(Path(tmp) / "queries.npy", queries)
        ann.build = lambda flat, seed=0: ivf  # write the IVF built above rather than train it again
        for name, threshold in (("flat", 0), ("ivf", 1)):
            big.save(Path(tmp) / name, ann_threshold=threshold)
            rows[name]["memory"] = probe_memory(Path(tmp) / name, Path(tmp) / "queries.npy", args.threads)

    print(f"\n{args.n:,} chunks, dim {data.shape[1]}")
    print(f"{'index':<6} {'build s':>8} {'p50 ms':>7} {'recall@10':>9} {'RSS MB':>7} {'private MB':>10} {'mapped MB':>9}")
    for name, row in rows.items():
        memory = row["memory"]["queried"]
        print(f"{name:<6} {row['build s']:>8.1f} {row['p50 ms']:>7.2f} {row['recall@10']:>9.3f} "
              f"{memory['VmRSS']:>7} {memory['RssAnon']:>10} {memory['RssFile']:>9}")


if __name__ == "__main__":
    main()
