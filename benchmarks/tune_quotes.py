"""Tune qa.speakers.Weights and Settings.quote_threshold on the development speaker questions.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/tune_quotes.py --index DIR \
        benchmarks/dev/quotes_reuters.jsonl benchmarks/dev/quotes_own.jsonl

DIR is the development index (`benchmarks/bench_quotes.py dev-index DIR`). Each question is
retrieved, read and ranked once; the grid search then re-scores the candidates' features. A
question counts as right when its best candidate at or above the threshold gives an accepted
quote, or, with no accepted quote, when none reaches the threshold. Never run this on BBC
questions: the BBC corpus is held out.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GRID = {
    "dense": (0.4, 0.6, 0.8),
    "lexical": (0.0, 0.15, 0.3),
    "context": (0.0, 0.1, 0.2),
    "reader": (0.0, 0.15, 0.3),
    "retrieved": (0.0, 0.05),
    "length": (0.0, 0.15),
    "direct": (0.0, 0.1, 0.2),
}
THRESHOLDS = np.array([round(0.2 + 0.025 * i, 3) for i in range(21)])


def collect(service, questions):
    from qa.conversation import contextualize
    from qa.evaluate import gold_answers, quote_match
    from qa.speakers import parse_speaker_question

    rows = []
    for q in questions:
        history = q.get("history") or []
        golds = gold_answers(q)
        asked = parse_speaker_question(q["question"], history)
        if asked is None:
            rows.append((golds, []))
            continue
        passages = service.retriever.retrieve(contextualize(q["question"], history), service.settings.top_k)
        read = service.reader.read(q["question"], passages)
        ranked = service.speakers.rank(asked, passages, read)
        rows.append((golds, [(r.features, quote_match(r.text, golds) if golds else False)
                             for r in ranked]))
    return rows


def accuracies(rows, weights: np.ndarray) -> np.ndarray:
    """Share right for every weight vector (rows of `weights`) and threshold: [weights, thresholds]."""
    right = np.zeros((len(weights), len(THRESHOLDS)))
    for golds, candidates in rows:
        if not candidates:
            right += not golds
            continue
        features = np.array([[c[0][k] for k in GRID] for c in candidates])
        good = np.array([c[1] for c in candidates])
        scores = weights @ features.T  # [weights, candidates]
        best = scores.argmax(axis=1)
        above = scores.max(axis=1)[:, None] >= THRESHOLDS[None, :]
        right += (above & good[best][:, None]) if golds else ~above
    return right / len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=None,
                        help="keep the questions' candidate features here and reuse them (delete it after any change)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from qa.answer import QAService
    from qa.config import Settings
    from qa.evaluate import load_jsonl

    questions = [q for f in args.files for q in load_jsonl(f, required=("question", "answers"))]
    service = QAService(Settings.from_env(index_dir=args.index))
    if args.cache and args.cache.is_file():
        rows = json.loads(args.cache.read_text())
    else:
        rows = collect(service, questions)
        if args.cache:
            args.cache.write_text(json.dumps(rows))
    combos = np.array(list(itertools.product(*GRID.values())))
    table = accuracies(rows, combos)
    results = [(table[i, j], dict(zip(GRID, combos[i].tolist())), float(THRESHOLDS[j]))
               for i in range(len(combos)) for j in range(len(THRESHOLDS))]
    results.sort(key=lambda r: -r[0])
    print(f"{len(questions)} questions; best of {len(results)} settings:")
    for acc, weights, t in results[:10]:
        print(f"  {acc:.3f}  threshold {t}  {json.dumps(weights)}")


if __name__ == "__main__":
    main()
