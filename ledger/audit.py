"""`verify`: recompute every hash chain and the log's Merkle tree, check every tree head, name every break."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from psycopg.sql import SQL, Identifier

from ledger import chain, merkle
from ledger.checkpoints import GENESIS, TreeHead, leaf, load_heads, notifications
from ledger.compression import UnreadableState, inflate
from ledger.signing import PublicKey, WrongSigningKey
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
    tree_size: int | None = None
    witnessed: int | None = None
    breaks: list[Break] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing was found."""
        return not self.breaks

    def summary(self) -> str:
        """`ok: N events, M subjects, last checkpoint K ...`, or the number of breaks."""
        if not self.ok:
            return f"FAILED: {len(self.breaks)} break(s) in {self.events} events"
        checkpoint = (
            "none" if self.last_checkpoint is None else f"{self.last_checkpoint} (tree size {self.tree_size})"
        )
        witnessed = "" if self.witnessed is None else f", {self.witnessed} witnessed checkpoint(s) matched"
        return f"ok: {self.events} events, {self.subjects} subjects, last checkpoint {checkpoint}{witnessed}"


@dataclass
class _Tail:
    version: int
    hash: str
    position: int
    tenant: str | None
    subject: str | None


def verify(ledger: Ledger, keys: Sequence[PublicKey], witnessed: Sequence[TreeHead] | None = None) -> Report:
    """Walk the whole log in order, checking each subject's chain, and every tree head in the database
    and in the witnesses against the Merkle tree recomputed from the events.

    Raises WrongSigningKey when none of `keys` signed any of the database's heads: that is a
    configuration mistake to fix, not evidence of tampering.
    """
    heads = load_heads(ledger)
    keyring = {key.key_id: key for key in keys}
    _check_keys(heads, keyring)
    report = Report(witnessed=None if witnessed is None else len(witnessed))
    witnessed = witnessed or []
    report.breaks.extend(_head_breaks(heads, keyring))
    report.breaks.extend(_witness_breaks(heads, witnessed, keyring))
    due: dict[int, list[TreeHead]] = {}
    for head in [*heads, *witnessed]:
        due.setdefault(head.tree_size, []).append(head)
    frontier = merkle.Frontier()
    tails: dict[UUID | str, _Tail] = {}
    for notification in notifications(ledger, 0):
        event_hash = chain.notification_hash(notification)
        frontier.append(leaf(notification))
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
        for head in due.pop(frontier.size, []):
            _compare(head, frontier.root(), report)
    for size, missed in sorted(due.items()):
        report.breaks.extend(
            Break.in_log(
                head.position,
                f"checkpoint {head.sequence} covers {size} events but the log holds only "
                f"{report.events}: events were deleted",
            )
            for head in missed
        )
    if heads:
        report.last_checkpoint, report.tree_size = heads[-1].sequence, heads[-1].tree_size
    report.subjects = len(tails)
    return report


def _check_keys(heads: list[TreeHead], keyring: dict[str, PublicKey]) -> None:
    if heads and not any(head.key_id in keyring for head in heads):
        signed_by = ", ".join(sorted({head.key_id for head in heads}))
        given = ", ".join(sorted(keyring)) or "none"
        raise WrongSigningKey(
            f"the checkpoints are signed by key {signed_by} but the key given is {given}: configure the "
            "signing key that signed them (LEDGER_SIGNING_KEY or LEDGER_SIGNING_KEY_FILE), or pass its "
            "public key with --public-key FILE"
        )


def _signature_problem(head: TreeHead, keyring: dict[str, PublicKey]) -> str | None:
    key = keyring.get(head.key_id)
    if key is None:
        return (
            f"checkpoint {head.sequence} names signing key {head.key_id}, which is not among the keys given"
        )
    if not head.signed_by(key):
        return f"checkpoint {head.sequence}'s signature is not valid: it was altered or forged"
    return None


def _head_breaks(heads: list[TreeHead], keyring: dict[str, PublicKey]) -> list[Break]:
    """Each head's signature, and the chain of heads: numbered 1, 2, ... each naming its predecessor."""
    breaks = []
    previous: TreeHead | None = None
    for head in heads:
        problem = _signature_problem(head, keyring)
        if problem:
            breaks.append(Break.in_log(head.position, problem))
        expected = 1 if previous is None else previous.sequence + 1
        if head.sequence != expected:
            breaks.append(
                Break.in_log(
                    head.position,
                    f"checkpoint(s) {expected}..{head.sequence - 1} missing before checkpoint "
                    f"{head.sequence}: the chain of checkpoints has a gap (deleted)",
                )
            )
        elif head.previous != (GENESIS if previous is None else previous.digest()):
            breaks.append(
                Break.in_log(
                    head.position,
                    f"checkpoint {head.sequence} does not name checkpoint {expected - 1} as its previous: "
                    "a checkpoint was rewritten or replaced",
                )
            )
        previous = head
    return breaks


