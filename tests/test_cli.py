"""The command line, run as a separate process against the suite's database."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import click
import httpx
import pytest

from service.db.migrate import check_revision
from tests.conftest import REPO_ROOT, PgServer, bearer
from tests.helpers.cli import cli
from tests.live_service import free_port


async def test_platforms_and_keys_round_trip(
    database_url: str, client: httpx.AsyncClient, uniq: str
) -> None:
    slug = f"cli-{uniq}"
    added = json.loads(
        cli(
            database_url,
            "platforms",
            "add",
            slug,
            "--name",
            "CLI Hub",
            "--kind",
            "model_hub",
            "--json",
        ).stdout
    )
    assert added["slug"] == slug
    assert added["kind"] == "model_hub"
    listed = json.loads(cli(database_url, "platforms", "list", "--json").stdout)
    assert slug in [p["slug"] for p in listed]

    created = json.loads(
        cli(
            database_url, "keys", "create", "--role", "platform", "--platform", slug, "--json"
        ).stdout
    )
    key = created["key"]
    assert created["api_key"]["platform"] == slug
    r = await client.get("/v1/platforms", headers=bearer(key))
    assert r.status_code == 200
    assert [p["slug"] for p in r.json()["items"]] == [slug]

    keys = json.loads(cli(database_url, "keys", "list", "--json").stdout)
    assert created["api_key"]["id"] in [k["id"] for k in keys]
    assert key not in json.dumps(keys)

    revoked = json.loads(
        cli(database_url, "keys", "revoke", created["api_key"]["id"], "--json").stdout
    )
    assert revoked["revoked_at"] is not None
    assert (await client.get("/v1/platforms", headers=bearer(key))).status_code == 401


def test_plain_key_output_is_just_the_key(database_url: str) -> None:
    out = cli(database_url, "keys", "create", "--role", "auditor", "--name", "A. Uditor").stdout
    assert out.startswith("rr_")
    assert len(out.strip().splitlines()) == 1


def test_errors_exit_non_zero_with_a_message(database_url: str, uniq: str) -> None:
    slug = f"dup-{uniq}"
    cli(database_url, "platforms", "add", slug, "--name", "Dup", "--kind", "code_forge")
    again = cli(
        database_url, "platforms", "add", slug, "--name", "Dup", "--kind", "code_forge", check=False
    )
    assert again.returncode == 1
    assert "exists already" in again.stderr
    bad = cli(database_url, "platforms", "add", slug, "--name", "X", "--kind", "nope", check=False)
    assert bad.returncode == 2
    orphan = cli(
        database_url,
        "keys",
        "create",
        "--role",
        "platform",
        "--platform",
        f"none-{uniq}",
        check=False,
    )
    assert orphan.returncode == 1
    assert "no platform" in orphan.stderr


def test_migrate_is_idempotent(database_url: str) -> None:
    assert json.loads(cli(database_url, "migrate", "--json").stdout) == {"migrated": True}


def test_openapi_command_writes_the_document(database_url: str, tmp_path: Path) -> None:
    out = tmp_path / "openapi.json"
    cli(database_url, "openapi", "--output", str(out))
    assert out.read_bytes() == (REPO_ROOT / "openapi" / "openapi.json").read_bytes()


def one_line_error(result: subprocess.CompletedProcess[str], code: int = 1) -> str:
    """The command failed with ``code`` and said why in one line, with no traceback."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("risk-registry: ")
    return lines[0]


def test_shared_options_go_before_or_after_the_command_and_come_from_the_environment(
    database_url: str, uniq: str
) -> None:
    before = cli(
        database_url, "--json", "platforms", "add", f"pre-{uniq}", "--name", "P", check=False
    )
    # --kind is missing above: a usage error, and nothing was written.
    assert before.returncode == 2
    assert "Traceback" not in before.stderr
    added = cli(
        database_url,
        "--json",
        "platforms",
        "add",
        f"pre-{uniq}",
        env={"REGISTRY_PLATFORM_NAME": "From Env", "REGISTRY_PLATFORM_KIND": "code_forge"},
    )
    assert json.loads(added.stdout) == {
        **json.loads(added.stdout),
        "slug": f"pre-{uniq}",
        "name": "From Env",
        "kind": "code_forge",
    }
    listed = cli(database_url, "platforms", "list", env={"REGISTRY_JSON": "1"})
    assert f"pre-{uniq}" in [p["slug"] for p in json.loads(listed.stdout)]
    key = cli(database_url, "keys", "create", env={"REGISTRY_KEY_ROLE": "auditor"}).stdout
    assert key.startswith("rr_")


