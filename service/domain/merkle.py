"""RFC 9162 Merkle tree hashing, proofs and their verification.

Leaf hash ``SHA-256(0x00 || entry)``, node hash ``SHA-256(0x01 || left || right)``; the tree
over ``n`` leaves splits at the largest power of two below ``n`` (RFC 9162, section 2.1.1).

Proofs are built from the hashes of *complete* subtrees ``(level, index)``, the subtree of
``2**level`` leaves starting at leaf ``index * 2**level``: those are the only hashes a store
needs to keep (see ``service.db.queries.ledger_tree``). Building a proof is done twice: once
to learn which complete subtrees it needs (:func:`plan`), then with their hashes fetched.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping

__all__ = [
    "CompactRange",
    "ProofError",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "plan",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
]

Node = tuple[int, int]
#: The hash of a complete subtree ``(level, index)``.
Lookup = Callable[[int, int], bytes]


class ProofError(ValueError):
    """A proof does not verify, or its sizes make no sense."""


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly below ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _range_hash(start: int, end: int, lookup: Lookup) -> bytes:
    """MTH of leaves ``[start, end)``, a node of the RFC 9162 tree."""
    n = end - start
    if n & (n - 1) == 0 and start % n == 0:
        level = n.bit_length() - 1
        return lookup(level, start >> level)
    k = _split(n)
    return node_hash(_range_hash(start, start + k, lookup), _range_hash(start + k, end, lookup))


def _path(m: int, start: int, end: int, lookup: Lookup) -> list[bytes]:
    n = end - start
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*_path(m, start, start + k, lookup), _range_hash(start + k, end, lookup)]
    return [*_path(m - k, start + k, end, lookup), _range_hash(start, start + k, lookup)]


def _subproof(m: int, start: int, end: int, complete: bool, lookup: Lookup) -> list[bytes]:
    n = end - start
    if m == n:
        return [] if complete else [_range_hash(start, end, lookup)]
    k = _split(n)
    if m <= k:
        return [
            *_subproof(m, start, start + k, complete, lookup),
            _range_hash(start + k, end, lookup),
        ]
    return [
        *_subproof(m - k, start + k, end, False, lookup),
        _range_hash(start, start + k, lookup),
    ]


def inclusion_proof(index: int, size: int, lookup: Lookup) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of ``size`` leaves (RFC 9162 2.1.3.1)."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size}")
    return _path(index, 0, size, lookup)


def consistency_proof(first: int, second: int, lookup: Lookup) -> list[bytes]:
    """The proof that tree ``first`` is a prefix of tree ``second`` (RFC 9162 2.1.4.1)."""
    if not 0 < first <= second:
        raise ProofError(f"no consistency proof from {first} to {second}")
    if first == second:
        return []
    return _subproof(first, 0, second, True, lookup)


def root_hash(size: int, lookup: Lookup) -> bytes:
    if size <= 0:
        return hashlib.sha256(b"").digest()
    return _range_hash(0, size, lookup)


def plan(build: Callable[[Lookup], object]) -> set[Node]:
    """The complete subtrees ``build`` looks up, found by running it with dummy hashes."""
    wanted: set[Node] = set()

    def record(level: int, index: int) -> bytes:
        wanted.add((level, index))
        return bytes(32)

    build(record)
    return wanted


def lookup_in(hashes: Mapping[Node, bytes]) -> Lookup:
    def lookup(level: int, index: int) -> bytes:
        try:
            return hashes[(level, index)]
        except KeyError:
            raise ProofError(f"subtree ({level}, {index}) is not sealed") from None

    return lookup


class CompactRange:
    """The right edge of a growing tree: one complete subtree per set bit of its size.

    Appending a leaf merges equal-sized subtrees, like binary addition; every merge is a new
    complete subtree, reported so a store can keep it.
    """

    def __init__(self, size: int = 0, edge: Iterable[bytes] = ()) -> None:
        self.size = size
        levels = [lvl for lvl in range(size.bit_length() - 1, -1, -1) if size >> lvl & 1]
        hashes = list(edge)
        if len(hashes) != len(levels):
            raise ValueError("the edge must hold one hash per set bit of the size")
        self._stack: list[tuple[int, bytes]] = list(zip(levels, hashes, strict=True))

    @staticmethod
    def edge_nodes(size: int) -> list[Node]:
        """The complete subtrees making up the right edge of a tree of ``size`` leaves."""
        nodes: list[Node] = []
        start = 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                nodes.append((level, start >> level))
                start += 1 << level
        return nodes

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add one leaf hash; returns the new complete subtrees above level 0."""
        index = self.size
        self.size += 1
        self._stack.append((0, leaf))
        made: list[tuple[int, int, bytes]] = []
        while len(self._stack) >= 2 and self._stack[-1][0] == self._stack[-2][0]:
            level, right = self._stack.pop()
            _, left = self._stack.pop()
            merged = node_hash(left, right)
            self._stack.append((level + 1, merged))
            made.append((level + 1, index >> (level + 1), merged))
        return made

    def root(self) -> bytes:
        if not self._stack:
            return hashlib.sha256(b"").digest()
        acc = self._stack[-1][1]
        for _, h in reversed(self._stack[:-1]):
            acc = node_hash(h, acc)
        return acc


def root_from_leaf_hashes(leaves: Iterable[bytes]) -> bytes:
    tree = CompactRange()
    for leaf in leaves:
        tree.append(leaf)
    return tree.root()


def verify_inclusion(
    *, index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes
) -> None:
    """Check an audit path (RFC 9162 2.1.3.2); raises :class:`ProofError` if it fails."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("the proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0 or r != root:
        raise ProofError("the inclusion proof does not lead to the root")


def verify_consistency(
    *, first: int, second: int, first_root: bytes, second_root: bytes, proof: list[bytes]
) -> None:
    """Check a consistency proof (RFC 9162 2.1.4.2); raises :class:`ProofError` if it fails."""
    if not 0 < first <= second:
        raise ProofError(f"no consistency between sizes {first} and {second}")
    if first == second:
        if proof or first_root != second_root:
            raise ProofError("equal sizes with different roots")
        return
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    if not path:
        raise ProofError("the consistency proof is empty")
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0 or fr != first_root or sr != second_root:
        raise ProofError("the consistency proof does not join the two roots")
