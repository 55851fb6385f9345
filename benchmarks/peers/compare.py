"""Compare this project with Haystack and txtai on the BBC corpus: one table.

    python3 benchmarks/peers/compare.py                       # full corpus (2,225 articles)
    python3 benchmarks/peers/compare.py --limit-articles 150  # quick check
    python3 benchmarks/peers/compare.py --rounds 3            # medians over 3 rounds
    options: --questions FILE  --systems ours,haystack,txtai  --skip-setup  --dtype float32|bfloat16
             --threads N  --our-k K  --corpus DIR  --show-answers  --out FILE (default results/latest.json)
             --rounds N  --isa avx2

Checks the question list (check_questions.py), installs the peers if needed (setup.sh), then runs
each system in its own process and venv, one after the other (never in parallel):
run_haystack.py, run_txtai.py, then run_ours.py. Each prints one JSON line; this script scores
the answers (SQuAD EM/F1: lower case, no punctuation, no a/an/the, best over the gold answers)
and prints the CPU it ran on (model, cores, family, the flags that pick our kernels), then build s,
query p50/p95 ms, peak RSS MB, EM, F1 and our ratio to each peer:
build ×(peer/ours), p50 ×(peer/ours) (above 1: we are faster), RSS ×(ours/peer) (below 1: we use less).

--rounds N runs every system N times, the order reversed every other round (a drift in the
machine's speed then hits each system alike), and reports per-system medians plus each round's
ratios: on these shared VMs the same build varies ±20% from one minute to the next.

--isa avx2 reproduces an AVX2-only CPU on a newer one (AVX-512/AMX) for all three systems alike: it
caps oneDNN (ONEDNN_MAX_CPU_ISA), aten's kernels (ATEN_CPU_CAPABILITY), MKL's GEMM
(MKL_ENABLE_INSTRUCTIONS), FAISS (FAISS_SIMD_LEVEL) and numpy's dispatch (NPY_DISABLE_CPU_FEATURES) to
AVX2. Our QA_PRECISION=auto then takes its AVX2 path (int8). One library has no such switch: fbgemm,
our int8 GEMM, still picks its AVX-512 VNNI kernels, so our int8 numbers here are optimistic next to
a real AVX2-only machine. The CPU line says "AVX2 forced".

--limit-articles N indexes the questions' evidence articles plus the first articles of each topic
(round robin, sorted names) up to N; every question's evidence article is in the subset.
Standard library only: run it with any python3.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import statistics
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import check_questions
import common

# The CPU features that decide which kernels run (qa.models.cpu: bf16 on AMX/AVX512-BF16, int8 on AVX2).
KEY_FLAGS = ("avx2", "fma", "avx_vnni", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "asimd", "bf16", "i8mm")
HERE = common.HERE
# Environment that caps every library's kernels at AVX2 (--isa avx2); see the module docstring.
AVX2_ONLY_ENV = {
    "ONEDNN_MAX_CPU_ISA": "AVX2", "DNNL_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "FAISS_SIMD_LEVEL": "AVX2", "FAISS_OPT_LEVEL": "avx2",  # FAISS's dynamic-dispatch builds; its older per-ISA builds
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",  # numpy 2's dispatch targets above AVX2
}
SYSTEMS = {
    "haystack": (HERE / ".venvs" / "haystack" / "bin" / "python", HERE / "run_haystack.py"),
    "txtai": (HERE / ".venvs" / "txtai" / "bin" / "python", HERE / "run_txtai.py"),
    "ours": (common.ROOT / ".venv" / "bin" / "python", HERE / "run_ours.py"),
}
PUNCT = set(string.punctuation) | {"‘", "’", "“", "”", "–", "—", "…"}


def normalize(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in PUNCT)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def f1(prediction: str, gold: str) -> float:
    pred, ref = normalize(prediction).split(), normalize(gold).split()
    if not pred or not ref:
        return float(pred == ref)
    common_tokens = sum((collections.Counter(pred) & collections.Counter(ref)).values())
    if not common_tokens:
        return 0.0
    precision, recall = common_tokens / len(pred), common_tokens / len(ref)
    return 2 * precision * recall / (precision + recall)


def score(answers: list[dict], questions: list[dict]) -> tuple[float, float, list[dict]]:
    by_question = {a["question"]: a["answer"] for a in answers}
    rows = []
    for q in questions:
        pred = by_question.get(q["question"], "")
        em = max(float(normalize(pred) == normalize(g)) for g in q["answers"])
        rows.append({"question": q["question"], "gold": q["answers"], "answer": pred, "em": em,
                     "f1": max(f1(pred, g) for g in q["answers"])})
    n = len(rows)
    return 100 * sum(r["em"] for r in rows) / n, 100 * sum(r["f1"] for r in rows) / n, rows


def subset(corpus: Path, questions: list[dict], limit: int | None) -> list[str] | None:
    if not limit:
        return None
    by_topic = {t: [d for d in common.all_docs(corpus) if d.startswith(t + "/")] for t in common.TOPICS}
    chosen = list(dict.fromkeys(q["evidence_doc"] for q in questions))
    i = 0
    while len(chosen) < limit and any(i < len(v) for v in by_topic.values()):
        for t in common.TOPICS:
            if i < len(by_topic[t]) and len(chosen) < limit and by_topic[t][i] not in chosen:
                chosen.append(by_topic[t][i])
        i += 1
    return sorted(chosen)


def run(name: str, args, docs_file: Path | None, questions_file: Path) -> dict:
    python, script = SYSTEMS[name]
    if not python.exists():
        sys.exit(f"{python} is missing: run benchmarks/peers/setup.sh (or make install for ours)")
    cmd = [str(python), str(script), "--corpus", str(args.corpus), "--questions", str(questions_file),
           "--reader", str(args.reader), "--dtype", args.dtype]
    if docs_file:
        cmd += ["--docs", str(docs_file)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if name == "ours" and args.our_k:
        cmd += ["--k", str(args.our_k)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HAYSTACK_TELEMETRY_ENABLED": "False",
           **(AVX2_ONLY_ENV if args.isa == "avx2" else {})}
    common.log(f"[compare] running {name}")
    start = time.perf_counter()
    # stderr (progress, library warnings) goes to a log file; stdout's last line is the result.
    log_path = args.out.with_name(f"{name}.log")
    with open(log_path, "w") as log:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=env, cwd=common.ROOT)
    if proc.returncode != 0:
        tail = log_path.read_text()[-3000:]
        sys.exit(f"{name} failed (exit {proc.returncode}); log {log_path}:\n{tail}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    common.log(f"[compare] {name} done in {time.perf_counter() - start:.0f} s (log {log_path})")
    return result


def cpu_description(isa: str | None = None) -> str:
    """"<model name>, <cores> cores: <family>; flags <the KEY_FLAGS it has>", from /proc/cpuinfo; with
    isa "avx2" the family says the run forced the AVX2 kernels."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "CPU unknown (no /proc/cpuinfo)"
    info: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        info.setdefault(key.strip(), value.strip())
    flags = set((info.get("flags") or info.get("Features") or "").split())
    if flags & {"amx_bf16"}:
        family = "Intel AMX (bf16 path)"
    elif "avx512_bf16" in flags:
        family = "AVX-512 with BF16 (bf16 path)"
    elif "avx2" in flags:
        family = "AVX2, no native bf16 (int8/float32 path)"
    elif flags & {"asimd"}:
        family = "ARM"
    else:
        family = "other"
    if isa == "avx2":
        family = f"AVX2 forced (--isa avx2) on a CPU whose own family is {family}; fbgemm's int8 still uses AVX-512"
    have = [f for f in KEY_FLAGS if f in flags]
    name = info.get("model name") or info.get("CPU part") or "unknown CPU"
    return f"{name}, {os.cpu_count()} cores: {family}; flags {' '.join(have) or 'none of ' + ' '.join(KEY_FLAGS)}"


