"""The embeddable chat in a real browser (headless Chromium from Debian packages, driven by selenium),
and the Gradio API through gradio_client, against a live server on 127.0.0.1.

The index holds the sample article and a hostile article whose title and text carry <script> and
<img onerror> payloads: they must show as text and never run.
"""

import functools
import http.server
import json
import os
import re
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest

from qa.answer import QAService
from qa.config import Settings
from qa.ingest import ingest_paths
from qa.index import build_index

from .conftest import ROOT, SAMPLE_DIR, SPEC

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1200,900",
]
EXAMPLES = ROOT / "examples"
SANDERS = "What did Sanders say about a second meeting?"
PWN = "window.__pwned='{}';document.title='PWNED'"
HOSTILE = {
    "id": "hostile",
    "title": f"Harbour festival <script>{PWN.format('title-script')}</script>"
    f'<img src=x onerror="{PWN.format("title-img")}">',
    "text": f"The harbour festival will take place in Brightport on Saturday. <script>{PWN.format('text-script')}</script> "
    f'Organisers said <img src=x onerror="{PWN.format("text-img")}"> that ten thousand visitors are expected. '
    "**Not bold** and [a link](javascript:alert(1)).",
    "url": "https://evil.example/festival",
    "source": "<b>Evil</b> Gazette",
    "date": "2024-06-01",
}

pytestmark = [  # noise from Gradio's queue internals under pandas 3
    pytest.mark.filterwarnings("ignore:.*future.no_silent_downcasting"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]
# CI (.ci/run) sets QA_REQUIRE_BROWSER=1: there a missing browser fails the test instead of skipping it.
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists() and os.environ.get("QA_REQUIRE_BROWSER") != "1",
    reason="no /usr/bin/chromium: install it with `apt-get install -y chromium chromium-driver` (make test does)",
)


# ---- helpers (also used by docs/screenshot.py) ---------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(app, port: int):
    """Serve an ASGI app with uvicorn in a daemon thread; returns the server (set should_exit to stop)."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    server.thread = thread
    return server


def stop_server(server) -> None:
    server.should_exit = True
    server.thread.join(timeout=10)


def serve_directory(directory: Path, port: int) -> http.server.ThreadingHTTPServer:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    static = http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(Quiet, directory=str(directory)))
    threading.Thread(target=static.serve_forever, daemon=True).start()
    return static


def chromium(width: int = 1200, height: int = 900):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='qa-chromium-')}")
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def ask_in_chat(driver, question: str, timeout: float = 90):
    """Type a question into the chat on the current page/frame; return the new answer element."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    before = len(driver.find_elements(By.CSS_SELECTOR, ".qa-answer"))
    box = WebDriverWait(driver, 30).until(lambda d: d.find_element(By.CSS_SELECTOR, "#qa-input textarea"))
    WebDriverWait(driver, 30).until(lambda d: box.is_enabled())
    box.send_keys(question + Keys.ENTER)
    WebDriverWait(driver, timeout, poll_frequency=0.1).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, ".qa-answer")) > before
    )
    return driver.find_elements(By.CSS_SELECTOR, ".qa-answer")[-1]


# ---- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live(tmp_path_factory, embedder, reader):
    """The app (UI + API + /embed/) on one port, examples/ on another (a different origin)."""
    from qa.serve.api import create_app

    tmp = tmp_path_factory.mktemp("browser")
    (tmp / "hostile.jsonl").write_text(json.dumps(HOSTILE) + "\n", encoding="utf-8")
    build_index(ingest_paths([SAMPLE_DIR, tmp / "hostile.jsonl"]).articles, tmp / "index", embedder, SPEC)
    app_port, page_port = free_port(), free_port()
    settings = Settings(index_dir=tmp / "index", port=app_port, frame_ancestors=f"'self' http://127.0.0.1:{page_port}")
    app = create_app(settings, QAService(settings, embedder=embedder, reader=reader))
    server = start_server(app, app_port)
    static = serve_directory(EXAMPLES, page_port)
    yield {"app": f"http://127.0.0.1:{app_port}", "page_port": page_port}
    static.shutdown()
    stop_server(server)


@pytest.fixture
def browser():
    driver = chromium()
    yield driver
    driver.quit()


# ---- tests ----------------------------------------------------------------------------------------------


