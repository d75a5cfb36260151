"""A witness that cannot keep a head keeps it waiting, and hands it on first once it can."""

from pathlib import Path

from consumers.witness import FileWitness, read_file
from ledger import merkle
from ledger.checkpoints import GENESIS, TreeHead
from ledger.signing import SigningKey


def _head(sequence: int, previous: TreeHead | None, key: SigningKey) -> TreeHead:
    return TreeHead.sign(
        key,
        sequence=sequence,
        tree_size=sequence,
        root_hash=merkle.leaf_hash(bytes([sequence])),
        position=sequence,
        previous=GENESIS if previous is None else previous.digest(),
    )


def test_a_witness_file_that_was_unwritable_catches_up_in_order(tmp_path: Path) -> None:
    """While the file cannot be written heads wait; the next head after that writes them all, in order."""
    key = SigningKey.generate()
    first = _head(1, None, key)
    second = _head(2, first, key)
    third = _head(3, second, key)
    witness = FileWitness(tmp_path / "missing-directory" / "heads.jsonl")
    witness(first)
    witness(second)
    assert [head.sequence for head in witness.pending] == [1, 2]
    (tmp_path / "missing-directory").mkdir()
    witness(third)
    assert witness.pending == []
    assert read_file(witness.path) == [first, second, third]
    assert all(head.signed_by(key.public) for head in read_file(witness.path))
