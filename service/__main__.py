"""The ``risk-registry`` command line: serve, migrate, platforms, keys, openapi.

Every command finds the database the same way as the service (``DATABASE_URL``, or the
embedded server under ``--data-dir``) and works while ``serve`` runs against it. With
``--json`` a command prints one JSON document on standard output and nothing else there.
"""

from __future__ import annotations

import argparse
import gc
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import msgspec

from service import cli_exports, cli_secrets, cli_verify
from service.cli import emit, run_in_transaction
from service.database import open_database
from service.db.migrate import upgrade
from service.errors import RegistryError
from service.logs import configure_logging
from service.settings import Settings, load_settings

__all__ = ["main"]

T = TypeVar("T")

_json = msgspec.json.Encoder()
OPENAPI_PATH = Path("openapi") / "openapi.json"


# -- serve ---------------------------------------------------------------------------------


def _cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from service.app import create_app
    from service.domain.keys import ensure_first_admin_key

    with open_database(settings) as db:
        if db.embedded is not None:
            upgrade(db.url)
            created = run_in_transaction(db, lambda c: ensure_first_admin_key(c))
            if created is not None:
                sys.stdout.write(
                    f"First run: an admin key was created. It is shown only now:\n  {created.key}\n"
                )
                sys.stdout.flush()
        # ``serve`` seals the ledger unless told not to (REGISTRY_SEALER=false).
        sealer = True if settings.sealer is None else settings.sealer
        # ... and delivers notices to platforms unless told not to (REGISTRY_OUTBOX_WORKER=false).
        worker = True if settings.outbox_worker is None else settings.outbox_worker
        # ... and builds export bundles unless told not to (REGISTRY_EXPORT_WORKER=false).
        exporter = True if settings.export_worker is None else settings.export_worker
        app = create_app(
            msgspec.structs.replace(
                settings,
                database_url=db.url,
                sealer=sealer,
                outbox_worker=worker,
                export_worker=exporter,
            )
        )
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=settings.shutdown_grace_seconds,
            # The client's address (which the public channel rate-limits) comes from
            # X-Forwarded-For only when the peer is a trusted proxy.
            proxy_headers=bool(settings.trusted_proxies),
            forwarded_allow_ips=settings.trusted_proxies or None,
        )
        # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal. With
        # the default handlers that would kill the process before the embedded server is
        # stopped, so by then a handler that does nothing is in place.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, _after_shutdown)
        _freeze_startup_heap()
        uvicorn.Server(config).run()
    return 0


def _freeze_startup_heap() -> None:
    """Exempt everything built at startup (modules, routes, the OpenAPI document) from the
    cyclic garbage collector. Each full collection otherwise walks all of it again: pauses
    of tens of milliseconds that every request in flight at the time waits out."""
    gc.collect()
    gc.freeze()


def _after_shutdown(signum: int, frame: object) -> None:
    """Swallow the signal uvicorn re-raises once it has shut down."""


# -- migrate ---------------------------------------------------------------------------------


def _cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    with open_database(settings) as db:
        upgrade(db.url)
    emit({"migrated": True}, as_json=args.json, text="migrations applied")
    return 0


# -- platforms -------------------------------------------------------------------------------


def _cmd_platforms_add(settings: Settings, args: argparse.Namespace) -> int:
    from service.domain.platforms import create_platform
    from service.schemas.platforms import PlatformIn

    data = msgspec.convert({"slug": args.slug, "name": args.name, "kind": args.kind}, PlatformIn)
    with open_database(settings) as db:
        platform = run_in_transaction(db, lambda c: create_platform(c, data=data, actor_id=None))
    emit(platform, as_json=args.json, text=f"{platform.slug}\t{platform.id}\t{platform.kind}")
    return 0


def _cmd_platforms_list(settings: Settings, args: argparse.Namespace) -> int:
    from service.domain.platforms import list_platforms

    with open_database(settings) as db:
        items = run_in_transaction(
            db,
            lambda c: list_platforms(c, kind=None, visible_to=None, after=None, limit=10_000),
        )
    text = "\n".join(f"{p.slug}\t{p.id}\t{p.kind}\t{p.name}" for p in items)
    emit(items, as_json=args.json, text=text or "(no platforms)")
    return 0


# -- keys ------------------------------------------------------------------------------------


def _cmd_keys_create(settings: Settings, args: argparse.Namespace) -> int:
    from service.domain.keys import create_key
    from service.schemas.keys import ApiKeyIn

    name = args.name or (f"{args.platform} integration" if args.platform else f"{args.role} key")
    data = msgspec.convert({"role": args.role, "name": name, "platform": args.platform}, ApiKeyIn)
    with open_database(settings) as db:
        created = run_in_transaction(db, lambda c: create_key(c, data=data, actor_id=None))
    emit(created, as_json=args.json, text=created.key)
    return 0


