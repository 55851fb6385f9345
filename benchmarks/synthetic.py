"""Made-up news articles (templates and a seeded RNG, no corpus text) for the soak and memory benchmarks.

Each article states a few facts ("The Harlow council approved the new tram depot on Tuesday. It
will cost 41 million pounds, said mayor Ada Brook.") and `question(i)` asks about one of them,
so askers get real answers with citations.
"""

from __future__ import annotations

import random
from pathlib import Path

CITIES = ["Harlow", "Brightport", "Eastmere", "Kingsford", "Lowdale", "Northam", "Redcliff", "Westbury", "Ashby", "Corran"]
THINGS = ["tram depot", "harbour wall", "library", "swimming pool", "bus station", "bridge", "school", "hospital wing",
          "cycle path", "concert hall", "ferry terminal", "market hall"]
PEOPLE = ["Ada Brook", "Tom Reed", "Ellen Park", "Omar Hale", "Mia Stone", "Ravi Shah", "Lena Voss", "Jon Carr"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
# Background sentences are assembled from parts, so two articles share few 5-word shingles (as
# real ones do) and near-duplicate collapse keeps them apart.
SUBJECTS = ["Residents", "Local traders", "The opposition group", "Engineers", "Two council officers", "Campaigners",
            "The transport committee", "Parents at the nearby school", "A group of architects", "Several landlords"]
VERBS = ["asked for", "criticised", "welcomed", "questioned", "studied", "supported", "delayed", "reviewed",
         "objected to", "praised"]
OBJECTS = ["the noise limits", "the parking plan", "the opening hours", "the tender", "the budget review",
           "the design of the roof", "the traffic survey", "the contract with the builders", "the new timetable",
           "the footpath diversion"]
WHENS = ["last spring", "at a meeting in March", "over the summer", "in a letter to the mayor", "during the consultation",
         "after the first survey", "on local radio", "earlier this year", "in an online petition", "at the public inquiry"]


def filler(rng: random.Random) -> str:
    return f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(WHENS)}."


def article(i: int, filler_sentences: int = 6) -> dict:
    """Article number i as a record (id, title, text, date, source); the same i gives the same article."""
    rng = random.Random(i)
    city, thing, person = CITIES[i % len(CITIES)], THINGS[(i // len(CITIES)) % len(THINGS)], rng.choice(PEOPLE)
    cost, year, day = 10 + i % 90, 2026 + i % 5, rng.choice(DAYS)
    facts = [
        f"The {city} council approved the new {thing} on {day}.",
        f"It will cost {cost} million pounds and should open in {year}, said council leader {person}.",
    ]
    text = " ".join(facts + [filler(rng) for _ in range(filler_sentences)] + [f"Story number {i}."])
    return {
        "id": f"synthetic-{i}",
        "title": f"{city} approves new {thing} ({i})",
        "text": text,
        "date": f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}",
        "source": f"{city} Gazette",
    }


def question(i: int) -> str:
    """A question answered by article i."""
    return f"How much will the new {THINGS[(i // len(CITIES)) % len(THINGS)]} in {CITIES[i % len(CITIES)]} cost?"


def write_folder(folder: Path, total_bytes: int, filler_sentences: int = 40, per_file: int = 1000) -> tuple[int, int]:
    """Fill `folder` with .jsonl files of `per_file` articles each (one JSON record a line) until
    `total_bytes`; returns (articles, bytes). (One .txt file per article would be closer to some
    corpora, but creating 400,000 small files takes hours on a shared VM's disk.)"""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    written = i = 0
    while written < total_bytes:
        lines = []
        for _ in range(per_file):
            lines.append(json.dumps(article(i, filler_sentences)) + "\n")
            i += 1
        data = "".join(lines).encode()
        (folder / f"{i // per_file - 1:05d}.jsonl").write_bytes(data)
        written += len(data)
    return i, written
