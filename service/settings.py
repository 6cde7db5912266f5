"""Settings, decoded from the environment once at start-up.

Every knob is an environment variable named ``REGISTRY_<FIELD>`` (upper case), except
``DATABASE_URL``, which keeps its conventional name. Without ``DATABASE_URL`` the service
runs a private PostgreSQL under ``<data_dir>/pg``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import msgspec

__all__ = ["ENV_PREFIX", "Settings", "load_settings"]

ENV_PREFIX = "REGISTRY_"


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Everything the service can be told from outside; immutable once decoded."""

    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: str = ".registry"
    max_body_bytes: int = 256 * 1024
    pool_min_size: int = 2
    pool_max_size: int = 10
    #: Seconds a request waits for a pooled connection before the service answers 503.
    pool_acquire_timeout: float = 1.5
    #: Seconds any one SQL statement may run on the request path.
    statement_timeout: float = 5.0
    log_level: str = "INFO"
    #: Seconds a client is asked to wait when the database is unavailable.
    retry_after_seconds: int = 2
    #: Seconds in-flight requests get to finish after SIGTERM.
    shutdown_grace_seconds: int = 20

    @property
    def pg_data_dir(self) -> Path:
        """Where the embedded PostgreSQL keeps its files."""
        return Path(self.data_dir) / "pg"


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build settings from an environment mapping (default ``os.environ``) plus overrides."""
    env = os.environ if environ is None else environ
    raw: dict[str, object] = {}
    for field in Settings.__struct_fields__:
        name = "DATABASE_URL" if field == "database_url" else ENV_PREFIX + field.upper()
        if name in env and env[name] != "":
            raw[field] = env[name]
    raw.update({k: v for k, v in overrides.items() if v is not None})
    # strict=False lets "8080" from the environment become an int; anything else is an error.
    return msgspec.convert(raw, Settings, strict=False)
