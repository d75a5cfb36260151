"""Checkpoints: every N events (and on demand), the running hash of the whole log, signed.

A checkpoint pins the log up to its position: deleting, editing or reordering anything before it
changes the running hash that `verify` recomputes. The signature (HMAC-SHA256 with a key derived
from the master key) stops a forger from simply writing a new checkpoint after tampering.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import structlog
from eventsourcing.persistence import Notification
from psycopg.sql import SQL, Identifier

from ledger import chain
from ledger.store import Ledger

log = structlog.get_logger()
PAGE = 5000


@dataclass(frozen=True)
class Checkpoint:
    """The log as it stood at `position` (a notification id), after `events` events."""

    position: int
    events: int
    running_hash: bytes
    recorded_at: datetime | None
    signature: bytes


def table(ledger: Ledger) -> Identifier:
    """The checkpoint table, beside the event table."""
    return Identifier(ledger.writer.datastore.schema, f"{ledger.writer.events_table_name}_checkpoints")


def create_table(ledger: Ledger) -> None:
    """Create the checkpoint table where missing."""
    with ledger.writer.datastore.transaction(commit=True) as curs:
        curs.execute(
            SQL(
                "CREATE TABLE IF NOT EXISTS {} (position bigint PRIMARY KEY, events bigint NOT NULL, "
                "running_hash bytea NOT NULL, recorded_at timestamptz NOT NULL DEFAULT now(), "
                "signature bytea NOT NULL)"
            ).format(table(ledger))
        )


def load_all(ledger: Ledger) -> list[Checkpoint]:
    """Every checkpoint, oldest first."""
    with ledger.writer.datastore.transaction() as curs:
        curs.execute(SQL("SELECT * FROM {} ORDER BY position").format(table(ledger)))
        return [
            Checkpoint(
                row["position"],
                row["events"],
                bytes(row["running_hash"]),
                row["recorded_at"],
                bytes(row["signature"]),
            )
            for row in curs.fetchall()
        ]


def notifications(ledger: Ledger, after: int) -> Iterator[Notification]:
    """Every stored event after notification id `after`, in log order, read in pages."""
    while page := ledger.recorder.select_notifications(start=after, limit=PAGE, inclusive_of_start=False):
        yield from page
        after = page[-1].id


class Checkpointer:
    """Follows the log and records a checkpoint every `every` events, or when asked."""

    def __init__(self, ledger: Ledger, key: bytes, every: int) -> None:
        self.ledger = ledger
        self.key = key
        self.every = every
        last = (load_all(ledger) or [Checkpoint(0, 0, chain.START, None, b"")])[-1]
        self.position, self.events, self.running = last.position, last.events, last.running_hash

    def step(self, *, force: bool = False) -> list[Checkpoint]:
        """Fold in what the log gained and record the checkpoints that fell due.

        With `force`, also one at the current end. Returns the checkpoints written.
        """
        due: list[Checkpoint] = []
        for notification in notifications(self.ledger, self.position):
            self.running = chain.fold(self.running, chain.notification_hash(notification))
            self.events += 1
            self.position = notification.id
            if self.events % self.every == 0:
                due.append(self._checkpoint())
        if force and (not due or due[-1].position != self.position) and self.events:
            due.append(self._checkpoint())
        self._record(due)
        return due

    def _checkpoint(self) -> Checkpoint:
        signature = chain.sign(self.key, self.position, self.events, self.running)
        return Checkpoint(self.position, self.events, self.running, None, signature)

    def _record(self, checkpoints: list[Checkpoint]) -> None:
        if not checkpoints:
            return
        with self.ledger.writer.datastore.transaction(commit=True) as curs:
            for point in checkpoints:
                curs.execute(
                    SQL(
                        "INSERT INTO {} (position, events, running_hash, signature) VALUES (%s, %s, %s, %s) "
                        "ON CONFLICT (position) DO NOTHING"
                    ).format(table(self.ledger)),
                    (point.position, point.events, point.running_hash, point.signature),
                )
        log.info("checkpoint.recorded", position=checkpoints[-1].position, events=checkpoints[-1].events)
