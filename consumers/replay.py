"""Replay of dead letters: each checked again by today's contract (after a schema or vocabulary change),
and those that now pass stored as if the consumer had just read them, with their original Kafka origin.

Only open letters are replayed (not dropped, not stored by an earlier replay), and appends are
idempotent by event id, so replaying twice stores nothing twice. The replay, and which letters it
stored as which events, is recorded in the transaction that stores them.
"""

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import structlog

from consumers.contract import Contract
from consumers.ingest import CONFLICT, triage
from ledger.deadletters import OPEN, Opened, Selection
from ledger.store import Cursor, Ledger

log = structlog.get_logger()


@dataclass(frozen=True)
class _Message:
    """A dead letter's original message, as the consumer read it (a `consumers.kafka.Record`)."""

    letter: int
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass
class Replayed:
    """What one replay did: its id, and per letter the event stored or the reason it is still refused."""

    replay: int | None = None
    stored: list[tuple[int, str]] = field(default_factory=list)  # letter id, event id
    refused: list[tuple[int, str]] = field(default_factory=list)  # letter id, reason now

    @property
    def tried(self) -> int:
        """How many letters were tried."""
        return len(self.stored) + len(self.refused)

    def as_json(self) -> dict[str, Any]:
        """The replay as the CLI's `--json` and the HTTP API give it."""
        return {
            "replay": self.replay,
            "tried": self.tried,
            "stored": [{"id": letter, "event_id": event_id} for letter, event_id in self.stored],
            "refused": [{"id": letter, "reason": reason} for letter, reason in self.refused],
        }


def replay(ledger: Ledger, contract: Contract, selection: Selection, now: datetime) -> Replayed:
    """Replay the open letters of `selection`; letters whose bytes were cut or are not held stay refused."""
    done = Replayed()
    book = ledger.deadletters
    with ledger.writer.datastore.transaction() as curs:
        letters = book.select(curs, replace(selection, status=OPEN))
        whole = [letter for letter in letters if letter.sealed and not letter.cut]
        opened = book.open(curs, whole)
    for letter in letters:
        if letter.cut:
            done.refused.append((letter.id, f"only part of its {letter.value_bytes} bytes was kept"))
        elif not letter.sealed:
            done.refused.append((letter.id, "its bytes are not held (kept without a master key)"))
    if not letters:
        return done
    batch = triage([_message(one) for one in opened], contract)
    done.refused += [(_id(record), reason) for record, reason in batch.refused]

    def record(curs: Cursor, conflicts: tuple[int, ...]) -> None:
        done.refused.extend((_id(batch.accepted[index][0]), CONFLICT) for index in conflicts)
        clash = set(conflicts)
        done.stored.extend(
            (_id(message), fact.event_id)
            for index, (message, fact) in enumerate(batch.accepted)
            if index not in clash
        )
        done.replay = book.start_replay(curs, now, done.tried, len(done.stored), len(done.refused))
        book.mark_replayed(curs, done.replay, done.stored)

    ledger.append(batch.facts, then=record)
    log.info("deadletters.replayed", replay=done.replay, stored=len(done.stored), refused=len(done.refused))
    return done


def _message(opened: Opened) -> _Message:
    letter = opened.letter
    return _Message(letter.id, letter.topic, letter.partition, letter.offset, opened.key, opened.value)


def _id(record: object) -> int:
    assert isinstance(record, _Message)
    return record.letter
