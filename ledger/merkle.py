"""Merkle tree hashing in the shape of RFC 6962 (Certificate Transparency), as pure functions.

A leaf hashes as SHA-256(0x00 || leaf) and a node as SHA-256(0x01 || left || right), so a leaf can
never pass for a node. A tree of n leaves splits at the largest power of two below n (RFC 6962 §2.1),
so every subtree whose size is a power of two is *perfect* and aligned: it covers the leaves
[index * 2**level, (index + 1) * 2**level). Such nodes never change once complete, which is what
lets them be stored once (or recomputed from their leaves) for proofs; the root of any size is
folded from them.

Proofs (inclusion §2.1.1, consistency §2.1.2) are built from a `NodeSource` that returns perfect
nodes by (level, index); they are checked (RFC 9162 §2.1.3.2 and §2.1.4.2) with hashes alone.
"""

import hashlib
from collections.abc import Callable, Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()
NodeSource = Callable[[int, int], bytes]
"""The hash of the perfect subtree at (level, index)."""


def leaf_hash(leaf: bytes) -> bytes:
    """The hash of one leaf."""
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node over its two children."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def perfect_root(hashes: Sequence[bytes]) -> bytes:
    """The root of the perfect subtree over these leaf hashes (a power of two of them)."""
    found = list(hashes)
    while len(found) > 1:
        found = [node_hash(found[at], found[at + 1]) for at in range(0, len(found), 2)]
    return found[0]


def split(size: int) -> int:
    """The largest power of two smaller than `size` (at least 2): where RFC 6962 splits a tree."""
    return 1 << ((size - 1).bit_length() - 1)


def subtree_root(start: int, end: int, nodes: NodeSource) -> bytes:
    """The hash of the leaves [start, end), a range that the tree's own splits produce."""
    size = end - start
    if size & (size - 1) == 0:
        level = size.bit_length() - 1
        return nodes(level, start >> level)
    middle = start + split(size)
    return node_hash(subtree_root(start, middle, nodes), subtree_root(middle, end, nodes))


def root(size: int, nodes: NodeSource) -> bytes:
    """The tree head's root hash over the first `size` leaves."""
    return EMPTY_ROOT if size == 0 else subtree_root(0, size, nodes)


def inclusion_path(index: int, size: int, nodes: NodeSource) -> list[bytes]:
    """The audit path of leaf `index` in the tree of `size` leaves, nearest sibling first."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        middle = start + split(end - start)
        if index < middle:
            path.append(subtree_root(middle, end, nodes))
            end = middle
        else:
            path.append(subtree_root(start, middle, nodes))
            start = middle
    return path[::-1]


def consistency_proof(old: int, new: int, nodes: NodeSource) -> list[bytes]:
    """The proof that the tree of `old` leaves is a prefix of the tree of `new` leaves."""
    if not 0 <= old <= new:
        raise ValueError(f"no consistency proof from size {old} to size {new}")
    if old in (0, new):
        return []
    proof: list[bytes] = []
    start, end, whole = 0, new, True
    while old - start != end - start:
        middle = start + split(end - start)
        if old <= middle:
            proof.append(subtree_root(middle, end, nodes))
            end = middle
        else:
            proof.append(subtree_root(start, middle, nodes))
            start, whole = middle, False
    if not whole:
        proof.append(subtree_root(start, end, nodes))
    return proof[::-1]


def verify_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes], expected: bytes) -> bool:
    """True when `path` proves that the leaf hash `leaf` is leaf `index` of the tree with root `expected`."""
    if not 0 <= index < size:
        return False
    fn, sn, found = index, size - 1, leaf
    for sibling in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            found = node_hash(sibling, found)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            found = node_hash(found, sibling)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and found == expected


def verify_consistency(old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """True when `proof` shows the tree (`old`, `old_root`) is a prefix of (`new`, `new_root`)."""
    if not 0 <= old <= new:
        return False
    if old == new:
        return not proof and old_root == new_root
    if old == 0:
        return not proof and old_root == EMPTY_ROOT
    if not proof:
        return False
    path = [old_root, *proof] if old & (old - 1) == 0 else list(proof)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    old_found = new_found = path[0]
    for sibling in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            old_found = node_hash(sibling, old_found)
            new_found = node_hash(sibling, new_found)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            new_found = node_hash(new_found, sibling)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and old_found == old_root and new_found == new_root


def frontier_positions(size: int) -> list[tuple[int, int]]:
    """(level, index) of the perfect subtrees that make up the first `size` leaves, largest first."""
    positions: list[tuple[int, int]] = []
    start = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            positions.append((level, start >> level))
            start += 1 << level
    return positions


class Frontier:
    """The compact range of a growing tree: one hash per set bit of its size, enough to append and
    to give the root without reading any earlier leaf again."""

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if len(hashes) != size.bit_count():
            raise ValueError(
                f"a tree of {size} leaves has {size.bit_count()} frontier hashes, not {len(hashes)}"
            )
        self.size = size
        self.hashes = list(hashes)

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add one leaf hash; return the perfect nodes (level, index, hash) it completed, itself first."""
        index, level, current = self.size, 0, leaf
        completed = [(0, index, leaf)]
        while index & 1:
            current = node_hash(self.hashes.pop(), current)
            index, level = index >> 1, level + 1
            completed.append((level, index, current))
        self.hashes.append(current)
        self.size += 1
        return completed

    def root(self) -> bytes:
        """The root hash of the tree so far."""
        if not self.hashes:
            return EMPTY_ROOT
        found = self.hashes[-1]
        for left in reversed(self.hashes[:-1]):
            found = node_hash(left, found)
        return found
