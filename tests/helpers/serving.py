"""``risk-registry serve`` as a child process on an embedded data directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.conftest import REPO_ROOT
from tests.live_service import free_port


def serve_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["REGISTRY_LOG_LEVEL"] = "WARNING"
    return env


@contextmanager
def serving(data_dir: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    # What serve writes on stderr is kept, so a start that fails says why.
    errors = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(  # noqa: S603 - our own CLI
        [
            sys.executable,
            "-m",
            "service",
            "serve",
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
        ],
        env=serve_env(),
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                errors.seek(0)
                raise AssertionError("serve exited early:\n" + errors.read()[-4000:])
            try:
                if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "serve did not become ready"
            time.sleep(0.3)
        yield base, proc
    finally:
        proc.send_signal(signal.SIGTERM)
        if proc.stdout is not None:
            proc.stdout.close()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        errors.close()
