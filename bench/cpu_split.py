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
- ``http``: everything else, the server, the framework and the event loop.

Only samples of a running thread count (py-spy leaves idle ones out), so the shares are of
the CPU the process used.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["STAGES", "Profiler", "split"]

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
    if "/service/" in where:
        return "intake"
    return None


def split(collapsed: str) -> dict[str, float]:
    """Each stage's share of the samples in py-spy's ``raw`` (collapsed stack) output."""
    counts = dict.fromkeys(STAGES, 0)
    for line in collapsed.splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        stage = "http"
        for frame in reversed(stack.split(";")):
            found = _stage(frame)
            if found is not None:
                stage = found
                break
        counts[stage] += int(n)
    total = sum(counts.values())
    return {stage: round(count / total, 4) if total else 0.0 for stage, count in counts.items()}


class Profiler:
    """py-spy recording ``pid`` from ``start`` until ``stop``, which returns ``split``'s
    shares."""

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

    def stop(self) -> dict[str, float]:
        if self._proc is None:
            raise RuntimeError("the profiler was not started")
        self._proc.send_signal(2)  # py-spy writes its output on SIGINT
        _, err = self._proc.communicate(timeout=60)
        try:
            if not self._out.exists():
                raise RuntimeError(f"py-spy wrote nothing: {err.decode(errors='replace')[-500:]}")
            return split(self._out.read_text())
        finally:
            self._dir.cleanup()
