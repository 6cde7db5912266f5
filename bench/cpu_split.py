"""Where a serving process's CPU goes: py-spy samples sorted into the stages of a delivery.

``profile`` records a running process with py-spy (a PyPI development dependency, sampling
from outside the process, so the service runs unmodified) while the caller loads it, and
``split`` sorts the samples by the innermost frame that names a stage:

- ``sql``: asyncpg and the service's query modules (sending statements, reading rows,
  taking and giving back pooled connections);
- ``ledger``: hashing, encoding and appending ledger events (``service.domain.ledger``);
- ``verification``: the signature check over the raw bytes (``service.platforms``' verify
  functions, ``hmac``);
- ``decoding``: turning the verified body into messages (the adapters' ``translate``);
- ``intake``: the rest of the service's own code (intake rules, group commit, hostings);
- ``http``: everything else, the server, the framework, the service's middleware and
  controllers, and the event loop, which also does the socket reads and writes of the
  database connections (so ``sql`` is a lower bound).

Only samples of a running thread count (py-spy leaves idle ones out), so the shares are of
the CPU the process used.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["STAGES", "Profiler", "hottest", "split"]

STAGES = ("http", "verification", "decoding", "intake", "sql", "ledger")


def _stage(frame: str) -> str | None:
    """The stage a py-spy frame (``function (path:line)``) belongs to, if it names one."""
    function, _, where = frame.partition(" (")
    where = "/" + where.lstrip("/")  # py-spy shortens paths on sys.path to relative ones
    if "/asyncpg/" in where or "/service/db/" in where:
        return "sql"
    if "/service/domain/ledger" in where or "/service/domain/merkle" in where:
        return "ledger"
    if "/service/platforms/" in where:
        return "verification" if "verif" in function or "sign" in function else "decoding"
    if "/hmac.py" in where:
        return "verification"
    if any(part in where for part in _HTTP_PARTS):
        return "http"
    if "/service/" in where:
        return "intake"
    return None


#: The service's own modules that serve HTTP rather than intake: the ``serve`` command
#: (under which uvicorn and the event loop run), the middleware and the controllers.
_HTTP_PARTS = ("/service/cli/", "/service/api/", "/service/middleware", "/service/app.py")


def split(collapsed: str) -> dict[str, float]:
    """Each stage's share of the samples in py-spy's ``raw`` (collapsed stack) output."""
    counts = dict.fromkeys(STAGES, 0)
    for frames, n in _samples(collapsed):
        stage = "http"
        for frame in reversed(frames):
            found = _stage(frame)
            if found is not None:
                stage = found
                break
        counts[stage] += n
    total = sum(counts.values())
    return {stage: round(count / total, 4) if total else 0.0 for stage, count in counts.items()}


def hottest(collapsed: str, *, top: int = 15) -> list[tuple[str, float]]:
    """The service's own functions that took the most samples, each sample counted for
    the innermost of the service's frames in it (so a query's time goes to the function
    that sent it): where a profile says to look first."""
    counts: dict[str, int] = {}
    total = 0
    for frames, n in _samples(collapsed):
        total += n
        # (the connection wrapper left out: the query's sender is the one to name)
        own = [f for f in frames if "service/" in f and "service/db/connection" not in f]
        if own:
            name = _short(own[-1])
            counts[name] = counts.get(name, 0) + n
    ranked = sorted(counts.items(), key=lambda item: -item[1])[:top]
    return [(name, round(count / total, 3)) for name, count in ranked] if total else []


def _short(frame: str) -> str:
    """``function (path:line)`` as ``function module.py``."""
    function, _, where = frame.partition(" (")
    return f"{function} {where.rsplit('/', 1)[-1].split(':')[0]}"


def _samples(collapsed: str) -> list[tuple[list[str], int]]:
    found = []
    for line in collapsed.splitlines():
        stack, _, n = line.rpartition(" ")
        if stack and n.isdigit():
            found.append((stack.split(";"), int(n)))
    return found


class Profiler:
    """py-spy recording ``pid`` from ``start`` until ``stop``, which returns ``split``'s
    shares and the ``hottest`` functions (and keeps the raw stacks where asked)."""

    def __init__(self, pid: int) -> None:
        spy = shutil.which("py-spy", path=str(Path(sys.executable).parent))
        if spy is None:
            raise SystemExit("py-spy is not installed: it is a development dependency (make)")
        self._dir = tempfile.TemporaryDirectory(prefix="rr-spy-")
        self._out = Path(self._dir.name) / "stacks.txt"
        self._cmd = [
            spy,
            "record",
            "--pid",
            str(pid),
            "--rate",
            "250",
            "--nonblocking",
            "--format",
            "raw",
            "--output",
            str(self._out),
        ]
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._proc = subprocess.Popen(  # noqa: S603 - a fixed command line
            self._cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    def stop(self, keep: Path | None = None) -> tuple[dict[str, float], list[tuple[str, float]]]:
        if self._proc is None:
            raise RuntimeError("the profiler was not started")
        self._proc.send_signal(2)  # py-spy writes its output on SIGINT
        _, err = self._proc.communicate(timeout=60)
        try:
            if not self._out.exists():
                raise RuntimeError(f"py-spy wrote nothing: {err.decode(errors='replace')[-500:]}")
            collapsed = self._out.read_text()
            if keep is not None:  # the raw stacks, for a flame graph or a closer look
                keep.parent.mkdir(parents=True, exist_ok=True)
                keep.write_text(collapsed)
            return split(collapsed), hottest(collapsed)
        finally:
            self._dir.cleanup()
