"""A local HTTP server for the fetch, feed and watch tests: routes with status, headers, delays, bodies."""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    headers: dict = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering
    drip: float = 0.0  # seconds between body chunks (slow body)
    stream_bytes: int = 0  # send this many bytes without Content-Length (huge response)
    etag: bool = False  # answer If-None-Match with 304
    header_drip: float = 0.0  # seconds between the bytes of the status line and headers (slowloris)


class NewsServer:
    """http.server in a thread; tests set `routes[path] = Route(...)` and read `hits` / `requests`."""

    def __init__(self):
        self.routes: dict[str, Route] = {}
        self.hits: dict[str, int] = {}
        self.requests: list[tuple[str, dict]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                path = self.path
                server.hits[path] = server.hits.get(path, 0) + 1
                server.requests.append((path, dict(self.headers)))
                route = server.routes.get(path) or server.routes.get(path.split("?")[0])
                if route is None:
                    return self._send(404, "text/plain", b"not found")
                if route.delay:
                    time.sleep(route.delay)
                if route.header_drip:
                    return self._drip_headers(route)
                etag = f'"{hashlib.sha1(route.body).hexdigest()[:12]}"'
                if route.etag and self.headers.get("If-None-Match") == etag:
                    return self._send(304, route.content_type, b"", {"ETag": etag})
                headers = dict(route.headers) | ({"ETag": etag} if route.etag else {})
                if route.stream_bytes:
                    self.send_response(route.status)
                    self.send_header("Content-Type", route.content_type)
                    self.send_header("Connection", "close")
                    self.end_headers()
                    chunk = b"x" * 65536
                    try:
                        for _ in range(route.stream_bytes // len(chunk)):
                            self.wfile.write(chunk)
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    self.close_connection = True
                    return
                self._send(route.status, route.content_type, route.body, headers, route.drip)

            def _drip_headers(self, route):
                head = (f"HTTP/1.1 {route.status} OK\r\nContent-Type: {route.content_type}\r\n"
                        f"X-Padding: {'p' * 200}\r\nContent-Length: {len(route.body)}\r\n\r\n").encode()
                try:
                    for i in range(len(head)):
                        self.wfile.write(head[i : i + 1])
                        self.wfile.flush()
                        time.sleep(route.header_drip)
                    self.wfile.write(route.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True

            def _send(self, status, content_type, body, headers=None, drip=0.0):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                try:
                    if drip:
                        for i in range(0, len(body), 16):
                            self.wfile.write(body[i : i + 16])
                            self.wfile.flush()
                            time.sleep(drip)
                    else:
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, path: str) -> str:
        return self.base + path

    def __enter__(self) -> NewsServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
