"""HTTP API contract, error cases, token, headers: the real app (UI mounted) over the real models."""

import json
import time

import pytest
from fastapi.testclient import TestClient

import qa.serve.engine
from qa.answer import QAService
from qa.serve.api import create_app, frame_ancestors
from qa.config import Settings
from qa.errors import QAError
from qa.ingest import ingest_paths
from qa.retrieve import Filters
from qa.index import build_index, update_index

from .conftest import SPEC

SANDERS = "What did Sanders say about a second meeting?"
TOKEN = "s3cret-token"


def make_client(settings: Settings, service: QAService) -> TestClient:
    return TestClient(create_app(settings, service))


@pytest.fixture(scope="module")
def client(service):
    settings = service.settings.with_(frame_ancestors="'self' https://news.example")
    with make_client(settings, service) as c:
        yield c


@pytest.fixture(scope="module")
def token_client(service):
    with make_client(service.settings.with_(api_token=TOKEN), service) as c:
        yield c


def test_ask_returns_the_cli_json(client, service):
    r = client.post("/api/ask", json={"question": SANDERS})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert body == service.ask(SANDERS).to_dict()  # what `qa ask --json` prints
    assert list(body) == ["question", "answer", "found", "score", "citations", "alternatives", "time_window"]
    c = body["citations"][0]
    assert c["passage"][c["answer_start"] : c["answer_end"]] == body["answer"]
    assert "There is not a second meeting" in c["passage"]


def test_ask_with_history_k_and_filters(client):
    history = [SANDERS]
    as_strings = client.post("/api/ask", json={"question": "And what did she say about the letter?", "history": history})
    as_messages = client.post("/api/ask", json={
        "question": "And what did she say about the letter?",
        "history": [{"role": "user", "content": SANDERS}, {"role": "assistant", "content": "He did receive a letter"}],
        "k": 2,
    })
    assert as_strings.status_code == as_messages.status_code == 200
    for r in (as_strings, as_messages):
        assert "We have responded to Chairman Kim’s letter" in r.json()["citations"][0]["passage"]

    herald = client.post("/api/ask", json={"question": "When will the bridge open?", "filters": {"source": "city herald"}})
    assert herald.status_code == 200 and herald.json()["found"]
    assert {c["source"] for c in herald.json()["citations"]} == {"City Herald"}
    any_source = client.post("/api/ask", json={"question": "When will the bridge open?", "filters": {"source": " "}})
    assert any_source.status_code == 200 and any_source.json()["found"]
    none = client.post("/api/ask", json={"question": "When will the bridge open?",
                                          "filters": {"date_from": "2030-01-01", "date_to": "2030-12-31"}})
    assert none.status_code == 200 and none.json() == {
        "question": "When will the bridge open?", "answer": None, "found": False, "score": 0.0,
        "citations": [], "alternatives": [], "time_window": None,
    }


def test_ask_as_of(client):
    r = client.post("/api/ask", json={"question": "How much will the bridge cost this week?", "as_of": "2024-03-07"})
    assert r.status_code == 200
    assert r.json()["time_window"] == {"from": "2024-03-04", "to": "2024-03-07", "reason": "this week"}
    assert r.json()["answer"] == "40 million pounds"
    earlier = client.post("/api/ask", json={"question": "How much will the bridge cost?", "as_of": "2024-01-01T09:00:00Z"})
    assert earlier.json()["time_window"]["to"] == "2024-01-01"
    assert all(c["article_id"] != "herald-bridge" for c in earlier.json()["citations"])


def _long(n):
    return "x" * n


BAD_REQUESTS = [
    ({}, "question: Field required"),
    ({"question": ""}, "question"),
    ({"question": "   \n "}, "the question is empty"),
    ({"question": _long(1001)}, "at most 1000 characters"),
    ({"question": 5}, "valid string"),
    ({"question": None}, "valid string"),
    ({"question": ["a"]}, "valid string"),
    ({"question": "q", "k": 0}, "greater than or equal to 1"),
    ({"question": "q", "k": 51}, "less than or equal to 50"),
    ({"question": "q", "k": "5"}, "valid integer"),
    ({"question": "q", "k": 1.5}, "valid integer"),
    ({"question": "q", "k": True}, "valid integer"),
    ({"question": "q", "filters": "City Herald"}, "filters"),
    ({"question": "q", "filters": {"date_from": "2024-13-01"}}, "YYYY-MM-DD"),
    ({"question": "q", "filters": {"date_to": "yesterday"}}, "YYYY-MM-DD"),
    ({"question": "q", "filters": {"date_from": "2024-02-01", "date_to": "2024-01-01"}}, "date_from is after date_to"),
    ({"question": "q", "filters": {"sauce": "x"}}, "Extra inputs"),
    ({"question": "q", "questoin": "typo"}, "Extra inputs"),
    ({"question": "q", "as_of": "next week"}, "as-of must be an ISO date"),
    ({"question": "q", "as_of": 20240320}, "valid string"),
    ({"question": "q", "history": "What did Sanders say?"}, "valid list"),
    ({"question": "q", "history": [{"role": "system", "content": "x"}]}, "history.0"),
    ({"question": "q", "history": [_long(20_001)]}, "history.0"),
    ({"question": "q", "history": ["q"] * 51}, "history"),
    ([], "valid dictionary"),
]