def test_every_command_group_answers_help() -> None:
    groups = ["serve", "migrate", "platforms", "keys", "secrets", "checkpoint-key", "verify"]
    groups += ["ledger-export", "export", "verify-export", "openapi"]
    top = cli(None, "--help")
    for group in groups:
        assert f"  {group} " in top.stdout, group
    for args in (["keys", "create"], ["export"], ["verify"], ["secrets", "list"]):
        shown = cli(None, *args, "--help").stdout
        assert "--json" in shown
        assert "--data-dir" in shown
        assert "env var: REGISTRY_" in shown


def test_the_cli_logs_nothing_unless_verbose(pg_server: PgServer) -> None:
    url = pg_server.create_database("rr_cli_quiet")
    try:
        quiet = cli(url, "migrate")
        assert quiet.stdout == "migrations applied\n"
        assert quiet.stderr == ""
        again = cli(url, "migrate", "--verbose")
        assert again.stderr, "--verbose shows the migration log"
        assert all(json.loads(line)["level"] for line in again.stderr.splitlines())
    finally:
        pg_server.drop_database(url)


@pytest.mark.parametrize(
    "command",
    [
        ["platforms", "list"],
        ["platforms", "add", "somewhere", "--name", "S", "--kind", "model_hub"],
        ["keys", "create", "--role", "admin"],
        ["keys", "list"],
        ["secrets", "list", "somewhere"],
        ["export", "--out", "bundle"],
    ],
)
def test_an_empty_data_directory_is_refused_in_one_line(command: list[str], tmp_path: Path) -> None:
    data_dir = tmp_path / "nothing-here"
    result = cli(None, *command, "--data-dir", str(data_dir), check=False, cwd=tmp_path)
    line = one_line_error(result)
    assert "no registry in" in line
    assert "risk-registry migrate" in line
    # Refused, not initialised: no server was started there, nothing was written.
    assert not (data_dir / "pg").exists()
    assert not (tmp_path / "bundle").exists()


def test_an_unmigrated_database_is_refused_in_one_line(pg_server: PgServer) -> None:
    url = pg_server.create_database("rr_cli_unmigrated")
    try:
        for command in (
            ["platforms", "add", "somewhere", "--name", "S", "--kind", "model_hub"],
            ["keys", "list"],
            ["secrets", "create", "somewhere"],
        ):
            line = one_line_error(cli(url, *command, check=False))
            assert line == (
                "risk-registry: the database is not migrated: run `risk-registry migrate` first"
            )
        # Once migrated, the same command works.
        cli(url, "migrate")
        assert json.loads(cli(url, "keys", "list", "--json").stdout) == []
    finally:
        pg_server.drop_database(url)


def test_operator_errors_are_one_line_without_a_traceback(
    database_url: str, tmp_path: Path
) -> None:
    key = cli(None, "checkpoint-key", "--data-dir", str(tmp_path)).stdout.strip()
    nowhere = "http://127.0.0.1:9"  # the discard port: nothing listens there
    (tmp_path / "state.json").write_text("{not json")
    one_line_error(cli(None, "verify", "--url", nowhere, "--key", key, check=False))
    one_line_error(
        cli(
            None,
            "ledger-export",
            "--url",
            nowhere,
            "--api-key",
            "rr_x",
            "--output",
            "x.jsonl",
            check=False,
            cwd=tmp_path,
        )
    )
    # A failed download leaves no file behind, not even an empty one.
    assert not list(tmp_path.glob("x.jsonl*"))
    export = ["export", "--out", str(tmp_path / "b"), "--platform", "no"]
    line = one_line_error(cli(database_url, *export, check=False))
    assert "no platform" in line
    assert not (tmp_path / "b").exists()
    one_line_error(cli("postgresql://postgres@127.0.0.1:9/none", "keys", "list", check=False))
    line = one_line_error(cli("mysql://somewhere/db", "migrate", check=False))
    assert "not a PostgreSQL URL" in line
    line = one_line_error(cli(database_url, "keys", "revoke", str(uuid.uuid4()), check=False))
    assert "no" in line.lower()
    # Usage errors are click's short message (exit 2), never a traceback either.
    for args in (
        ["keys", "revoke", "not-a-uuid"],
        ["verify-export", str(tmp_path), "--key", "not-a-key"],
        ["verify-export", str(tmp_path / "missing"), "--key", key],
        ["verify-export", str(tmp_path), "--key", f"@{tmp_path / 'missing.pub'}"],
        ["export", "--out", str(tmp_path / "b"), "--from", "last tuesday"],
        ["verify", "--url", nowhere, "--key", key, "--state", str(tmp_path / "state.json")],
        ["platforms", "frobnicate"],
    ):
        result = cli(database_url, *args, check=False)
        assert result.returncode == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert "Error: " in result.stderr


