"""qa.index.base: QA_STORE parsing and the backend factory; the embedded default imports no
distributed dependency. (The Milvus backend itself: tests/test_milvus*.py.)"""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from qa.cli import cli
from qa.config import Settings
from qa.errors import QAError
from qa.index import IndexStore, open_store, store_exists, store_version
from qa.index.base import chunk_count, location, parse_location


def test_location_parsing(tmp_path):
    assert parse_location("", tmp_path).kind == "files"
    loc = parse_location("milvus://127.0.0.1:19530", tmp_path)
    assert (loc.kind, loc.uri, loc.collection) == ("milvus", "http://127.0.0.1:19530", "news_qa")
    assert parse_location("milvus://db.internal:19531/archive_2024", tmp_path).collection == "archive_2024"
    assert parse_location(str(tmp_path / "x.db"), tmp_path).uri == str(tmp_path / "x.db")
    for bad in ("milvus://host", "milvus://:19530", "milvus://h:1/bad-name", "postgres://x", "index.faiss"):
        with pytest.raises(QAError):
            parse_location(bad, tmp_path)


def test_files_backend_is_the_default(sample_index, embedder):
    settings = Settings(index_dir=sample_index)
    assert location(settings).kind == "files" and store_exists(settings)
    store = open_store(settings, embedder)
    assert isinstance(store, IndexStore) and chunk_count(store) == len(store.chunks)
    assert store_version(settings) == (sample_index / "CURRENT").read_text().strip()


def test_default_path_imports_no_distributed_dependency(sample_index):
    code = (
        "import sys\n"
        "from qa.config import Settings\n"
        "from qa.answer import QAService\n"
        "import qa.cli, qa.serve.engine\n"
        f"service = QAService(Settings(index_dir={str(sample_index)!r}))\n"
        "assert service.retriever.store.chunks\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'pymilvus', 'milvus_lite', 'ray', 'pyarrow'}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_watch_refuses_a_milvus_store(tmp_path):
    result = CliRunner().invoke(cli, ["index", "watch", "https://news.example/rss.xml", "--rounds", "1"],
                                env={"QA_STORE": "milvus://127.0.0.1:19530"})
    assert result.exit_code == 1 and "QA_STORE" in result.output and "Traceback" not in result.output
