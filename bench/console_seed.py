"""Records for the console benchmark beside the populated ledger: platforms with thousands of
hostings, incidents in every status with notes, and decisions with their targets.

Written through the domain functions, as the API writes them, so every record has its rows
and its ledger events (with their states, which the pages' "as of" reads): the list pages
and the model page are measured at a realistic size, not over empty tables.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from service.db.pool import init_connection
from service.db.queries.models import select_ancestors, select_descendants
from service.domain.decommissions import propose_decision
from service.domain.hostings import record_hosting
from service.domain.incident_notes import add_note
from service.domain.incidents import get_incident, record_incident
from service.domain.models import update_model
from service.domain.triage import transition_incident
from service.schemas.decommissions import DecisionIn
from service.schemas.hostings import HostingIn
from service.schemas.incidents import IncidentIn, NoteIn, TransitionIn
from service.schemas.models import ModelPatch

PLATFORMS = 12
#: The moves that bring a fresh incident to each status (duplicates merge into the one before).
PATHS: list[list[str]] = [
    [],
    ["triaged"],
    ["triaged", "investigating"],
    ["triaged", "investigating", "mitigated"],
    ["triaged", "investigating", "mitigated", "closed"],
    ["rejected"],
    ["duplicate"],
]
SEVERITIES = ["low", "medium", "high", "critical"]
CATEGORIES = ["malfunction", "misuse", "privacy", "harmful_content", "security_vulnerability"]
BATCH = 200


async def seed(
    url: str, *, target: Any, hostings: int, incidents: int, decisions: int
) -> dict[str, Any]:
    """``hostings`` hostings spread over the bench models and ``PLATFORMS`` platforms (the
    target on every one), ``incidents`` incidents (a tenth on the target) cycling through
    every status with a note each, and ``decisions`` proposed decisions with targets."""
    conn = await asyncpg.connect(url)
    await init_connection(conn)
    started = time.perf_counter()
    try:
        names: list[str] = [
            r["name"]
            for r in await conn.fetch(
                "SELECT name FROM models WHERE name LIKE 'bench/m%' ORDER BY id LIMIT $1",
                max(hostings // PLATFORMS + 1, incidents, decisions),
            )
        ]
        target_name = await conn.fetchval("SELECT name FROM models WHERE id = $1", target)
        # The target's lineage gets ledger states of its own (the populated models have none),
        # so the model page "as of" a moment finds the model and its relatives then.
        # (The populated events name models as their subjects, with states of another shape.)
        relatives = [
            *await select_ancestors(conn, model_id=target),
            *await select_descendants(conn, model_id=target),
        ]
        async with conn.transaction():
            for model_id in [target, *(r["id"] for r in relatives)]:
                await update_model(
                    conn, model_id=model_id, patch=ModelPatch(provider="bench lab"), actor_id=None
                )
        slugs = ["bench-hub"]
        async with conn.transaction():
            for n in range(1, PLATFORMS):
                await conn.execute(
                    "INSERT INTO platforms (slug, name, kind) VALUES ($1, $2, 'model_hub')",
                    f"bench-p{n}",
                    f"Bench platform {n}",
                )
                slugs.append(f"bench-p{n}")
        pairs = [(target_name, slug) for slug in slugs]
        pairs += [
            (names[i // PLATFORMS], slugs[i % PLATFORMS])
            # A small database has fewer models than the hostings asked for: each is hosted
            # on every platform at most once.
            for i in range(min(hostings - len(pairs), len(names) * PLATFORMS))
            if names[i // PLATFORMS] != target_name
        ]
        for start in range(0, len(pairs), BATCH):
            async with conn.transaction():
                for i, (model, slug) in enumerate(pairs[start : start + BATCH], start):
                    await record_hosting(
                        conn,
                        data=HostingIn(
                            model=model,
                            platform=slug,
                            url=f"https://{slug}.example/{model}",
                            licence="mit" if i % 3 else "apache-2.0",
                            downloads=(i * 7919) % 1_000_000,
                        ),
                        actor_id=None,
                    )
        now = datetime.now(UTC)
        previous = None
        for start in range(0, incidents, BATCH):
            async with conn.transaction():
                for i in range(start, min(start + BATCH, incidents)):
                    model = target_name if i % 10 == 0 else names[i % len(names)]
                    serious = i % 5 == 0
                    incident, _ = await record_incident(
                        conn,
                        data=IncidentIn(
                            title=f"Bench incident {i}",
                            description="Seeded for the console benchmark.",
                            category=CATEGORIES[i % len(CATEGORIES)],  # type: ignore[arg-type]
                            severity=SEVERITIES[i % 4],  # type: ignore[arg-type]
                            serious=serious,
                            serious_kind="fundamental_rights" if serious else None,
                            aware_at=now - timedelta(hours=i % 500),
                            models=[model],
                        ),
                        channel="api",
                        reporter_platform_id=None,
                        reporter_principal_id=None,
                        actor_id=None,
                    )
                    for move in PATHS[i % len(PATHS)]:
                        await transition_incident(
                            conn,
                            incident_id=incident.id,
                            data=TransitionIn(
                                to=move,  # type: ignore[arg-type]
                                reason="not an incident" if move == "rejected" else None,
                                duplicate_of=previous if move == "duplicate" else None,
                            ),
                            actor_id=None,
                        )
                    current = await get_incident(conn, incident_id=incident.id)
                    await add_note(
                        conn,
                        incident=current,
                        author="registry",
                        actor_id=None,
                        data=NoteIn(body=f"Triage note on {i}", share_with_reporter=i % 2 == 0),
                    )
                    if current.status in ("received", "triaged", "investigating"):
                        previous = incident.id
        for start in range(0, decisions, BATCH):
            async with conn.transaction():
                for i in range(start, min(start + BATCH, decisions)):
                    await propose_decision(
                        conn,
                        data=DecisionIn(
                            model=target_name if i % 10 == 0 else names[i % len(names)],
                            action="restrict" if i % 2 else "recall",
                            reason=f"Bench decision {i}",
                        ),
                        actor_id=None,
                    )
        await conn.execute("ANALYZE")
        return {
            "as_of": datetime.now(UTC).isoformat(),
            "platforms": PLATFORMS,
            "hostings": len(pairs),
            "incidents": incidents,
            "decisions": decisions,
            "seed_seconds": round(time.perf_counter() - started, 1),
        }
    finally:
        await conn.close()
