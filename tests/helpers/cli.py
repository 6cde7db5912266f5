"""The command line as an operator runs it: a process of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT


def cli(
    database_url: str | None,
    *args: str,
    check: bool = True,
    env: dict[str, str] | None = None,
    cwd: Path = REPO_ROOT,
) -> subprocess.CompletedProcess[str]:
    """The CLI as an operator runs it: a process of its own; no DATABASE_URL when None."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    base.pop("DATABASE_URL", None)
    if database_url is not None:
        base["DATABASE_URL"] = database_url
    result = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [sys.executable, "-m", "service", *args],
        env={**base, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result
