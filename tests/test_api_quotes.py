"""GET /api/quotes and the `quote` object of /api/ask."""

import pytest
from fastapi.testclient import TestClient

from qa.serve.api import create_app

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def client(service):
    with TestClient(create_app(service.settings.with_(api_token=TOKEN), service)) as c:
        yield c


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_quotes_needs_the_token(client):
    assert client.get("/api/quotes", params={"speaker": "Sanders"}).status_code == 401
    r = client.get("/api/quotes", params={"speaker": "Sanders", "about": "the letter", "limit": 2}, headers=AUTH)
    assert r.status_code == 200
    body = r.json()
    assert body["speaker"] == "Sanders" and len(body["quotes"]) == 2
    assert body["quotes"][0]["text"].startswith("We have responded")


@pytest.mark.parametrize("params", [{}, {"speaker": ""}, {"speaker": "x" * 300}, {"speaker": "Sanders", "limit": 0},
                                    {"speaker": "Sanders", "date_from": "soon"},
                                    {"speaker": "Sanders", "date_from": "2020-02-01", "date_to": "2020-01-01"}])
def test_quotes_bad_requests(client, params):
    r = client.get("/api/quotes", params=params, headers=AUTH)
    assert r.status_code == 422 and r.json()["error"]


def test_ask_carries_the_quote(client):
    r = client.post("/api/ask", json={"question": "What did Sanders say about a second meeting?"}, headers=AUTH)
    quote = r.json()["quote"]
    assert quote["speaker"] == "Sarah Sanders" and quote["kind"] == "direct" and quote["cue"] == "told"
    assert "/api/quotes" in client.get("/openapi.json").json()["paths"]
