"""``verify-report``: checking a frozen compliance report offline."""

from __future__ import annotations

from pathlib import Path

import click

from service.cli.common import VERIFIER_KEY, State, pass_state, shared_options
from service.domain.snapshots import verify_snapshot

__all__ = ["verify_report"]


@click.command("verify-report")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
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
def verify_report(state: State, file: Path, key: str) -> int:
    """Check a report snapshot (as `GET /v1/reports/compliance/snapshots/{id}` serves it)
    offline: the note's signature, that the report is the one signed, and that its
    checkpoint is signed by the same key and is the one the note names.

    Exits 0 when it checks out, 3 when it does not.
    """
    problems = verify_snapshot(file.read_bytes(), key)
    text = (
        "the report is the one signed by this key, bound to its checkpoint"
        if not problems
        else "\n".join(f"PROBLEM: {p}" for p in problems) + "\nFAILED"
    )
    state.emit({"ok": not problems, "problems": problems}, text=text)
    return 0 if not problems else 3
