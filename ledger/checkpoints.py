"""Checkpoints: signed tree heads over an RFC 6962 Merkle tree of the whole log, chained to each other.

Leaf i of the tree is the record hash (ledger/chain.py) of the i-th stored event in log order. The
checkpointer follows the log, appends each event's leaf to a compact frontier and stores the perfect
subtrees it completes (level, index, hash) beside the event table, so it never rereads the log.
Only nodes of 32 leaves and more are kept, each level-5 node with the log position of its last
leaf, plus the frontier's few lower nodes to resume from: a proof recomputes the lower nodes it
needs from the 32 events under their level-5 ancestor, checked against that stored ancestor.
Every N events (and on demand) it signs a tree head: sequence number, tree size, root hash, log
position, time, the hash of the previous head and the signing key's id. Heads are also handed to
witnesses outside PostgreSQL (consumers/witness.py), so deleting or rewriting them in the database
is detectable.
"""

import hashlib
import threading
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
from ledger.errors import AlteredLog
from ledger.signing import PublicKey, SigningKey
from ledger.store import Ledger

log = structlog.get_logger()
PAGE = 5000
FORMAT = "urn:consent-ledger:tree-head:v1"
GENESIS = bytes(32)
# Nodes below this level are not stored: a node row takes about 150 bytes with its index entry, and a
# proof that needs one rereads the 32 events of its chunk instead (about 20 kB of the event table).
CHUNK_LEVEL = 5
CHUNK = 1 << CHUNK_LEVEL
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
    """The stored perfect subtrees of the log's Merkle tree: every node of level CHUNK_LEVEL and up
    (those of level CHUNK_LEVEL with the log position of their last leaf), and the frontier's nodes
    below it (the lowest with the log position of the last leaf in the tree)."""
    return Identifier(ledger.writer.datastore.schema, f"{ledger.writer.events_table_name}_merkle")


def create_tables(ledger: Ledger) -> None:
    """Create the tree head and tree node tables where missing; bring a tree stored with every node
    (before CHUNK_LEVEL) to the nodes kept now."""
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
            SQL("CREATE INDEX IF NOT EXISTS {} ON {} (position) WHERE level = {}").format(
                Identifier(f"{ledger.writer.events_table_name}_merkle_chunk_position"), nodes, CHUNK_LEVEL
            )
        )
        _keep_upper_levels(curs, ledger)


def _keep_upper_levels(curs: Cursor[Any], ledger: Ledger) -> None:
    """Once, on a tree stored with every node and leaf positions: give each level-CHUNK_LEVEL node its
    last leaf's position, keep the frontier's lower nodes and delete the other lower ones (the
    index on leaf positions marks that format; it goes with them)."""
    name = f"{ledger.writer.events_table_name}_merkle_leaf_position"
    curs.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK,))
    curs.execute(
        "SELECT 1 FROM pg_indexes WHERE schemaname = %s AND indexname = %s",
        (ledger.writer.datastore.schema, name),
    )
    if curs.fetchone() is None:
        return
    nodes = nodes_table(ledger)
    curs.execute(SQL("SELECT idx, position FROM {} WHERE level = 0 ORDER BY idx DESC LIMIT 1").format(nodes))
    last = curs.fetchone()
    size = 0 if last is None else last["idx"] + 1
    wanted = merkle.frontier_positions(size)
    found = _nodes_at(curs, ledger, wanted)
    frontier = merkle.Frontier(size, [found[at] for at in wanted])
    curs.execute(
        SQL(
            "UPDATE {} AS chunk SET position = leaf.position FROM {} AS leaf "
            "WHERE chunk.level = %s AND leaf.level = 0 AND leaf.idx = chunk.idx * %s + %s"
        ).format(nodes, nodes),
        (CHUNK_LEVEL, CHUNK, CHUNK - 1),
    )
    curs.execute(SQL("DELETE FROM {} WHERE level < %s").format(nodes), (CHUNK_LEVEL,))
    _write_nodes(curs, ledger, _lower_frontier(frontier, 0 if last is None else last["position"]))
    curs.execute(SQL("DROP INDEX {}").format(Identifier(ledger.writer.datastore.schema, name)))
    log.info("checkpoint.tree_upgraded", tree_size=size)


