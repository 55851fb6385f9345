"""Fit answer selection and calibration (qa.selection) for a reader, on the development sets.

    .venv/bin/python scripts/fit_calibration.py [--reader DIR] [--index DIR] [--plot docs/reliability.png]

Run it after every change of the reader's weights: it asks the development questions through
retrieval and the reader, fits the selection weights and the calibrated score on the answers, and
writes DIR/calibration.json and DIR/calibration-int8.json (the reader's directory, default qa/models/reader). Steps:

1. The development index: Reuters-21578 articles of March 1987 (benchmarks/dev/reuters_corpus.py),
   built once into runs/dev/index-reuters-1987-03-w<words>-<max words>-o<overlap> (the settings'
   chunking; about 15k chunks with the default one: an hour on 2 busy cores, minutes on a quiet
   machine) and reused while the embedder is the same. An --index built with other chunks than the
   settings say is refused.
2. Questions: benchmarks/dev/reuters_fit.jsonl (hand-written, each with an as-of `date`, many
   time-dependent), benchmarks/dev/offtopic_fit.jsonl (hand-written, answer not in the index by
   the as-of date) and SQuAD questions on unrelated subjects (benchmarks/dev/squad_offtopic.py).
   The *_test.jsonl files are never read here: they measure the result (`qa eval e2e`).
3. Candidates: for each question, retrieval (k = 5, with the question's time window) and the
   reader on each passage; every candidate answer's features (qa.selection.FEATURES) after the
   first 1..5 passages (for the adaptive-reading table). Asked and fitted once per --precision
   (default bfloat16 and int8: what QA_PRECISION=auto runs with and without native bfloat16; int8
   logits differ from bfloat16 ones by up to ~2), each fit written to its own file
   (qa.selection.calibration_file: calibration.json for bfloat16 and float32,
   calibration-int8.json for int8). Cached in runs/dev/ per reader fingerprint, index and
   precision (--fresh asks again). "Right" = exact match with a gold answer (SQuAD normalization).
4. Selection weights: a conditional logit (per question, a softmax over its candidates; L2) on
   standardized features; compared by 5-fold cross-validation with the reader's own ranking, the
   global softmax, votes, BERTserini's interpolation of retrieval and reader scores, and a
   pointwise logistic regression.
5. Calibrated score: logistic regression (Platt scaling over a few features, CALIBRATOR) of
   "right" on the chosen answers, with their out-of-fold selection scores.
6. Prints the comparison, found rates by threshold, the reliability table (out-of-fold), and what
   adaptive reading would cost; draws the reliability diagram (matplotlib, a dev dependency)
   with --plot.

BBC is never read: it is held out for benchmarks/bench_answers.py.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks" / "dev"))
DEV = ROOT / "benchmarks" / "dev"
RUNS = ROOT / "runs" / "dev"
K = 5  # passages retrieved per question (Settings.top_k)
FOLDS = 5
L2 = 1.0  # ridge penalty on standardized weights (fitted with ~5,700 candidates from ~630 questions)
THRESHOLDS = (0.1, 0.15, 0.2, 0.22, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6)
SKIP_GAPS = (0.05, 0.1, 0.15, 0.2)  # skip passages whose dense cosine is this far below the best
# The calibrated score is fitted on these features of the chosen answer (qa.selection.CALIBRATION_FEATURES).
# Compared out-of-fold (Brier score) with (score), (score, lead), (+ max_cosine, window_miss) and all
# of them, this set scored best: 0.134 against 0.159, 0.160, 0.154 and 0.134 with a less reliable top bin.
# A word-overlap feature (share of the question's content words in the passage) was tried in both
# stages and dropped: Brier 0.140 against 0.134 without it, and the same selection F1. Its
# proximity form (`near`: the words' distance from the answer) selects, within noise (+0.3 F1 on
# 312 questions), and is kept for selection only. `echo` (the answer repeats the question's words)
# joined both stages in the refit of 2026-12-03: Brier 0.154 -> 0.152, ECE 0.042 -> 0.033, off-topic
# found at 0.2 0.13 -> 0.11 (bfloat16, 632 questions); overlap tried again beside it: +2 off-topic found.
CALIBRATOR = ("score", "lead", "max_cosine", "window_miss", "margin", "log_votes", "articles", "in_window", "cosine",
              "bm25", "echo")


@dataclass
class Asked:
    """One development question's candidates after reading all K passages: features (rows), right or
    not, F1, and kind; `prefixes[m]` the same after reading only the first m passages."""

    qid: str
    kind: str  # "answerable" or "offtopic"
    features: np.ndarray  # [candidates, len(FEATURES)]
    right: np.ndarray  # bool per candidate (exact match)
    f1: np.ndarray  # token F1 per candidate
    texts: list[str]
    prefixes: dict[int, "Asked"] | None = None
    cosines: list[float] | None = None  # dense cosine of each passage read, in rank order
    skips: dict[float, tuple[int, "Asked"]] | None = None  # gap → (passages read, candidates)


def parse_args() -> argparse.Namespace:
    from qa.config import DEFAULT_READER_DIR

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reader", type=Path, default=DEFAULT_READER_DIR, help="reader directory (the calibration files go here)")
    p.add_argument("--index", type=Path, default=None,
                   help="development index (built if missing) [default: runs/dev/index-reuters-1987-03-w<chunking>]")
    p.add_argument("--plot", type=Path, default=None, help="write the reliability diagram (PNG) here")
    p.add_argument("--table", type=Path, default=None, help="write the comparison and reliability tables (Markdown) here")
    p.add_argument("--dry-run", action="store_true", help="fit and print, but do not write the calibration files")
    p.add_argument("--fresh", action="store_true",
                   help="ask every question again (the cache in runs/dev is kept per reader; clear it after "
                        "changing retrieval, reading or the features)")
    p.add_argument("--precision", action="append", default=None, choices=("float32", "bfloat16", "int8"),
                   help="fit for this inference precision (repeatable): bfloat16 writes calibration.json (also "
                        "used in float32), another calibration-<precision>.json [default: bfloat16 and int8, "
                        "what QA_PRECISION=auto runs with and without native bfloat16]")
    p.add_argument("--threshold", type=float, default=None,
                   help="found threshold for the adaptive-reading table [default: QA_FOUND_THRESHOLD]")
    args = p.parse_args()
    from qa.selection import calibration_file

    args.precision = list(dict.fromkeys(args.precision or ["bfloat16", "int8"]))
    files = [calibration_file(precision) for precision in args.precision]
    if len(set(files)) < len(files):  # bfloat16 and float32 share calibration.json: one would overwrite the other
        p.error(f"--precision {' and '.join(args.precision)} would write the same calibration file; fit one of them")
    if args.index is None:
        from reuters_corpus import index_dir

        args.index = index_dir(RUNS, "index-reuters-1987-03")
    return args


def main() -> None:
    args = parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from qa.chunk import ChunkSpec
    from qa.config import Settings
    from qa.evaluate import load_jsonl
    from qa.selection import CALIBRATION_FILE, FEATURES, Calibration, calibration_file, reader_fingerprint
    from squad_offtopic import DEV_TITLES, squad_offtopic

    fingerprint = reader_fingerprint(args.reader)
    answerable = load_jsonl(DEV / "reuters_fit.jsonl", required=("question", "answers", "date"))
    offtopic = load_jsonl(DEV / "offtopic_fit.jsonl", required=("question", "date"))
    # SQuAD questions: asked as of the middle of the corpus's month.
    offtopic += squad_offtopic(DEV_TITLES, per_title=5, date="1987-03-20")
    threshold = Settings.from_env().found_threshold if args.threshold is None else args.threshold
    for precision in args.precision:
        # Per reader, index, passage count and precision: what the candidates depend on.
        cache = RUNS / f"candidates-{fingerprint or 'reader'}-{args.index.name}-k{K}-{precision}.jsonl"
        asked = collect(args, answerable, offtopic, cache, precision)
        print(f"\n## {precision}\n\n{sum(a.kind == 'answerable' for a in asked)} answerable and "
              f"{sum(a.kind == 'offtopic' for a in asked)} off-topic development questions read in {precision}, "
              f"{sum(len(a.right) for a in asked)} candidates\n")
        models = compare(asked)
        weights, coef, oof = fit_final(asked)
        reliability = reliability_table(oof, asked)
        text = report(models, found_rates(oof, asked), reliability, brier(oof, asked))
        text += "\n\n" + adaptive_report(asked, weights, coef, threshold)
        print(text)
        file = calibration_file(precision)  # the tables and plot are named after it: x.md, x-int8.md
        suffix = "" if file == CALIBRATION_FILE else f"-{precision}"
        if args.table:
            table = args.table.with_name(f"{args.table.stem}{suffix}{args.table.suffix}")
            table.write_text(text + "\n", encoding="utf-8")
        if args.plot:
            plot(reliability, args.plot.with_name(f"{args.plot.stem}{suffix}{args.plot.suffix}"))
        calibration = Calibration(
            {name: round(float(w), 6) for name, w in zip(FEATURES, weights) if round(float(w), 6) != 0.0},
            {name: round(float(c), 6) for name, c in zip(CALIBRATOR, coef[:-1])},
            round(float(coef[-1]), 6),
            fingerprint,
            {
                "fitted": time.strftime("%Y-%m-%d"),
                "by": "scripts/fit_calibration.py",
                "precision": precision,
                "questions": {"answerable": sum(a.kind == "answerable" for a in asked),
                              "offtopic": sum(a.kind == "offtopic" for a in asked)},
                "index": "Reuters-21578, March 1987 (benchmarks/dev/reuters_corpus.py)",
                "chunking": asdict(ChunkSpec.from_settings(Settings.from_env())),
                "right": "exact match with a gold answer (SQuAD normalization)",
            },
        )
        if not args.dry_run:
            path = args.reader / file
            calibration.save(path)
            print(f"wrote {path}")


# ---- 1-3: questions → candidates ------------------------------------------------------------------


def collect(args, answerable: list[dict], offtopic: list[dict], cache: Path, precision: str) -> list[Asked]:
    from qa.selection import FEATURES

    wanted = [("answerable", q) for q in answerable] + [("offtopic", q) for q in offtopic]
    rows: dict[str, dict] = {}
    cache.parent.mkdir(parents=True, exist_ok=True)
    if args.fresh and cache.is_file():
        cache.unlink()
    if cache.is_file():
        for line in cache.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            rows[row["qid"]] = row
    missing = [(kind, q) for kind, q in wanted if _qid(kind, q) not in rows]
    if missing:
        service = dev_service(args, precision)
        from tqdm.auto import tqdm

        with open(cache, "a", encoding="utf-8") as out:
            for kind, q in tqdm(missing, desc=f"asking ({precision})", unit="q", file=sys.stderr):
                row = ask_for_candidates(service, kind, q)
                rows[row["qid"]] = row
                out.write(json.dumps(row) + "\n")
    from qa.evaluate import gold_answers, squad_em_f1

    def build(qid, kind, cands, golds):
        feats = np.array([[c["features"].get(f, 0.0) for f in FEATURES] for c in cands], dtype=np.float64)
        scores = [squad_em_f1(c["text"], golds) if golds else (0.0, 0.0) for c in cands]
        return Asked(qid, kind, feats.reshape(-1, len(FEATURES)), np.array([em > 0 for em, _ in scores], dtype=bool),
                     np.array([f1 for _, f1 in scores], dtype=np.float64), [c["text"] for c in cands])

    asked = []
    for kind, q in wanted:
        row = rows[_qid(kind, q)]
        golds = gold_answers(q)
        build_ = lambda cands: build(row["qid"], kind, cands, golds)  # noqa: E731
        prefixes = {int(m): build_(cands) for m, cands in row["prefixes"].items()}
        full = prefixes[max(prefixes)]
        full.prefixes, full.cosines = prefixes, row["cosines"]
        full.skips = {float(g): (v["read"], build_(v["candidates"])) for g, v in row["skips"].items()}
        asked.append(full)
    return asked


def _qid(kind: str, q: dict) -> str:
    return f"{kind}:{q.get('id')}:{q['question']}:{q.get('date')}"


def dev_service(args, precision: str):
    from reuters_corpus import DEFAULT_OUT, check_chunking, write_corpus

    from qa.answer import QAService
    from qa.chunk import ChunkSpec
    from qa.config import Settings
    from qa.embed import Embedder
    from qa.index import build_index, index_exists
    from qa.ingest import ingest_paths

    settings = Settings.from_env(index_dir=args.index, reader_dir=args.reader, precision=precision)
    embedder = Embedder.from_settings(settings)
    spec = ChunkSpec.from_settings(settings)
    if not index_exists(args.index):
        corpus = DEFAULT_OUT if DEFAULT_OUT.is_file() else write_corpus()
        print(f"building the development index in {args.index} (once)", file=sys.stderr)
        build_index(ingest_paths([corpus]).articles, args.index, embedder, spec)
    service = QAService(settings, embedder=embedder)
    check_chunking(service.store, spec, args.index)
    return service


def ask_for_candidates(service, kind: str, q: dict) -> dict:
    """Candidates after reading the first m of the K passages, for every m (each passage is read
    alone and the outputs merged: the same logits as reading them together)."""
    from qa.evaluate import question_as_of
    from qa.selection import candidates
    from qa.timeframe import time_window

    question = service.validate(q["question"])
    window = time_window(question, question_as_of(q))
    passages = service.retriever.retrieve(question, K, None, window)

    def rows_of(read, subset):
        return [{"text": c.text, "features": c.features} for c in candidates(read, subset, window)]

    ones = [service.reader.read(question, [p]) for p in passages]
    prefixes: dict[int, list] = {}
    read = None
    for m, one in enumerate(ones, 1):
        read = one if read is None else read.merge(one)
        prefixes[m] = rows_of(read, passages[:m])
    cosines = [p.dense_score if p.dense_score is not None else 0.0 for p in passages]
    skips = {}
    for gap in SKIP_GAPS:  # read only the passages whose cosine is within `gap` of the best (and the first)
        keep = [i for i, c in enumerate(cosines) if i == 0 or c >= max(cosines) - gap]
        merged = ones[keep[0]] if keep else None
        for i in keep[1:]:
            merged = merged.merge(ones[i])
        skips[str(gap)] = {"read": len(keep), "candidates": rows_of(merged, [passages[i] for i in keep]) if keep else []}
    return {"qid": _qid(kind, q), "prefixes": prefixes or {0: []}, "cosines": cosines, "skips": skips}


# ---- 4-5: fitting ---------------------------------------------------------------------------------


def standardize(asked: list[Asked]) -> tuple[np.ndarray, np.ndarray]:
    x = np.concatenate([a.features for a in asked if len(a.features)])
    mean, sd = x.mean(axis=0), x.std(axis=0)
    sd[sd < 1e-9] = 1.0
    return mean, sd


def logistic(x: np.ndarray, y: np.ndarray, l2: float | None = None) -> np.ndarray:
    """Weights (bias last) of an L2-regularized logistic regression (bias not penalized)."""
    from scipy.optimize import minimize

    l2 = L2 if l2 is None else l2
    xb = np.hstack([x, np.ones((len(x), 1))])

    def loss(w):
        z = xb @ w
        p = 1.0 / (1.0 + np.exp(-z))
        grad = xb.T @ (p - y)
        grad[:-1] += l2 * w[:-1]
        return np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * l2 * np.sum(w[:-1] ** 2), grad

    return minimize(loss, np.zeros(xb.shape[1]), jac=True, method="L-BFGS-B").x


def listwise(xs: list[np.ndarray], rights: list[np.ndarray], l2: float | None = None) -> np.ndarray:
    """Weights of a conditional logit: per question, a softmax over its candidates, maximizing the
    probability of the right ones (questions without a right candidate carry no information)."""
    from scipy.optimize import minimize

    l2 = L2 if l2 is None else l2
    pairs = [(x, r) for x, r in zip(xs, rights) if r.any()]

    def loss(w):
        total, grad = 0.5 * l2 * w @ w, l2 * w
        for x, r in pairs:
            s = x @ w
            log_z = np.logaddexp.reduce(s)
            log_right = np.logaddexp.reduce(s[r])
            total += log_z - log_right
            p = np.exp(s - log_z)
            q = np.where(r, np.exp(s - log_right), 0.0)
            grad = grad + x.T @ (p - q)
        return total, grad

    return minimize(loss, np.zeros(xs[0].shape[1]), jac=True, method="L-BFGS-B").x


def fit_weights(asked: list[Asked], columns: list[int] | None = None, method: str = "listwise") -> np.ndarray:
    """Raw-feature selection weights, zero outside `columns`, fitted on standardized features."""
    mean, sd = standardize(asked)
    n = len(mean)
    columns = list(range(n)) if columns is None else columns
    have = [a for a in asked if len(a.features)]
    xs = [((a.features - mean) / sd)[:, columns] for a in have]
    if method == "listwise":
        w = listwise(xs, [a.right for a in have])
    else:
        w = logistic(np.concatenate(xs), np.concatenate([a.right for a in have]).astype(np.float64))[:-1]
    weights = np.zeros(n)
    weights[columns] = w / sd[columns]
    return weights


def ranked(a: Asked, weights: np.ndarray) -> tuple[int, np.ndarray]:
    """(index of the top candidate, calibration features of it), as qa.selection.Calibration.rank computes them."""
    from qa.selection import MAX_LEAD

    scores = a.features @ weights
    order = np.argsort(-scores, kind="stable")
    i = int(order[0])
    lead = min(scores[i] - scores[order[1]], MAX_LEAD) if len(order) > 1 else MAX_LEAD
    return i, np.concatenate([[scores[i], lead], a.features[i]])


def hash_fold(qid: str) -> int:
    import hashlib

    return int(hashlib.sha1(qid.encode()).hexdigest(), 16) % FOLDS


def out_of_fold(asked: list[Asked], fit) -> list[tuple[int, np.ndarray | None]]:
    """(top candidate, its calibration features) per question, each from weights fitted without its fold."""
    fold_of = [hash_fold(a.qid) for a in asked]
    result: list[tuple[int, np.ndarray | None]] = [(-1, None)] * len(asked)
    for f in range(FOLDS):
        weights = fit([a for a, g in zip(asked, fold_of) if g != f])
        for i, (a, g) in enumerate(zip(asked, fold_of)):
            if g == f and len(a.right):
                result[i] = ranked(a, weights)
    return result


def quality(asked: list[Asked], picks) -> dict[str, float]:
    """EM/F1 (percent) of the picked answer on answerable questions, whatever its score."""
    em = f1 = 0.0
    n = 0
    for a, (i, _) in zip(asked, picks):
        if a.kind == "answerable":
            n += 1
            if i >= 0:
                em, f1 = em + float(a.right[i]), f1 + a.f1[i]
    return {"EM": 100 * em / n, "F1": 100 * f1 / n}


def compare(asked: list[Asked]) -> list[tuple[str, dict]]:
    from qa.selection import FEATURES

    col = {name: i for i, name in enumerate(FEATURES)}

    def fixed(**w):
        weights = np.zeros(len(FEATURES))
        for name, value in w.items():
            weights[col[name]] = value
        return lambda _train: weights

    def subset(*names, method="listwise"):
        return lambda train: fit_weights(train, [col[n] for n in names], method)

    def bertserini(train):  # (1 - mu) * retrieval + mu * reader, mu and the retrieval score chosen on the training folds
        best, best_f1 = None, -1.0
        for mu in np.linspace(0.0, 1.0, 11):
            for retrieval in ("bm25", "cosine", "rank"):
                w = np.zeros(len(FEATURES))
                w[col["log_prob"]] = mu
                w[col[retrieval]] = (1 - mu) * 10.0  # retrieval scores are in [0, 1]; log-probabilities span ~10
                f1 = quality(train, [ranked(a, w) if len(a.right) else (-1, None) for a in train])["F1"]
                if f1 > best_f1:
                    best, best_f1 = w, f1
        return best

    reader = ("logit", "margin", "log_prob", "log_votes", "articles", "length")
    variants = [
        ("reader logit, per-window sigmoid (before)", fixed(logit=1.0)),
        ("global softmax log-prob (same order as the logit)", fixed(log_prob=1.0)),
        ("global softmax + votes (summed probability)", fixed(log_votes=1.0)),
        ("BERTserini: (1-mu) retrieval + mu reader, tuned", bertserini),
        ("fitted, reader features + votes", subset(*reader)),
        ("fitted, + retrieval (cosine, BM25, rank)", subset(*reader, "cosine", "bm25", "rank")),
        ("fitted, all but question words near the answer", subset(*[f for f in FEATURES if f != "near"])),
        ("fitted, all features, pointwise logistic", lambda train: fit_weights(train, method="pointwise")),
        ("fitted, all features, listwise (shipped)", lambda train: fit_weights(train)),
    ]
    return [(name, quality(asked, out_of_fold(asked, fit))) for name, fit in variants]


def calibrator_columns() -> list[int]:
    from qa.selection import CALIBRATION_FEATURES

    return [CALIBRATION_FEATURES.index(n) for n in CALIBRATOR]


def fit_calibrator(rows: list[tuple[np.ndarray, bool]]) -> np.ndarray:
    """Logistic regression of "right" on the chosen answers' calibration features (CALIBRATOR), bias last."""
    cols = calibrator_columns()
    x = np.array([r[0][cols] for r in rows])
    mean, sd = x.mean(axis=0), x.std(axis=0)
    sd[sd < 1e-9] = 1.0
    w = logistic((x - mean) / sd, np.array([r[1] for r in rows], dtype=np.float64))
    raw = w[:-1] / sd
    return np.append(raw, w[-1] - raw @ mean)


