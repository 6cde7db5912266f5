"""The embedded default: ``serve`` with no DATABASE_URL runs its own PostgreSQL, keeps data
across restarts, prints a first-run admin key once, and lets CLI commands share the server.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import REPO_ROOT, bearer
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
