"""The Merkle tree functions agree with RFC 6962's definitions and Certificate Transparency's vectors."""

import hashlib

import pytest

from ledger import merkle

# The reference leaves and tree heads Certificate Transparency implementations test against
# (RFC 6962 test data as published by transparency-dev/merkle), used here as data only.
LEAVES = [
    bytes.fromhex(text)
    for text in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
INCLUSION = [
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]  # fmt: skip
CONSISTENCY = [
    (1, 1, []),
    (2, 8, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip


def reference_root(hashes: list[bytes]) -> bytes:
    """MTH exactly as RFC 6962 §2.1 writes it: recursion over lists of leaf hashes."""
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = merkle.split(len(hashes))
    return merkle.node_hash(reference_root(hashes[:k]), reference_root(hashes[k:]))


def source(hashes: list[bytes]) -> merkle.NodeSource:
    """Perfect nodes computed from the leaf hashes, as the stored tree would return them."""
    return lambda level, index: reference_root(hashes[index << level : (index + 1) << level])


HASHES = [merkle.leaf_hash(leaf) for leaf in LEAVES]
MANY = [merkle.leaf_hash(n.to_bytes(4, "big")) for n in range(70)]


def test_roots_match_the_published_tree_heads() -> None:
    """Every size 0..8 of the reference leaves gives CT's published root, by the frontier and by nodes."""
    frontier = merkle.Frontier()
    assert frontier.root().hex() == ROOTS[0]
    for size, leaf in enumerate(HASHES, start=1):
        frontier.append(leaf)
        assert frontier.root().hex() == ROOTS[size]
        assert merkle.root(size, source(HASHES)).hex() == ROOTS[size]


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION)
def test_inclusion_paths_match_the_vectors(index: int, size: int, path: list[str]) -> None:
    """The audit path of a leaf is CT's, and it verifies against the published root."""
    found = merkle.inclusion_path(index, size, source(HASHES))
    assert [node.hex() for node in found] == path
    assert merkle.verify_inclusion(HASHES[index], index, size, found, bytes.fromhex(ROOTS[size]))


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY)
def test_consistency_proofs_match_the_vectors(old: int, new: int, proof: list[str]) -> None:
    """The consistency proof between two sizes is CT's, and it verifies between the published roots."""
    found = merkle.consistency_proof(old, new, source(HASHES))
    assert [node.hex() for node in found] == proof
    assert merkle.verify_consistency(old, new, bytes.fromhex(ROOTS[old]), bytes.fromhex(ROOTS[new]), found)


def test_every_inclusion_proof_verifies_and_no_altered_one_does() -> None:
    """In every tree up to 70 leaves each leaf's path verifies; a flipped, dropped or moved one does not."""
    for size in range(1, len(MANY) + 1):
        nodes, expected = source(MANY[:size]), reference_root(MANY[:size])
        for index in range(size):
            path = merkle.inclusion_path(index, size, nodes)
            assert merkle.verify_inclusion(MANY[index], index, size, path, expected)
            if path:
                flipped = [bytes([path[0][0] ^ 1]) + path[0][1:], *path[1:]]
                assert not merkle.verify_inclusion(MANY[index], index, size, flipped, expected)
                assert not merkle.verify_inclusion(MANY[index], index, size, path[:-1], expected)
                assert not merkle.verify_inclusion(MANY[index], index ^ 1, size, path, expected)


def test_every_consistency_proof_verifies_and_a_fork_does_not() -> None:
    """Between every pair of sizes up to 40 the proof verifies; against a forked root it does not."""
    forked = [*MANY[:40]]
    for new in range(1, 41):
        for old in range(1, new + 1):
            proof = merkle.consistency_proof(old, new, source(MANY))
            old_root, new_root = reference_root(MANY[:old]), reference_root(MANY[:new])
            assert merkle.verify_consistency(old, new, old_root, new_root, proof)
            forked[old - 1] = merkle.leaf_hash(b"forged")
            fork_root = reference_root(forked[:new])
            forked[old - 1] = MANY[old - 1]
            assert not merkle.verify_consistency(old, new, old_root, fork_root, proof)


def test_frontier_completes_the_nodes_a_store_keeps() -> None:
    """The nodes the frontier reports completed are the perfect subtrees, and reloading it resumes."""
    frontier, stored = merkle.Frontier(), {}
    for leaf in MANY[:37]:
        for level, index, node in frontier.append(leaf):
            stored[level, index] = node
    assert all(node == source(MANY)(level, index) for (level, index), node in stored.items())
    resumed = merkle.Frontier(37, [stored[at] for at in merkle.frontier_positions(37)])
    assert resumed.root() == reference_root(MANY[:37])
    resumed.append(MANY[37])
    assert resumed.root() == reference_root(MANY[:38])
