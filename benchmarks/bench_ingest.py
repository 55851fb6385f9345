"""Ingestion + near-duplicate collapse on the BBC and Reuters-21578 corpora, printed as a table.

    .venv/bin/python benchmarks/bench_ingest.py [--bbc DIR] [--reuters DIR] [--examples N]

Reads ../shared/data/corpora/bbc_news/bbc/<topic>/*.txt (first line = title; through
qa.ingest.ingest_paths) and ../shared/data/corpora/reuters21578/data/*.sgm (SGML, Latin-1; each
<REUTERS> document's TITLE, BODY and DATE are parsed here; documents without a BODY are skipped).
Both are research-use corpora: read in place, never copied into the repository.

No embedding: the dedup stage (qa.ingest.dedup, the parameters `qa index add` uses) runs alone on the
ingested articles, in order, keeping the first copy. Reported per corpus: articles, same-id
repeats (identical title + text: the store merges them as "unchanged"), exact duplicates
(identical normalized text under another id), near-duplicates (Jaccard >= threshold, not
exact), times for ingest, MinHash signatures and LSH collapse, the time to check 50 more articles
against the stored signatures of all the others (what `qa index add` pays for dedup), and how
many copies other thresholds would collapse.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from corpora import BBC_DIR, REUTERS_DIR, bbc_articles, reuters_articles  # noqa: E402

SWEEP = (0.3, 0.5, 0.7, 0.9)

def measure(name: str, load, folder: Path, examples: int) -> dict:
    import numpy as np

    from qa.ingest.dedup import DedupSpec, collapse, index_against, signatures

    spec = DedupSpec()
    t0 = time.perf_counter()
    ingested = load(folder)
    t1 = time.perf_counter()
    articles = ingested.articles
    sigs = signatures([a.text for a in articles], spec)
    t2 = time.perf_counter()
    result = collapse(articles, spec, sigs)
    t3 = time.perf_counter()
    # What one `qa index add` of 50 new articles pays against the rest: stored signatures → candidates.
    texts = {a.id: a.text for a in articles}
    stored = [(a.id, s) for a, s in zip(articles, sigs) if s is not None]
    keys, probes = [k for k, _ in stored[:-50]], [s for _, s in stored[-50:]]
    matrix = np.stack([s for _, s in stored[:-50]])
    t4a = time.perf_counter()
    index = index_against(spec, texts.__getitem__, keys, matrix, probes)
    for article_id, sig in stored[-50:]:
        index.find(texts[article_id], sig)
    t4 = time.perf_counter()
    same_id = sum(1 for copy, m in result.duplicates if m.key == copy.id)
    exact = result.exact - same_id
    near = result.near
    sweep = {}
    for threshold in SWEEP:
        other = collapse(articles, DedupSpec(threshold=threshold), sigs)
        sweep[threshold] = len(other.duplicates) - same_id
    by_id = {a.id: a for a in articles}
    shown = [(a, m) for a, m in result.duplicates if not m.exact][:examples]
    for copy, match in shown:
        kept = by_id[match.key]
        print(f"  [{name}] J={match.similarity:.2f}  {copy.origin} ≈ {kept.origin}  |  {copy.title[:50]!r} ≈ {kept.title[:50]!r}")
    return {
        "corpus": name,
        "articles": len(articles),
        "skipped": len(ingested.skipped),
        "eligible (>= 30 words)": sum(s is not None for s in sigs),
        "same-id repeats": same_id,
        "exact duplicates": exact,
        "near-duplicates": near,
        "kept": len(result.kept),
        "ingest s": f"{t1 - t0:.1f}",
        "signatures s": f"{t2 - t1:.1f}",
        "LSH collapse s": f"{t3 - t2:.1f}",
        "ingest + dedup s": f"{t3 - t0:.1f}",
        "add 50 more: candidates + verify s": f"{t4 - t4a:.3f}",
        **{f"collapsed at J >= {t}": sweep[t] for t in SWEEP},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bbc", type=Path, default=BBC_DIR)
    parser.add_argument("--reuters", type=Path, default=REUTERS_DIR)
    parser.add_argument("--examples", type=int, default=0, help="print N collapsed near-duplicate pairs per corpus")
    args = parser.parse_args()
    columns = []
    for name, load, folder in (("BBC", bbc_articles, args.bbc), ("Reuters-21578", reuters_articles, args.reuters)):
        if not folder.is_dir():
            print(f"corpus not found, skipped: {folder}", file=sys.stderr)
            continue
        columns.append(measure(name, load, folder, args.examples))
    if not columns:
        sys.exit("no corpus found")
    keys = list(columns[0])
    width = max(map(len, keys))
    widths = [max(8, len(str(c["corpus"]))) for c in columns]
    print()
    print(f"| {'metric'.ljust(width)} | " + " | ".join(str(c["corpus"]).rjust(w) for c, w in zip(columns, widths)) + " |")
    print(f"|-{'-' * width}-|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|")
    for key in keys[1:]:
        print(f"| {key.ljust(width)} | " + " | ".join(str(c[key]).rjust(w) for c, w in zip(columns, widths)) + " |")


if __name__ == "__main__":
    main()
