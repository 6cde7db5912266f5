"""RFC 9162 hashing and proofs, checked against the independent ``pymerkle`` package."""

from __future__ import annotations

import pytest
from pymerkle import InclusionProof, InmemoryTree, verify_consistency, verify_inclusion
from pymerkle.core import _inclusion_path_layout

from service.domain import merkle
from tests.helpers.merkle import rfc_verify_consistency


def _tree(n: int) -> tuple[list[bytes], dict[tuple[int, int], bytes], merkle.CompactRange]:
    entries = [f"entry {i}".encode() for i in range(n)]
    store: dict[tuple[int, int], bytes] = {}
    tree = merkle.CompactRange()
    for i, entry in enumerate(entries):
        leaf = merkle.leaf_hash(entry)
        store[(0, i)] = leaf
        for level, idx, h in tree.append(leaf):
            store[(level, idx)] = h
    return entries, store, tree


def _pymerkle(entries: list[bytes]) -> InmemoryTree:
    tree = InmemoryTree(algorithm="sha256")
    for entry in entries:
        tree.append_entry(entry)
    return tree


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 16, 31, 33, 64, 100])
def test_roots_and_inclusion_proofs_agree_with_pymerkle(n: int) -> None:
    entries, store, tree = _tree(n)
    reference = _pymerkle(entries)
    assert tree.root() == reference.get_root()
    lookup = merkle.lookup_in(store)
    assert merkle.root_hash(n, lookup) == tree.root()
    for index in range(n):
        path = merkle.inclusion_proof(index, n, lookup)
        rule, _ = _inclusion_path_layout(index + 1, n)
        proof = InclusionProof("sha256", True, n, index + 1, rule, [store[(0, index)], *path])
        verify_inclusion(store[(0, index)], tree.root(), proof, index=index + 1, size=n)
        # pymerkle's own proof has the same hashes in the same order.
        assert reference.prove_inclusion(index + 1, n).path[1:] == path


@pytest.mark.parametrize("n", [2, 3, 5, 8, 13, 32, 50])
def test_consistency_proofs_join_pymerkle_roots(n: int) -> None:
    entries, store, _ = _tree(n)
    reference = _pymerkle(entries)
    lookup = merkle.lookup_in(store)
    for m in range(1, n + 1):
        first, second = reference.get_root(m), reference.get_root(n)
        assert merkle.root_hash(m, lookup) == first
        proof = merkle.consistency_proof(m, n, lookup)
        assert rfc_verify_consistency(m, n, first, second, proof)
        merkle.verify_consistency(
            first=m, second=n, first_root=first, second_root=second, proof=proof
        )
        # And pymerkle agrees the two roots are consistent.
        verify_consistency(first, second, reference.prove_consistency(m, n))


def test_bad_proofs_are_refused() -> None:
    _, store, tree = _tree(11)
    lookup = merkle.lookup_in(store)
    path = merkle.inclusion_proof(3, 11, lookup)
    bent = [path[0][::-1], *path[1:]]
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(index=3, size=11, leaf=store[(0, 3)], proof=bent, root=tree.root())
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(index=4, size=11, leaf=store[(0, 3)], proof=path, root=tree.root())
    proof = merkle.consistency_proof(6, 11, lookup)
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(
            first=6,
            second=11,
            first_root=merkle.root_hash(5, lookup),
            second_root=tree.root(),
            proof=proof,
        )


def test_compact_range_resumes_from_its_edge() -> None:
    _, store, tree = _tree(21)
    edge = [store[node] for node in merkle.CompactRange.edge_nodes(21)]
    resumed = merkle.CompactRange(21, edge)
    assert resumed.root() == tree.root()
    made = resumed.append(merkle.leaf_hash(b"entry 21"))
    tree.append(merkle.leaf_hash(b"entry 21"))
    assert resumed.root() == tree.root()
    assert [(level, idx) for level, idx, _ in made] == [(1, 10)]
