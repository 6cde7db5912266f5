"""Witnesses: each new checkpoint submitted to them, their cosignatures kept and served.

A witness (C2SP ``tlog-witness``) checks that each checkpoint it is shown extends the last
one it cosigned, by a consistency proof, and answers with a cosignature (C2SP
``tlog-cosignature``, ``cosignature/v1``): a note signature line by the witness's Ed25519
key over ``cosignature/v1``, ``time <seconds>`` and the checkpoint's text, its signature
``key id || timestamp (u64, big-endian) || Ed25519 signature``; key ids use the type byte
0x04. The checkpoint endpoints serve the note with the cosignature lines after the log's
own signature, so ``verify --witness-key`` can require one.

The worker, per witness: take the newest checkpoint; send ``old <size the witness last
cosigned>``, the consistency proof from there, a blank line and the signed checkpoint to
``<url>/add-checkpoint``; on 200 verify and store the cosignature; on 409 the witness says
which size it has (``text/x.tlog.size``): remember it and retry from there. Other answers
(403 a key it does not trust, 404 an origin it does not know, 422 a proof it rejects) are
logged and retried at the next round: they need its operator, or ours.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import time
from contextlib import suppress

import asyncpg
import httpx
import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from service.db.pool import DB_FAILURES, connection
from service.db.queries import witnesses as q
from service.domain.sealer import get_consistency_proof
from service.errors import InvalidInput, NotFound, Unavailable

__all__ = [
    "CosignatureError",
    "Witness",
    "WitnessKey",
    "parse_witness_key",
    "parse_witnesses",
    "run_witnesses",
    "submit_checkpoint",
    "verify_cosignature",
]

log = logging.getLogger(__name__)

_COSIGNATURE_V1 = b"\x04"
_DASH = "\u2014"
SIZE_MEDIA_TYPE = "text/x.tlog.size"
#: A 409 names a new size; a second 409 in a row means a race: leave it to the next round.
_ATTEMPTS = 3


class CosignatureError(ValueError):
    """A cosignature that is missing, malformed, or not by the expected witness key."""


class WitnessKey(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    key_id: bytes
    public: bytes


class Witness(msgspec.Struct, frozen=True, kw_only=True):
    """One witness: its key (and so its name) and its submission URL prefix."""

    key: WitnessKey
    url: str

    @property
    def name(self) -> str:
        return self.key.name


def witness_key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + _COSIGNATURE_V1 + public).digest()[:4]


def parse_witness_key(vkey: str) -> WitnessKey:
    """A witness verifier key ``name+keyid+base64(0x04 || public key)`` (C2SP signed-note
    vkey, cosignature/v1 type)."""
    try:
        name, hex_id, b64 = vkey.strip().split("+", 2)
        raw = base64.b64decode(b64, validate=True)
        kid = bytes.fromhex(hex_id)
    except (ValueError, binascii.Error) as exc:
        raise CosignatureError("not a witness key: name+keyid+base64") from exc
    if not name or len(raw) != 33 or raw[:1] != _COSIGNATURE_V1:
        raise CosignatureError("the witness key is not an Ed25519 cosignature/v1 key (0x04)")
    if witness_key_id(name, raw[1:]) != kid:
        raise CosignatureError("the witness key's id does not match its key")
    return WitnessKey(name=name, key_id=kid, public=raw[1:])


def parse_witnesses(setting: str) -> list[Witness]:
    """``REGISTRY_WITNESSES``: comma-separated ``<witness key> <submission URL prefix>``."""
    witnesses = []
    for entry in filter(None, (e.strip() for e in setting.split(","))):
        parts = entry.split()
        if len(parts) != 2 or not parts[1].startswith(("http://", "https://")):
            raise ValueError(f"a witness is '<witness key> <submission URL prefix>', not {entry!r}")
        witnesses.append(Witness(key=parse_witness_key(parts[0]), url=parts[1].rstrip("/")))
    if len({w.name for w in witnesses}) != len(witnesses):
        raise ValueError("two witnesses share a name")
    return witnesses


def _body(note: str) -> str:
    body, sep, _ = note.partition("\n\n")
    if not sep:
        raise CosignatureError("the checkpoint is not a signed note")
    return body + "\n"


def verify_cosignature(note: str, key: WitnessKey) -> int:
    """The timestamp of a valid cosignature by ``key`` among ``note``'s signature lines."""
    body = _body(note).encode()
    public = Ed25519PublicKey.from_public_bytes(key.public)
    for line in note.partition("\n\n")[2].splitlines():
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != _DASH or parts[1] != key.name:
            continue
        try:
            raw = base64.b64decode(parts[2], validate=True)
        except (ValueError, binascii.Error):
            continue
        if raw[:4] != key.key_id or len(raw) != 4 + 8 + 64:
            continue
        timestamp = int.from_bytes(raw[4:12], "big")
        message = b"cosignature/v1\ntime %d\n" % timestamp + body
        try:
            public.verify(raw[12:], message)
        except InvalidSignature:
            continue
        if timestamp == 0 or timestamp >= 2**63:
            continue
        return timestamp
    raise CosignatureError(f"no valid cosignature by the witness {key.name}")


