"""Answer quality and "not found" on the full BBC index, before and after, as one table.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_answers.py [--before DIR] [--bbc-index DIR] [--dev-index DIR]

Measures the code of this checkout (or of --code DIR, any checkout of the project, e.g. a `git
worktree` of main: `git worktree add --detach /tmp/before <commit>`), on the same indexes:

- dev: the whole ask path on the held-apart development questions (benchmarks/dev/reuters_test.jsonl,
  each asked as of its `date`) over the Reuters March 1987 index, and the share of the held-apart
  off-topic questions (benchmarks/dev/offtopic_test.jsonl) answered found=true;
- BBC (2,225 articles, held out: never tuned on): EM/F1 and the found rate of
  benchmarks/bbc_questions.jsonl; the found rate of off-topic questions (benchmarks/offtopic_questions.jsonl,
  hand-written, plus SQuAD questions on unrelated subjects, benchmarks/dev/squad_offtopic.py); the
  Lenovo and Peru questions of issue 13; query latency p50/p95 (under flock /tmp/qa-bench.lock);
- the reader alone on XQuAD-en (its EM/F1, best span per question);
- answers with an unbalanced bracket or quotation mark, among all answers given.

With --before DIR the same measurements run on DIR's code in a subprocess and both columns print
side by side. Indexes are built on first use (--bbc-index, default runs/bench/bbc-index-w<chunking>;
the dev index as scripts/fit_calibration.py builds it) and reused: both codes read the same index
format. An index built with other chunks than the code's settings is refused; to compare code whose
default chunking differs, measure each on its own indexes (`--code DIR --json > before.json`, then
`--saved "before=before.json"`).
"""

from __future__ import annotations

import argparse
import fcntl
import inspect
import json
import os
import re
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED = ROOT.parent / "shared"
LENOVO = "How much did Lenovo agree to pay IBM for its PC division?"
PERU = "What is the capital of Peru?"
LOCK = Path("/tmp/qa-bench.lock")
# Every question is timed this many times: one pass over 53 questions moved p50 by ±20% between runs
# minutes apart on a 2-core VM; three passes held it to about ±5%.
LATENCY_PASSES = 3
# Questions whose answer depends on the as-of day ("this week's tender"): their EM/F1 is also shown
# apart. The bench classifies them itself, by wording, so every code version is scored on the same subset.
RELATIVE_TIME = re.compile(r"\b(today|yesterday|tonight|this (week|month|year)|last (week|month|year)|latest|"
                           r"most recent|recent(ly)?|so far this)\b", re.IGNORECASE)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--code", type=Path, default=ROOT, help="checkout whose qa package to measure [this one]")
    p.add_argument("--before", type=Path, default=None, help="also measure this checkout and print it beside")
    p.add_argument("--variant", action="append", default=[], metavar="LABEL:NAME=VALUE[,NAME=VALUE]",
                   help='also measure this checkout with these QA_* settings, e.g. "read all:QA_READ_FIRST=0"')
    p.add_argument("--bbc-index", type=Path, default=None,
                   help="BBC index (built if missing) [default: runs/bench/bbc-index-w<chunking>]")
    p.add_argument("--dev-index", type=Path, default=None,
                   help="development index (built if missing) [default: runs/dev/index-reuters-1987-03-w<chunking>]")
    p.add_argument("--xquad", type=Path, default=SHARED / "data" / "qa" / "eval_xquad_en.jsonl")
    p.add_argument("--skip-xquad", action="store_true", help="leave out the reader-alone XQuAD run (minutes)")
    p.add_argument("--latency-only", action="store_true",
                   help="measure only the BBC query latency (for a quiet-machine rerun of that row)")
    p.add_argument("--json", action="store_true", help="print the measurements as JSON (used for --before)")
    p.add_argument("--saved", action="append", default=[], metavar="LABEL=FILE",
                   help="also print a column measured earlier with --json (e.g. a --code run with its own indexes, "
                        "for code that cannot read today's index format)")
    args = p.parse_args()
    if args.bbc_index is None or args.dev_index is None:  # named for the settings' chunking (QA_CHUNK_*)
        sys.path.insert(0, str(args.code))
        sys.path.insert(0, str(HERE / "dev"))
        from reuters_corpus import index_dir

        args.bbc_index = args.bbc_index or index_dir(ROOT / "runs" / "bench", "bbc-index")
        args.dev_index = args.dev_index or index_dir(ROOT / "runs" / "dev", "index-reuters-1987-03")
    return args


