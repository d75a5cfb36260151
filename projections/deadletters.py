"""The dead-letter questions the CLI and the HTTP API both answer, with the same JSON.

Opening a letter's original bytes is a read of what may be personal data: it is recorded in the
access log, in the transaction that reads them, before they are given out.
"""

import base64
import getpass
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from ledger.access import ApiKey
from ledger.crypto import Unreadable
from ledger.deadletters import OPEN, DeadLetter, Opened, Selection, not_open
from ledger.store import Ledger
from projections.queries import plain

OPERATOR = "operator"  # the role an access from the command line is recorded with


def listing(ledger: Ledger, selection: Selection, limit: int) -> dict[str, Any]:
    """The chosen letters (up to `limit`, oldest first) and, per reason class, how many of them are
    open, replayed and dropped."""
    with ledger.writer.datastore.transaction() as curs:
        counts = ledger.deadletters.counts(curs, selection)
        letters = ledger.deadletters.select(curs, selection, limit)
    return {"counts": counts, "letters": [as_json(letter) for letter in letters]}


def figures(ledger: Ledger) -> tuple[dict[str, dict[str, int]], int]:
    """For metrics: letters per reason class and status, and how many replays were run."""
    with ledger.writer.datastore.transaction() as curs:
        return ledger.deadletters.counts(curs, Selection()), ledger.deadletters.replays_run(curs)


def letter(ledger: Ledger, letter_id: int) -> DeadLetter:
    """One letter (never its bytes), or `UnknownDeadLetter`."""
    with ledger.writer.datastore.transaction() as curs:
        return ledger.deadletters.get(curs, letter_id)


def replayable(ledger: Ledger, letter_ids: Sequence[int]) -> None:
    """Refuse a replay that names a letter it cannot try: `UnknownDeadLetter` for the first that does
    not exist, `WrongState` naming every one replayed or dropped already. Naming one is a mistake to
    report (a misspelt id, a replay run twice), not a replay that tried nothing."""
    with ledger.writer.datastore.transaction() as curs:
        letters = [ledger.deadletters.get(curs, letter_id) for letter_id in letter_ids]
    closed = [letter for letter in letters if letter.status != OPEN]
    if closed:
        raise not_open(closed, "replayed")


def original(ledger: Ledger, letter_id: int, reader: ApiKey, endpoint: str) -> Opened:
    """The letter with its original key and bytes; the access log records `reader` opening them
    (`Unreadable` when they are no longer held)."""
    with ledger.writer.datastore.transaction(commit=True) as curs:
        found = ledger.deadletters.get(curs, letter_id)
        if not found.sealed:
            raise Unreadable(f"dead letter {letter_id} no longer holds its bytes (it was dropped)")
        ledger.access_log.record(curs, reader, found.tenant or "", f"deadletter/{letter_id}", endpoint)
        (opened,) = ledger.deadletters.open(curs, [found])
    return opened


def drop(ledger: Ledger, letter_id: int, why: str) -> DeadLetter:
    """Record the decision to discard an open letter (and discard its bytes)."""
    with ledger.writer.datastore.transaction(commit=True) as curs:
        return ledger.deadletters.drop(curs, letter_id, why, datetime.now(UTC))


def operator() -> ApiKey:
    """Who reads through the command line: the operator, named by the system user (no API key)."""
    return ApiKey(f"cli:{getpass.getuser()}", None, OPERATOR, datetime.now(UTC), None)


def as_json(found: DeadLetter) -> dict[str, Any]:
    """A letter as JSON (never its bytes)."""
    document: dict[str, Any] = plain(asdict(found))
    document["origin"] = found.origin
    return document


def opened_json(opened: Opened) -> dict[str, Any]:
    """A letter with its original key and value: base64, and as text when they are UTF-8."""
    return as_json(opened.letter) | {
        "key_base64": _b64(opened.key),
        "value_base64": _b64(opened.value),
        "key": _utf8(opened.key),
        "value": _utf8(opened.value),
    }


def _b64(part: bytes | None) -> str | None:
    return None if part is None else base64.b64encode(part).decode()


def _utf8(part: bytes | None) -> str | None:
    try:
        return None if part is None else part.decode()
    except UnicodeDecodeError:
        return None
