"""The load benchmark's smoke run: the one command works end to end and writes its figures.

The full run (five million events, fifteen seconds a phase) is for a quiet machine; this
variant proves in CI that every phase runs and that each figure sits beside PostgreSQL's
own limit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
    levels = figures["ingest"]["levels"]
    assert [level["connections"] for level in levels] == [16, 64]
    assert all(level["ratio"] > 0 for level in levels)
    assert all(level["floor_ratio"] > 0 for level in levels)
    assert all(level["floor"]["bare"]["count"] > 0 for level in levels)
    assert figures["ingest"]["download_batch"]["counts"] == 200
    assert figures["ingest"]["download_batch"]["p50_ms"] > 0
    for fmt in ("csv", "jsonl"):
        export = figures["export"]["formats"][fmt]
        assert export["lines"] >= 20000
        assert export["ratio"] > 0
    pages = figures["console"]["pages"]
    assert {"triage queue", "incident", "model", "platform view"} <= set(pages)
    assert all(page["count"] > 0 for page in pages.values())
