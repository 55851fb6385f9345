"""Shared fixtures: the real embedder and reader, loaded once per session, and a small index."""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest

from qa.chunk import ChunkSpec
from qa.config import DEFAULT_READER_DIR, Settings
from qa.embed import Embedder
from qa.ingest import ingest_paths
from qa.read import Reader
from qa.index import build_index

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = ROOT / "data" / "sample"
SAMPLE_FILE = SAMPLE_DIR / "trump-kim-letter.txt"
SHARED = ROOT.parent / "shared"
SPEC = ChunkSpec()

# Small made-up news records with sources and dates, for retrieval, filters and updates.
NEWS_RECORDS = [
    {
        "id": "herald-bridge",
        "title": "Council approves harbour bridge",
        "text": "The city council approved the new harbour bridge on Tuesday. The bridge will cost 40 million "
        "pounds and is expected to open in 2027, mayor Ellen Park said. Construction starts in spring.",
        "date": "2024-03-05",
        "source": "City Herald",
        "url": "https://herald.example/bridge?utm_source=rss",
    },
    {
        "id": "coast-storm",
        "title": "Storm closes schools along the coast",
        "text": "A winter storm closed thirty schools along the coast on Friday. Forecasters expect winds of "
        "120 kilometres per hour until Sunday, and ferries to the islands were cancelled.",
        "date": "2024-05-10",
        "source": "Daily Coast",
    },
    {
        "id": "coast-bridge-delay",
        "title": "Bridge vote delayed",
        "text": "The vote on the harbour bridge was delayed until next year, council member Tom Reed said. "
        "Opponents of the bridge had asked for a new study of its cost.",
        "date": "2023-11-01",
        "source": "Daily Coast",
    },
]


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """No test reads or writes the developer's ./index or QA_* settings."""
    for key in list(os.environ):
        if key.startswith("QA_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("QA_INDEX_DIR", str(tmp_path / "index"))


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture(scope="session")
def reader() -> Reader:
    return Reader(DEFAULT_READER_DIR)


@pytest.fixture(scope="session")
def news_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("news") / "news.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in NEWS_RECORDS), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def sample_index(tmp_path_factory, embedder, news_file) -> Path:
    """A built index of the sample article plus the news records; tests must not modify it."""
    index_dir = tmp_path_factory.mktemp("sample") / "index"
    articles = ingest_paths([SAMPLE_DIR, news_file]).articles
    build_index(articles, index_dir, embedder, SPEC)
    return index_dir


@pytest.fixture(scope="session")
def service(sample_index, embedder, reader):
    from qa.answer import QAService

    return QAService(Settings(index_dir=sample_index), embedder=embedder, reader=reader)


@pytest.fixture
def server():
    """A local HTTP server (tests/http_server.py) whose routes a test fills in."""
    from .http_server import NewsServer

    with NewsServer() as s:
        yield s
