"""Checkpoints: signed tree heads over an RFC 6962 Merkle tree of the whole log, chained to each other.

Leaf i of the tree is the record hash (ledger/chain.py) of the i-th stored event in log order. The
checkpointer follows the log, appends each event's leaf to a compact frontier and stores every
perfect subtree it completes (level, index, hash) beside the event table, so it never rereads the
log and inclusion or consistency proofs are read back from stored nodes. Every N events (and on
demand) it signs a tree head: sequence number, tree size, root hash, log position, time, the hash
of the previous head and the signing key's id. Heads are also handed to witnesses outside
PostgreSQL (consumers/witness.py), so deleting or rewriting them in the database is detectable.
"""

import hashlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson
import structlog
from eventsourcing.persistence import Notification
from psycopg import Cursor
from psycopg.sql import SQL, Identifier

from ledger import chain, merkle
from ledger.signing import PublicKey, SigningKey
from ledger.store import Ledger

log = structlog.get_logger()
PAGE = 5000
FORMAT = "urn:consent-ledger:tree-head:v1"
GENESIS = bytes(32)
# Serialises checkpointers (the projector's and `checkpoint`), so two never extend the tree at once.
LOCK = 0x636B7074


@dataclass(frozen=True)
class TreeHead:
    """The log's Merkle tree after `tree_size` events (the last at log position `position`), signed."""

    sequence: int
    tree_size: int
    root_hash: bytes
    position: int
    timestamp: int
    previous: bytes
    key_id: str
    signature: bytes

    def body(self) -> bytes:
        """The canonical bytes signed and hashed: sorted-key JSON of every field but the signature."""
        return orjson.dumps(
            {
                "format": FORMAT,
                "sequence": self.sequence,
                "tree_size": self.tree_size,
                "root_hash": self.root_hash.hex(),
                "position": self.position,
                "timestamp": self.timestamp,
                "previous": self.previous.hex(),
                "key_id": self.key_id,
            },
            option=orjson.OPT_SORT_KEYS,
        )

    def digest(self) -> bytes:
        """SHA-256 of the body: what the next head names as its previous."""
        return hashlib.sha256(self.body()).digest()

    @classmethod
    def sign(
        cls,
        key: SigningKey,
        *,
        sequence: int,
        tree_size: int,
        root_hash: bytes,
        position: int,
        previous: bytes,
    ) -> "TreeHead":
        """A head over these contents, timestamped now and signed with `key`."""
        unsigned = cls(
            sequence,
            tree_size,
            root_hash,
            position,
            time.time_ns() // 1_000_000,
            previous,
            key.public.key_id,
            b"",
        )
        return replace(unsigned, signature=key.sign(unsigned.body()))

    def signed_by(self, key: PublicKey) -> bool:
        """True when `key` is the one named and its signature over the body holds."""
        return key.key_id == self.key_id and key.verifies(self.body(), self.signature)

    def document(self) -> dict[str, Any]:
        """The head as published (witness line, receipt, `tree-head`): the body plus the signature."""
        return {**orjson.loads(self.body()), "signature": self.signature.hex()}

    @classmethod
    def from_document(cls, document: Any) -> "TreeHead":
        """A head from its published form; ValueError says what is wrong with it."""
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise ValueError(f"not a tree head (expected format {FORMAT})")
        try:
            return cls(
                sequence=_whole(document["sequence"]),
                tree_size=_whole(document["tree_size"]),
                root_hash=_digest(document["root_hash"]),
                position=_whole(document["position"]),
                timestamp=_whole(document["timestamp"]),
                previous=_digest(document["previous"]),
                key_id=str(document["key_id"]),
                signature=bytes.fromhex(str(document["signature"])),
            )
        except KeyError as missing:
            raise ValueError(f"tree head lacks {missing}") from None


