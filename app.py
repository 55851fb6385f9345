"""Entry point: `python app.py` serves the chat UI (/), the embeddable chat (/embed/) and the HTTP
API (/api/ask, /docs) on ./index, building it from the bundled sample article first if no index
exists yet. Settings come from QA_* variables (QA_API_TOKEN, QA_FRAME_ANCESTORS, QA_PORT, …)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
SAMPLE_DIR = ROOT / "data" / "sample"


def main() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from qa.serve.api import serve
    from qa.chunk import ChunkSpec
    from qa.config import Settings
    from qa.ingest.dedup import DedupSpec
    from qa.embed import Embedder
    from qa.errors import QAError
    from qa.ingest import ingest_paths
    from qa.index import build_store, store_exists
    from qa.index.base import location

    settings = Settings.from_env()
    if "QA_INDEX_DIR" not in os.environ:
        settings = settings.with_(index_dir=ROOT / "index")
    try:
        if not store_exists(settings):
            print(f"No index in {location(settings)}; building it from the sample in {SAMPLE_DIR}")
            articles = ingest_paths([SAMPLE_DIR]).articles
            build_store(
                settings, articles, Embedder.from_settings(settings), ChunkSpec.from_settings(settings),
                progress=True, dedup=DedupSpec.from_settings(settings),
            )
        serve(settings)
    except QAError as exc:
        sys.exit(f"Error: {exc}")


if __name__ == "__main__":
    main()