# -- submission -------------------------------------------------------------------------------


async def _request(conn: asyncpg.Connection, *, old: int, size: int, note: str) -> bytes | None:
    """The add-checkpoint body from ``old``; None when ``old`` is past our tree."""
    if old > size:
        return None
    proof: list[str] = []
    if 0 < old < size:
        try:
            proof = (await get_consistency_proof(conn, first=old, second=size)).hashes
        except (NotFound, InvalidInput):
            return None
    return (f"old {old}\n" + "".join(f"{h}\n" for h in proof) + "\n" + note).encode()


async def submit_checkpoint(
    pool: asyncpg.Pool,
    http: httpx.AsyncClient,
    witness: Witness,
    *,
    timeout: float = 10.0,  # noqa: ASYNC109 - httpx's own per-request deadline
) -> int | None:
    """Show the newest checkpoint to ``witness``; the tree size it cosigned, or None."""
    for _ in range(_ATTEMPTS):
        async with connection(pool) as conn:
            latest = await q.select_latest_checkpoint(conn)
            if latest is None:
                return None
            size, note = int(latest["tree_size"]), str(latest["note"])
            old = await q.select_progress(conn, witness=witness.name)
            if old == size and await q.select_cosignatures(conn, tree_size=size):
                return size
            body = await _request(conn, old=old, size=size, note=note)
        if body is None:
            log.error(
                "the witness has cosigned a larger tree than ours",
                extra={"witness": witness.name, "witness_size": old, "size": size},
            )
            return None
        r = await http.post(
            f"{witness.url}/add-checkpoint",
            content=body,
            headers={"Content-Type": "text/plain; charset=utf-8"},
            timeout=timeout,
        )
        if r.status_code == 409 and r.headers.get("content-type", "").startswith(SIZE_MEDIA_TYPE):
            try:
                known = int(r.text.strip())
            except ValueError:
                log.warning("a witness's 409 named no size", extra={"witness": witness.name})
                return None
            async with connection(pool) as conn:
                await q.upsert_progress(conn, witness=witness.name, tree_size=known)
            continue
        if r.status_code != 200:
            log.warning(
                "a witness refused a checkpoint",
                extra={"witness": witness.name, "status": r.status_code, "size": size},
            )
            return None
        lines = [
            line for line in r.text.splitlines() if line.startswith(f"{_DASH} {witness.name} ")
        ]
        try:
            verify_cosignature(note + "".join(f"{line}\n" for line in lines), witness.key)
        except CosignatureError:
            log.warning("a witness answered no valid cosignature", extra={"witness": witness.name})
            return None
        good = [line for line in lines if _verifies(note + line + "\n", witness.key)]
        async with connection(pool) as conn, conn.transaction():
            await q.insert_cosignature(conn, tree_size=size, witness=witness.name, line=good[0])
            await q.upsert_progress(conn, witness=witness.name, tree_size=size)
        return size
    return None


def _verifies(note: str, key: WitnessKey) -> bool:
    try:
        verify_cosignature(note, key)
    except CosignatureError:
        return False
    return True


async def run_witnesses(
    pool: asyncpg.Pool,
    http: httpx.AsyncClient,
    witnesses: list[Witness],
    *,
    interval: float,
    stop: asyncio.Event,
) -> None:
    """Until ``stop``: show each witness the newest checkpoint, every ``interval`` seconds
    (each checkpoint the sealer signs is submitted within one interval)."""
    while not stop.is_set():
        started = time.monotonic()
        for witness in witnesses:
            try:
                await submit_checkpoint(pool, http, witness)
            except (*DB_FAILURES, Unavailable, httpx.HTTPError):
                log.warning("witness submission failed; retrying", extra={"witness": witness.name})
        with suppress(TimeoutError):
            await asyncio.wait_for(
                stop.wait(), timeout=max(0.0, interval - (time.monotonic() - started))
            )
