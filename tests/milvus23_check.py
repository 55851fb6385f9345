"""Run by tests/test_milvus23.py inside a private network namespace (loopback only): start PyPI's
milvus 2.3.5 standalone server, build, ask, filter, update and read back through the Milvus store's
dense path (2.3 has no sparse vectors), print one JSON line, stop the server by PID."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SERVER = """
import sys, time
from milvus import MilvusServer
server = MilvusServer()
server.set_base_dir(sys.argv[1])
server.listen_port = int(sys.argv[2])
server.start()
print('started', flush=True)
while True:
    time.sleep(60)
"""


def main() -> None:
    data = tempfile.mkdtemp(prefix="milvus23-")
    port = 19530
    t0 = time.monotonic()
    server = subprocess.Popen([sys.executable, "-c", SERVER, data, str(port)], stdout=subprocess.PIPE, text=True,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    result: dict = {}
    try:
        if server.stdout.readline().strip() != "started":
            raise SystemExit("milvus 2.3.5 did not start")
        result["start_s"] = round(time.monotonic() - t0, 1)
        from qa.chunk import ChunkSpec
        from qa.config import Settings
        from qa.embed import Embedder
        from qa.index import build_store, open_store, update_store
        from qa.records import Article
        from qa.retrieve import Filters
        from qa.retrieve_milvus import MilvusRetriever

        embedder, spec = Embedder(), ChunkSpec()
        settings = Settings(store=f"milvus://127.0.0.1:{port}")
        articles = [
            Article(id="bridge", title="Council approves harbour bridge", source="City Herald", published="2024-03-05",
                    text="The harbour bridge will cost 40 million pounds, the mayor said on Tuesday."),
            Article(id="storm", title="Storm closes schools", source="Daily Coast", published="2024-05-10",
                    text="A winter storm closed thirty schools along the coast on Friday."),
        ]
        store, _ = build_store(settings, articles, embedder, spec)
        result["sparse"] = store.pointer["sparse"]
        retriever = MilvusRetriever(open_store(settings, embedder), embedder)
        result["top"] = [p.article.id for p in retriever.retrieve("How much will the bridge cost?", 2)]
        result["filtered"] = [p.article.id for p in retriever.retrieve("bridge", 2, Filters(source="daily coast"))]
        update_store(settings, embedder, spec, remove=["storm"], add=[Article(
            id="bridge", title="Bridge", text="The harbour bridge will now cost 55 million pounds.")])
        result["after"] = [p.chunk.text for p in retriever.retrieve("How much will the bridge cost?", 2)]
        result["total_s"] = round(time.monotonic() - t0, 1)
    finally:
        stop_group(server)
        shutil.rmtree(data, ignore_errors=True)  # the server unpacks ~0.5 GB of binaries and data here
    print(json.dumps(result))


def stop_group(server: subprocess.Popen) -> None:
    """SIGTERM to the server's own process group (the wrapper and the milvus binary it started),
    SIGKILL after 30 s; returns when no process of the group is left."""
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=60)
    deadline = time.monotonic() + 30
    while True:
        try:
            os.killpg(server.pid, signal.SIGKILL if time.monotonic() > deadline else 0)
        except ProcessLookupError:
            return
        time.sleep(0.5)


if __name__ == "__main__":
    main()