def calibrate(coef: np.ndarray, values: np.ndarray) -> float:
    return float(1.0 / (1.0 + np.exp(-(values[calibrator_columns()] @ coef[:-1] + coef[-1]))))


def fit_final(asked: list[Asked]):
    """Selection weights on all questions; the calibrator on the out-of-fold chosen answers; and
    per question the out-of-fold (pick, P), P from a calibrator fitted without the question's fold."""
    picks = out_of_fold(asked, fit_weights)
    rows = {i: (values, bool(asked[i].right[pick])) for i, (pick, values) in enumerate(picks) if pick >= 0}
    fold_of = [hash_fold(a.qid) for a in asked]
    probability = {}
    for f in range(FOLDS):
        coef = fit_calibrator([r for i, r in rows.items() if fold_of[i] != f])
        probability |= {i: calibrate(coef, r[0]) for i, r in rows.items() if fold_of[i] == f}
    oof = [(picks[i][0], probability.get(i, 0.0)) for i in range(len(asked))]
    return fit_weights(asked), fit_calibrator(list(rows.values())), oof


# ---- 6: reports -----------------------------------------------------------------------------------


def found_rates(oof, asked: list[Asked]) -> list[tuple[float, float, float, float]]:
    """(threshold, answerable found rate, off-topic found rate, answerable F1 with not-found = empty)."""
    rows = []
    for t in THRESHOLDS:
        found = {"answerable": 0, "offtopic": 0}
        n = {"answerable": 0, "offtopic": 0}
        f1 = 0.0
        for a, (pick, p) in zip(asked, oof):
            n[a.kind] += 1
            hit = pick >= 0 and p >= t
            found[a.kind] += hit
            if a.kind == "answerable" and hit:
                f1 += a.f1[pick]
        rows.append((t, found["answerable"] / n["answerable"], found["offtopic"] / n["offtopic"],
                     100 * f1 / n["answerable"]))
    return rows


