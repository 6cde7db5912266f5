"""The embedded default: ``serve`` with no DATABASE_URL runs its own PostgreSQL, keeps data
across restarts, prints a first-run admin key once, and lets CLI commands share the server.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.conftest import REPO_ROOT, bearer, reap_abandoned_servers
from tests.helpers.serving import serve_env, serving

KEY = re.compile(r"^\s+(rr_[0-9a-f]{16}_\S+)$", re.MULTILINE)


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
            env=serve_env(),
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


def _postmaster(data_dir: Path) -> int | None:
    """The embedded server's pid while it runs, else None."""
    try:
        pid = int((data_dir / "pg" / "postmaster.pid").read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    return pid


def test_after_a_crash_of_serve_the_next_clean_stop_still_stops_the_server(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "registry"
    with serving(data_dir) as (_, crashed):
        crashed.kill()  # kill -9: no chance to detach from the embedded server
        crashed.wait(timeout=30)
    left = _postmaster(data_dir)
    assert left is not None, "the server should outlive a crashed serve"

    with serving(data_dir) as (base, proc):
        assert httpx.get(base + "/readyz", timeout=5).status_code == 200
    assert proc.returncode == 0
    # The clean stop of the last live process stopped the server, despite the stale pid.
    deadline = time.monotonic() + 15
    while _postmaster(data_dir) is not None:
        assert time.monotonic() < deadline, "the embedded server is still running"
        time.sleep(0.2)
    assert not (data_dir / "pg" / "postmaster.pid").exists()


def test_a_suite_killed_from_outside_has_its_server_stopped_by_the_next_run() -> None:
    """A process that started an embedded server the way the suite does, then was killed
    (SIGKILL, no clean-up): the next run's reaper stops that server and removes its files."""
    # A temporary root of this test's own (pytest's is private to root, and the server runs
    # as a user of its own), standing for the system's temporary directory.
    root = Path(tempfile.mkdtemp(prefix="rr-reap-"))
    root.chmod(0o755)
    try:
        _kill_a_suite_and_reap(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _kill_a_suite_and_reap(root: Path) -> None:
    killed = subprocess.run(  # noqa: S603 - our own interpreter and code
        [
            sys.executable,
            "-c",
            "import os, signal, sys, tempfile\n"
            "from pathlib import Path\n"
            "from service.db.embedded import start_embedded\n"
            "root = Path(tempfile.mkdtemp(prefix='rr-test-pg-', dir=sys.argv[1]))\n"
            "root.chmod(0o755)\n"
            "start_embedded(root / 'data', delete_on_close=True)\n"
            "print(root, flush=True)\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n",
            str(root),
        ],
        cwd=REPO_ROOT,
        env=serve_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    suite_dir = Path(killed.stdout.strip())
    postmaster = int((suite_dir / "data" / "postmaster.pid").read_text().split()[0])
    os.kill(postmaster, 0)  # left running by the killed process

    assert reap_abandoned_servers(root) == [suite_dir / "data"]
    deadline = time.monotonic() + 15
    while True:
        try:
            os.kill(postmaster, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "the abandoned server is still running"
        time.sleep(0.1)
    assert not suite_dir.exists()
    # A second run finds nothing more to do.
    assert reap_abandoned_servers(root) == []
