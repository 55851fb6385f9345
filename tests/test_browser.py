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
import threading
import time
from pathlib import Path

import pytest

from qa.answer import QAService
from qa.config import Settings
from qa.ingest import ingest_paths
from qa.index import build_index
from qa.serve.ui import NOT_FOUND, SAMPLE_QUESTIONS, SAMPLE_TITLE

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


def chromium(profile: Path, width: int = 1200, height: int = 900):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    options.add_argument(f"--user-data-dir={profile}")
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def set_viewport(driver, width: int, height: int) -> None:
    """Exactly this CSS viewport (a window size also counts the browser's own bars)."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})


def syndicated_copy(article):
    """The article as another outlet runs it (own headline, byline and footer, same text): indexed
    after it, it is collapsed into it as a near-duplicate and listed under "Also reported by"."""
    from qa.ingest import make_article

    return make_article(
        "White House says Trump got a ‘very warm’ letter from Kim",
        f"By the wire desk.\n\n{article.text}\n\nSyndicated from a news agency.",
        url="https://wire.example/kim-letter", source="Wire Service", published="2018-09-11",
    )


def open_widget(driver, page: str):
    """Load a page holding the #news-qa iframe, scroll the frame into view and switch into it;
    returns the frame's src."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(page)
    frame = WebDriverWait(driver, 20).until(lambda d: d.find_element(By.ID, "news-qa"))
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", frame)
    src = frame.get_attribute("src")
    driver.switch_to.frame(frame)
    WebDriverWait(driver, 30).until(lambda d: d.find_element(By.CSS_SELECTOR, "#qa-input textarea"))
    return src


def ask_in_chat(driver, question: str, timeout: float = 90):
    """Type a question into the chat on the current page/frame; return the new reply once it is
    final: its .qa-answer bubble, or the bot message itself (e.g. "Not found…")."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    before = len(driver.find_elements(By.CSS_SELECTOR, "#qa-chat .bot-row"))
    box = WebDriverWait(driver, 30).until(lambda d: d.find_element(By.CSS_SELECTOR, "#qa-input textarea"))
    WebDriverWait(driver, 30).until(lambda d: box.is_enabled())
    box.send_keys(question + Keys.ENTER)

    def reply(d):
        rows = d.find_elements(By.CSS_SELECTOR, "#qa-chat .bot-row")
        if len(rows) <= before or rows[-1].find_elements(By.CSS_SELECTOR, ".qa-searching") or not rows[-1].text.strip():
            return None
        return (rows[-1].find_elements(By.CSS_SELECTOR, ".qa-answer") or rows[-1].find_elements(By.CSS_SELECTOR, ".message-content"))[0]

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(reply)


# ---- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live(tmp_path_factory, embedder, reader):
    """The app (UI + API + /embed/) on one port, examples/ on another (a different origin)."""
    from qa.serve.api import create_app

    tmp = tmp_path_factory.mktemp("browser")
    (tmp / "hostile.jsonl").write_text(json.dumps(HOSTILE) + "\n", encoding="utf-8")
    [sample] = ingest_paths([SAMPLE_DIR]).articles
    articles = [sample, syndicated_copy(sample)] + ingest_paths([tmp / "hostile.jsonl"]).articles
    build_index(articles, tmp / "index", embedder, SPEC)
    app_port, page_port = free_port(), free_port()
    settings = Settings(index_dir=tmp / "index", port=app_port, frame_ancestors=f"'self' http://127.0.0.1:{page_port}")
    app = create_app(settings, QAService(settings, embedder=embedder, reader=reader))
    server = start_server(app, app_port)
    static = serve_directory(EXAMPLES, page_port)
    yield {"app": f"http://127.0.0.1:{app_port}", "page_port": page_port}
    static.shutdown()
    stop_server(server)


@pytest.fixture
def browser(tmp_path_factory):
    driver = chromium(tmp_path_factory.mktemp("chromium-profile"))
    yield driver
    driver.quit()


# ---- tests ----------------------------------------------------------------------------------------------


def answer_facts(answer) -> dict:
    """What an answer bubble shows; the full passage is read even while it is collapsed."""
    from selenium.webdriver.common.by import By

    full = answer.find_elements(By.CSS_SELECTOR, ".qa-full")
    passage = (full or answer.find_elements(By.CSS_SELECTOR, ".qa-passage"))[0]
    return {
        "answer": answer.find_element(By.CSS_SELECTOR, ".qa-text").text,
        "mark": answer.find_element(By.CSS_SELECTOR, ".qa-passage mark").text,
        "passage": " ".join(passage.get_attribute("textContent").split()),
        "sources": answer.find_element(By.CSS_SELECTOR, ".qa-sources").text,
    }


FRAME_LAYOUT = """
const doc = document.scrollingElement, box = document.querySelector('#qa-input textarea').getBoundingClientRect();
const log = document.querySelector('#qa-chat [role=log]');
return {scroll: doc.scrollHeight, client: doc.clientHeight, inner: innerHeight, top: box.top, bottom: box.bottom,
        log: [log.scrollHeight, log.clientHeight]};
