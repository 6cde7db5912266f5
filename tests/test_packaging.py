"""The built wheel is the whole service: installed into a fresh venv, away from the source
tree, it migrates an empty database; without the ``embedded`` extra it carries no
embedded PostgreSQL and says so in one line when asked for one."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, PgServer


def _uv() -> str:
    found = REPO_ROOT / ".tools" / "bin" / "uv"
    return str(found) if found.exists() else (shutil.which("uv") or "uv")


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(  # noqa: S603 - fixed commands of our own
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the built wheel and the locked runtime dependencies only."""
    root = tmp_path_factory.mktemp("wheel")
    _run(_uv(), "build", "--wheel", "--out-dir", root / "dist", cwd=REPO_ROOT)
    (wheel,) = (root / "dist").glob("risk_registry-*.whl")
    requirements = root / "requirements.txt"
    _run(
        _uv(),
        "export",
        "--frozen",
        "--no-dev",
        "--no-emit-project",
        "--no-hashes",
        "--quiet",
        "--output-file",
        requirements,
        cwd=REPO_ROOT,
    )
    venv = root / "venv"
    _run(_uv(), "venv", "--quiet", "--python", sys.executable, venv, cwd=root)
    python = venv / "bin" / "python"
    _run(
        _uv(), "pip", "install", "--quiet", "--python", python, "-r", requirements, wheel, cwd=root
    )
    return venv


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env.pop("DATABASE_URL", None)
    return {**env, **extra}


def test_the_wheel_migrates_an_empty_database_outside_the_source_tree(
    installed: Path, pg_server: PgServer, tmp_path: Path
) -> None:
    where = _run(
        installed / "bin" / "python",
        "-c",
        "import service; print(service.__file__)",
        cwd=tmp_path,
        env=_env(),
    )
    assert Path(where.strip()).is_relative_to(installed)
    url = pg_server.create_database("rr_wheel")
    try:
        env = _env(DATABASE_URL=url)
        cli = installed / "bin" / "risk-registry"
        assert _run(cli, "migrate", "--json", cwd=tmp_path, env=env).strip() == (
            '{"migrated":true}'
        )
        # The migrated database is one the installed commands accept.
        assert _run(cli, "keys", "list", "--json", cwd=tmp_path, env=env).strip() == "[]"
    finally:
        pg_server.drop_database(url)


def test_the_wheel_without_the_embedded_extra_asks_for_a_database(
    installed: Path, tmp_path: Path
) -> None:
    result = subprocess.run(  # noqa: S603 - our own CLI
        [str(installed / "bin" / "risk-registry"), "migrate", "--data-dir", str(tmp_path)],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "risk-registry: DATABASE_URL is not set and the embedded PostgreSQL is not installed "
        "(install risk-registry[embedded], or set DATABASE_URL)"
    ]


def test_make_run_syncs_the_runtime_and_make_test_everything_both_with_the_extra() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    recipes = dict(re.findall(r"^(\$\(\w+\)|\w+):[^\n]*\n((?:\t[^\n]*\n)+)", makefile, re.M))
    run_target = re.search(r"^run: (\S+)", makefile, re.M)
    test_target = re.search(r"^test: (\S+)", makefile, re.M)
    assert run_target is not None
    assert test_target is not None
    run_sync, test_sync = recipes[run_target.group(1)], recipes[test_target.group(1)]
    assert "sync --frozen --no-dev --extra embedded" in run_sync
    assert "--all-groups" not in run_sync
    assert "sync --frozen --all-groups --extra embedded" in test_sync
