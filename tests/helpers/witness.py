"""A small C2SP tlog-witness of the suite's own, served over real HTTP on 127.0.0.1.

Written from the specs (tlog-witness, tlog-cosignature, signed-note), apart from the
service's code: it verifies the log's signature on each checkpoint with the log's verifier
key, checks the consistency proof from the size it last cosigned (with the independent RFC
9162 check in ``tests.helpers.merkle``), keeps its latest size per origin (check and update
under one lock, as the spec requires), and answers a ``cosignature/v1`` line with a
timestamp, or 400/403/404/409/422 as the spec says.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from tests.helpers.merkle import rfc_verify_consistency

DASH = "\u2014"
EMPTY_ROOT = hashlib.sha256(b"").digest()


def vkey(name: str, public: bytes, kind: bytes) -> str:
    kid = hashlib.sha256(name.encode() + b"\n" + kind + public).digest()[:4]
    return f"{name}+{kid.hex()}+{base64.b64encode(kind + public).decode()}"


class SuiteWitness:
    """The witness's key, the logs it trusts, and what it has cosigned."""

    def __init__(self, name: str, *, log_origin: str, log_vkey: str) -> None:
        self.name = name
        self._private = Ed25519PrivateKey.generate()
        public = self._private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.key_id = hashlib.sha256(name.encode() + b"\n\x04" + public).digest()[:4]
        self.vkey = vkey(name, public, b"\x04")
        log_name, log_id, log_key = log_vkey.split("+", 2)
        self._log = (log_origin, log_name, bytes.fromhex(log_id), base64.b64decode(log_key)[1:])
        #: origin -> (size, root) of the latest checkpoint cosigned.
        self.latest: dict[str, tuple[int, bytes]] = {}
        self.statuses: list[int] = []
        self._lock = threading.Lock()
        self.url = ""

    def cosign(self, body: str, timestamp: int) -> str:
        message = f"cosignature/v1\ntime {timestamp}\n".encode() + body.encode()
        sig = self._private.sign(message)
        blob = self.key_id + timestamp.to_bytes(8, "big") + sig
        return f"{DASH} {self.name} {base64.b64encode(blob).decode()}\n"

    def _signed_by_log(self, body: str, sigs: str) -> bool:
        _, log_name, log_id, log_public = self._log
        public = Ed25519PublicKey.from_public_bytes(log_public)
        for line in sigs.splitlines():
            parts = line.split(" ")
            if len(parts) != 3 or parts[0] != DASH or parts[1] != log_name:
                continue
            try:
                raw = base64.b64decode(parts[2], validate=True)
            except (ValueError, binascii.Error):
                continue
            if raw[:4] != log_id:
                continue
            try:
                public.verify(raw[4:], body.encode())
            except InvalidSignature:
                return False  # a trusted key's signature that fails: malformed
            return True
        return False

    def add_checkpoint(self, request: bytes) -> tuple[int, str, bytes]:
        """The answer to one add-checkpoint body: status, content type, body."""
        try:
            text = request.decode()
            head, sep, note = text.partition("\n\n")
            lines = head.split("\n")
            if not sep or not lines[0].startswith("old "):
                return 400, "text/plain", b"malformed\n"
            old = int(lines[0][4:])
            proof = [base64.b64decode(h, validate=True) for h in lines[1:]]
            body, sep, sigs = note.partition("\n\n")
            body += "\n"
            origin, size_text, root_text = body.split("\n")[:3]
            size, root = int(size_text), base64.b64decode(root_text, validate=True)
        except (UnicodeDecodeError, ValueError, binascii.Error):
            return 400, "text/plain", b"malformed\n"
        if origin != self._log[0]:
            return 404, "text/plain", b"unknown origin\n"
        if not sep or not self._signed_by_log(body, sigs):
            return 403, "text/plain", b"no signature by a trusted key\n"
        if old > size:
            return 400, "text/plain", b"old size is larger than the checkpoint\n"
        with self._lock:
            known, known_root = self.latest.get(origin, (0, EMPTY_ROOT))
            if old != known:
                return 409, "text/x.tlog.size", f"{known}\n".encode()
            if size == 0 and root != EMPTY_ROOT:
                return 422, "text/plain", b"not the empty tree\n"
            if old == 0 and proof:
                return 422, "text/plain", b"a proof from the empty tree\n"
            if old == size and root != known_root:
                return 422, "text/plain", b"same size, another root\n"
            if 0 < old < size and not rfc_verify_consistency(old, size, known_root, root, proof):
                return 422, "text/plain", b"the consistency proof does not verify\n"
            self.latest[origin] = (size, root)
        return 200, "text/plain; charset=utf-8", self.cosign(body, int(time.time())).encode()


def _handler(witness: SuiteWitness) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            request = self.rfile.read(length)
            if self.path != "/add-checkpoint":
                status, kind, body = 404, "text/plain", b"not found\n"
            else:
                status, kind, body = witness.add_checkpoint(request)
            witness.statuses.append(status)
            self.send_response(status)
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def serving(witness: SuiteWitness) -> Iterator[SuiteWitness]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(witness))
    server.daemon_threads = True
    witness.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield witness
    finally:
        server.shutdown()
        server.server_close()
