"""``verify``, ``ledger-export`` and ``checkpoint-key``: auditing the ledger from outside.

The checks themselves are :mod:`service.domain.verification`; these commands read the
options, keep the verifier's state file, and print the report.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import click
import httpx
import msgspec
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from service.cli.common import VERIFIER_KEY, KeyParam, State, pass_state, shared_options
from service.domain.checkpoints import load_or_create_signer
from service.domain.verification import Report, Seen, export_events, verify_registry
from service.domain.witnesses import parse_witness_key

__all__ = ["checkpoint_key", "ledger_export", "verify"]

DEFAULT_STATE = Path(".risk-registry-verify.json")


class _WitnessKey(KeyParam):
    """A witness verifier key (``cosignature/v1``)."""

    name = "WITNESS_KEY"

    def check(self, text: str) -> None:
        parse_witness_key(text)


WITNESS_KEY = _WitnessKey()

_URL = click.option(
    "--url",
    required=True,
    envvar="REGISTRY_URL",
    show_envvar=True,
    help="The registry's base URL.",
)


def _render(report: Report) -> str:
    lines = [
        f"checkpoint: {report.origin} size {report.tree_size} root {report.root_hash}"
        if report.tree_size is not None
        else "checkpoint: none verified"
    ]
    if report.consistent_with:
        sizes = ", ".join(str(s) for s in report.consistent_with)
        lines.append(f"consistent with earlier checkpoints: {sizes}")
    if report.witnessed_by:
        lines.append(f"cosigned by: {', '.join(report.witnessed_by)}")
    if report.events_checked:
        checked, unsealed = report.events_checked, report.events_unsealed
        lines.append(f"export: {checked} events checked, {unsealed} not sealed yet")
    if report.sealed_after_export:
        lines.append(f"export: {report.sealed_after_export} events were sealed after it")
    lines += [
        f"MISSING: event seq {m.seq} (leaf {m.leaf_index}): {m.reason}"
        if m.reason.startswith("missing")
        else f"MISMATCH: leaf {m.leaf_index} (event seq {m.seq}): {m.reason}"
        for m in report.mismatches
    ]
    if report.records_checked:
        counts = ", ".join(f"{n} {d}" for d, n in report.records_checked.items())
        lines.append(f"records: {counts} checked against their newest events")
    if report.records_unchecked:
        lines.append(f"records: {report.records_unchecked} rows with no event to check against")
    lines += [f"DIVERGENT: {d}" for d in report.divergences]
    lines += [f"PROBLEM: {p}" for p in report.problems]
    lines.append("OK" if report.ok else "FAILED")
    return "\n".join(lines)


@click.command()
@_URL
@click.option(
    "--key",
    required=True,
    type=VERIFIER_KEY,
    envvar="REGISTRY_VERIFIER_KEY",
    show_envvar=True,
    help="The checkpoint verifier key, @FILE, or a file holding it.",
)
@click.option(
    "--state",
    "state_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_STATE,
    show_default=True,
    envvar="REGISTRY_VERIFY_STATE",
    show_envvar=True,
    help="Where the checkpoints seen are remembered between runs.",
)
@click.option(
    "--events",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="REGISTRY_VERIFY_EVENTS",
    show_envvar=True,
    help="An export of the events, one JSON object per line, in seq order.",
)
@click.option(
    "--witness-key",
    "witness_keys",
    multiple=True,
    type=WITNESS_KEY,
    envvar="REGISTRY_VERIFY_WITNESS_KEYS",
    show_envvar=True,
    help="A witness's verifier key (cosignature/v1), @FILE, or a file holding it: the "
    "checkpoint must carry a valid cosignature by it. Repeat for several witnesses (in the "
    "environment: separated by spaces).",
)
@click.option(
    "--records",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    envvar="REGISTRY_VERIFY_RECORDS",
    show_envvar=True,
    help="A directory of exports (models, hostings, incidents, audits, decisions; or a "
    "bundle): every row is checked against the newest state its events carry, those of "
    "--events when given, else the events file in the directory.",
)
@shared_options
@pass_state
def verify(
    state: State,
    url: str,
    key: str,
    state_path: Path,
    events: Path | None,
    records: Path | None,
    witness_keys: tuple[str, ...],
) -> int:
    """Verify a registry's signed checkpoints and, given an export, its events and records.

    Exits 0 when everything checks out, 3 when something does not.
    """
    try:
        seen = (
            msgspec.json.decode(state_path.read_bytes(), type=Seen)
            if state_path.exists()
            else Seen()
        )
    except msgspec.DecodeError as exc:
        raise click.BadParameter(
            f"not a verifier state file: {exc}", param_hint="--state"
        ) from None

    async def go() -> Report:
        async with httpx.AsyncClient(base_url=url, timeout=30.0) as http:
            return await verify_registry(
                http,
                verifier_key=key,
                state=seen,
                export=events,
                records=records,
                witness_keys=witness_keys,
            )

    report = asyncio.run(go())
    if report.ok:
        # Replaced whole, never left half-written: it is the verifier's memory.
        partial = state_path.with_name(state_path.name + ".partial")
        partial.write_bytes(msgspec.json.encode(seen))
        partial.replace(state_path)
    state.emit(report, text=_render(report))
    return 0 if report.ok else 3


@click.command("ledger-export")
@_URL
@click.option(
    "--api-key",
    required=True,
    envvar="REGISTRY_API_KEY",
    show_envvar=True,
    help="An auditor's or regulator's API key.",
)
@click.option(
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="REGISTRY_LEDGER_EXPORT_OUTPUT",
    show_envvar=True,
    help="The file to write.",
)
@shared_options
@pass_state
def ledger_export(state: State, url: str, api_key: str, output: Path) -> int:
    """Download every event as JSON lines, the export `verify --events` checks."""
    headers = {"Authorization": f"Bearer {api_key}"}

    async def go(progress: Progress, task: TaskID) -> int:
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60.0) as http:
            return await export_events(
                http, output, progress=lambda n: progress.update(task, completed=n)
            )

    console = Console(stderr=True)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed} events"),
        TimeElapsedColumn(),
        console=console,
        # On a terminal only, and gone once done: the count is the command's output.
        disable=not console.is_terminal,
        transient=True,
    ) as progress:
        count = asyncio.run(go(progress, progress.add_task("ledger-export", total=None)))
    state.emit({"events": count, "output": str(output)}, text=f"{count} events")
    return 0


@click.command("checkpoint-key")
@shared_options
@pass_state
def checkpoint_key(state: State) -> int:
    """Print the verifier key auditors need (creates the signing key if absent)."""
    settings = state.settings()
    signer = load_or_create_signer(settings.signing_key_path, name=settings.checkpoint_origin)
    state.emit({"verifier_key": signer.verifier_key}, text=signer.verifier_key)
    return 0
