"""``risk-registry secrets create|list|retire`` against the test database."""

from __future__ import annotations

import json
import secrets as random

import pytest

from service.cli import main


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.usefixtures("database_url")
def test_secrets_commands(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    slug = f"cli-{random.token_hex(4)}"
    code, _, err = _run(capsys, "platforms", "add", slug, "--name", "Cli", "--kind", "model_hub")
    assert code == 0, err

    code, out, _ = _run(capsys, "secrets", "create", slug)
    assert code == 0
    plain = out.strip()
    assert plain.startswith("whsec_")

    code, out, _ = _run(capsys, "secrets", "create", slug, "--json")
    created = json.loads(out)
    assert created["secret"].startswith("whsec_")
    assert created["webhook_secret"]["platform"] == slug

    code, out, _ = _run(capsys, "secrets", "list", slug, "--json")
    listed = json.loads(out)
    assert len(listed) == 2
    assert all("secret" not in item for item in listed)
    assert plain not in out

    secret_id = created["webhook_secret"]["id"]
    code, out, _ = _run(capsys, "secrets", "retire", slug, secret_id, "--json")
    assert code == 0
    assert json.loads(out)["retired_at"] is not None

    code, out, _ = _run(capsys, "secrets", "list", slug, "--json")
    assert len(json.loads(out)) == 1
    code, out, _ = _run(capsys, "secrets", "list", slug, "--all")
    assert "retired" in out
    assert "active" in out

    code, _, err = _run(capsys, "secrets", "create", f"missing-{slug}")
    assert code == 1
    assert "no platform" in err