def test_verify_export_reads_the_key_from_a_file_like_verify(tmp_path: Path) -> None:
    """One key loader: the key itself, @FILE, or a file holding it, for both commands."""
    from service.domain.bundles import MANIFEST

    data_dir = tmp_path / "registry"
    key = cli(None, "checkpoint-key", "--data-dir", str(data_dir)).stdout.strip()
    key_file = tmp_path / "verifier.pub"
    key_file.write_text(key + "\n")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / MANIFEST).write_text("{}")
    for given in (key, str(key_file), f"@{key_file}"):
        result = cli(None, "verify-export", str(bundle), "--key", given, "--json", check=False)
        # The key was read: the bundle, not the key, is what fails (exit 1, with problems).
        assert result.returncode == 1, result.stderr
        report = json.loads(result.stdout)
        assert report["ok"] is False
        assert report["problems"]
        via_env = cli(
            None, "verify-export", str(bundle), check=False, env={"REGISTRY_VERIFIER_KEY": given}
        )
        assert via_env.returncode == 1, via_env.stderr


def test_every_option_of_every_command_has_an_environment_variable() -> None:
    from service.cli.root import cli as root

    def commands(group: click.Group, path: str) -> Iterator[tuple[str, click.Command]]:
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                yield from commands(command, f"{path} {name}")
            else:
                yield f"{path} {name}", command

    missing = [
        (path, option.name)
        for path, command in commands(root, "risk-registry")
        for option in command.params
        if isinstance(option, click.Option) and option.name != "help" and not option.envvar
    ]
    assert missing == []
    # With secrets-key create, rotate, verify-report, report, catalogue push and
    # platforms set-purl-type.
    assert len(list(commands(root, "risk-registry"))) == 22
    assert all(o.envvar for o in root.params if isinstance(o, click.Option) and o.name != "help")


def test_data_dir_before_the_command_is_the_same_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "registry"
    key = cli(None, "--data-dir", str(data_dir), "--json", "checkpoint-key").stdout
    assert (data_dir / "checkpoint-signing.pem").exists()
    again = cli(None, "checkpoint-key", "--data-dir", str(data_dir), "--json").stdout
    assert json.loads(key) == json.loads(again)
    line = one_line_error(cli(None, "--data-dir", str(data_dir), "keys", "list", check=False))
    assert f"no registry in '{data_dir}'" in line


def test_serve_refuses_a_database_that_is_not_migrated_or_behind(pg_server: PgServer) -> None:
    """Against a server of one's own, migrating is an explicit step; serve says it is due."""
    from service.db.migrate import upgrade

    url = pg_server.create_database("rr_cli_serve")
    port = str(free_port())
    try:
        line = one_line_error(cli(url, "serve", "--port", port, check=False))
        assert line == (
            "risk-registry: the database is not migrated: run `risk-registry migrate` first"
        )
        upgrade(url, "0005_respond")
        line = one_line_error(cli(url, "serve", "--port", port, check=False))
        assert line.startswith("risk-registry: the database is at revision 0005_respond, ")
        # Nothing was written on the way: the database is where it was.
        assert check_revision(url) is not None
    finally:
        pg_server.drop_database(url)


def test_a_database_migrated_by_a_newer_version_is_served_but_not_administered(
    pg_server: PgServer,
) -> None:
    from service.db.migrate import upgrade

    url = pg_server.create_database("rr_cli_newer")
    try:
        upgrade(url)
        assert check_revision(url) is None

        async def from_the_future() -> None:
            conn = await asyncpg.connect(url)
            try:
                await conn.execute("UPDATE alembic_version SET version_num = '9999_future'")
            finally:
                await conn.close()

        asyncio.run(from_the_future())
        # serve accepts it (a rolling upgrade migrates before the old replicas are gone) ...
        assert check_revision(url, allow_newer=True) is None
        # ... the administrative commands do not: an operator runs the newer version's CLI.
        line = one_line_error(cli(url, "keys", "list", check=False))
        assert "the database is at revision 9999_future" in line
    finally:
        pg_server.drop_database(url)