def main() -> None:
    args = parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    columns = {}
    for saved in args.saved:
        label, _, path = saved.partition("=")
        columns[label] = json.loads(Path(path).read_text(encoding="utf-8").strip().splitlines()[-1])
    if args.before:
        columns[f"before ({args.before.name})"] = measure_elsewhere(args, args.before, {})
    columns["after" if args.before or args.saved else str(args.code)] = measure(args)
    for variant in args.variant:
        label, _, assignments = variant.partition(":")
        env = dict(pair.split("=", 1) for pair in assignments.split(",") if pair)
        columns[label] = measure_elsewhere(args, args.code, env, xquad=False)  # the same reader: XQuAD once
    if args.json:
        print(json.dumps(next(iter(columns.values()))))
        return
    from qa.read import is_balanced  # this checkout's definition, applied to every column's answers

    for column in columns.values():
        answers = column.pop("answers")
        column["answers with an unbalanced bracket or quote"] = f"{sum(not is_balanced(a) for a in answers)} of {len(answers)}"
    print_table(columns)


def measure_elsewhere(args, code: Path, env: dict[str, str], xquad: bool = True) -> dict:
    """measure() in a subprocess: another checkout's code, or other QA_* settings."""
    command = [sys.executable, __file__, "--code", str(code), "--bbc-index", str(args.bbc_index),
               "--dev-index", str(args.dev_index), "--xquad", str(args.xquad), "--json"]
    if args.latency_only:
        command.append("--latency-only")
    if args.skip_xquad or not xquad:
        command.append("--skip-xquad")
    out = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True, env=os.environ | env).stdout
    return json.loads(out.strip().splitlines()[-1])


def measure(args) -> dict:
    sys.path.insert(0, str(args.code))
    import torch  # noqa: F401  (before qa: the same import order as the CLI)

    import qa

    assert Path(qa.__file__).resolve().is_relative_to(args.code.resolve()), f"imported {qa.__file__}"
    from qa.answer import QAService
    from qa.config import Settings
    from qa.embed import Embedder
    from qa.read import Reader

    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(HERE / "dev"))
    settings = Settings.from_env()
    embedder = Embedder.from_settings(settings)
    reader = Reader.from_settings(settings)
    result: dict = {"code": str(args.code)}

    bbc = QAService(settings.with_(index_dir=args.bbc_index), store=load_index(args.bbc_index, "bbc", embedder, settings),
                    embedder=embedder, reader=reader)
    if args.latency_only:
        return result | latency(bbc, load(HERE / "bbc_questions.jsonl")) | {"answers": []}
    dev = QAService(settings.with_(index_dir=args.dev_index), store=load_index(args.dev_index, "dev", embedder, settings),
                    embedder=embedder, reader=reader)
    answers: list[str] = []
    result |= ask_all(dev, load(HERE / "dev" / "reuters_test.jsonl"), "dev", answers)
    result |= found_share(dev, load(HERE / "dev" / "offtopic_test.jsonl"), "dev off-topic", answers)

    from squad_offtopic import BENCH_TITLES, squad_offtopic

    result |= ask_all(bbc, load(HERE / "bbc_questions.jsonl"), "BBC", answers)
    offtopic = load(HERE / "offtopic_questions.jsonl") + squad_offtopic(BENCH_TITLES, per_title=6)
    result |= found_share(bbc, offtopic, "BBC off-topic", answers)
    for name, question in (("Lenovo", LENOVO), ("Peru", PERU)):
        answer = ask(bbc, {"question": question})
        result[f"{name} answer"] = f"{answer.answer} ({answer.score:.2f})" if answer.found else f"not found ({answer.score:.2f})"
    result |= latency(bbc, load(HERE / "bbc_questions.jsonl"))

    result["answers"] = answers
    if not args.skip_xquad and args.xquad.is_file():
        from qa.evaluate import evaluate_reader, load_jsonl

        scores = evaluate_reader(reader, load_jsonl(args.xquad), progress=False)
        result["reader XQuAD-en EM / F1"] = f"{scores['EM']:.1f} / {scores['F1']:.1f}"
    return result


def load_index(index_dir: Path, which: str, embedder, settings):
    """The "bbc" or "dev" index in index_dir, built there first if missing; refused when its chunking
    is not the settings'."""
    from reuters_corpus import check_chunking

    from qa.chunk import ChunkSpec
    from qa.index import IndexStore, build_index, index_exists

    spec = ChunkSpec.from_settings(settings)
    if not index_exists(index_dir):
        if which == "bbc":
            from corpora import bbc_articles

            articles = bbc_articles().articles
        else:
            from reuters_corpus import dev_articles

            articles = dev_articles()
        print(f"building the {which} index in {index_dir} (once)", file=sys.stderr)
        build_index(articles, index_dir, embedder, spec, progress=True)
    store = IndexStore.load(index_dir, embedder)
    check_chunking(store, spec, index_dir)
    return store