MEASURED = ("build_s", "load_s", "p50_ms", "p95_ms", "peak_rss_mb")


def medians(rounds: list[dict[str, dict]]) -> dict[str, dict]:
    """Per system: the first round's result with each timing and memory figure replaced by its
    median over the rounds (answers do not change between rounds)."""
    return {name: {**first, **{key: round(statistics.median(r[name][key] for r in rounds), 2) for key in MEASURED}}
            for name, first in rounds[0].items()}


def ratios(peer: dict, ours: dict) -> tuple[float, float, float]:
    """build peer/ours, p50 peer/ours (above 1: we are faster), peak RSS ours/peer (below 1: we use less)."""
    return peer["build_s"] / ours["build_s"], peer["p50_ms"] / ours["p50_ms"], ours["peak_rss_mb"] / peer["peak_rss_mb"]


def table(results: dict[str, dict]) -> str:
    ours = results.get("ours")
    head = ["system", "articles", "chunks", "build s", "p50 ms", "p95 ms", "peak RSS MB", "EM %", "F1 %",
            "build peer/ours", "p50 peer/ours", "RSS ours/peer"]
    rows = []
    for name, r in results.items():
        shown = [f"{x:.2f}" for x in ratios(r, ours)] if ours and name != "ours" else ["", "", ""]
        rows.append([name, str(r["articles"]), str(r["chunks"]), f"{r['build_s']:.1f}", f"{r['p50_ms']:.0f}",
                     f"{r['p95_ms']:.0f}", f"{r['peak_rss_mb']:.0f}", f"{r['em']:.1f}", f"{r['f1']:.1f}", *shown])
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    out = [line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in rows]
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--limit-articles", type=int, default=None)
    p.add_argument("--questions", type=Path, default=common.DEFAULT_QUESTIONS)
    p.add_argument("--corpus", type=Path, default=common.DEFAULT_CORPUS)
    p.add_argument("--reader", type=Path, default=common.DEFAULT_READER)
    p.add_argument("--systems", default="haystack,txtai,ours")
    p.add_argument("--skip-setup", action="store_true")
    p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                   help="peers' compute dtype (ours follows QA_PRECISION)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--our-k", type=int, default=None, help="passages our reader reads (default QA_TOP_K, 5)")
    p.add_argument("--show-answers", action="store_true")
    p.add_argument("--out", type=Path, default=HERE / "results" / "latest.json")
    p.add_argument("--rounds", type=int, default=1, help="run every system this many times; report medians")
    p.add_argument("--isa", choices=("avx2",), default=None,
                   help="cap every system's kernels at AVX2, to reproduce an AVX2-only CPU on a newer one")
    args = p.parse_args()
    if args.rounds < 1:
        sys.exit("--rounds must be at least 1")
    args.questions, args.corpus, args.reader = args.questions.resolve(), args.corpus.resolve(), args.reader.resolve()
    args.out = args.out.resolve()
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    if unknown := set(systems) - set(SYSTEMS):
        sys.exit(f"unknown systems: {', '.join(sorted(unknown))}")
    if not args.corpus.is_dir():
        sys.exit(f"corpus not found: {args.corpus}")

    n, errors = check_questions.problems(args.questions, args.corpus, minimum=1)
    if errors:
        sys.exit("question list problems:\n" + "\n".join(errors))
    peers = [s for s in systems if s != "ours"]
    if peers and not args.skip_setup:
        subprocess.run(["bash", str(HERE / "setup.sh"), *peers], check=True, stdout=sys.stderr)

    cpu = cpu_description(args.isa)
    common.log(f"[compare] CPU: {cpu}")
    questions = common.load_questions(args.questions)
    docs = subset(args.corpus, questions, args.limit_articles)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    rounds: list[dict[str, dict]] = []
    with tempfile.TemporaryDirectory() as tmp:
        docs_file = None
        if docs is not None:
            docs_file = Path(tmp) / "docs.txt"
            docs_file.write_text("\n".join(docs) + "\n")
            inside = set(docs)
            questions = [q for q in questions if q["evidence_doc"] in inside]
        questions_file = Path(tmp) / "questions.jsonl"
        questions_file.write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in questions))
        order = [s for s in ("haystack", "txtai", "ours") if s in systems]
        for number in range(args.rounds):
            this_round = {}
            for name in order if number % 2 == 0 else order[::-1]:
                result = run(name, args, docs_file, questions_file)
                result["em"], result["f1"], result["per_question"] = score(result.pop("answers"), questions)
                this_round[name] = result
            rounds.append({name: this_round[name] for name in order})
    results = medians(rounds)
    articles = len(docs) if docs is not None else len(common.all_docs(args.corpus))
    print(f"\nBBC corpus: {articles} articles, {len(questions)} questions; peers: 200-word chunks, "
          f"40 overlap, reader over top {common.TOP_K}; peers' dtype {args.dtype}; build s excludes model loading")
    print(f"CPU: {cpu}")
    if len(rounds) > 1:
        print(f"(medians over {len(rounds)} rounds)")
    print(table(results))
    if len(rounds) > 1 and "ours" in results:
        for number, r in enumerate(rounds, 1):
            parts = []
            for name, result in r.items():
                part = f"{name} build {result['build_s']:.1f} s, p50 {result['p50_ms']:.0f} ms, RSS {result['peak_rss_mb']:.0f} MB"
                if name != "ours":
                    part += " (×{:.2f} build, ×{:.2f} p50, {:.2f} RSS)".format(*ratios(result, r["ours"]))
                parts.append(part)
            print(f"- round {number}: " + "; ".join(parts))
    for name, r in results.items():
        print(f"- {name}: {r['version']}; load_s {r['load_s']}; {r['notes']}")
    if args.show_answers:
        for i, q in enumerate(questions):
            print(f"\n{q['question']}  gold: {q['answers']}")
            for name, r in results.items():
                row = r["per_question"][i]
                print(f"  {name:9} {'EM' if row['em'] else '  '} {row['answer']!r}")
    args.out.write_text(json.dumps({"cpu": cpu, "articles": articles, "questions": len(questions), "results": results,
                                    "rounds": rounds}, indent=1))
    print(f"(details: {args.out})")


if __name__ == "__main__":
    main()
