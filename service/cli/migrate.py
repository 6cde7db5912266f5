"""``risk-registry migrate``: apply the database migrations."""

from __future__ import annotations

import click

from service.cli.common import State, pass_state, shared_options
from service.database import open_database
from service.db.migrate import upgrade

__all__ = ["migrate"]


@click.command()
@shared_options
@pass_state
def migrate(state: State) -> int:
    """Apply database migrations (in embedded mode `serve` does this itself)."""
    with open_database(state.settings()) as db:
        upgrade(db.url)
    state.emit({"migrated": True}, text="migrations applied")
    return 0
