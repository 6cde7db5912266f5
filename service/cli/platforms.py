"""``risk-registry platforms``: register and list hosting platforms."""

from __future__ import annotations

from typing import get_args

import click
import msgspec

from service.cli.common import State, open_registry, pass_state, run_in_transaction, shared_options
from service.schemas.platforms import PlatformKind

__all__ = ["platforms"]


@click.group()
def platforms() -> None:
    """Hosting platforms."""


@platforms.command()
@click.argument("slug")
@click.option(
    "--name",
    required=True,
    envvar="REGISTRY_PLATFORM_NAME",
    show_envvar=True,
    help="The platform's display name.",
)
@click.option(
    "--kind",
    required=True,
    type=click.Choice(get_args(PlatformKind)),
    envvar="REGISTRY_PLATFORM_KIND",
    show_envvar=True,
    help="What sort of platform it is.",
)
@shared_options
@pass_state
def add(state: State, slug: str, name: str, kind: str) -> int:
    """Register a platform."""
    from service.domain.platforms import create_platform
    from service.schemas.platforms import PlatformIn

    data = msgspec.convert({"slug": slug, "name": name, "kind": kind}, PlatformIn)
    with open_registry(state.settings()) as db:
        platform = run_in_transaction(db, lambda c: create_platform(c, data=data, actor_id=None))
    state.emit(platform, text=f"{platform.slug}\t{platform.id}\t{platform.kind}")
    return 0


@platforms.command("list")
@shared_options
@pass_state
def list_(state: State) -> int:
    """List platforms."""
    from service.domain.platforms import list_platforms

    with open_registry(state.settings()) as db:
        items = run_in_transaction(
            db,
            lambda c: list_platforms(c, kind=None, visible_to=None, after=None, limit=10_000),
        )
    text = "\n".join(f"{p.slug}\t{p.id}\t{p.kind}\t{p.name}" for p in items)
    state.emit(items, text=text or "(no platforms)")
    return 0
