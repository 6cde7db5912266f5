"""The ledger is append-only, enforced by the database itself."""

from __future__ import annotations

import random
from uuid import uuid4

import asyncpg
import pytest

from service.domain.ledger import NewEvent, record_events


async def _some_seq(conn: asyncpg.Connection) -> int:
    async with conn.transaction():
        seq = await conn.fetchval(
            "INSERT INTO events (stage, kind, subject_type, subject_id, occurred_at) "
            "VALUES ('prevent', 'test.appended', 'test', gen_random_uuid(), now()) RETURNING seq"
        )
    return int(seq)


async def test_update_on_events_fails_in_the_database(conn: asyncpg.Connection) -> None:
    seq = await _some_seq(conn)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await conn.execute("UPDATE events SET kind = 'test.rewritten' WHERE seq = $1", seq)
    assert await conn.fetchval("SELECT kind FROM events WHERE seq = $1", seq) == "test.appended"


async def test_delete_and_truncate_on_events_fail(conn: asyncpg.Connection) -> None:
    seq = await _some_seq(conn)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await conn.execute("DELETE FROM events WHERE seq = $1", seq)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await conn.execute("TRUNCATE events CASCADE")
    assert await conn.fetchval("SELECT count(*) FROM events WHERE seq = $1", seq) == 1


async def test_sequence_numbers_increase(conn: asyncpg.Connection) -> None:
    first = await _some_seq(conn)
    second = await _some_seq(conn)
    assert second > first


async def test_many_events_get_their_seqs_in_the_order_given(conn: asyncpg.Connection) -> None:
    subjects = [uuid4() for _ in range(500)]
    random.shuffle(subjects)
    events = [
        NewEvent(
            stage="prevent",
            kind="test.appended",
            subject_type="test",
            subject_id=subject,
            actor_id=None,
            state={"n": n},
        )
        for n, subject in enumerate(subjects)
    ]
    async with conn.transaction():
        seqs = await record_events(conn, events)
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs) == 500
    rows = await conn.fetch(
        "SELECT seq, subject_id, payload FROM events WHERE seq = ANY($1) ORDER BY seq", seqs
    )
    assert [row["subject_id"] for row in rows] == subjects
    assert [row["payload"]["state"]["n"] for row in rows] == list(range(500))
