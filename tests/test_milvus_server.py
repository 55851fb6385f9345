"""QA_STORE=milvus://127.0.0.1:PORT end to end: a milvus-lite gRPC server on 127.0.0.1 (stopped by
PID), the CLI building, asking, updating and reading back, and two `qa serve` replicas sharing it.
Skipped without the extra `.[milvus]`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("pymilvus", reason="the Milvus backend needs the extra: pip install '.[milvus]'")
pytest.importorskip("milvus_lite", reason="milvus-lite (in the extra .[milvus]) runs the local test server")

from click.testing import CliRunner

from qa.cli import cli
from qa.index.milvus import GRPC_OPTIONS

from .conftest import SAMPLE_DIR

QUESTION = "How much will the harbour bridge cost?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, timeout: float, what: str, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: the process exited with {proc.returncode}")
        try:
            result = check()
            if result:
                return result
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.5)
    raise AssertionError(f"{what}: not ready after {timeout:.0f} s")


def stop(proc: subprocess.Popen) -> None:
    """Stop a server we started, by its PID (its own process group: nothing else is signalled)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def milvus_uri(tmp_path_factory):
    from pymilvus import MilvusClient

    data = tmp_path_factory.mktemp("milvus-server")
    port = free_port()
    exe = shutil.which("milvus-lite", path=str(Path(sys.executable).parent)) or "milvus-lite"
    proc = subprocess.Popen([exe, "server", "--data-dir", str(data), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=open(data / "server.log", "wb"), start_new_session=True)
    try:
        def answers() -> bool:
            client = MilvusClient(uri=f"http://127.0.0.1:{port}", timeout=2, grpc_options=GRPC_OPTIONS)
            try:
                return client.list_collections() is not None
            finally:
                client.close()

        wait_for(answers, 60, "milvus-lite server", proc)
        yield f"milvus://127.0.0.1:{port}"
    finally:
        stop(proc)


@pytest.fixture
def env(milvus_uri, tmp_path):
    # A fresh collection name per test: tests do not see each other's data.
    return {"QA_STORE": f"{milvus_uri}/t{tmp_path.name.replace('-', '_')[-40:]}", "QA_INDEX_DIR": str(tmp_path / "unused")}


def run(args, env):
    result = CliRunner().invoke(cli, args, env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_cli_build_ask_update_read_back(env, news_file, tmp_path):
    out = run(["index", "build", str(SAMPLE_DIR), str(news_file), "--quiet"], env)
    assert "Indexed 4 articles" in out and "127.0.0.1" in out
    answer = json.loads(run(["ask", QUESTION, "--json"], env))
    assert "40 million" in answer["answer"] and answer["citations"][0]["article_id"] == "herald-bridge"
    filtered = json.loads(run(["ask", "When is the bridge vote?", "--json", "--source", "Daily Coast"], env))
    assert filtered["found"] and {c["source"] for c in filtered["citations"]} == {"Daily Coast"}
    # Update the article by id: the new figure is what the next question reads back.
    changed = tmp_path / "changed.jsonl"
    changed.write_text(json.dumps({
        "id": "herald-bridge", "title": "Council approves harbour bridge", "date": "2024-03-05", "source": "City Herald",
        "text": "The city council approved the new harbour bridge on Tuesday. The bridge will cost 55 million pounds "
                "after a revised estimate, mayor Ellen Park said. Construction starts in spring.",
    }) + "\n", encoding="utf-8")
    assert "updated 1" in run(["index", "add", str(changed), "--quiet"], env)
    assert "55 million" in json.loads(run(["ask", QUESTION, "--json"], env))["answer"]
    assert "Removed 1" in run(["index", "remove", "coast-storm"], env)
    stats = json.loads(run(["index", "stats", "--json"], env))
    assert stats["articles"] == 3 and stats["sources"] == ["City Herald", "Daily Coast"]


def start_replica(env: dict, port: int, log: Path) -> subprocess.Popen:
    full = {**os.environ, **env, "QA_HOST": "127.0.0.1", "QA_PORT": str(port), "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-m", "qa", "serve"], env=full, stdout=subprocess.DEVNULL,
                            stderr=open(log, "wb"), start_new_session=True)


def test_two_replicas_answer_alike_and_see_updates(env, news_file, tmp_path, embedder):
    import httpx

    from qa.config import Settings
    from qa.index import update_store
    from qa.records import Article

    from .conftest import SPEC

    run(["index", "build", str(SAMPLE_DIR), str(news_file), "--quiet"], env)
    ports = [free_port(), free_port()]
    replicas = [start_replica(env, port, tmp_path / f"replica{i}.log") for i, port in enumerate(ports)]
    try:
        for proc, port in zip(replicas, ports):
            wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).json()["ready"], 240,
                     f"replica on {port}", proc)

        def ask(port: int, question: str) -> dict:
            response = httpx.post(f"http://127.0.0.1:{port}/api/ask", json={"question": question}, timeout=120)
            assert response.status_code == 200, response.text
            return response.json()

        questions = [QUESTION, "What did Kim Jong Un write in the letter?", "Why were ferries cancelled?"]
        for question in questions:
            assert ask(ports[0], question) == ask(ports[1], question)
        before = ask(ports[0], QUESTION)
        assert "40 million" in before["answer"]
        settings = Settings.from_env(env)
        update_store(settings, embedder, SPEC, add=[Article(
            id="herald-bridge", title="Council approves harbour bridge", published="2024-03-05", source="City Herald",
            text="The city council approved the new harbour bridge on Tuesday. The bridge will cost 70 million "
                 "pounds, mayor Ellen Park said. Construction starts in spring.")])
        after = [ask(port, QUESTION) for port in ports]
        assert after[0] == after[1] and "70 million" in after[0]["answer"]
    finally:
        for proc in replicas:
            stop(proc)