def _nodes_at(
    curs: Cursor[Any], ledger: Ledger, wanted: Sequence[tuple[int, int]]
) -> dict[tuple[int, int], bytes]:
    """The stored hashes of these (level, index) nodes."""
    curs.execute(
        SQL(
            "SELECT level, idx, hash FROM {} "
            "WHERE (level, idx) IN (SELECT * FROM unnest(%s::smallint[], %s::bigint[]))"
        ).format(nodes_table(ledger)),
        ([level for level, _ in wanted], [index for _, index in wanted]),
    )
    return {(row["level"], row["idx"]): bytes(row["hash"]) for row in curs.fetchall()}


NodeRow = tuple[int, int, bytes, int | None]
"""(level, index, hash, log position) as stored."""


def _lower_frontier(frontier: merkle.Frontier, position: int) -> list[NodeRow]:
    """The frontier's nodes below CHUNK_LEVEL, the last (lowest) with the position of the tree's last leaf."""
    rows: list[NodeRow] = [
        (level, index, node, None)
        for (level, index), node in zip(
            merkle.frontier_positions(frontier.size), frontier.hashes, strict=True
        )
        if level < CHUNK_LEVEL
    ]
    if rows:
        rows[-1] = (*rows[-1][:3], position)
    return rows


def _write_nodes(curs: Cursor[Any], ledger: Ledger, rows: Sequence[NodeRow]) -> None:
    if rows:
        with curs.copy(
            SQL("COPY {} (level, idx, hash, position) FROM STDIN").format(nodes_table(ledger))
        ) as copy:
            for row in rows:
                copy.write_row(row)


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
    """The tree's leaf index of the event at log position `position` (None when it is no event, or
    lies beyond the tree's first incomplete chunk); an index beyond the tree is the one it will get."""
    nodes = nodes_table(ledger)
    with ledger.writer.datastore.transaction() as curs:
        curs.execute(
            SQL("SELECT idx FROM {} WHERE level = %s AND position >= %s ORDER BY position LIMIT 1").format(
                nodes
            ),
            (CHUNK_LEVEL, position),
        )
        row = curs.fetchone()
        if row is None:  # after every complete chunk: in the incomplete one, if anywhere
            curs.execute(
                SQL("SELECT idx FROM {} WHERE level = %s ORDER BY idx DESC LIMIT 1").format(nodes),
                (CHUNK_LEVEL,),
            )
            last = curs.fetchone()
            chunk = 0 if last is None else last["idx"] + 1
        else:
            chunk = row["idx"]
    positions = [event.id for event in _chunk_events(ledger, chunk)]
    return chunk * CHUNK + positions.index(position) if position in positions else None


def _chunk_events(ledger: Ledger, chunk: int) -> Sequence[Notification]:
    """The events under the level-CHUNK_LEVEL node `chunk` (up to CHUNK: fewer at the log's end)."""
    start = 0
    if chunk:
        with ledger.writer.datastore.transaction() as curs:
            curs.execute(
                SQL("SELECT position FROM {} WHERE level = %s AND idx = %s").format(nodes_table(ledger)),
                (CHUNK_LEVEL, chunk - 1),
            )
            row = curs.fetchone()
        if row is None:
            raise LookupError(
                f"the stored tree lacks node ({CHUNK_LEVEL}, {chunk - 1}): run `consent-ledger checkpoint`"
            )
        start = row["position"]
    return ledger.recorder.select_notifications(start=start, limit=CHUNK, inclusive_of_start=False)


