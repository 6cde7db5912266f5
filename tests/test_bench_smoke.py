"""The load benchmark's smoke run: the one command works end to end and writes its figures.

The full run (five million events, fifteen seconds a phase) is for a quiet machine; this
variant proves in CI that every phase runs and that each figure sits beside PostgreSQL's
own limit.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


def test_the_benchmark_command_runs_every_phase() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--events", "20000", "--models", "200", "--seconds", "1"],
        cwd=REPO_ROOT,
        env={**os.environ, "REGISTRY_LOG_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    path = result.stdout.strip().splitlines()[-1].removeprefix("results: ")
    figures = json.loads(Path(path).read_text())
    assert figures["events"] == 20000
    assert figures["history"]["service"]["count"] > 0
    assert figures["history"]["pgbench"]["count"] > 0
    assert figures["history"]["ratio_p99"] > 0
    # Each figure names the instrument that measured it.
    assert figures["history"]["load_generator"].startswith("hey ")
    assert figures["ingest"]["load_generator"].startswith("wrk ")
    assert figures["console"]["load_generator"].startswith("hey ")
    assert [name.split()[0] for name in figures["load_generators"]] == ["hey", "wrk"]
    levels = figures["ingest"]["levels"]
    assert [level["connections"] for level in levels] == [16, 64]
    assert all(level["ratio"] > 0 for level in levels)
    assert all(level["floor_ratio"] > 0 for level in levels)
    assert all(level["floor"]["bare"]["requests"] > 0 for level in levels)
    assert all(level["service"]["requests"] > 0 for level in levels)
    assert all(level["floor_ratio_of_service"] > 0 for level in levels)
    split = figures["ingest"]["cpu_split"]
    assert set(split["cpu_ms"]) == {"http", "verification", "decoding", "intake", "sql", "ledger"}
    assert sum(split["shares"].values()) == pytest.approx(1, abs=0.01)
    assert figures["ingest"]["download_batch"]["counts"] == 200
    assert figures["ingest"]["download_batch"]["p50_ms"] > 0
    for fmt in ("csv", "jsonl"):
        export = figures["export"]["formats"][fmt]
        assert export["lines"] >= 20000
        assert export["ratio"] > 0
    pages = figures["console"]["pages"]
    assert {"triage queue", "incident", "model", "platform view"} <= set(pages)
    assert all(page["count"] > 0 for page in pages.values())
    # The targets are on the service's own time, measured by its access log, beside the
    # wall time the load generator saw and the load the machine was under.
    assert figures["console"]["server_time"].startswith("the service's access log")
    assert all(page["server_p99_ms"] > 0 for page in pages.values())
    assert len(figures["console"]["load_average_before"]) == 3


def test_a_benchmark_stops_naming_the_make_target_when_its_load_generator_is_missing(
    tmp_path: Path,
) -> None:
    # A PATH holding no hey or wrk: the run must stop before doing anything, not fall back.
    for tool in ("python3", "dpkg-query"):
        found = shutil.which(tool)
        if found:
            (tmp_path / tool).symlink_to(found)
    for module in ("bench", "bench.ingest", "bench.history"):
        result = subprocess.run(  # noqa: S603 - the benchmark's own modules
            [sys.executable, "-m", module, "--seconds", "1"],
            cwd=REPO_ROOT,
            env={**os.environ, "PATH": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 1, (module, result.stdout, result.stderr[-2000:])
        assert "load generator is not installed" in result.stderr
        assert "make bench-tools" in result.stderr
        assert "populating" not in result.stdout
