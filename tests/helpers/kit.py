"""Shared by the kit's tests: live HTTP servers standing in for a platform's receiver."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from registry_kit import Notice, NoticeReceiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER = "whsec_aGVsbG8gd29ybGQgdGhpcyBpcyBhIHNlY3JldA=="

Answer = tuple[int, dict[str, str], bytes]
Handler = Callable[[dict[str, str], bytes], Answer]


@contextmanager
def serve(handler: Handler) -> Iterator[str]:
    """A live HTTP server on 127.0.0.1 answering every POST with ``handler``; yields its URL."""

    class Http(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, content = handler(headers, body)
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Http)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/notices"
    finally:
        server.shutdown()
        server.server_close()


def kit_receiver(receiver: NoticeReceiver, processed: list[Notice]) -> Handler:
    """A platform's notice receiver written with the kit."""

    def handle(headers: dict[str, str], body: bytes) -> Answer:
        return receiver.handle(headers, body, processed.append), {}, b""

    return handle