def tree_nodes(ledger: Ledger) -> merkle.NodeSource:
    """Perfect subtree hashes: read from the node table from CHUNK_LEVEL up, recomputed below it from
    the chunk's events (each read once). AlteredLog when a complete chunk's events no longer hash
    to its stored node."""
    stored: dict[tuple[int, int], bytes | None] = {}
    chunks: dict[int, list[bytes]] = {}

    def stored_node(level: int, index: int) -> bytes | None:
        if (level, index) not in stored:
            with ledger.writer.datastore.transaction() as curs:
                curs.execute(
                    SQL("SELECT hash FROM {} WHERE level = %s AND idx = %s").format(nodes_table(ledger)),
                    (level, index),
                )
                row = curs.fetchone()
            stored[level, index] = None if row is None else bytes(row["hash"])
        return stored[level, index]

    def leaves(chunk: int) -> list[bytes]:
        if chunk not in chunks:
            events = _chunk_events(ledger, chunk)
            hashes = [leaf(event) for event in events]
            signed = stored_node(CHUNK_LEVEL, chunk)
            if signed is not None and (len(hashes) < CHUNK or merkle.perfect_root(hashes) != signed):
                span = f"{events[0].id}..{events[-1].id}" if events else f"after chunk {chunk - 1}"
                raise AlteredLog(
                    f"the events at log positions {span} no longer hash to the tree signed over them: "
                    "they were altered or deleted; run `consent-ledger verify` to name the break"
                )
            chunks[chunk] = hashes
        return chunks[chunk]

    def node(level: int, index: int) -> bytes:
        if level < CHUNK_LEVEL:
            chunk = index >> (CHUNK_LEVEL - level)
            first = (index << level) - chunk * CHUNK
            found = leaves(chunk)[first : first + (1 << level)]
            if len(found) == 1 << level:
                return merkle.perfect_root(found)
        else:
            stored_hash = stored_node(level, index)
            if stored_hash is not None:
                return stored_hash
        raise LookupError(f"the stored tree lacks node ({level}, {index}): run `consent-ledger checkpoint`")

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

    def step(self, *, force: bool = False, stop: threading.Event | None = None) -> list[TreeHead]:
        """Add what the log gained to the tree and sign the heads that fell due.

        With `force`, also one at the current end (unless the newest head is already there). With
        `stop`, it ends after the page under way once that is set (each page commits on its own, so
        the next step goes on from there). Returns the heads written, after handing each to every
        witness.
        """
        written: list[TreeHead] = []
        while True:
            heads, more = self._page(force=force)
            for head in heads:
                for witness in self.witnesses:
                    witness(head)
            written.extend(heads)
            if not more or (stop is not None and stop.is_set()):
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
            rows: list[NodeRow] = []
            heads: list[TreeHead] = []
            for notification in page:
                for level, index, node in frontier.append(leaf(notification)):
                    if level >= CHUNK_LEVEL:
                        rows.append((level, index, node, notification.id if level == CHUNK_LEVEL else None))
                if frontier.size % self.every == 0:
                    newest = self._sign(frontier, notification.id, newest)
                    heads.append(newest)
            if force and not page and frontier.size and (newest is None or newest.tree_size != frontier.size):
                heads.append(self._sign(frontier, position, newest))
            if page:
                curs.execute(
                    SQL("DELETE FROM {} WHERE level < %s").format(nodes_table(self.ledger)), (CHUNK_LEVEL,)
                )
                rows.extend(_lower_frontier(frontier, page[-1].id))
            self._record(curs, rows, heads)
        return heads, bool(page)

    def _frontier(self, curs: Cursor[Any]) -> tuple[merkle.Frontier, int]:
        """The tree's frontier as stored, and the log position of its last leaf (0 for no tree yet)."""
        nodes = nodes_table(self.ledger)
        curs.execute(
            SQL("SELECT level, idx, hash, position FROM {} WHERE level < %s ORDER BY level DESC").format(
                nodes
            ),
            (CHUNK_LEVEL,),
        )
        lower = curs.fetchall()
        curs.execute(
            SQL("SELECT idx, position FROM {} WHERE level = %s ORDER BY idx DESC LIMIT 1").format(nodes),
            (CHUNK_LEVEL,),
        )
        last_chunk = curs.fetchone()
        chunks = 0 if last_chunk is None else last_chunk["idx"] + 1
        size = chunks * CHUNK + sum(1 << row["level"] for row in lower)
        last = lower[-1] if lower else last_chunk  # the node that ends with the tree's last leaf
        position = 0 if last is None else last["position"]
        wanted = [at for at in merkle.frontier_positions(size) if at[0] >= CHUNK_LEVEL]
        found = _nodes_at(curs, self.ledger, wanted)
        hashes = [found[at] for at in wanted] + [bytes(row["hash"]) for row in lower]
        return merkle.Frontier(size, hashes), int(position)

    def _sign(self, frontier: merkle.Frontier, position: int, previous: TreeHead | None) -> TreeHead:
        return TreeHead.sign(
            self.key,
            sequence=1 if previous is None else previous.sequence + 1,
            tree_size=frontier.size,
            root_hash=frontier.root(),
            position=position,
            previous=GENESIS if previous is None else previous.digest(),
        )

    def _record(self, curs: Cursor[Any], rows: Sequence[NodeRow], heads: list[TreeHead]) -> None:
        _write_nodes(curs, self.ledger, rows)
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
