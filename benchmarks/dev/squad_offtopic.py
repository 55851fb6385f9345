"""Off-topic questions drawn from SQuAD paragraphs on subjects no 1987 newswire or 2004-05 BBC story covers.

The SQuAD questions are read from ../shared at run time (never copied into the repository). A
question qualifies when it stands alone: at least six words, a capitalized name after its first
word, and no pronoun or "the passage" pointing back at its paragraph. Deterministic: the first
`per_title` qualifying questions of each title, in file order.

    DEV_TITLES    asked against the Reuters development index (scripts/fit_calibration.py)
    BENCH_TITLES  asked against the BBC index (benchmarks/bench_answers.py), disjoint from DEV_TITLES
"""

from __future__ import annotations

import json
import re
from pathlib import Path

SQUAD = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "qa" / "train_squaddev_minus_xquad.jsonl"
DEV_TITLES = (
    "Amazon_rainforest", "Chloroplast", "Ctenophora", "Force", "Genghis_Khan", "Geology", "Immune_system",
    "Martin_Luther", "Nikola_Tesla", "Oxygen", "Steam_engine", "Yuan_dynasty", "Black_Death", "Normans",
    "Huguenot", "French_and_Indian_War", "Rhine", "Prime_number",
)
BENCH_TITLES = (
    "Super_Bowl_50", "Apollo_program", "Computational_complexity_theory", "Packet_switching", "Fresno,_California",
    "Jacksonville,_Florida", "Pharmacy", "Victoria_(Australia)", "University_of_Chicago", "Harvard_University",
    "Southern_California", "Construction", "Private_school", "United_Methodist_Church", "Civil_disobedience",
)
_BACK_REFERENCE = re.compile(r"\b(he|she|they|it|its|his|her|their|this|these|those|the (passage|text|article|author))\b", re.I)


def stands_alone(question: str) -> bool:
    words = question.split()
    return len(words) >= 6 and any(w[:1].isupper() for w in words[1:]) and not _BACK_REFERENCE.search(question)


def squad_offtopic(titles: tuple[str, ...], per_title: int, date: str | None = None, path: Path = SQUAD) -> list[dict]:
    """[{id, question, answers: [], date?}] — `per_title` standalone questions of each title."""
    taken: dict[str, int] = {}
    seen: set[str] = set()
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            ex = json.loads(line)
            title = ex.get("title")
            question = " ".join(ex["question"].split())
            if title not in titles or taken.get(title, 0) >= per_title or not stands_alone(question) or question in seen:
                continue
            taken[title] = taken.get(title, 0) + 1
            seen.add(question)
            row = {"id": f"squad-{ex['id']}", "question": question, "answers": []}
            if date:
                row["date"] = date
            rows.append(row)
    return rows