def test_gradio_client_keeps_working(live):
    from gradio_client import Client

    client = Client(live["app"] + "/", verbose=False, download_files=False)
    reply = client.predict(message=SANDERS, api_name="/ask")
    # Properties, not today's exact answer: the answer is highlighted inside the cited passage of
    # the sample article.
    answer = re.search(r'<strong class="qa-text">(.+?)</strong>', reply).group(1)
    passage = re.search(r'<blockquote class="qa-passage">(.*?)</blockquote>', reply).group(1)
    assert f"<mark>{answer}</mark>" in passage and answer.strip()
    assert "Trump receives ‘nice letter’ from Kim Jong Un" in reply
    assert "<mark>There is not a second meeting" in reply and "— Sarah Sanders" in reply
    assert Client(live["app"] + "/embed/", verbose=False, download_files=False).view_api(return_format="dict")


@needs_chromium
def test_embedded_chat_answers_cites_follows_up_and_never_runs_article_scripts(live, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    page = f"http://127.0.0.1:{live['page_port']}/embed.html?server={live['app']}"
    browser.get(page)
    frame = WebDriverWait(browser, 20).until(lambda d: d.find_element(By.ID, "news-qa"))
    assert frame.get_attribute("src") == live["app"] + "/embed/"
    browser.switch_to.frame(frame)
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.CSS_SELECTOR, "#qa-input textarea"))
    assert not browser.find_elements(By.TAG_NAME, "h1"), "the widget has no page chrome"
    # Record whether the "searching" state is ever shown while the models work.
    browser.execute_script(
        "window.__searching = false; new MutationObserver(() => { if (document.querySelector('.qa-searching'))"
        " window.__searching = true; }).observe(document.body, {childList: true, subtree: true});"
    )

    answer = ask_in_chat(browser, SANDERS)
    assert browser.execute_script("return window.__searching") is True
    # Properties, not today's exact answer (a better reader must not fail CI): the answer is the
    # highlighted span, it lies in the cited passage, and the cited article is the right one.
    text = answer.find_element(By.CSS_SELECTOR, ".qa-text").text
    assert text and answer.find_element(By.TAG_NAME, "mark").text == text
    passage = answer.find_element(By.CSS_SELECTOR, ".qa-passage").text
    assert text in passage and "Sanders" in passage
    quote = "There is not a second meeting that is currently locked in or finalized"
    assert answer.find_element(By.CSS_SELECTOR, ".qa-text").text.startswith(quote)
    assert answer.find_element(By.TAG_NAME, "mark").text.startswith(quote)  # the quote, highlighted in its passage
    assert answer.find_element(By.CSS_SELECTOR, ".qa-quote-by").text.startswith("— Sarah Sanders")
    assert "confidence" in answer.find_element(By.CSS_SELECTOR, ".qa-conf").text
    assert "Trump receives ‘nice letter’ from Kim Jong Un" in answer.find_element(By.CSS_SELECTOR, ".qa-sources").text

    follow_up = ask_in_chat(browser, "And what did she say about the letter?")
    assert follow_up.find_element(By.TAG_NAME, "mark").text.startswith("We have responded to Chairman Kim’s letter")

    hostile = ask_in_chat(browser, "Where will the harbour festival take place?")
    assert "Brightport" in hostile.find_element(By.TAG_NAME, "mark").text
    shown = hostile.text
    assert f"<script>{PWN.format('text-script')}</script>" in shown, "article markup is shown as text"
    assert f'<img src=x onerror="{PWN.format("title-img")}">' in shown and "<b>Evil</b> Gazette" in shown
    assert "**Not bold** and [a link](javascript:alert(1))" in shown, "article text is not markdown"
    assert not hostile.find_elements(By.CSS_SELECTOR, "script, img, b, i, iframe")
    links = [a.get_attribute("href") for a in hostile.find_elements(By.TAG_NAME, "a")]
    assert links == ["https://evil.example/festival"]
    time.sleep(0.5)  # give any injected handler (img onerror) time to fire
    assert browser.execute_script("return [window.__pwned === undefined, document.title]") == [True, "News QA"]
    browser.switch_to.default_content()
    assert browser.execute_script("return [window.__pwned === undefined, document.title]") == [
        True, "News QA widget example"
    ]


@needs_chromium
def test_embed_is_refused_to_origins_not_in_frame_ancestors(live, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    # localhost:PORT is another origin than the allowed 127.0.0.1:PORT.
    browser.get(f"http://localhost:{live['page_port']}/embed.html?server={live['app']}")
    frame = WebDriverWait(browser, 20).until(lambda d: d.find_element(By.ID, "news-qa"))
    browser.switch_to.frame(frame)
    WebDriverWait(browser, 20).until(lambda d: d.execute_script("return location.href").startswith("chrome-error:"))
    assert not browser.find_elements(By.CSS_SELECTOR, "#qa-input textarea")