def reliability_table(oof, asked: list[Asked]) -> list[tuple[str, int, float, float]]:
    """Out-of-fold calibrated score of each question's chosen answer, in bins: (bin, n, mean score, share right)."""
    edges = np.linspace(0.0, 1.0, 11)
    rows = []
    pairs = [(p, bool(a.right[pick]) if pick >= 0 else False) for a, (pick, p) in zip(asked, oof)]
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = [(p, r) for p, r in pairs if lo <= p < hi or (hi == 1.0 and p == 1.0)]
        if inside:
            rows.append((f"{lo:.1f}-{hi:.1f}", len(inside), float(np.mean([p for p, _ in inside])),
                         float(np.mean([r for _, r in inside]))))
    for floor in (0.5, 0.8):
        high = [(p, r) for p, r in pairs if p >= floor]
        if high:
            rows.append((f"≥ {floor}", len(high), float(np.mean([p for p, _ in high])), float(np.mean([r for _, r in high]))))
    return rows


def brier(oof, asked: list[Asked]) -> float:
    return float(np.mean([(p - (bool(a.right[pick]) if pick >= 0 else False)) ** 2 for a, (pick, p) in zip(asked, oof)]))


def ece(reliability) -> float:
    """Expected calibration error over the ten bins: Σ share of answers × |mean score - share right|."""
    bins = [row for row in reliability if not row[0].startswith("≥")]
    total = sum(n for _, n, _, _ in bins)
    return sum(n / total * abs(p - r) for _, n, p, r in bins)