def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def ask(service, q: dict):
    """service.ask as of the question's date, where the code knows about as-of days (older code does not)."""
    if q.get("date") and "as_of" in inspect.signature(service.ask).parameters:
        return service.ask(q["question"], as_of=q["date"])
    return service.ask(q["question"])


def ask_all(service, questions: list[dict], name: str, answers: list[str]) -> dict:
    from qa.evaluate import squad_em_f1

    em = f1 = found = evidence = 0.0
    timed_n = timed_em = timed_f1 = 0.0  # the relative-time questions
    for q in questions:
        answer = ask(service, q)
        prediction = answer.answer if answer.found and answer.answer else ""
        if prediction:
            answers.append(prediction)
        e, f = squad_em_f1(prediction, q["answers"])
        em, f1, found = em + e, f1 + f, found + answer.found
        evidence += evidence_retrieved(service, q, getattr(answer, "time_window", None))
        if q.get("date") and RELATIVE_TIME.search(q["question"]):
            timed_n, timed_em, timed_f1 = timed_n + 1, timed_em + e, timed_f1 + f
    n = len(questions)
    result = {f"{name} EM / F1 ({n} q)": f"{100 * em / n:.1f} / {100 * f1 / n:.1f}"}
    if timed_n:
        result[f"{name} EM / F1, relative-time questions ({timed_n:.0f} q)"] = \
            f"{100 * timed_em / timed_n:.1f} / {100 * timed_f1 / timed_n:.1f}"
    return result | {f"{name} found rate": f"{found / n:.2f}", f"{name} evidence@5": f"{evidence / n:.2f}"}


def evidence_retrieved(service, q: dict, window) -> bool:
    """Is the question's evidence_doc among the 5 passages retrieved (with the ask's time window, where the
    code has one)? An article's id or origin path may carry it (BBC: "business/001.txt")."""
    kwargs = {"window": window} if "window" in inspect.signature(service.retriever.retrieve).parameters else {}
    doc = str(q.get("evidence_doc", ""))
    return bool(doc) and any(
        p.article.id == doc or str(getattr(p.article, "origin", "")).endswith(doc)
        for p in service.retriever.retrieve(q["question"], 5, None, **kwargs)
    )


def found_share(service, questions: list[dict], name: str, answers: list[str]) -> dict:
    found = 0
    for q in questions:
        answer = ask(service, q)
        found += answer.found
        if answer.found and answer.answer:
            answers.append(answer.answer)
    return {f"{name} found rate ({len(questions)} q)": f"{found / len(questions):.2f}"}


@contextmanager
def bench_lock():
    """Hold /tmp/qa-bench.lock (the `flock` of the other benchmarks) so no two timing runs overlap."""
    with open(LOCK, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def latency(service, questions: list[dict]) -> dict:
    import torch

    ask(service, questions[0])  # warm-up
    times = []
    with bench_lock():
        for _ in range(LATENCY_PASSES):
            for q in questions:
                start = time.perf_counter()
                ask(service, q)
                times.append(1000 * (time.perf_counter() - start))
    times.sort()
    return {f"BBC query p50 / p95 ms ({len(questions)} q × {LATENCY_PASSES}, {torch.get_num_threads()} threads)":
            f"{statistics.median(times):.0f} / {times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]:.0f}"}


def print_table(columns: dict[str, dict]) -> None:
    names = list(columns)
    keys = [k for k in next(iter(columns.values())) if k != "code"]
    for other in list(columns.values())[1:]:
        keys += [k for k in other if k not in keys and k != "code"]
    width = max(len(k) for k in keys)
    print(f"| {'metric'.ljust(width)} | " + " | ".join(names) + " |")
    print(f"|{'-' * (width + 2)}|" + "|".join("-" * (len(n) + 2) for n in names) + "|")
    for key in keys:
        print(f"| {key.ljust(width)} | " + " | ".join(str(columns[n].get(key, "-")) for n in names) + " |")
    print(f"\nCPU: {cpu_flags()}; torch threads and precision: QA_PRECISION={os.environ.get('QA_PRECISION', 'auto')}")


def cpu_flags() -> str:
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    shown = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags]
    return f"{model} ({', '.join(shown)}), {os.cpu_count()} cores"


if __name__ == "__main__":
    main()
