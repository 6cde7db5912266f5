"""Sealing cost of the RFC 8785 leaf encoding, beside the encoding it replaced.

Populates a fresh database with ``--events`` ledger events shaped as the registry writes
them (hosting states with nested documentation, and one in ten an audit with evaluation
results as floats, which take JCS's slower path), then seals every one of them in leaf
format 2 (RFC 8785, what the sealer writes) and, in the same run and on the same rows, in
format 1 (msgspec's sorted-key JSON, the encoding before): each sealing in one
transaction rolled back afterwards, alternating, best of ``--rounds``. The limit is format
1's rate; the figure is format 2's rate as a ratio of it.

    .venv/bin/python -m bench.sealer --events 50000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import Any

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.common import fresh_database, pg_server, write_results
from service.db.pool import init_connection
from service.domain import sealer
from service.domain.checkpoints import Signer
from service.domain.ledger import canonical_entry

__all__ = ["measure"]

POPULATE = """
INSERT INTO events (stage, kind, subject_type, subject_id, model_id, platform_id, actor_id,
                    occurred_at, payload)
SELECT 'prevent', 'hosting.updated', 'hosting', gen_random_uuid(), gen_random_uuid(),
       gen_random_uuid(), NULL, timestamptz '2026-01-01' + g * interval '1 second',
       CASE WHEN g % 10 = 0 THEN jsonb_build_object('state', jsonb_build_object(
              'id', gen_random_uuid(), 'method', 'red_team', 'summary', 'r\u00e9sum\u00e9',
              'evaluations', jsonb_build_array(
                jsonb_build_object('metric', 'toxicity', 'value', g * 1e-7),
                jsonb_build_object('metric', 'refusal', 'value', 0.25 + g),
                jsonb_build_object('metric', 'size', 'value', 1e21))))
       ELSE jsonb_build_object(
         'state', jsonb_build_object(
           'id', gen_random_uuid(), 'model', 'bench/m' || g, 'url', 'https://hub.example/m' || g,
           'revision', md5(g::text), 'licence', 'apache-2.0', 'downloads', g * 7,
           'gated', false, 'status', 'hosted', 'external_id', NULL,
           'documentation', jsonb_build_object(
             'model_card', jsonb_build_object('present', true, 'url', 'https://d.example/c'),
             'risk_analysis', jsonb_build_object('present', false, 'url', NULL))),
         'changes', jsonb_build_object('downloads', jsonb_build_object('from', g, 'to', g * 7)),
         'delivery', jsonb_build_object('id', gen_random_uuid(), 'source', 'standard'))
       END
FROM generate_series(1, $1) g
"""


async def _seal_seconds(url: str, signer: Signer, *, leaf_format: int) -> tuple[float, int]:
    """Seal every event in ``leaf_format`` in one transaction, rolled back; (seconds, sealed)."""
    conn = await asyncpg.connect(url)
    await init_connection(conn)
    entry = sealer._entry
    if leaf_format == 1:
        sealer._entry = lambda e: (1, canonical_entry(e, 1))  # type: ignore[assignment]
    tx = conn.transaction(isolation="repeatable_read")
    await tx.start()
    try:
        sealed = 0
        started = time.perf_counter()
        while True:
            result = await sealer.seal_once(
                conn, signer=signer, batch_size=1000, gaps=sealer.GapTracker(0)
            )
            assert result is not None  # noqa: S101 - no other sealer runs on this database
            sealed += result.sealed
            if result.sealed < 1000:
                return time.perf_counter() - started, sealed
    finally:
        sealer._entry = entry
        await tx.rollback()
        await conn.close()


async def _measure(url: str, *, events: int, rounds: int) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(POPULATE, events)
    finally:
        await conn.close()
    signer = Signer("bench/ledger", Ed25519PrivateKey.generate())
    best: dict[int, float] = {}
    for _ in range(rounds):
        for leaf_format in (1, 2):
            seconds, sealed = await _seal_seconds(url, signer, leaf_format=leaf_format)
            assert sealed == events, (sealed, events)  # noqa: S101 - a bench that sealed less lies
            best[leaf_format] = min(best.get(leaf_format, seconds), seconds)
    v1, v2 = events / best[1], events / best[2]
    return {
        "events": events,
        "rounds": rounds,
        "format_1_events_per_second": round(v1),
        "format_2_events_per_second": round(v2),
        "format_2_ratio_to_format_1": round(v2 / v1, 3),
    }


def measure(url: str, *, events: int, rounds: int = 3) -> dict[str, Any]:
    return asyncio.run(_measure(url, events=events, rounds=rounds))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with pg_server() as admin_url, fresh_database(admin_url, "rr_bench_seal") as url:
        figures = measure(url, events=args.events, rounds=args.rounds)
    figures.update(benchmark="sealer", cpus=os.cpu_count(), load_average=os.getloadavg()[0])
    for key, value in figures.items():
        print(f"{key}: {value}")
    print(f"written to {write_results('sealer', figures)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
