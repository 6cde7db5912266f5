"""The embedded default: ``serve`` with no DATABASE_URL runs its own PostgreSQL, keeps data
across restarts, prints a first-run admin key once, and lets CLI commands share the server.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.conftest import REPO_ROOT, bearer
from tests.live_service import free_port

KEY = re.compile(r"^\s+(rr_[0-9a-f]{16}_\S+)$", re.MULTILINE)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["REGISTRY_LOG_LEVEL"] = "WARNING"
    return env


@contextmanager
def serving(data_dir: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
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
        env=_env(),
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, "serve exited early"
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


def test_serve_keeps_data_across_restarts(tmp_path: Path) -> None:
    data_dir = tmp_path / "registry"
    with serving(data_dir) as (base, proc):
        assert proc.stdout is not None
        first_lines = ""
        while not KEY.search(first_lines):
            line = proc.stdout.readline()
            assert line, "no first-run admin key was printed"
            first_lines += line
        match = KEY.search(first_lines)
        assert match is not None
        admin = bearer(match.group(1))
        r = httpx.post(
            base + "/v1/platforms",
            headers=admin,
            json={"slug": "persist", "name": "Persist", "kind": "model_hub"},
        )
        assert r.status_code == 201, r.text
        # A CLI command shares the running embedded server.
        listed = subprocess.run(  # noqa: S603
            [
                sys.executable,
                "-m",
                "service",
                "platforms",
                "list",
                "--json",
                "--data-dir",
                str(data_dir),
            ],
            env=_env(),
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        assert [p["slug"] for p in json.loads(listed.stdout)] == ["persist"]
        # The server still answers after the CLI process let go of it.
        assert httpx.get(base + "/readyz", timeout=5).status_code == 200
    assert proc.returncode == 0
    assert (data_dir / "pg" / "PG_VERSION").exists()

    with serving(data_dir) as (base, proc):
        r = httpx.get(base + "/v1/platforms/persist", headers=admin)
        assert r.status_code == 200
        assert r.json()["name"] == "Persist"
        keys = httpx.get(base + "/v1/keys", params={"role": "admin"}, headers=admin).json()
        # No second first-run key: one admin key existed already.
        assert len(keys["items"]) == 1
    assert proc.returncode == 0
    # The embedded server stopped with the service.
    assert not (data_dir / "pg" / "postmaster.pid").exists()
