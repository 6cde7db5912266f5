"""Signed webhook deliveries for the ingest benchmark, and the ``wrk`` runs that send them.

A ``Signer`` writes unique deliveries as a Standard Webhooks sender would, in a fixed mix
of every hosting event type (``MIX``); ``wrk_run`` signs enough of them for a run, hands
them to ``wrk`` (``bench/deliveries.lua`` sends each once) and returns the figures ``wrk``
measured. ``exchange`` sends one request on an open connection, for latency probes made
one at a time.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from bench.common import REPO_ROOT, instrument

__all__ = ["MIX", "SLUG", "Signer", "exchange", "wrk_run"]

SLUG = "bench-ingest"
_json = msgspec.json.Encoder()

#: One round of the mix, repeated: mostly updates (a new revision, a new download count),
#: hostings announced again or of new models, removals, restrictions, and now and then a
#: download batch naming a few models.
MIX = (
    ("model.updated", 11),
    ("model.hosted", 2),
    ("model.hosted.new", 1),
    ("model.removed", 2),
    ("model.restricted", 2),
    ("model.downloads", 1),
)
_ROUND = [kind for kind, weight in MIX for _ in range(weight)]
#: Models a mixed ``model.downloads`` names.
DOWNLOAD_COUNTS = 10


class Signer:
    """Builds unique, signed delivery requests as a Standard Webhooks sender would."""

    def __init__(self, secret: str, port: int, models: int) -> None:
        self.key = base64.b64decode(secret.removeprefix("whsec_"))
        self.host = f"127.0.0.1:{port}"
        self.models = models
        self.n = 0
        self.run = secrets.token_hex(4)

    def message(self, n: int, *, kind: str | None = None) -> bytes:
        """The ``n``-th delivery's body, of the mix's kind for ``n`` unless ``kind`` says."""
        kind = kind or _ROUND[n % len(_ROUND)]
        model = f"ingest/m{(n * 7) % self.models}"
        data: dict[str, Any]
        if kind == "model.updated":
            data = {"model": model, "revision": f"r{self.run}-{n}", "downloads": n}
        elif kind == "model.hosted":
            data = {"model": model, "url": f"https://hub.example/{model}", "revision": f"h{n}"}
        elif kind == "model.hosted.new":
            kind, model = "model.hosted", f"ingest/new-{self.run}-{n}"
            data = {"model": model, "url": f"https://hub.example/{model}", "licence": "mit"}
        elif kind in ("model.removed", "model.restricted"):
            data = {"model": model, "reason": f"report {n}"}
        else:
            first = (n * 13) % self.models
            data = {
                "counts": [
                    {"model": f"ingest/m{(first + i) % self.models}", "downloads": n * 100 + i}
                    for i in range(min(DOWNLOAD_COUNTS, self.models))
                ]
            }
        return _json.encode(
            {"type": kind, "timestamp": datetime.now(UTC).isoformat(), "data": data}
        )

    def downloads(self, n: int) -> bytes:
        """A ``model.downloads`` naming every model (up to 1,000), each count new."""
        counts = [
            {"model": f"ingest/m{i}", "downloads": n * 1_000_000 + i}
            for i in range(min(self.models, 1000))
        ]
        return _json.encode(
            {
                "type": "model.downloads",
                "timestamp": datetime.now(UTC).isoformat(),
                "data": {"counts": counts},
            }
        )

    def request(self, body: bytes | None = None) -> bytes:
        self.n += 1
        msg_id = f"msg_{self.run}_{self.n}"
        stamp = str(int(time.time()))
        body = self.message(self.n) if body is None else body
        mac = hmac.new(self.key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
        head = (
            f"POST /v1/webhooks/{SLUG} HTTP/1.1\r\n"
            f"Host: {self.host}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"webhook-id: {msg_id}\r\n"
            f"webhook-timestamp: {stamp}\r\n"
            f"webhook-signature: v1,{base64.b64encode(mac).decode()}\r\n"
            "\r\n"
        )
        return head.encode() + body


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    """Send one request on an open connection; its status once the answer is read."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


#: wrk's threads: one per core here, as wrk advises.
WRK_THREADS = 2


def wrk_run(
    signer: Signer, port: int, *, connections: int, seconds: float, rate_ceiling: int
) -> dict[str, Any]:
    """Send ``connections`` keep-alive connections' worth of signed deliveries to ``port``
    for ``seconds`` with ``wrk``: enough signed for ``rate_ceiling`` deliveries a second.
    Returns wrk's figures: requests, per_second, p50/p90/p99/max in ms, errors, and
    ``wrapped`` (deliveries sent a second time because the signed ones ran out)."""
    instrument("wrk")
    wrk = shutil.which("wrk") or "wrk"
    threads = min(WRK_THREADS, connections)
    each = max(connections, int(rate_ceiling * seconds / threads) + 1)
    with tempfile.TemporaryDirectory(prefix="rr-wrk-") as tmp:
        for t in range(1, threads + 1):
            Path(tmp, f"requests-{t}").write_bytes(
                b"".join(signer.request() + b"\0" for _ in range(each))
            )
        cmd = [
            wrk,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(REPO_ROOT / "bench" / "deliveries.lua"),
            f"http://127.0.0.1:{port}",
            "--",
            tmp,
        ]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout  # noqa: S603
    line = next((ln for ln in out.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{out}")
    raw = json.loads(line.removeprefix("RESULT "))
    duration = raw["duration_us"] / 1e6
    return {
        "requests": raw["requests"],
        "per_second": round(raw["requests"] / duration, 1),
        "p50_ms": round(raw["p50_us"] / 1000, 2),
        "p90_ms": round(raw["p90_us"] / 1000, 2),
        "p99_ms": round(raw["p99_us"] / 1000, 2),
        "max_ms": round(raw["max_us"] / 1000, 2),
        "errors": raw["errors"],
        "wrapped": raw["wrapped"],
    }
