"""The checkpointer keeps only the Merkle tree's upper levels; proofs recompute the rest from the log."""

from dataclasses import asdict

import psycopg
import pytest
from psycopg.sql import SQL, Identifier

from ledger import merkle
from ledger.audit import verify
from ledger.checkpoints import (
    CHUNK,
    CHUNK_LEVEL,
    Checkpointer,
    leaf,
    leaf_index,
    load_heads,
    nodes_table,
    notifications,
    tree_nodes,
)
from ledger.errors import AlteredLog
from ledger.settings import Settings
from ledger.signing import SigningKey
from ledger.store import Ledger
from projections import queries
from projections.receipts import ConsentReceipt, check_receipt, receipt, tree_head
from projections.schema import migrate
from tests.helpers import fact

pytestmark = pytest.mark.services
KEY = SigningKey.generate()


def _append(ledger: Ledger, first: int, count: int) -> None:
    """`count` consents, each of a new subject (two stored events: its registration and the fact)."""
    ledger.append([fact("acme", f"s{n}", f"e{n}", minutes=n) for n in range(first, first + count)])


def _skip_a_position(settings: Settings) -> None:
    """Take a log position no event will have, as a rolled-back append does."""
    with psycopg.connect(settings.database_url or "") as conn:
        conn.execute("SELECT nextval(pg_get_serial_sequence('ledger_events', 'notification_id'))")


def _reference(ledger: Ledger) -> tuple[list[int], merkle.NodeSource]:
    """The log positions in order, and every perfect node computed from all of the log's leaves."""
    events = list(notifications(ledger, 0))
    hashes = [leaf(event) for event in events]

    def node(level: int, index: int) -> bytes:
        return merkle.perfect_root(hashes[index << level : (index + 1) << level])

    return [event.id for event in events], node


def _stored_rows(ledger: Ledger, settings: Settings, below: int) -> int:
    with psycopg.connect(settings.database_url or "") as conn:
        row = conn.execute(
            SQL("SELECT count(*) FROM {} WHERE level < %s").format(nodes_table(ledger)), (below,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_proofs_from_the_upper_levels_equal_proofs_from_every_node(
    ledger: Ledger, settings: Settings
) -> None:
    """Stepped after batches that end mid-chunk and over gaps in the log positions, the tree keeps no
    more than its frontier below level 5, and every leaf index, inclusion path and consistency proof
    equals the one built from all the log's leaves, and verifies against the signed heads."""
    checkpointer = Checkpointer(ledger, KEY, every=7)
    first = 0
    for count in (3, 20, 1, 40, 17, 33):
        _append(ledger, first, count)
        _skip_a_position(settings)
        first += count
        checkpointer.step(force=True)
    positions, reference = _reference(ledger)
    assert len(positions) == 2 * first > 3 * CHUNK
    assert _stored_rows(ledger, settings, CHUNK_LEVEL) <= CHUNK_LEVEL
    heads = load_heads(ledger)
    newest = heads[-1]
    assert newest.tree_size == len(positions)
    nodes = tree_nodes(ledger)
    for index, position in enumerate(positions):
        assert leaf_index(ledger, position) == index
        path = merkle.inclusion_path(index, newest.tree_size, nodes)
        assert path == merkle.inclusion_path(index, newest.tree_size, reference)
        assert merkle.verify_inclusion(reference(0, index), index, newest.tree_size, path, newest.root_hash)
    for head in heads:
        proof = merkle.consistency_proof(head.tree_size, newest.tree_size, nodes)
        assert proof == merkle.consistency_proof(head.tree_size, newest.tree_size, reference)
        assert merkle.verify_consistency(
            head.tree_size, newest.tree_size, head.root_hash, newest.root_hash, proof
        )
    assert verify(ledger, [KEY.public]).ok


def test_a_receipt_beside_an_altered_event_is_refused(ledger: Ledger, settings: Settings) -> None:
    """When an event under a stored node was altered, a receipt for its neighbour, whose proof is
    recomputed from both, is refused naming the positions, instead of carrying a proof that fails."""
    _append(ledger, 0, 2 * CHUNK)
    Checkpointer(ledger, KEY, every=1000).step(force=True)
    document = receipt(ledger, "acme", "e3")
    assert _holds(document)
    with psycopg.connect(settings.database_url or "") as conn:
        conn.execute(
            "UPDATE ledger_events SET state = set_byte(state, 40, 88) WHERE notification_id = %s",
            (document.position - 2,),
        )
    with pytest.raises(AlteredLog, match="no longer hash to the tree signed over them"):
        receipt(ledger, "acme", "e3")
    assert receipt(ledger, "acme", f"e{2 * CHUNK - 1}").proof.tree_size == 4 * CHUNK  # another chunk


def _holds(document: ConsentReceipt) -> bool:
    """Whether the receipt, as `receipt --json` writes it, checks offline."""
    return check_receipt(queries.plain(asdict(document)), [KEY.public]).ok


def test_a_tree_stored_with_every_node_is_upgraded_by_migrate(ledger: Ledger, settings: Settings) -> None:
    """A tree stored by an earlier version (every node, each leaf with its log position) is brought to
    the upper levels by `migrate`: receipts, tree heads and `verify` hold, and the checkpointer
    continues it."""
    _append(ledger, 0, 50)
    _skip_a_position(settings)
    _append(ledger, 50, 3)
    Checkpointer(ledger, KEY, every=1000).step(force=True)
    positions, reference = _reference(ledger)
    frontier = merkle.Frontier()
    rows = []
    for at, position in enumerate(positions):
        for level, index, node in frontier.append(reference(0, at)):
            rows.append((level, index, node, position if level == 0 else None))
    nodes = nodes_table(ledger)
    with psycopg.connect(settings.database_url or "") as conn:
        conn.execute(SQL("DELETE FROM {}").format(nodes))
        with conn.cursor().copy(SQL("COPY {} (level, idx, hash, position) FROM STDIN").format(nodes)) as copy:
            for row in rows:
                copy.write_row(row)
        conn.execute(
            SQL("CREATE INDEX {} ON {} (position) WHERE level = 0").format(
                Identifier("ledger_events_merkle_leaf_position"), nodes
            )
        )
    migrate(ledger)
    migrate(ledger)  # again: nothing left to do
    assert _stored_rows(ledger, settings, CHUNK_LEVEL) <= CHUNK_LEVEL
    upgraded = receipt(ledger, "acme", "e51")
    assert upgraded.proof.leaf_index == positions.index(upgraded.position) and _holds(upgraded)
    _append(ledger, 53, 20)
    Checkpointer(ledger, KEY, every=1000).step(force=True)
    tree = tree_head(ledger, from_size=len(positions))
    assert tree["tree_head"]["tree_size"] == len(positions) + 40
    assert verify(ledger, [KEY.public]).ok