def _witness_breaks(
    heads: list[TreeHead], witnessed: Sequence[TreeHead], keyring: dict[str, PublicKey]
) -> list[Break]:
    """Every witnessed head must be genuine and be in the database exactly as witnessed."""
    stored = {head.sequence: head for head in heads}
    breaks = []
    for head in witnessed:
        problem = _signature_problem(head, keyring)
        if problem:
            breaks.append(Break.in_log(head.position, f"witnessed {problem}"))
            continue
        found = stored.get(head.sequence)
        if found is None:
            breaks.append(
                Break.in_log(
                    head.position,
                    f"checkpoint {head.sequence} (tree size {head.tree_size}, root "
                    f"{head.root_hash.hex():.16}...) is witnessed but missing from the database (deleted)",
                )
            )
        elif found != head:
            breaks.append(
                Break.in_log(
                    head.position,
                    f"checkpoint {head.sequence} in the database differs from the witnessed one "
                    f"(tree size {found.tree_size} vs {head.tree_size}, root {found.root_hash.hex():.16}... "
                    f"vs {head.root_hash.hex():.16}...): it was rewritten",
                )
            )
    return breaks


def _decode(state: bytes) -> dict[str, Any] | None:
    try:
        document = orjson.loads(inflate(state))
    except (UnreadableState, orjson.JSONDecodeError):
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
        return "stored state does not decode to a JSON document: its bytes were altered"
    if tail is not None and document.get("previous_hash") != tail.hash:
        found = document.get("previous_hash")
        return (
            f"previous_hash {found!s:.16}... does not match version {tail.version}'s hash "
            f"{tail.hash:.16}...: this event or the one before it was altered"
        )
    return None


def _compare(head: TreeHead, found: bytes, report: Report) -> None:
    if head.root_hash != found:
        report.breaks.append(
            Break.in_log(
                head.position,
                f"log differs from checkpoint {head.sequence}: expected root {head.root_hash.hex():.16}... "
                f"over {head.tree_size} events, found {found.hex():.16}... (an event before it was altered, "
                "deleted or reordered)",
            )
        )


@dataclass(frozen=True)
class Verification:
    """A recorded run of `verify`: when, who asked, and what it found."""

    at: datetime
    by: str
    ok: bool
    events: int
    breaks: int


def verifications_table(ledger: Ledger) -> Identifier:
    """The record of verifications run on request (the console's), beside the event table."""
    return Identifier(ledger.writer.datastore.schema, f"{ledger.writer.events_table_name}_verifications")


def create_tables(ledger: Ledger) -> None:
    """Create the verification record where missing."""
    with ledger.writer.datastore.transaction(commit=True) as curs:
        curs.execute(
            SQL(
                "CREATE TABLE IF NOT EXISTS {} (id bigserial PRIMARY KEY, at timestamptz NOT NULL "
                "DEFAULT now(), by text NOT NULL, ok boolean NOT NULL, events bigint NOT NULL, "
                "breaks integer NOT NULL)"
            ).format(verifications_table(ledger))
        )


def record(ledger: Ledger, report: Report, by: str) -> None:
    """Note that `by` (a key id) ran verify and what it found, so that others can see when the log was
    last proven intact."""
    with ledger.writer.datastore.transaction(commit=True) as curs:
        curs.execute(
            SQL("INSERT INTO {} (by, ok, events, breaks) VALUES (%s, %s, %s, %s)").format(
                verifications_table(ledger)
            ),
            (by, report.ok, report.events, len(report.breaks)),
        )


def last_verification(ledger: Ledger) -> Verification | None:
    """The newest recorded verification, if any."""
    with ledger.writer.datastore.transaction() as curs:
        curs.execute(
            SQL("SELECT at, by, ok, events, breaks FROM {} ORDER BY id DESC LIMIT 1").format(
                verifications_table(ledger)
            )
        )
        row = curs.fetchone()
    return None if row is None else Verification(**row)
