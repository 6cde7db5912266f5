"""``risk-registry secrets``: create, list and retire a platform's webhook signing secrets."""

from __future__ import annotations

from uuid import UUID

import click

from service.cli.common import State, open_registry, pass_state, run_in_transaction, shared_options

__all__ = ["secrets"]


@click.group()
def secrets() -> None:
    """A platform's webhook signing secrets."""


@secrets.command()
@click.argument("slug")
@shared_options
@pass_state
def create(state: State, slug: str) -> int:
    """Issue a new signing secret (printed once)."""
    from service.domain.secrets import create_secret
    from service.domain.vault import open_vault

    settings = state.settings()
    vault = open_vault(settings)
    with open_registry(settings) as db:
        created = run_in_transaction(
            db, lambda c: create_secret(c, slug=slug, actor_id=None, vault=vault)
        )
    state.emit(created, text=created.secret)
    return 0


@secrets.command("list")
@click.argument("slug")
@click.option(
    "--all",
    "include_retired",
    is_flag=True,
    envvar="REGISTRY_SECRETS_ALL",
    show_envvar=True,
    help="Include retired secrets.",
)
@shared_options
@pass_state
def list_(state: State, slug: str, include_retired: bool) -> int:
    """List signing secrets."""
    from service.domain.secrets import list_secrets

    with open_registry(state.settings()) as db:
        items = run_in_transaction(
            db, lambda c: list_secrets(c, slug=slug, include_retired=include_retired)
        )
    text = "\n".join(
        f"{s.id}\t{s.hint}...\t{s.created_at.isoformat()}"
        + (f"\tretired {s.retired_at.isoformat()}" if s.retired_at else "\tactive")
        for s in items
    )
    state.emit(items, text=text or "(no signing secrets)")
    return 0


@secrets.command()
@click.argument("slug")
@click.argument("secret_id", metavar="ID", type=click.UUID)
@shared_options
@pass_state
def retire(state: State, slug: str, secret_id: UUID) -> int:
    """Retire a signing secret (its id is in `secrets list`)."""
    from service.domain.secrets import retire_secret

    with open_registry(state.settings()) as db:
        secret = run_in_transaction(
            db, lambda c: retire_secret(c, slug=slug, secret_id=secret_id, actor_id=None)
        )
    state.emit(secret, text=f"retired {secret.id}")
    return 0
