"""Peak memory of ingesting a large folder: streamed ingest stays flat, the index grows with the corpus.

    python benchmarks/bench_memory.py --gb 1     # generates /tmp/qa-bench-<gb>gb once (made-up articles)

Three measurements, each in its own child process (peak RSS = ru_maxrss of that child):

- read: IngestStream alone over the folder (files read, records parsed, articles made and cut to
  QA_MAX_ARTICLE_CHARS), on a tenth and on all of it.
- ingest: `qa index build`'s path without the model: IngestStream over the folder, in the
  batches IndexStore.add_batches uses, each batch chunked and its MinHash signatures computed,
  then dropped, on a hundredth and a tenth of the folder (a 2-core VM does ~70 articles/s).
  Equal peaks mean ingest memory does not grow with the corpus.
- index: IndexStore.add_batches into a real store (FAISS IndexFlatIP, articles, chunks,
  signatures, near-duplicate collapse) with the model's forward pass replaced by random unit
  vectors of the embedder's dimension: what the index itself costs in RAM per article, on two
  small slices (a 1 GB index would not fit beside the other jobs of a shared machine; the cost is
  linear). Embedding itself runs batch by batch (benchmarks/bench_index.py measures it).

Prints a table. Time it under `flock /tmp/qa-bench.lock` on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def child_read(folders: list[str]) -> dict:
    from qa.ingest import IngestStream

    stream = IngestStream(folders)
    chars = sum(len(article.text) for article in stream)
    return {"articles": stream.count, "skipped": len(stream.skipped), "chunks": 0, "chars": chars}


def child_ingest(folders: list[str]) -> dict:
    from qa.chunk import ChunkSpec, chunk_article
    from qa.index.store import batches
    from qa.ingest import IngestStream
    from qa.ingest.dedup import DedupSpec, signatures

    spec, dedup = ChunkSpec(), DedupSpec()
    stream = IngestStream(folders)
    chunks = 0
    for batch in batches(stream):  # as IndexStore.add_batches cuts them
        chunks += sum(len(chunk_article(article, spec)) for article in batch)
        signatures((a.text for a in batch), dedup)
    return {"articles": stream.count, "skipped": len(stream.skipped), "chunks": chunks}


class RandomVectors:
    """The Embedder interface with the forward pass replaced by random unit vectors (same dim and name)."""

    def __init__(self):
        from qa.embed import Embedder

        real = Embedder()
        self.name, self.dim = real.name, 384

    def encode(self, texts, progress=False):
        import numpy as np

        rng = np.random.default_rng(len(texts))
        v = rng.standard_normal((len(texts), self.dim), dtype=np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def child_index(folders: list[str]) -> dict:
    from qa.chunk import ChunkSpec
    from qa.index import IndexStore
    from qa.ingest import IngestStream
    from qa.ingest.dedup import DedupSpec

    embedder = RandomVectors()
    store = IndexStore.new(embedder, ChunkSpec())
    stream = IngestStream(folders)
    report = store.add_batches(stream, embedder, dedup=DedupSpec())
    return {"articles": len(store.articles), "chunks": len(store.chunks), "collapsed": len(report.collapsed)}


def run_child(mode: str, folders: list[Path]) -> dict:
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", mode, *map(str, folders)],
        capture_output=True, text=True, cwd=ROOT, env=os.environ | {"HF_HUB_OFFLINE": "1"},
    )
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["seconds"] = round(time.monotonic() - start, 1)
    return result


def folder_bytes(files: list[Path]) -> int:
    return sum(f.stat().st_size for f in files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gb", type=float, default=1.0, help="size of the generated folder")
    parser.add_argument("--folder", type=Path, default=None, help="default: /tmp/qa-bench-<gb>gb")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, *folders = args.child
        result = {"read": child_read, "ingest": child_ingest, "index": child_index}[mode](folders)
        result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        print(json.dumps(result))
        return

    import synthetic

    folder = args.folder or Path(f"/tmp/qa-bench-{args.gb:g}gb")
    marker = folder / ".complete"
    if not marker.exists():
        print(f"writing {args.gb:g} GB of made-up articles to {folder} …", flush=True)
        files, size = synthetic.write_folder(folder, int(args.gb * 1e9))
        marker.write_text(f"{files} {size}\n")
    files = sorted(folder.glob("*.jsonl"))
    hundredth, tenth, small, double = files[: max(1, len(files) // 100)], files[: max(1, len(files) // 10)], files[:4], files[:8]
    rows = []
    for mode, part, label in (("read", tenth, "a tenth"), ("read", [folder], "all"), ("ingest", hundredth, "a hundredth"),
                              ("ingest", tenth, "a tenth"), ("index", small, "4 files"), ("index", double, "8 files")):
        size = folder_bytes(files if part == [folder] else part)
        result = run_child(mode, part)
        rows.append((mode, label, size, result))
        print(f"{mode:<6}  {label:<14}  {size / 1e6:8.0f} MB  {result['articles']:>8,} articles  "
              f"{result['chunks']:>9,} chunks  peak RSS {result['peak_rss_mb']:>5} MB  {result['seconds']:>6} s", flush=True)
    (_, _, _, a), (_, _, _, b) = rows[-2], rows[-1]
    per_article = (b["peak_rss_mb"] - a["peak_rss_mb"]) / max(1, b["articles"] - a["articles"])
    print(f"index RAM per article (slope between the two slices): {1024 * per_article:.1f} KB; "
          f"{per_article * rows[1][3]['articles'] / 1024:.1f} GB for all {rows[1][3]['articles']:,} articles")


if __name__ == "__main__":
    main()
