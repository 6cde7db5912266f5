"""``risk-registry secrets``: create, list and retire a platform's webhook signing secrets."""

from __future__ import annotations

import argparse
from typing import Any
from uuid import UUID

from service.cli import emit, run_in_transaction
from service.database import open_database
from service.settings import Settings

__all__ = ["register"]


def _create(settings: Settings, args: argparse.Namespace) -> int:
    from service.domain.secrets import create_secret

    with open_database(settings) as db:
        created = run_in_transaction(db, lambda c: create_secret(c, slug=args.slug, actor_id=None))
    emit(created, as_json=args.json, text=created.secret)
    return 0


def _list(settings: Settings, args: argparse.Namespace) -> int:
    from service.domain.secrets import list_secrets

    with open_database(settings) as db:
        items = run_in_transaction(
            db, lambda c: list_secrets(c, slug=args.slug, include_retired=args.all)
        )
    text = "\n".join(
        f"{s.id}\t{s.hint}...\t{s.created_at.isoformat()}"
        + (f"\tretired {s.retired_at.isoformat()}" if s.retired_at else "\tactive")
        for s in items
    )
    emit(items, as_json=args.json, text=text or "(no signing secrets)")
    return 0


def _retire(settings: Settings, args: argparse.Namespace) -> int:
    from service.domain.secrets import retire_secret

    secret_id = UUID(args.id)
    with open_database(settings) as db:
        secret = run_in_transaction(
            db, lambda c: retire_secret(c, slug=args.slug, secret_id=secret_id, actor_id=None)
        )
    emit(secret, as_json=args.json, text=f"retired {secret.id}")
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``secrets`` commands to the CLI."""
    secrets = sub.add_parser("secrets", help="webhook signing secrets").add_subparsers(
        dest="action", required=True
    )
    create = secrets.add_parser(
        "create", parents=[common], help="issue a new signing secret (printed once)"
    )
    create.add_argument("slug", help="the platform")
    create.set_defaults(func=_create)
    listing = secrets.add_parser("list", parents=[common], help="list signing secrets")
    listing.add_argument("slug", help="the platform")
    listing.add_argument("--all", action="store_true", help="include retired secrets")
    listing.set_defaults(func=_list)
    retire = secrets.add_parser("retire", parents=[common], help="retire a signing secret")
    retire.add_argument("slug", help="the platform")
    retire.add_argument("id", help="the secret's id (from `secrets list`)")
    retire.set_defaults(func=_retire)