def _whole(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{value!r} is not a whole number")
    return value


def _digest(value: Any) -> bytes:
    found = bytes.fromhex(str(value))
    if len(found) != 32:
        raise ValueError(f"{value!r} is not a SHA-256 hash in hex")
    return found


def heads_table(ledger: Ledger) -> Identifier:
    """The tree head table, beside the event table."""
    return Identifier(ledger.writer.datastore.schema, f"{ledger.writer.events_table_name}_tree_heads")


def nodes_table(ledger: Ledger) -> Identifier:
    """The stored perfect subtrees of the log's Merkle tree (level 0: leaves, with their log position)."""
    return Identifier(ledger.writer.datastore.schema, f"{ledger.writer.events_table_name}_merkle")


def create_tables(ledger: Ledger) -> None:
    """Create the tree head and tree node tables where missing."""
    nodes = nodes_table(ledger)
    with ledger.writer.datastore.transaction(commit=True) as curs:
        curs.execute(
            SQL(
                "CREATE TABLE IF NOT EXISTS {} (sequence bigint PRIMARY KEY, tree_size bigint NOT NULL, "
                "root_hash bytea NOT NULL, position bigint NOT NULL, signed_at bigint NOT NULL, "
                "previous bytea NOT NULL, key_id text NOT NULL, signature bytea NOT NULL)"
            ).format(heads_table(ledger))
        )
        curs.execute(
            SQL(
                "CREATE TABLE IF NOT EXISTS {} (level smallint NOT NULL, idx bigint NOT NULL, "
                "hash bytea NOT NULL, position bigint, PRIMARY KEY (level, idx))"
            ).format(nodes)
        )
        curs.execute(
            SQL("CREATE INDEX IF NOT EXISTS {} ON {} (position) WHERE level = 0").format(
                Identifier(f"{ledger.writer.events_table_name}_merkle_leaf_position"), nodes
            )
        )


def load_heads(ledger: Ledger) -> list[TreeHead]:
    """Every tree head in the database, by sequence."""
    with ledger.writer.datastore.transaction() as curs:
        return _heads(curs, ledger, "")


def latest_head(ledger: Ledger) -> TreeHead | None:
    """The newest tree head, if any."""
    with ledger.writer.datastore.transaction() as curs:
        found = _heads(curs, ledger, " DESC LIMIT 1")
    return found[0] if found else None


def _heads(curs: Cursor[Any], ledger: Ledger, tail: str) -> list[TreeHead]:
    curs.execute(SQL("SELECT * FROM {} ORDER BY sequence" + tail).format(heads_table(ledger)))
    return [
        TreeHead(
            row["sequence"],
            row["tree_size"],
            bytes(row["root_hash"]),
            row["position"],
            row["signed_at"],
            bytes(row["previous"]),
            row["key_id"],
            bytes(row["signature"]),
        )
        for row in curs.fetchall()
    ]


def leaf_index(ledger: Ledger, position: int) -> int | None:
    """The tree's leaf index of the event at log position `position`, once the checkpointer has it."""
    with ledger.writer.datastore.transaction() as curs:
        curs.execute(
            SQL("SELECT idx FROM {} WHERE level = 0 AND position = %s").format(nodes_table(ledger)),
            (position,),
        )
        row = curs.fetchone()
    return None if row is None else int(row["idx"])


def stored_nodes(ledger: Ledger) -> merkle.NodeSource:
    """Perfect subtree hashes read from the node table (each read once)."""
    cache: dict[tuple[int, int], bytes] = {}

    def node(level: int, index: int) -> bytes:
        if (level, index) not in cache:
            with ledger.writer.datastore.transaction() as curs:
                curs.execute(
                    SQL("SELECT hash FROM {} WHERE level = %s AND idx = %s").format(nodes_table(ledger)),
                    (level, index),
                )
                row = curs.fetchone()
            if row is None:
                raise LookupError(
                    f"the stored tree lacks node ({level}, {index}): run `consent-ledger checkpoint`"
                )
            cache[level, index] = bytes(row["hash"])
        return cache[level, index]

    return node


def notifications(ledger: Ledger, after: int) -> Iterator[Notification]:
    """Every stored event after notification id `after`, in log order, read in pages."""
    while page := ledger.recorder.select_notifications(start=after, limit=PAGE, inclusive_of_start=False):
        yield from page
        after = page[-1].id


def leaf(notification: Notification) -> bytes:
    """The tree's leaf hash of one stored event: over its record hash."""
    return merkle.leaf_hash(bytes.fromhex(chain.notification_hash(notification)))


Witness = Callable[[TreeHead], None]
"""Something outside the database that keeps every tree head it is given."""


class Checkpointer:
    """Extends the Merkle tree over the log and signs a tree head every `every` events, or when asked."""

    def __init__(
        self, ledger: Ledger, key: SigningKey, every: int, witnesses: Sequence[Witness] = ()
    ) -> None:
        self.ledger = ledger
        self.key = key
        self.every = every
        self.witnesses = witnesses

    def step(self, *, force: bool = False) -> list[TreeHead]:
        """Add what the log gained to the tree and sign the heads that fell due.

        With `force`, also one at the current end (unless the newest head is already there).
        Returns the heads written, after handing each to every witness.
        """
        written: list[TreeHead] = []
        while True:
            heads, more = self._page(force=force)
            for head in heads:
                for witness in self.witnesses:
                    witness(head)
            written.extend(heads)
            if not more:
                break
        if written:
            last = written[-1]
            log.info(
                "checkpoint.recorded",
                sequence=last.sequence,
                tree_size=last.tree_size,
                position=last.position,
            )
        return written

    def _page(self, *, force: bool) -> tuple[list[TreeHead], bool]:
        """One transaction: the next page of events into the tree, and the heads due in it."""
        with self.ledger.writer.datastore.transaction(commit=True) as curs:
            curs.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK,))
            frontier, position = self._frontier(curs)
            newest = next(iter(_heads(curs, self.ledger, " DESC LIMIT 1")), None)
            page = self.ledger.recorder.select_notifications(
                start=position, limit=PAGE, inclusive_of_start=False
            )
            rows: list[tuple[int, int, bytes, int | None]] = []
            heads: list[TreeHead] = []
            for notification in page:
                for level, index, node in frontier.append(leaf(notification)):
                    rows.append((level, index, node, notification.id if level == 0 else None))
                if frontier.size % self.every == 0:
                    newest = self._sign(frontier, notification.id, newest)
                    heads.append(newest)
            if force and not page and frontier.size and (newest is None or newest.tree_size != frontier.size):
                heads.append(self._sign(frontier, position, newest))
            self._record(curs, rows, heads)
        return heads, bool(page)

    def _frontier(self, curs: Cursor[Any]) -> tuple[merkle.Frontier, int]:
        nodes = nodes_table(self.ledger)
        curs.execute(
            SQL("SELECT idx, position FROM {} WHERE level = 0 ORDER BY idx DESC LIMIT 1").format(nodes)
        )
        last = curs.fetchone()
        if last is None:
            return merkle.Frontier(), 0
        size = last["idx"] + 1
        wanted = merkle.frontier_positions(size)
        curs.execute(
            SQL(
                "SELECT level, idx, hash FROM {} "
                "WHERE (level, idx) IN (SELECT * FROM unnest(%s::smallint[], %s::bigint[]))"
            ).format(nodes),
            ([level for level, _ in wanted], [index for _, index in wanted]),
        )
        found = {(row["level"], row["idx"]): bytes(row["hash"]) for row in curs.fetchall()}
        return merkle.Frontier(size, [found[at] for at in wanted]), int(last["position"])

    def _sign(self, frontier: merkle.Frontier, position: int, previous: TreeHead | None) -> TreeHead:
        return TreeHead.sign(
            self.key,
            sequence=1 if previous is None else previous.sequence + 1,
            tree_size=frontier.size,
            root_hash=frontier.root(),
            position=position,
            previous=GENESIS if previous is None else previous.digest(),
        )

    def _record(
        self, curs: Cursor[Any], rows: list[tuple[int, int, bytes, int | None]], heads: list[TreeHead]
    ) -> None:
        if rows:
            with curs.copy(
                SQL("COPY {} (level, idx, hash, position) FROM STDIN").format(nodes_table(self.ledger))
            ) as copy:
                for row in rows:
                    copy.write_row(row)
        for head in heads:
            curs.execute(
                SQL(
                    "INSERT INTO {} (sequence, tree_size, root_hash, position, signed_at, previous, key_id, "
                    "signature) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                ).format(heads_table(self.ledger)),
                (
                    head.sequence,
                    head.tree_size,
                    head.root_hash,
                    head.position,
                    head.timestamp,
                    head.previous,
                    head.key_id,
                    head.signature,
                ),
            )