def _cmd_keys_list(settings: Settings, args: argparse.Namespace) -> int:
    from service.domain.keys import list_keys

    with open_database(settings) as db:
        items = run_in_transaction(
            db,
            lambda c: list_keys(c, role=None, include_revoked=args.all, after=None, limit=100_000),
        )
    text = "\n".join(
        f"{k.id}\t{k.role}\t{k.platform or '-'}\t{k.name}" + ("\trevoked" if k.revoked_at else "")
        for k in items
    )
    emit(items, as_json=args.json, text=text or "(no keys)")
    return 0


def _cmd_keys_revoke(settings: Settings, args: argparse.Namespace) -> int:
    from service.domain.keys import revoke_key

    key_id = UUID(args.id)
    with open_database(settings) as db:
        key = run_in_transaction(db, lambda c: revoke_key(c, key_id=key_id, actor_id=None))
    emit(key, as_json=args.json, text=f"revoked {key.id}")
    return 0


# -- openapi ---------------------------------------------------------------------------------


def _cmd_openapi(settings: Settings, args: argparse.Namespace) -> int:
    from service.openapi import render_openapi

    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(render_openapi())
    emit({"written": str(out)}, as_json=args.json, text=f"wrote {out}")
    return 0


# -- wiring ----------------------------------------------------------------------------------


#: ``register(subparsers, common_parent)`` functions of the capabilities' own CLI modules.
_EXTENSIONS: list[Callable[[Any, argparse.ArgumentParser], None]] = [
    cli_secrets.register,
    cli_verify.register,
    cli_exports.register,
]


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir",
        help="where the embedded PostgreSQL keeps its files (env REGISTRY_DATA_DIR; "
        "ignored when DATABASE_URL is set)",
    )
    common.add_argument("--json", action="store_true", help="machine-readable output")

    parser = argparse.ArgumentParser(prog="risk-registry", description="AI lifecycle risk registry")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", parents=[common], help="run the HTTP service")
    serve.add_argument("--host", help="address to listen on (env REGISTRY_HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (env REGISTRY_PORT)")
    serve.set_defaults(func=_cmd_serve)

    migrate = sub.add_parser("migrate", parents=[common], help="apply database migrations")
    migrate.set_defaults(func=_cmd_migrate)

    platforms = sub.add_parser("platforms", help="hosting platforms").add_subparsers(
        dest="action", required=True
    )
    add = platforms.add_parser("add", parents=[common], help="register a platform")
    add.add_argument("slug")
    add.add_argument("--name", required=True)
    add.add_argument(
        "--kind",
        required=True,
        choices=["model_hub", "code_forge", "cloud_catalogue", "app_provider"],
    )
    add.set_defaults(func=_cmd_platforms_add)
    plist = platforms.add_parser("list", parents=[common], help="list platforms")
    plist.set_defaults(func=_cmd_platforms_list)

    keys = sub.add_parser("keys", help="API keys").add_subparsers(dest="action", required=True)
    kcreate = keys.add_parser("create", parents=[common], help="create a key (shown once)")
    kcreate.add_argument(
        "--role", required=True, choices=["admin", "platform", "auditor", "regulator"]
    )
    kcreate.add_argument("--platform", help="the platform a platform key belongs to")
    kcreate.add_argument("--name", help="who or what holds the key")
    kcreate.set_defaults(func=_cmd_keys_create)
    klist = keys.add_parser("list", parents=[common], help="list keys (never their secrets)")
    klist.add_argument("--all", action="store_true", help="include revoked keys")
    klist.set_defaults(func=_cmd_keys_list)
    krevoke = keys.add_parser("revoke", parents=[common], help="revoke a key")
    krevoke.add_argument("id")
    krevoke.set_defaults(func=_cmd_keys_revoke)

    openapi = sub.add_parser("openapi", parents=[common], help="write the OpenAPI document")
    openapi.add_argument("--output", default=str(OPENAPI_PATH))
    openapi.set_defaults(func=_cmd_openapi)

    # Each capability with commands of its own registers them here, from its own module.
    for register in _EXTENSIONS:
        register(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(
            data_dir=getattr(args, "data_dir", None),
            host=getattr(args, "host", None),
            port=getattr(args, "port", None),
        )
    except msgspec.ValidationError as exc:
        sys.stderr.write(f"risk-registry: bad setting: {exc}\n")
        return 2
    configure_logging(settings.log_level)
    try:
        code: int = args.func(settings, args)
    except (RegistryError, msgspec.ValidationError, ValueError) as exc:
        detail = exc.detail if isinstance(exc, RegistryError) else str(exc)
        sys.stderr.write(f"risk-registry: {detail}\n")
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
