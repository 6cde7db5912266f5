"""Everything the service keeps for as long as a process runs, made and ended in one place.

Two kinds, both put on the app's state by ``service.app.create_app``:

* **Per-process state** (``process_state``), made once when the app is built: the webhook
  gate (each platform's allowance, its signing secrets reused for a moment, the budget for
  logging its refused deliveries, the group-commit queue) and the public report channel's
  limiter. Plain objects, no I/O: requests find them ready, and each replica keeps its own.
* **Resources** (``lifespan``), opened when the app starts and closed, in reverse order,
  when it stops: the asyncpg pool and the shared ``httpx.AsyncClient`` (unless the caller
  passed its own, which it keeps open), the checkpoint signer, then the background workers
  the settings turn on: the ledger sealer (with, when witnesses are configured, the worker
  showing them each new checkpoint), the notice delivery worker, the export worker and the
  records reconciler. Each worker is a plain coroutine of its domain module run by
  ``background``: on shutdown the sealer, the delivery worker and the reconciler finish the
  round in hand; an export in progress is abandoned (its lease lapses and another worker
  takes it up again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any, cast

import asyncpg
import httpx

from service.console.printing import PrintSlots
from service.db.pool import create_pool
from service.domain.checkpoints import load_or_create_signer
from service.domain.delivery_worker import WorkerConfig, run_delivery_worker
from service.domain.export_jobs import run_export_worker
from service.domain.group_commit import GroupCommit
from service.domain.limits import TokenBucket
from service.domain.receiving import LOG_BURST, LOG_RATE, Gate, SigningCache
from service.domain.reconciler import run_reconciler
from service.domain.sealer import run_sealer
from service.domain.vault import Vault, open_vault, seal_plaintext
from service.domain.witnesses import parse_witnesses, run_witnesses
from service.settings import Settings

__all__ = ["background", "lifespan", "process_state", "seal_legacy_secrets"]

log = logging.getLogger(__name__)


def process_state(settings: Settings) -> dict[str, Any]:
    """The per-process state, by the name requests find it under on the app's state."""
    # Seals and opens secrets at rest; its key file is read (or created) on first use.
    vault = open_vault(settings, deferred=True)
    return {
        "vault": vault,
        "webhook_gate": Gate(
            allowance=TokenBucket(
                rate=settings.webhook_rate_per_second, burst=settings.webhook_burst
            ),
            log_budget=TokenBucket(rate=LOG_RATE, burst=LOG_BURST),
            signing=SigningCache(settings.webhook_secret_cache_seconds, vault),
            group_commit=GroupCommit() if settings.group_commit else None,
            tolerance=settings.webhook_tolerance_seconds,
        ),
        "public_limiter": TokenBucket.per_window(
            limit=settings.public_rate_limit, window=settings.public_rate_window_seconds
        ),
        "print_slots": PrintSlots(settings.pdf_concurrency),
    }


async def seal_legacy_secrets(pool: asyncpg.Pool, vault: Vault) -> None:
    """Seal plaintext secrets left from before they were sealed; a start without the
    database is not stopped by it (the next start, or ``secrets-key rotate``, seals them)."""
    vault.current_key_id  # noqa: B018 - reads, or creates, the key file now
    try:
        async with pool.acquire() as raw, raw.transaction():
            sealed = await seal_plaintext(cast("asyncpg.Connection", raw), vault)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        log.warning("plaintext secrets not sealed now: %s", type(exc).__name__)
        return
    if sealed:
        log.info("sealed plaintext secrets", extra={"rows": sealed})


@asynccontextmanager
async def background(
    run: Callable[[asyncio.Event], Coroutine[Any, Any, None]], *, abandon: bool = False
) -> AsyncIterator[None]:
    """Run ``run(stop)`` as a task for the duration of the block, then set ``stop`` and wait
    for it to return; with ``abandon``, cancel it instead of waiting for its round."""
    stop = asyncio.Event()
    task = asyncio.create_task(run(stop))
    try:
        yield
    finally:
        stop.set()
        if abandon:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        else:
            await task


def lifespan(
    settings: Settings,
    *,
    pool: asyncpg.Pool | None = None,
    http: httpx.AsyncClient | None = None,
) -> Callable[[Any], AbstractAsyncContextManager[None]]:
    """The app's one lifespan hook. A ``pool`` or ``http`` client given here (tests) is
    used and left open; otherwise the hook opens its own and closes it."""

    @asynccontextmanager
    async def running(app: Any) -> AsyncIterator[None]:
        state = app.state
        async with AsyncExitStack() as stack:
            if pool is None:
                if settings.database_url is None:
                    raise RuntimeError("the database URL must be resolved before the app starts")
                state.pool = await create_pool(settings, settings.database_url)
                stack.push_async_callback(state.pool.close)
            else:
                state.pool = pool
            if http is None:
                state.http = httpx.AsyncClient(timeout=10.0)
                stack.push_async_callback(state.http.aclose)
            else:
                state.http = http

            # The key sealing secrets at rest: read, or created on first run, before anything
            # needs it; then rows written before secrets were sealed are sealed.
            await seal_legacy_secrets(state.pool, state.vault)

            # The key is created when the sealer is on and none exists yet; without the
            # sealer an existing key is still loaded, so any replica serves the public key.
            path = settings.signing_key_path
            signer = None
            if settings.sealer or path.exists():
                signer = load_or_create_signer(path, name=settings.checkpoint_origin)
            state.signer = signer

            if settings.sealer and signer is not None:
                sealer = signer
                await stack.enter_async_context(
                    background(
                        lambda stop: run_sealer(
                            state.pool,
                            signer=sealer,
                            batch_size=settings.seal_batch_size,
                            interval=settings.seal_interval_seconds,
                            gap_grace=settings.seal_gap_grace_seconds,
                            stop=stop,
                        )
                    )
                )
            witnesses = parse_witnesses(settings.witnesses)
            if settings.sealer and witnesses:
                await stack.enter_async_context(
                    background(
                        lambda stop: run_witnesses(
                            state.pool,
                            state.http,
                            witnesses,
                            interval=settings.witness_interval_seconds,
                            stop=stop,
                        ),
                        abandon=True,
                    )
                )
            if settings.outbox_worker:
                config = WorkerConfig.from_settings(settings)
                await stack.enter_async_context(
                    background(
                        lambda stop: run_delivery_worker(state.pool, state.http, config, stop=stop)
                    )
                )
            if settings.reconciler:
                await stack.enter_async_context(
                    background(
                        lambda stop: run_reconciler(
                            state.pool,
                            batch_size=settings.reconcile_batch_size,
                            interval=settings.reconcile_interval_seconds,
                            stop=stop,
                        )
                    )
                )
            if settings.export_worker:
                exporter = signer or load_or_create_signer(path, name=settings.checkpoint_origin)
                # Set by a job queued through this process, so the worker need not poll.
                wake = state.export_wakeup = asyncio.Event()
                await stack.enter_async_context(
                    background(
                        lambda stop: run_export_worker(
                            state.pool,
                            signer=exporter,
                            seconds=settings.export_timeout_seconds,
                            poll_interval=settings.export_poll_seconds,
                            wake=wake,
                            stop=stop,
                            seal_wait=settings.export_seal_wait_seconds,
                        ),
                        abandon=True,
                    )
                )
            yield

    return running