"""


def test_gradio_client_keeps_working(live):
    from gradio_client import Client

    client = Client(live["app"] + "/", verbose=False, download_files=False)
    reply = client.predict(message=SANDERS, api_name="/ask")
    assert reply.startswith('<div class="qa-answer">') and "<mark>" in reply and SAMPLE_TITLE in reply
    # The filter row's values are parameters of the same endpoint.
    assert client.predict(message=SANDERS, date_from="2030-01-01", api_name="/ask") == NOT_FOUND
    # Speaker questions are answered with the quote and its speaker (qa.speakers), deterministically.
    assert "<mark>There is not a second meeting" in reply and "— Sarah Sanders" in reply
    assert Client(live["app"] + "/embed/", verbose=False, download_files=False).view_api(return_format="dict")


@needs_chromium
def test_widget_fills_its_640px_iframe_and_keeps_the_input_in_view(live, browser):
    """examples/embed.html: two answers later, the input is still inside the visible frame, the
    frame's document does not scroll (the conversation does), and the answers cite their passages."""
    from selenium.webdriver.common.by import By

    set_viewport(browser, 1000, 800)
    src = open_widget(browser, f"http://127.0.0.1:{live['page_port']}/embed.html?server={live['app']}")
    assert src == live["app"] + "/embed/"
    assert not browser.find_elements(By.TAG_NAME, "h1"), "the widget has no page chrome"
    examples = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#qa-chat .example")]
    assert examples == SAMPLE_QUESTIONS, "examples drawn from the index (the sample is in it)"

    quotes = {  # speaker questions: the speaker's own words, attributed (qa.speakers)
        SANDERS: "There is not a second meeting that is currently locked in or finalized",
        "And what did she say about the letter?": "We have responded to Chairman Kim’s letter",
    }
    for question, quote in quotes.items():
        reply = ask_in_chat(browser, question)
        facts = answer_facts(reply)
        assert facts["mark"] == facts["answer"] and facts["answer"] in facts["passage"]
        assert facts["answer"].startswith(quote)
        assert reply.find_element(By.CSS_SELECTOR, ".qa-quote-by").text.startswith("— Sarah Sanders")
        assert SAMPLE_TITLE in facts["sources"], "the answer cites the sample article"
        time.sleep(0.5)  # let the chat finish scrolling to the new answer
        layout = browser.execute_script(FRAME_LAYOUT)
        assert layout["inner"] == 640 and layout["scroll"] <= layout["client"], f"the frame's page scrolls: {layout}"
        assert 0 <= layout["top"] < layout["bottom"] <= layout["inner"], f"the input left the frame: {layout}"
    assert layout["log"][0] > layout["log"][1], "two answers overflow the conversation, which scrolls"

    answer = browser.find_elements(By.CSS_SELECTOR, ".qa-answer")[-1]
    # "Also reported by": the syndicated copy collapsed into the sample article.
    link = answer.find_element(By.CSS_SELECTOR, ".qa-also a")
    assert link.get_attribute("href") == "https://wire.example/kim-letter"
    assert "Wire Service" in answer.find_element(By.CSS_SELECTOR, ".qa-also").text
    # The sentence around the answer is shown; a click on it opens the whole passage.
    sentence = answer.find_element(By.CSS_SELECTOR, ".qa-sentence")
    full = answer.find_element(By.CSS_SELECTOR, ".qa-full")
    assert sentence.is_displayed() and not full.is_displayed()
    sentence.click()
    assert full.is_displayed() and not sentence.is_displayed()
    assert len(full.text) > len(sentence.text) and full.find_element(By.TAG_NAME, "mark").text


