"""The README's walk-through runs verbatim against a freshly started service."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import REPO_ROOT
from tests.helpers.serving import serving

BLOCK = re.compile(r"## Walk-through\n.*?```sh\n(.*?)```", re.DOTALL)


def test_walk_through_runs_verbatim(tmp_path: Path) -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    match = BLOCK.search(readme)
    assert match is not None, "the README has no walk-through block"
    script = match.group(1)
    data_dir = tmp_path / "registry"
    with serving(data_dir) as (base, _proc):
        # Only the address differs from what a newcomer runs; the CLI finds the same
        # embedded server through REGISTRY_DATA_DIR.
        script = script.replace("http://127.0.0.1:8080", base)
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        env["REGISTRY_DATA_DIR"] = str(data_dir)
        env["REGISTRY_LOG_LEVEL"] = "WARNING"
        result = subprocess.run(  # noqa: S603
            ["/bin/bash", "-euo", "pipefail", "-c", script + "\necho '<<end>>'\n"],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    documents = _json_documents(result.stdout.split("<<end>>")[0])
    # Each curl printed one JSON document and none of them was a problem.
    assert documents
    assert not [d for d in documents if str(d.get("type", "")).startswith("urn:risk-registry:")]
    pages = [d["items"] for d in documents if isinstance(d.get("items"), list)]
    events, models = pages[-2], pages[-1]
    assert [e["kind"] for e in events] == ["hosting.recorded", "hosting.updated"]
    assert [m["name"] for m in models] == ["acme/base-7b"]


def _json_documents(text: str) -> list[dict[str, Any]]:
    """The JSON objects curl printed back to back (it adds no newlines)."""
    decoder = json.JSONDecoder()
    found: list[dict[str, Any]] = []
    index = text.find("{")
    while index != -1:
        document, end = decoder.raw_decode(text, index)
        found.append(document)
        index = text.find("{", end)
    return found
