"""`verify`: recompute every hash chain and the running hash, and name every break found."""

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import orjson

from ledger import chain
from ledger.checkpoints import Checkpoint, load_all, notifications
from ledger.store import Ledger


@dataclass(frozen=True)
class Break:
    """One place where the stored log is not what was written."""

    position: int
    tenant: str | None
    subject: str | None
    version: int | None
    problem: str

    @classmethod
    def in_log(cls, position: int, problem: str) -> "Break":
        """A break not tied to one subject: a checkpoint, or the log as a whole."""
        return cls(position, None, None, None, problem)

    def line(self) -> str:
        """One line naming the place and what was expected."""
        who = f"{self.tenant}/{self.subject}" if self.subject is not None else "log"
        version = f" version {self.version}" if self.version is not None else ""
        return f"break at position {self.position} ({who}{version}): {self.problem}"


@dataclass
class Report:
    """The outcome of a verification: counts and every break."""

    events: int = 0
    subjects: int = 0
    last_checkpoint: int | None = None
    breaks: list[Break] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing was found."""
        return not self.breaks

    def summary(self) -> str:
        """`ok: N events, M subjects, last checkpoint K`, or the number of breaks."""
        if self.ok:
            checkpoint = "none" if self.last_checkpoint is None else str(self.last_checkpoint)
            return f"ok: {self.events} events, {self.subjects} subjects, last checkpoint {checkpoint}"
        return f"FAILED: {len(self.breaks)} break(s) in {self.events} events"


@dataclass
class _Tail:
    version: int
    hash: str
    position: int
    tenant: str | None
    subject: str | None


def verify(ledger: Ledger, key: bytes) -> Report:
    """Walk the whole log in order, checking each subject's chain and every checkpoint."""
    report = Report()
    checkpoints = {point.position: point for point in load_all(ledger)}
    for point in checkpoints.values():
        if chain.sign(key, point.position, point.events, point.running_hash) != point.signature:
            report.breaks.append(Break.in_log(point.position, "checkpoint signature is not valid"))
    tails: dict[UUID | str, _Tail] = {}
    running = chain.START
    for notification in notifications(ledger, 0):
        event_hash = chain.notification_hash(notification)
        running = chain.fold(running, event_hash)
        report.events += 1
        tail = tails.get(notification.originator_id)
        document = _decode(notification.state)
        tenant = _text(document, "tenant") or (tail.tenant if tail else None)
        subject = _text(document, "subject") or (tail.subject if tail else None)
        problem = _chain_problem(notification.originator_version, document, tail)
        if problem:
            report.breaks.append(
                Break(notification.id, tenant, subject, notification.originator_version, problem)
            )
        if tail is None or notification.originator_version > tail.version:
            tails[notification.originator_id] = _Tail(
                notification.originator_version, event_hash, notification.id, tenant, subject
            )
        if notification.id in checkpoints:
            point = checkpoints.pop(notification.id)
            _compare(point, report.events, running, report)
            report.last_checkpoint = point.position
    for point in checkpoints.values():
        report.breaks.append(
            Break.in_log(
                point.position,
                "the event this checkpoint was taken at is missing (deleted)",
            )
        )
    report.subjects = len(tails)
    return report


def _decode(state: bytes) -> dict[str, Any] | None:
    try:
        document = orjson.loads(state)
    except orjson.JSONDecodeError:
        return None
    return document if isinstance(document, dict) else None


def _text(document: dict[str, Any] | None, name: str) -> str | None:
    value = None if document is None else document.get(name)
    return value if isinstance(value, str) else None


def _chain_problem(version: int, document: dict[str, Any] | None, tail: _Tail | None) -> str | None:
    expected = 1 if tail is None else tail.version + 1
    if version != expected:
        if tail is not None and version <= tail.version:
            return f"recorded after version {tail.version} (position {tail.position}): events reordered"
        return f"expected version {expected}: version(s) {expected}..{version - 1} missing (deleted)"
    if document is None:
        return "stored state is not valid JSON: its bytes were altered"
    if tail is not None and document.get("previous_hash") != tail.hash:
        found = document.get("previous_hash")
        return (
            f"previous_hash {found!s:.16}... does not match version {tail.version}'s hash "
            f"{tail.hash:.16}...: this event or the one before it was altered"
        )
    return None


def _compare(point: Checkpoint, events: int, running: bytes, report: Report) -> None:
    if point.events != events or point.running_hash != running:
        report.breaks.append(
            Break.in_log(
                point.position,
                f"log differs from checkpoint: expected {point.events} events with running hash "
                f"{point.running_hash.hex():.16}..., found {events} with {running.hex():.16}... "
                "(an event before it was altered, deleted or reordered)",
            )
        )
