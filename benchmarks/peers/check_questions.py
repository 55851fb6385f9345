"""Check the question list: every gold answer occurs verbatim in its evidence article.

    python3 benchmarks/peers/check_questions.py [--questions FILE] [--corpus DIR] [--min 50]

Also checks the format ({"question", "answers": [...], "evidence_doc": "topic/NNN.txt"}), that no
question is repeated, and that there are at least --min questions. Exits 1 on any problem.
Standard library only.
"""

from __future__ import annotations

import argparse
import json
import re
import sys

import common

EVIDENCE = re.compile(r"^(business|entertainment|politics|sport|tech)/\d{3}\.txt$")


def problems(questions_path, corpus, minimum: int) -> tuple[int, list[str]]:
    errors, seen = [], set()
    lines = [line for line in questions_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for n, line in enumerate(lines, 1):
        try:
            q = json.loads(line)
        except json.JSONDecodeError as e:
            errors.append(f"line {n}: not JSON ({e})")
            continue
        question, answers, doc = q.get("question"), q.get("answers"), q.get("evidence_doc")
        if not isinstance(question, str) or not question.strip():
            errors.append(f"line {n}: no question")
        elif question in seen:
            errors.append(f"line {n}: repeated question {question!r}")
        seen.add(question)
        if not isinstance(answers, list) or not answers or not all(isinstance(a, str) and a.strip() for a in answers):
            errors.append(f"line {n}: answers must be a non-empty list of strings")
            continue
        if not isinstance(doc, str) or not EVIDENCE.match(doc):
            errors.append(f"line {n}: evidence_doc must look like topic/NNN.txt, got {doc!r}")
            continue
        path = corpus / doc
        if not path.is_file():
            errors.append(f"line {n}: evidence article {doc} not found in {corpus}")
            continue
        text = common.decode(path.read_bytes())
        for answer in answers:
            if answer not in text:
                errors.append(f"line {n}: gold answer {answer!r} does not occur in {doc}")
    if len(lines) < minimum:
        errors.append(f"only {len(lines)} questions; want at least {minimum}")
    return len(lines), errors


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--questions", type=common.Path, default=common.DEFAULT_QUESTIONS)
    p.add_argument("--corpus", type=common.Path, default=common.DEFAULT_CORPUS)
    p.add_argument("--min", type=int, default=50)
    args = p.parse_args()
    n, errors = problems(args.questions, args.corpus, args.min)
    for e in errors:
        print(e, file=sys.stderr)
    docs = {json.loads(line)["evidence_doc"] for line in args.questions.read_text().splitlines() if line.strip()}
    print(f"{n} questions over {len(docs)} evidence articles: {'OK' if not errors else f'{len(errors)} problems'}")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
