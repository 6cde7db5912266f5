"""``export`` writes a signed bundle locally; ``verify-export`` checks one offline."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from uuid import UUID

import asyncpg
import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

from service.cli.common import (
    DATETIME,
    VERIFIER_KEY,
    CliError,
    State,
    open_registry,
    pass_state,
    shared_options,
)
from service.db.pool import init_connection
from service.domain.bundles import Manifest, build_bundle, local_directory, verify_bundle
from service.domain.checkpoints import load_or_create_signer
from service.domain.exports import DATASETS, ExportFilters
from service.domain.platforms import get_platform

__all__ = ["RowProgress", "export", "verify_export"]


class RowProgress:
    """Rows written so far, as a progress bar on standard error (on a terminal it redraws
    in place; elsewhere it writes the final line only)."""

    def __init__(self, label: str) -> None:
        self._label = label
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("rows"),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        )
        self._task: TaskID | None = None

    def __enter__(self) -> RowProgress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()

    async def __call__(self, done: int, total: int) -> None:
        if self._task is None:
            # Drawn from the first rows on: a command failing before then prints no bar.
            self._task = self._progress.add_task(self._label, total=total)
            self._progress.start()
        self._progress.update(self._task, completed=done, total=total)


def _env(name: str) -> dict[str, Any]:
    return {"envvar": f"REGISTRY_EXPORT_{name}", "show_envvar": True}


@click.command()
@click.option(
    "--dataset",
    "datasets",
    multiple=True,
    type=click.Choice(list(DATASETS)),
    help="A dataset to include (repeatable; default: events).",
    **_env("DATASET"),
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "jsonl"]),
    default="csv",
    show_default=True,
    **_env("FORMAT"),
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="An empty or new directory.",
    **_env("OUT"),
)
@click.option(
    "--from",
    "since",
    type=DATETIME,
    help="Start of the range (RFC 3339, inclusive).",
    **_env("FROM"),
)
@click.option(
    "--to", "until", type=DATETIME, help="End of the range (RFC 3339, exclusive).", **_env("TO")
)
@click.option("--platform", help="Only this platform's records.", **_env("PLATFORM"))
@click.option("--stage", type=click.Choice(["prevent", "detect", "respond"]), **_env("STAGE"))
@click.option("--model-id", type=click.UUID, help="Only this model's records.", **_env("MODEL_ID"))
@shared_options
@pass_state
def export(
    state: State,
    datasets: tuple[str, ...],
    fmt: Literal["csv", "jsonl"],
    out: Path,
    since: datetime | None,
    until: datetime | None,
    platform: str | None,
    stage: str | None,
    model_id: UUID | None,
) -> int:
    """Write a signed export bundle to a directory, with a progress bar."""
    if out.exists() and any(out.iterdir()):
        raise CliError(f"{out} is not empty")
    settings = state.settings()

    async def go(url: str, progress: RowProgress) -> Manifest:
        conn = await asyncpg.connect(url)
        try:
            await init_connection(conn)
            platform_id = None
            if platform:
                platform_id = (await get_platform(conn, slug=platform)).id
            filters = ExportFilters(
                since=since, until=until, platform_id=platform_id, stage=stage, model_id=model_id
            )
            return await build_bundle(
                conn,
                datasets=list(datasets) or ["events"],
                fmt=fmt,
                filters=filters,
                platform=platform,
                signer=signer,
                open_file=local_directory(out),
                progress=progress,
                seconds=settings.export_timeout_seconds,
                seal_wait=settings.export_seal_wait_seconds,
            )
        finally:
            await conn.close()

    with open_registry(settings) as db:
        signer = load_or_create_signer(settings.signing_key_path, name=settings.checkpoint_origin)
        with RowProgress("export") as progress:
            manifest = asyncio.run(go(db.url, progress))
    text = "\n".join(f"{f.name}\t{f.rows} rows\t{f.sha256}" for f in manifest.files)
    state.emit(manifest, text=f"{text}\nbundle written to {out}")
    return 0


@click.command("verify-export")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--key",
    required=True,
    type=VERIFIER_KEY,
    envvar="REGISTRY_VERIFIER_KEY",
    show_envvar=True,
    help="The registry's verifier key, @FILE, or a file holding it.",
)
@shared_options
@pass_state
def verify_export(state: State, directory: Path, key: str) -> int:
    """Check a bundle offline: signature, manifest, every file's hash and rows.

    Exits 0 when the bundle is intact and signed by the key, 1 when it is not.
    """
    problems = verify_bundle(directory, key)
    text = "the bundle is intact and signed by this key" if not problems else "\n".join(problems)
    state.emit({"ok": not problems, "problems": problems}, text=text)
    return 0 if not problems else 1
