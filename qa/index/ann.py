"""Single-node headroom: an approximate (IVF) index beside the exact one, memory-mapped.

Below `Settings.ann_threshold` chunks nothing changes: one exact IndexFlatIP, read into memory.
From the threshold on, a save also writes `vectors.ivf`, an IndexIVFFlat (inner product) over
the same vectors, and loading for search maps both files read-only (FAISS IO_FLAG_MMAP and
IO_FLAG_MMAP_IFC) instead of reading them: the pages live once in the page cache and every
process serving the index shares them (replicas, workers). Writers load the exact index into
memory as before and rebuild the IVF at save time.

Why IVF-Flat rather than HNSW or IVF-PQ: IVF-Flat keeps exact inner products (recall is lost only
to lists not probed), its inverted lists are what FAISS can memory-map (an HNSW graph is read into
memory), it takes the same IDSelector filters as the flat index, and with `nprobe = nlist` it is
exact over the allowed rows, which is what a selective filter gets. Measured in
benchmarks/bench_ann.py; the numbers and the threshold are in docs/scaling.md.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

ANN_FILE = "vectors.ivf"
TRAIN_PER_LIST = 50  # k-means training points per list (FAISS warns below 39)
KMEANS_ITERATIONS = 10  # FAISS's default 25 triples training time for a recall gain under 0.01
SELECTIVE = 1 / 16  # a filter keeping less than this share of rows is searched exactly


def nlist_for(n: int) -> int:
    """About 2·√n lists (2,000 at 1M chunks): the low end of the usual 1-16·√n, so training and
    assigning — repeated at every save — stay quick on few cores."""
    return max(1, min(int(2 * math.sqrt(n)), n // 39))  # FAISS wants >= 39 training points per list


def default_nprobe(nlist: int) -> int:
    """Lists probed per query: 1/32 of them, at least 16 (recall@10 >= 0.95 in bench_ann.py)."""
    return min(nlist, max(16, nlist // 32))


def build(flat, seed: int = 1234):
    """An IndexIVFFlat (inner product) with the vectors of `flat`, row i = id i."""
    import faiss

    n, dim = flat.ntotal, flat.d
    vectors = flat.reconstruct_n(0, n)
    nlist = nlist_for(n)
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(seed)
    sample = vectors[rng.choice(n, size=min(n, nlist * TRAIN_PER_LIST), replace=False)] if n > nlist * TRAIN_PER_LIST else vectors
    ivf.cp.seed = seed
    ivf.cp.niter = KMEANS_ITERATIONS
    ivf.train(np.ascontiguousarray(sample))
    ivf.add(vectors)
    return ivf


def write(flat, path: Path) -> None:
    import faiss

    faiss.write_index(build(flat), str(path))


def read_mapped(path: Path):
    """A read-only index whose data stays in the file's pages (shared between processes)."""
    import faiss

    flags = faiss.IO_FLAG_READ_ONLY | (faiss.IO_FLAG_MMAP if path.name == ANN_FILE else faiss.IO_FLAG_MMAP_IFC)
    return faiss.read_index(str(path), flags)


def search(flat, ivf, query: np.ndarray, n: int, allowed: np.ndarray | None = None, nprobe: int = 0) -> list[int]:
    """Top-n rows by inner product: exact on `flat`, or approximate on `ivf` when there is one."""
    import faiss

    if ivf is None:
        params = None
        if allowed is not None:
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed))
            n = min(n, len(allowed))
        _, rows = flat.search(query, n, params=params)
        return [int(r) for r in rows[0] if r >= 0]
    probe = nprobe or default_nprobe(ivf.nlist)
    selector = None
    if allowed is not None:
        n = min(n, len(allowed))
        selector = faiss.IDSelectorBatch(allowed)
        if len(allowed) < SELECTIVE * ivf.ntotal:
            probe = ivf.nlist  # few rows pass the filter: visit every list, score only those rows (exact)
    params = faiss.SearchParametersIVF(nprobe=min(probe, ivf.nlist), sel=selector)
    _, rows = ivf.search(query, n, params=params)
    return [int(r) for r in rows[0] if r >= 0]