def report(models, thresholds, reliability, score_brier: float) -> str:
    lines = ["Selection, 5-fold cross-validated on the development answerable questions (top answer, whatever its score):", "",
             "| selection | EM | F1 |", "|---|---|---|"]
    lines += [f"| {name} | {q['EM']:.1f} | {q['F1']:.1f} |" for name, q in models]
    lines += ["", "Found rates by threshold on the calibrated score (out-of-fold):", "",
              "| threshold | answerable found | off-topic found | answerable F1 (not found = empty) |", "|---|---|---|---|"]
    lines += [f"| {t:.2f} | {a:.2f} | {o:.2f} | {f1:.1f} |" for t, a, o, f1 in thresholds]
    lines += ["", "Reliability of the calibrated score (out-of-fold, every development question's chosen answer, "
              f"right = exact match; Brier score {score_brier:.3f}, ECE {ece(reliability):.3f}):", "",
              "| score | answers | mean score | share right |", "|---|---|---|---|"]
    lines += [f"| {b} | {n} | {p:.2f} | {r:.2f} |" for b, n, p, r in reliability]
    return "\n".join(lines)


def adaptive_report(asked: list[Asked], weights: np.ndarray, coef: np.ndarray, threshold: float) -> str:
    """What reading fewer passages costs: stop after the first m passages when the best answer's
    calibrated score reaches tau and no later passage's cosine comes within `gap` of the best read;
    or skip the passages whose cosine is far below the best."""

    def outcome(q: Asked) -> tuple[int, float]:
        if not len(q.right):
            return -1, 0.0
        i, values = ranked(q, weights)
        return i, calibrate(coef, values)

    def evaluate(policy) -> tuple[float, float, float, float, float, int]:
        f1 = read = stopped = 0.0
        found = {"answerable": 0, "offtopic": 0}
        n = {"answerable": 0, "offtopic": 0}
        changed = 0
        for q in asked:
            k = max(q.prefixes)
            m, chosen = policy(q)
            chosen = chosen or q
            read += m or k
            stopped += bool(m) and m < k
            i, p = outcome(chosen)
            full_i, full_p = outcome(q)
            hit, full_hit = i >= 0 and p >= threshold, full_i >= 0 and full_p >= threshold
            changed += hit != full_hit or (hit and chosen.texts[i] != q.texts[full_i])
            n[q.kind] += 1
            found[q.kind] += hit
            if hit and q.kind == "answerable":
                f1 += chosen.f1[i]
        return (100 * f1 / n["answerable"], found["answerable"] / n["answerable"], found["offtopic"] / n["offtopic"],
                read / len(asked), stopped / len(asked), changed)

    def stop_early(m: int, tau: float, gap: float | None, each: bool = False):
        """Stop after the first m passages if settled; with `each`, also after every later one
        (how the int8 reader, reading windows alone, reads: Reader.read_adaptively)."""
        def settled(q: Asked, n: int) -> bool:
            i, p = outcome(q.prefixes[n])
            if i < 0 or p < tau:
                return False
            return gap is None or max(q.cosines[n:], default=-1.0) < max(q.cosines[:n]) - gap

        def policy(q: Asked):
            for n in range(m, max(q.prefixes)) if each else [m]:
                if n in q.prefixes and n < max(q.prefixes) and settled(q, n):
                    return n, q.prefixes[n]
            return 0, None
        return policy

    lines = [f"Adaptive reading on the development questions (found threshold {threshold:.2f}; all = {K} passages):",
             "", "| rule | F1 | answerable found | off-topic found | passages read | read fewer | answers changed |",
             "|---|---|---|---|---|---|---|"]
    rows = [("read all", lambda q: (0, None))]
    rows += [(f"skip passages with cosine < best - {gap}", lambda q, gap=gap: q.skips[gap]) for gap in SKIP_GAPS]
    rows += [(f"first {m}, stop if score ≥ {tau}" + (f" and cosine gap ≥ {gap}" if gap is not None else ""),
              stop_early(m, tau, gap)) for m in (1, 2, 3) for tau in (0.6, 0.7, 0.8, 0.9) for gap in (None, 0.05, 0.1)]
    rows += [(f"first 1, then one at a time, stop if score ≥ {tau}" + (f" and cosine gap ≥ {gap}" if gap else ""),
              stop_early(1, tau, gap, each=True)) for tau in (0.55, 0.6, 0.65, 0.7) for gap in (None, 0.02, 0.05, 0.1)]
    for name, policy in rows:
        f1, fa, fo, read, stopped, changed = evaluate(policy)
        lines.append(f"| {name} | {f1:.1f} | {fa:.2f} | {fo:.2f} | {read:.2f} | {stopped:.2f} | {changed} |")
    return "\n".join(lines)


def plot(reliability, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bins = [row for row in reliability if not row[0].startswith("≥")]
    fig, (top_ax, bottom_ax) = plt.subplots(2, 1, figsize=(5, 6), gridspec_kw={"height_ratios": [3, 1]}, sharex=True)
    top_ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    top_ax.plot([b[2] for b in bins], [b[3] for b in bins], marker="o", color="#1d4ed8", label="chosen answers")
    top_ax.set_ylabel("share right (exact match)")
    top_ax.set_xlim(0, 1)
    top_ax.set_ylim(0, 1)
    top_ax.legend(loc="upper left")
    top_ax.set_title("Calibrated answer score, development set (out-of-fold)", fontsize=10)
    centers = [float(b[0].split("-")[0]) + 0.05 for b in bins]
    bottom_ax.bar(centers, [b[1] for b in bins], width=0.09, color="#93c5fd")
    bottom_ax.set_xlabel("calibrated score")
    bottom_ax.set_ylabel("answers")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
