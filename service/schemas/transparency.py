"""The sealed ledger's public face: checkpoints, proofs and leaf hashes (all base64)."""

from __future__ import annotations

from datetime import datetime

import msgspec

__all__ = [
    "CheckpointOut",
    "CheckpointPage",
    "CheckpointSummary",
    "ConsistencyProofOut",
    "InclusionProofOut",
    "LeafFormatRange",
    "LeafFormats",
    "LeafHash",
    "LeafPage",
]


class CheckpointOut(msgspec.Struct, frozen=True, kw_only=True):
    tree_size: int
    #: Base64 of the RFC 9162 root hash.
    root_hash: str
    #: The seq of the newest event the tree covers.
    last_seq: int
    #: The signed note (C2SP tlog-checkpoint), exactly as signed.
    note: str
    created_at: datetime


class CheckpointSummary(msgspec.Struct, frozen=True, kw_only=True):
    """A published checkpoint in a listing: its size, root and time (the note is at
    ``/v1/ledger/checkpoints/{tree_size}``)."""

    tree_size: int
    root_hash: str
    last_seq: int
    created_at: datetime


class CheckpointPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[CheckpointSummary]
    next_cursor: str | None


class InclusionProofOut(msgspec.Struct, frozen=True, kw_only=True):
    seq: int
    leaf_index: int
    tree_size: int
    #: Base64 of SHA-256(0x00 || canonical entry).
    leaf_hash: str
    #: How the leaf's entry is encoded: 2 for RFC 8785 (JCS), 1 for the format before it.
    leaf_format: int
    #: The audit path, bottom-up, base64 (RFC 9162 section 2.1.3).
    hashes: list[str]


class ConsistencyProofOut(msgspec.Struct, frozen=True, kw_only=True):
    first: int
    second: int
    #: The consistency proof, base64 (RFC 9162 section 2.1.4).
    hashes: list[str]


class LeafHash(msgspec.Struct, frozen=True, kw_only=True):
    leaf_index: int
    seq: int
    leaf_hash: str
    #: How the leaf's entry is encoded: 2 for RFC 8785 (JCS), 1 for the format before it.
    format: int


class LeafPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[LeafHash]


class LeafFormatRange(msgspec.Struct, frozen=True, kw_only=True):
    #: 2: the entry is the event's RFC 8785 (JCS) bytes; 1: compact JSON with sorted keys.
    format: int
    first_leaf: int
    last_leaf: int


class LeafFormats(msgspec.Struct, frozen=True, kw_only=True):
    """The sealed leaves as runs of one format each, in tree order."""

    ranges: list[LeafFormatRange]