@needs_chromium
def test_embedded_chat_never_runs_article_scripts(live, browser):
    from selenium.webdriver.common.by import By

    open_widget(browser, f"http://127.0.0.1:{live['page_port']}/embed.html?server={live['app']}")
    # Record whether the "searching" state is ever shown while the models work.
    browser.execute_script(
        "window.__searching = false; new MutationObserver(() => { if (document.querySelector('.qa-searching'))"
        " window.__searching = true; }).observe(document.body, {childList: true, subtree: true});"
    )
    hostile = ask_in_chat(browser, "Where will the harbour festival take place?")
    assert browser.execute_script("return window.__searching") is True
    assert "Harbour festival" in answer_facts(hostile)["sources"], "the answer cites the festival article"
    assert "confidence" in hostile.find_element(By.CSS_SELECTOR, ".qa-conf").text
    hostile.find_element(By.CSS_SELECTOR, ".qa-passage summary, blockquote.qa-passage").click()  # show it all
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
def test_filter_row_lists_the_index_sources_and_filters_answers(live, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(live["app"] + "/embed/?theme=dark&lang=de")
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.CSS_SELECTOR, "#qa-input textarea"))
    WebDriverWait(browser, 10).until(lambda d: d.execute_script("return document.body.classList.contains('dark')"))
    assert browser.execute_script("return document.documentElement.lang") == "de"

    shown = [e for e in browser.find_elements(By.CSS_SELECTOR, "#qa-source input") if e.is_displayed()]
    assert not shown, "the filter row starts collapsed"
    browser.find_element(By.CSS_SELECTOR, "#qa-filters button").click()
    source = WebDriverWait(browser, 10).until(lambda d: d.find_element(By.CSS_SELECTOR, "#qa-source input"))
    WebDriverWait(browser, 10).until(lambda d: source.is_displayed())
    source.click()
    options = WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#qa-source [role=option]"))
    labels = [o.get_attribute("aria-label") for o in options]
    assert labels == ["Any source", "<b>Evil</b> Gazette"], "the index's sources, as text"
    options[1].click()
    reply = ask_in_chat(browser, SANDERS).text  # found in the sample without the filter
    assert SAMPLE_TITLE not in reply and (reply.strip() == NOT_FOUND or "Harbour festival" in reply), reply

    date_from = browser.find_element(By.CSS_SELECTOR, "#qa-date-from input")
    date_from.send_keys("2030-01-01" + Keys.ENTER)
    reply = ask_in_chat(browser, "Where will the harbour festival take place?")
    assert reply.text.strip() == NOT_FOUND, "nothing is published after 2030-01-01"


@needs_chromium
def test_examples_and_sources_follow_a_rebuilt_index(tmp_path, embedder, reader, news_file, browser):
    """`qa index build` with other articles while the server runs: the next page load offers
    examples from the new articles (and clicking one asks it) and lists the new sources."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from qa.serve.api import create_app

    settings = Settings(index_dir=tmp_path / "index", port=free_port())
    build_index(ingest_paths([SAMPLE_DIR]).articles, settings.index_dir, embedder, SPEC)
    server = start_server(create_app(settings, QAService(settings, embedder=embedder, reader=reader)), settings.port)
    try:
        set_viewport(browser, 480, 900)
        page = f"http://127.0.0.1:{settings.port}/embed/"

        def examples():
            browser.get(page)
            WebDriverWait(browser, 30).until(lambda d: d.find_element(By.CSS_SELECTOR, "#qa-chat .example"))
            time.sleep(0.5)  # the page-load event fills in the index's examples
            return [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#qa-chat .example")]

        assert examples() == SAMPLE_QUESTIONS
        # The widget alone fills the window: the input sits at the bottom, nothing scrolls.
        layout = browser.execute_script(FRAME_LAYOUT)
        assert layout["scroll"] <= layout["client"] and layout["inner"] - 24 <= layout["bottom"] <= layout["inner"]

        build_index(ingest_paths([news_file]).articles, settings.index_dir, embedder, SPEC, replace=True)
        shown = examples()
        assert shown == ["What happened: Storm closes schools along the coast?",
                         "What happened: Council approves harbour bridge?", "What happened: Bridge vote delayed?"]
        browser.find_elements(By.CSS_SELECTOR, "#qa-chat .example")[1].click()

        def reply(d):
            rows = d.find_elements(By.CSS_SELECTOR, "#qa-chat .bot-row")
            return rows and not rows[-1].find_elements(By.CSS_SELECTOR, ".qa-searching") and rows[-1].text.strip() and rows[-1]

        answered = WebDriverWait(browser, 90, poll_frequency=0.1).until(reply)
        asked = browser.find_elements(By.CSS_SELECTOR, "#qa-chat .user-row")
        assert [row.text.strip() for row in asked] == [shown[1]], "the clicked example was asked"
        assert "City Herald" in answered.text or "Daily Coast" in answered.text, "answered from the new articles"
        browser.find_element(By.CSS_SELECTOR, "#qa-filters button").click()
        WebDriverWait(browser, 10).until(lambda d: d.find_element(By.CSS_SELECTOR, "#qa-source input")).click()
        options = WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#qa-source [role=option]"))
        assert [o.get_attribute("aria-label") for o in options] == ["Any source", "City Herald", "Daily Coast"]
    finally:
        stop_server(server)
