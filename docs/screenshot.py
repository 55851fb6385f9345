"""Regenerate docs/chat.png: the chat answering the Sanders question, in headless Chromium.

    HF_HUB_OFFLINE=1 .venv/bin/python docs/screenshot.py [OUT.png]

Builds a temporary index from data/sample/, serves the app on a free port, asks the question and
saves a screenshot. Needs /usr/bin/chromium and /usr/bin/chromedriver (apt-get install chromium
chromium-driver) and the dev extra (selenium).
"""

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa.serve.api import create_app  # noqa: E402
from qa.config import Settings  # noqa: E402
from qa.embed import Embedder  # noqa: E402
from qa.ingest import ingest_paths  # noqa: E402
from qa.index import build_index  # noqa: E402
from tests.test_browser import SANDERS, ask_in_chat, chromium, free_port, start_server, stop_server  # noqa: E402
from tests.conftest import SAMPLE_DIR, SPEC  # noqa: E402


def main(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        index_dir = Path(tmp) / "index"
        build_index(ingest_paths([SAMPLE_DIR]).articles, index_dir, Embedder(), SPEC)
        port = free_port()
        server = start_server(create_app(Settings(index_dir=index_dir, port=port)), port)
        driver = chromium(1100, 900)
        try:
            driver.get(f"http://127.0.0.1:{port}/")
            ask_in_chat(driver, SANDERS)
            time.sleep(1)  # let the chat finish scrolling
            driver.save_screenshot(str(out))
        finally:
            driver.quit()
            stop_server(server)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "chat.png")
