"""``risk-registry platforms``: register and list hosting platforms."""

from __future__ import annotations

from typing import get_args

import click
import msgspec

from service.cli.common import State, open_registry, pass_state, run_in_transaction, shared_options
from service.schemas.platforms import PURL_TYPES, PlatformKind

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
@click.option(
    "--purl-type",
    type=click.Choice(PURL_TYPES),
    default=None,
    envvar="REGISTRY_PLATFORM_PURL_TYPE",
    show_envvar=True,
    help="The package-URL type of its hostings (none if not given).",
)
@shared_options
@pass_state
def add(state: State, slug: str, name: str, kind: str, purl_type: str | None) -> int:
    """Register a platform."""
    from service.domain.platforms import create_platform
    from service.schemas.platforms import PlatformIn

    data = msgspec.convert(
        {"slug": slug, "name": name, "kind": kind, "purl_type": purl_type}, PlatformIn
    )
    with open_registry(state.settings()) as db:
        platform = run_in_transaction(db, lambda c: create_platform(c, data=data, actor_id=None))
    state.emit(platform, text=f"{platform.slug}\t{platform.id}\t{platform.kind}")
    return 0


@platforms.command("set-purl-type")
@click.argument("slug")
@click.argument("purl_type", type=click.Choice([*PURL_TYPES, "none"]))
@shared_options
@pass_state
def set_purl_type(state: State, slug: str, purl_type: str) -> int:
    """Set (or, with ``none``, clear) a platform's package-URL type; its hostings' purls
    follow in the same transaction."""
    from service.domain.platforms import update_platform
    from service.schemas.platforms import PlatformPatch

    patch = PlatformPatch(purl_type=None if purl_type == "none" else purl_type)
    with open_registry(state.settings()) as db:
        platform = run_in_transaction(
            db, lambda c: update_platform(c, slug=slug, patch=patch, actor_id=None)
        )
    state.emit(platform, text=f"{platform.slug}\t{platform.purl_type or '-'}")
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
    text = "\n".join(f"{p.slug}\t{p.id}\t{p.kind}\t{p.name}\t{p.purl_type or '-'}" for p in items)
    state.emit(items, text=text or "(no platforms)")
    return 0
