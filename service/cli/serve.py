"""``risk-registry serve``: the HTTP service, with its sealer, notice and export workers."""

from __future__ import annotations

import gc
import logging
import signal
import sys

import click
import msgspec

from service.cli.common import CliError, State, pass_state, run_in_transaction, shared_options
from service.database import open_database
from service.db.migrate import check_revision, upgrade
from service.logs import configure_logging

__all__ = ["serve"]


def _store_host(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(State).host = value


def _store_port(ctx: click.Context, param: click.Parameter, value: int | None) -> None:
    if value is not None:
        ctx.ensure_object(State).port = value


@click.command()
@click.option(
    "--host",
    envvar="REGISTRY_HOST",
    show_envvar=True,
    expose_value=False,
    callback=_store_host,
    help="Address to listen on (default 127.0.0.1).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    envvar="REGISTRY_PORT",
    show_envvar=True,
    expose_value=False,
    callback=_store_port,
    help="Port to listen on (default 8080).",
)
@shared_options
@pass_state
def serve(state: State) -> int:
    """Run the HTTP service (in embedded mode, migrating the database first)."""
    import uvicorn

    from service.app import create_app
    from service.domain.keys import ensure_first_admin_key

    settings = state.settings()
    if settings.database_url:
        # Against a server of one's own, migrating is an explicit step (a job, a command)
        # that must have run; a newer version's revision is fine (a rolling upgrade).
        problem = check_revision(settings.database_url, allow_newer=True)
        if problem is not None:
            raise CliError(f"{problem}: run `risk-registry migrate` first")
    # The service's logs are its output: at its own level, or everything with --verbose.
    configure_logging("DEBUG" if state.verbose else settings.log_level)
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
        # ... and reconciles records with the ledger unless told not to (REGISTRY_RECONCILER).
        reconciler = True if settings.reconciler is None else settings.reconciler
        app = create_app(
            msgspec.structs.replace(
                settings,
                database_url=db.url,
                sealer=sealer,
                outbox_worker=worker,
                export_worker=exporter,
                reconciler=reconciler,
            )
        )
        if settings.trusted_proxies.strip() == "*":
            # uvicorn then believes the left-most X-Forwarded-For entry, which the client
            # wrote: every address limit can be dodged by anyone who reaches the service.
            logging.getLogger("service").warning(
                "REGISTRY_TRUSTED_PROXIES is '*': X-Forwarded-For is believed from any peer; "
                "name the proxy's addresses instead"
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
            # Room above the service's own header limit (431, service.middleware), so a
            # large header block gets the service's answer, not the parser's bare 400.
            h11_max_incomplete_event_size=64 * 1024,
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