@pytest.mark.parametrize("body, message", BAD_REQUESTS, ids=[str(i) for i in range(len(BAD_REQUESTS))])
def test_bad_requests_are_422_with_a_json_error(client, body, message):
    r = client.post("/api/ask", json=body)
    assert r.status_code == 422, r.text
    assert message in r.json()["error"]
    assert r.json()["error"].startswith("invalid request: ")


@pytest.mark.parametrize(
    "content, content_type",
    [(b"{not json", "application/json"), (b"question=hi", "application/x-www-form-urlencoded"), (b"", "application/json")],
)
def test_malformed_bodies_are_422(client, content, content_type):
    r = client.post("/api/ask", content=content, headers={"content-type": content_type})
    assert r.status_code == 422 and "error" in r.json()


def test_oversized_body_is_413_and_unknown_routes_are_json(client):
    r = client.post("/api/ask", content=json.dumps({"question": _long(300_000)}), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "request body over" in r.json()["error"]
    assert client.get("/api/ask").status_code == 405
    assert client.get("/api/nope").json() == {"error": "no such API endpoint; see /docs"}


def test_health_and_stats(client, service):
    assert client.get("/api/health").json() in ({"status": "ok", "ready": True}, {"status": "ok", "ready": False})
    stats = client.get("/api/stats").json()
    assert stats["articles"] == 4 and stats["chunks"] == len(service.store.chunks)
    assert stats["sources"] == ["City Herald", "Daily Coast"] and stats["updated_at"]


def test_token_guards_api_but_not_health(token_client):
    ask = {"question": SANDERS, "k": 1}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}, {"Authorization": TOKEN}):
        r = token_client.post("/api/ask", json=ask, headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert "API token" in r.json()["error"]
        assert token_client.get("/api/stats", headers=headers).status_code == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert token_client.post("/api/ask", json=ask, headers=auth).json()["found"]
    assert token_client.get("/api/stats", headers=auth).status_code == 200
    assert token_client.get("/api/health").status_code == 200
    # Authentication comes before validation: no token, bad body → still 401.
    assert token_client.post("/api/ask", json={}).status_code == 401


def test_token_and_embedding_settings_from_env():
    settings = Settings.from_env({"QA_API_TOKEN": TOKEN, "QA_FRAME_ANCESTORS": "'self' https://a.example", "QA_MAX_K": "20"})
    assert settings.api_token == TOKEN and settings.frame_ancestors == "'self' https://a.example" and settings.max_k == 20
    assert TOKEN not in repr(settings)
    assert Settings().api_token == "" and Settings().frame_ancestors == "'self'"


def test_busy_models_give_503_while_health_answers(client, monkeypatch):
    engine = client.app.state.engine
    monkeypatch.setattr(qa.serve.engine, "LOCK_TIMEOUT_S", 0.2)
    with engine._lock:  # a long question is being read
        start = time.monotonic()
        assert client.get("/api/health").status_code == 200
        assert time.monotonic() - start < 0.2
        r = client.post("/api/ask", json={"question": SANDERS})
        assert r.status_code == 503 and "busy" in r.json()["error"] and r.headers["retry-after"] == "10"
    assert client.post("/api/ask", json={"question": SANDERS, "k": 1}).status_code == 200


def test_ui_widget_docs_and_frame_ancestors(client):
    page = client.get("/")
    assert page.status_code == 200 and "<html" in page.text.lower()
    assert page.headers["content-security-policy"] == "frame-ancestors 'self'"
    embed = client.get("/embed/")
    assert embed.status_code == 200 and embed.headers["content-security-policy"] == "frame-ancestors 'self' https://news.example"
    assert client.get("/embed", follow_redirects=False).headers["location"] == "/embed/"
    assert client.get("/config").status_code == 200 and client.get("/embed/config").status_code == 200
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert {"/api/ask", "/api/stats", "/api/health"} <= set(schema["paths"])
    ask = schema["components"]["schemas"]["AskRequest"]["properties"]
    assert ask["question"]["maxLength"] == 1000 and ask["k"]["anyOf"][0]["maximum"] == 50
    assert client.get("/api/health").headers["x-content-type-options"] == "nosniff"


def test_frame_ancestors_validation():
    assert frame_ancestors("'self'  https://a.example:8443 https://*.b.example") == (
        "'self' https://a.example:8443 https://*.b.example"
    )
    assert frame_ancestors("") == "'self'"
    assert frame_ancestors("http://127.0.0.1:8000 http://localhost:3000 news.example https:") == (
        "http://127.0.0.1:8000 http://localhost:3000 news.example https:"
    )
    bad_values = ("https://a.example; script-src *", "'self',https://a.example", "https://a.example\r\nX-Evil: 1",
                  "'unsafe-inline'", "javascript:")
    for bad in bad_values:
        with pytest.raises(QAError, match="QA_FRAME_ANCESTORS"):
            frame_ancestors(bad)


def test_engine_serves_an_index_updated_on_disk(tmp_path, embedder, reader, news_file):
    from qa.serve.engine import Engine

    index_dir = tmp_path / "index"
    articles = ingest_paths([news_file]).articles
    build_index(articles[:1], index_dir, embedder, SPEC)
    settings = Settings(index_dir=index_dir)
    engine = Engine(settings, QAService(settings, embedder=embedder, reader=reader))
    assert engine.stats()["articles"] == 1
    update_index(index_dir, embedder, SPEC, add=articles[1:])  # `qa index add` while serving
    assert engine.stats()["articles"] == 3
    answer = engine.ask("How fast will the winds be?", filters=Filters(source="Daily Coast"))
    assert answer.found and "120 kilometres" in answer.answer
