"""The sealed ledger, for anyone: checkpoints, proofs, leaf hashes and the checkpoint key.

These routes need no key: they reveal only hashes and sizes, and an auditor verifying the
registry from outside should need nothing but the public key.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, MediaType, get
from litestar.datastructures import State
from litestar.params import Parameter

from service.api.deps import Db
from service.api.pagination import Cursor, Limit, decode_seq_cursor, paginate
from service.api.problems import problem_responses
from service.domain import sealer
from service.domain.checkpoints import Signer
from service.errors import InvalidInput, NotFound
from service.schemas.transparency import (
    CheckpointOut,
    CheckpointPage,
    ConsistencyProofOut,
    InclusionProofOut,
    LeafFormats,
    LeafPage,
)

__all__ = ["CHECKPOINT_KEY_PATH", "CheckpointKeyController", "TransparencyController"]

CHECKPOINT_KEY_PATH = "/.well-known/risk-registry/checkpoint-key"
PUBLIC = {"exclude_from_auth": True}

#: Sizes, seqs and indexes are PostgreSQL bigints.
BIGINT = 2**63 - 1
Size = Annotated[
    int, Parameter(ge=1, le=BIGINT, description="A tree size (number of sealed events).")
]


class TransparencyController(Controller):
    path = "/v1/ledger"
    tags = ["transparency"]

    @get(
        "/checkpoint",
        operation_id="getLatestCheckpointNote",
        summary="The newest signed checkpoint (C2SP tlog-checkpoint note)",
        media_type=MediaType.TEXT,
        opt=PUBLIC,
        responses=problem_responses(404),
    )
    async def checkpoint_note(self, db: Db) -> str:
        return (await sealer.get_checkpoint(db)).note

    @get(
        "/checkpoints",
        operation_id="listCheckpoints",
        summary="The published checkpoints, newest first: sizes, roots and times",
        opt=PUBLIC,
        responses=problem_responses(400),
    )
    async def checkpoints(self, db: Db, limit: Limit = 50, cursor: Cursor = None) -> CheckpointPage:
        items = await sealer.list_checkpoints(db, before=decode_seq_cursor(cursor), limit=limit + 1)
        page, next_cursor = paginate(items, limit, lambda c: c.tree_size)
        return CheckpointPage(items=page, next_cursor=next_cursor)

    @get(
        "/checkpoints/{tree_size:int}",
        operation_id="getCheckpoint",
        summary="The checkpoint published at a tree size, with its signed note",
        opt=PUBLIC,
        responses=problem_responses(400, 404),
    )
    async def checkpoint(
        self,
        db: Db,
        tree_size: Annotated[int, Parameter(ge=1, le=BIGINT, description="Its tree size.")],
    ) -> CheckpointOut:
        return await sealer.get_checkpoint(db, tree_size=tree_size)

    @get(
        "/proofs/inclusion",
        operation_id="getInclusionProof",
        summary="Proof that an event is leaf i of the tree of a given size (RFC 9162)",
        opt=PUBLIC,
        responses=problem_responses(400, 404),
    )
    async def inclusion(
        self,
        db: Db,
        seq: Annotated[int, Parameter(ge=1, le=BIGINT, description="The event's seq.")],
        tree_size: Size,
    ) -> InclusionProofOut:
        return await sealer.get_inclusion_proof(db, seq=seq, tree_size=tree_size)

    @get(
        "/proofs/consistency",
        operation_id="getConsistencyProof",
        summary="Proof that the tree of size `first` is a prefix of the tree of size `second`",
        opt=PUBLIC,
        responses=problem_responses(400, 404, 422),
    )
    async def consistency(self, db: Db, first: Size, second: Size) -> ConsistencyProofOut:
        if first > second:
            raise InvalidInput("first must not exceed second", key="first")
        return await sealer.get_consistency_proof(db, first=first, second=second)

    @get(
        "/leaves",
        operation_id="listLeafHashes",
        summary="Leaf hashes in tree order, to compare with an export of the events",
        opt=PUBLIC,
        responses=problem_responses(400),
    )
    async def leaves(
        self,
        db: Db,
        start: Annotated[int, Parameter(ge=0, le=BIGINT, description="First leaf index.")] = 0,
        limit: Annotated[int, Parameter(ge=1, le=10_000)] = 1000,
    ) -> LeafPage:
        return await sealer.list_leaf_hashes(db, start=start, limit=limit)

    @get(
        "/leaf-formats",
        operation_id="getLeafFormats",
        summary="From which leaf index each leaf format applies (2 = RFC 8785 JCS)",
        opt=PUBLIC,
        responses=problem_responses(),
    )
    async def leaf_formats(self, db: Db) -> LeafFormats:
        return await sealer.get_leaf_formats(db)


class CheckpointKeyController(Controller):
    path = CHECKPOINT_KEY_PATH
    tags = ["transparency"]

    @get(
        operation_id="getCheckpointKey",
        summary="The verifier key for checkpoints: name+keyid+base64 (C2SP signed-note)",
        media_type=MediaType.TEXT,
        opt=PUBLIC,
        responses=problem_responses(404),
        sync_to_thread=False,
    )
    def key(self, state: State) -> str:
        signer: Signer | None = state.get("signer")
        if signer is None:
            raise NotFound("this registry has no checkpoint signing key yet")
        return signer.verifier_key + "\n"
