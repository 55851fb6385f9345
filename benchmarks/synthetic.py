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
FILLER = [
    "Residents had asked for the project for several years.",
    "Opponents said the money should go to road repairs instead.",
    "The plans were first published in the spring and changed twice after public meetings.",
    "Local businesses expect more visitors once the work is finished.",
    "The council will publish the contracts on its website next month.",
    "A public meeting about the timetable is planned for the autumn.",
    "Engineers surveyed the site over the winter and found no major problems.",
    "The opposition group on the council voted against the final plan.",
]


def article(i: int, filler_sentences: int = 6) -> dict:
    """Article number i as a record (id, title, text, date, source); the same i gives the same article."""
    rng = random.Random(i)
    city, thing, person = CITIES[i % len(CITIES)], THINGS[(i // len(CITIES)) % len(THINGS)], rng.choice(PEOPLE)
    cost, year, day = 10 + i % 90, 2026 + i % 5, rng.choice(DAYS)
    facts = [
        f"The {city} council approved the new {thing} on {day}.",
        f"It will cost {cost} million pounds and should open in {year}, said council leader {person}.",
    ]
    text = " ".join(facts + [rng.choice(FILLER) for _ in range(filler_sentences)] + [f"Story number {i}."])
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


def write_folder(folder: Path, total_bytes: int, filler_sentences: int = 40) -> tuple[int, int]:
    """Fill `folder` with one .txt article per file (title line, blank line, text) until
    `total_bytes`, 1,000 files a sub-folder; returns (files, bytes)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = i = 0
    while written < total_bytes:
        sub = folder / f"{i // 1000:04d}"
        if i % 1000 == 0:
            sub.mkdir(exist_ok=True)
        record = article(i, filler_sentences)
        data = f"{record['title']}\n\n{record['text']}\n".encode()
        (sub / f"{i:07d}.txt").write_bytes(data)
        written += len(data)
        i += 1
    return i, written
