"""Regenerate the screenshots in docs/, in headless Chromium:

    chat.png          the chat page (1280 px wide, filters open) answering the Sanders question
    widget-1280.png   examples/embed.html (the widget in a 640 px high iframe) after two answers,
    widget-640.png    at window widths 1280, 640 and 360: the input stays visible at the bottom
    widget-360.png    of the frame while the conversation scrolls inside it

    HF_HUB_OFFLINE=1 .venv/bin/python docs/screenshot.py [OUT_DIR]

Builds a temporary index from data/sample/ plus a syndicated copy of the sample (made here, at
run time), serves the app on a free port and examples/ on another. Needs /usr/bin/chromium and
/usr/bin/chromedriver (apt-get install chromium chromium-driver) and the dev extra (selenium).
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
from tests.test_browser import (  # noqa: E402
    SANDERS, ask_in_chat, chromium, free_port, open_widget, serve_directory, set_viewport, start_server,
    stop_server, syndicated_copy,
)
from tests.conftest import SAMPLE_DIR, SPEC  # noqa: E402

FOLLOW_UP = "And what did she say about the letter?"
WIDGET_WIDTHS = (1280, 640, 360)
WIDGET_VIEW_HEIGHT = 720  # the 640 px frame and a margin around it


def shoot_page(driver, app: str, out: Path) -> None:
    from selenium.webdriver.common.by import By

    set_viewport(driver, 1280, 900)
    driver.get(app + "/")
    ask_in_chat(driver, SANDERS)
    driver.find_element(By.CSS_SELECTOR, "#qa-filters button").click()  # show the filter row
    time.sleep(1)  # let the chat finish scrolling
    driver.save_screenshot(str(out))


def shoot_widget(driver, page: str, width: int, out: Path) -> None:
    set_viewport(driver, width, WIDGET_VIEW_HEIGHT)
    open_widget(driver, page)
    ask_in_chat(driver, SANDERS)
    ask_in_chat(driver, FOLLOW_UP)
    time.sleep(1)
    driver.switch_to.default_content()
    driver.execute_script("document.getElementById('news-qa').scrollIntoView({block: 'center'})")
    time.sleep(0.3)
    driver.save_screenshot(str(out))


def main(out_dir: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        index_dir = Path(tmp) / "index"
        sample = ingest_paths([SAMPLE_DIR]).articles
        build_index(sample + [syndicated_copy(sample[0])], index_dir, Embedder(), SPEC)
        port, page_port = free_port(), free_port()
        settings = Settings(index_dir=index_dir, port=port, frame_ancestors=f"'self' http://127.0.0.1:{page_port}")
        server = start_server(create_app(settings), port)
        static = serve_directory(ROOT / "examples", page_port)
        app = f"http://127.0.0.1:{port}"
        driver = chromium(Path(tmp) / "chromium-profile")
        try:
            shoot_page(driver, app, out_dir / "chat.png")
            for width in WIDGET_WIDTHS:
                shoot_widget(driver, f"http://127.0.0.1:{page_port}/embed.html?server={app}", width,
                             out_dir / f"widget-{width}.png")
        finally:
            driver.quit()
            static.shutdown()
            stop_server(server)
    print(f"wrote chat.png and widget-{{{','.join(map(str, WIDGET_WIDTHS))}}}.png in {out_dir}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs")
