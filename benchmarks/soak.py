"""Soak: a server, N concurrent askers and a writer adding and removing articles, for T minutes.

    python benchmarks/soak.py --minutes 10 --askers 4           # the issue-16 run
    python benchmarks/soak.py --seconds 40 --askers 2 --json    # what tests/test_soak.py runs

Builds an index of the sample article and --articles made-up articles (benchmarks/synthetic.py)
in a temporary folder, starts `python -m qa serve` on it (127.0.0.1, a free port), and then, at
the same time:

- askers: POST /api/ask in a loop, each with its own questions about the indexed articles;
- a writer: `update_index` adding one new article, then removing it, over and over (every write is
  a new generation; the server reloads it at its next question, old generations are removed);
- loaders: `IndexStore.load` in a loop, the path `qa index stats` and `qa ask` take.

Prints requests, errors by kind, latency p50/p95, writes, loads, and the server's RSS over time.
Exits 1 when any read failed (an asker got anything but 200, or a load raised). Time it under
`flock /tmp/qa-bench.lock` on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import synthetic  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024
    except (OSError, StopIteration):
        return None


class Tally:
    """Thread-safe counts and latencies."""

    def __init__(self):
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.errors: Counter[str] = Counter()
        self.count = 0

    def ok(self, seconds: float) -> None:
        with self.lock:
            self.count += 1
            self.latencies.append(seconds)

    def fail(self, kind: str) -> None:
        with self.lock:
            self.count += 1
            self.errors[kind] += 1


def build(index_dir: Path, articles: int, embedder) -> None:
    from qa.chunk import ChunkSpec
    from qa.index import build_index
    from qa.ingest import ingest_paths, make_article

    records = [synthetic.article(i, filler_sentences=2) for i in range(articles)]
    items = ingest_paths([ROOT / "data" / "sample"]).articles + [
        make_article(r["title"], r["text"], published=r["date"], source=r["source"], explicit_id=r["id"]) for r in records
    ]
    build_index(items, index_dir, embedder, ChunkSpec())


def start_server(index_dir: Path, port: int, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env.update(QA_INDEX_DIR=str(index_dir), QA_HOST="127.0.0.1", QA_PORT=str(port), HF_HUB_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false")
    return subprocess.Popen([sys.executable, "-m", "qa", "serve"], cwd=ROOT, env=env, stdout=log.open("w"),
                            stderr=subprocess.STDOUT)


def wait_ready(base: str, proc: subprocess.Popen, timeout: float = 300) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(base + "/api/health", timeout=5).json().get("ready"):
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.5)
    raise SystemExit("the server did not become ready")


def asker(n: int, base: str, articles: int, stop: threading.Event, tally: Tally) -> None:
    import httpx

    i = n
    with httpx.Client(timeout=180) as client:
        while not stop.is_set():
            question = synthetic.question(i % articles) if i % 3 else "What did Sanders say about a second meeting?"
            i += 7
            start = time.monotonic()
            try:
                r = client.post(base + "/api/ask", json={"question": question})
            except httpx.HTTPError as exc:
                tally.fail(type(exc).__name__)
                continue
            if r.status_code == 200:
                tally.ok(time.monotonic() - start)
            else:
                tally.fail(f"HTTP {r.status_code}: {r.text[:80]}")


def writer(index_dir: Path, embedder, stop: threading.Event, tally: Tally, keep: int) -> None:
    from qa.chunk import ChunkSpec
    from qa.index import update_index
    from qa.ingest import make_article

    i = 0
    while not stop.is_set():
        start = time.monotonic()
        try:
            if i % 2 == 0:
                r = synthetic.article(100_000 + i, filler_sentences=2)
                extra = make_article(r["title"], r["text"], source=r["source"], explicit_id="soak-extra")
                update_index(index_dir, embedder, ChunkSpec(), add=[extra], keep=keep)
            else:
                update_index(index_dir, embedder, ChunkSpec(), remove=["soak-extra"], keep=keep)
            tally.ok(time.monotonic() - start)
        except Exception as exc:  # noqa: BLE001 - counted and reported
            tally.fail(f"{type(exc).__name__}: {str(exc)[:80]}")
        i += 1


def loader(index_dir: Path, embedder, stop: threading.Event, tally: Tally) -> None:
    from qa.index import IndexStore

    while not stop.is_set():
        start = time.monotonic()
        try:
            IndexStore.load(index_dir, embedder)
            tally.ok(time.monotonic() - start)
        except Exception as exc:  # noqa: BLE001 - counted and reported
            tally.fail(f"{type(exc).__name__}: {str(exc)[:80]}")


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    duration = parser.add_mutually_exclusive_group()
    duration.add_argument("--minutes", type=float, default=None)
    duration.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--askers", type=int, default=4)
    parser.add_argument("--loaders", type=int, default=1, help="threads loading the index like `qa index stats`")
    parser.add_argument("--articles", type=int, default=300, help="made-up articles in the index")
    parser.add_argument("--keep", type=int, default=1, help="generations kept: 1 removes each old one at once (the hardest case)")
    parser.add_argument("--rss-every", type=float, default=5.0, help="seconds between RSS samples")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    seconds = 60 * args.minutes if args.minutes is not None else args.seconds if args.seconds is not None else 600

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from qa.embed import Embedder
    from qa.index import current_generation

    embedder = Embedder()
    with tempfile.TemporaryDirectory(prefix="qa-soak-") as tmp:
        index_dir = Path(tmp) / "index"
        t0 = time.monotonic()
        build(index_dir, args.articles, embedder)
        built_s = time.monotonic() - t0
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = start_server(index_dir, port, Path(tmp) / "server.log")
        try:
            wait_ready(base, proc)
            stop = threading.Event()
            asks, writes, loads = Tally(), Tally(), Tally()
            threads = [threading.Thread(target=asker, args=(n, base, args.articles, stop, asks)) for n in range(args.askers)]
            threads += [threading.Thread(target=writer, args=(index_dir, embedder, stop, writes, args.keep))]
            threads += [threading.Thread(target=loader, args=(index_dir, embedder, stop, loads)) for _ in range(args.loaders)]
            generations = {current_generation(index_dir)}
            rss = [(0.0, rss_mb(proc.pid))]
            start = time.monotonic()
            for t in threads:
                t.start()
            while (elapsed := time.monotonic() - start) < seconds and proc.poll() is None:
                time.sleep(min(args.rss_every, max(0.1, seconds - elapsed)))
                rss.append((round(time.monotonic() - start, 1), rss_mb(proc.pid)))
                generations.add(current_generation(index_dir))
            stop.set()
            for t in threads:
                t.join(300)
            idle_start = time.monotonic()
            time.sleep(min(10.0, args.rss_every * 2))  # after the burst: does memory come back?
            rss.append((round(time.monotonic() - start, 1), rss_mb(proc.pid)))
            server_alive = proc.poll() is None
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        log_tail = (Path(tmp) / "server.log").read_text(errors="replace")[-2000:]

    values = [v for _, v in rss if v is not None]
    summary = {
        "seconds": round(seconds), "askers": args.askers, "loaders": args.loaders, "articles": args.articles + 1,
        "keep": args.keep, "build_s": round(built_s, 1),
        "requests": asks.count, "ok": len(asks.latencies), "errors": dict(asks.errors),
        "p50_ms": round(1000 * percentile(asks.latencies, 50)) if asks.latencies else None,
        "p95_ms": round(1000 * percentile(asks.latencies, 95)) if asks.latencies else None,
        "writes": writes.count, "write_errors": dict(writes.errors), "generations": len(generations),
        "loads": loads.count, "load_errors": dict(loads.errors),
        "rss_mb": {"start": values[0] if values else None, "peak": max(values) if values else None,
                   "end_of_load": rss[-2][1] if len(rss) > 1 else None, "after_idle": rss[-1][1]},
        "rss_series": [(t, round(v)) for t, v in rss if v is not None],
        "server_alive": server_alive,
        "traceback_in_server_log": "Traceback" in log_tail,
    }
    failed = bool(asks.errors or loads.errors or not server_alive or not asks.latencies)
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"soak: {summary['seconds']} s, {args.askers} askers, 1 writer (keep={args.keep}), {args.loaders} loaders, "
              f"{summary['articles']} articles (built in {summary['build_s']} s)")
        rows = [
            ("requests (ok)", f"{asks.count} ({len(asks.latencies)})"),
            ("errors by kind", ", ".join(f"{k}: {v}" for k, v in asks.errors.items()) or "none"),
            ("latency p50 / p95", f"{summary['p50_ms']} / {summary['p95_ms']} ms"),
            ("writes (errors)", f"{writes.count} ({sum(writes.errors.values())}: {dict(writes.errors) or '-'})"),
            ("generations seen", str(len(generations))),
            ("loads (errors)", f"{loads.count} ({sum(loads.errors.values())}: {dict(loads.errors) or '-'})"),
            ("server RSS MB start / peak / end / after 10 s idle",
             " / ".join(f"{summary['rss_mb'][k]:.0f}" if summary["rss_mb"][k] else "-"
                        for k in ("start", "peak", "end_of_load", "after_idle"))),
            ("server RSS over time (s: MB)", ", ".join(f"{t:g}: {v}" for t, v in summary["rss_series"][:: max(1, len(rss) // 12)])),
        ]
        width = max(len(k) for k, _ in rows)
        for k, v in rows:
            print(f"{k:<{width}}  {v}")
        print("FAILED: some reads failed" if failed else "OK: 0 failed reads")
        if failed:
            print(log_tail)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
