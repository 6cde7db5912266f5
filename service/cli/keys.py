"""``risk-registry keys``: create, list and revoke API keys."""

from __future__ import annotations

from typing import get_args
from uuid import UUID

import click
import msgspec

from service.cli.common import State, open_registry, pass_state, run_in_transaction, shared_options
from service.schemas.keys import Role

__all__ = ["keys"]


@click.group()
def keys() -> None:
    """API keys."""


@keys.command()
@click.option(
    "--role",
    required=True,
    type=click.Choice(get_args(Role)),
    envvar="REGISTRY_KEY_ROLE",
    show_envvar=True,
    help="What the key may do.",
)
@click.option(
    "--platform",
    envvar="REGISTRY_KEY_PLATFORM",
    show_envvar=True,
    help="The platform a platform key belongs to.",
)
@click.option(
    "--name", envvar="REGISTRY_KEY_NAME", show_envvar=True, help="Who or what holds the key."
)
@shared_options
@pass_state
def create(state: State, role: str, platform: str | None, name: str | None) -> int:
    """Create a key (printed once)."""
    from service.domain.keys import create_key
    from service.schemas.keys import ApiKeyIn

    name = name or (f"{platform} integration" if platform else f"{role} key")
    data = msgspec.convert({"role": role, "name": name, "platform": platform}, ApiKeyIn)
    with open_registry(state.settings()) as db:
        created = run_in_transaction(db, lambda c: create_key(c, data=data, actor_id=None))
    state.emit(created, text=created.key)
    return 0


@keys.command("list")
@click.option(
    "--all",
    "include_revoked",
    is_flag=True,
    envvar="REGISTRY_KEYS_ALL",
    show_envvar=True,
    help="Include revoked keys.",
)
@shared_options
@pass_state
def list_(state: State, include_revoked: bool) -> int:
    """List keys (never their secrets)."""
    from service.domain.keys import list_keys

    with open_registry(state.settings()) as db:
        items = run_in_transaction(
            db,
            lambda c: list_keys(
                c, role=None, include_revoked=include_revoked, after=None, limit=100_000
            ),
        )
    text = "\n".join(
        f"{k.id}\t{k.role}\t{k.platform or '-'}\t{k.name}" + ("\trevoked" if k.revoked_at else "")
        for k in items
    )
    state.emit(items, text=text or "(no keys)")
    return 0


@keys.command()
@click.argument("key_id", metavar="ID", type=click.UUID)
@shared_options
@pass_state
def revoke(state: State, key_id: UUID) -> int:
    """Revoke a key."""
    from service.domain.keys import revoke_key

    with open_registry(state.settings()) as db:
        key = run_in_transaction(db, lambda c: revoke_key(c, key_id=key_id, actor_id=None))
    state.emit(key, text=f"revoked {key.id}")
    return 0
