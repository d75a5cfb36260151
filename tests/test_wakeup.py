"""A follower of the event store is woken by an append's commit, not by its timeout."""

import threading

import pytest

from ledger.store import Ledger
from ledger.wakeup import Appended
from tests.helpers import fact

pytestmark = pytest.mark.services


def test_an_append_wakes_a_listener(ledger: Ledger) -> None:
    """A listener waiting (with a timeout far longer than the test) returns woken once another
    connection's append commits; with nothing appended it returns not woken at its timeout."""
    appended = Appended(ledger)
    try:
        assert appended.wait(0) is True  # starts listening: the caller reads the store now
        assert appended.wait(0.05) is False
        threading.Timer(0.2, lambda: ledger.append([fact("acme", "ann", "e1")])).start()
        assert appended.wait(60) is True
        assert appended.wait(0.05) is False  # the burst was consumed whole
    finally:
        appended.close()


def test_a_rolled_back_append_wakes_no_one(ledger: Ledger) -> None:
    """An append whose transaction rolls back is not notified (NOTIFY is delivered at commit only)."""
    appended = Appended(ledger)
    try:
        appended.wait(0)
        with pytest.raises(RuntimeError), ledger.writer.writing() as curs:
            ledger.writer.store(curs, [])
            raise RuntimeError("roll back")
        assert appended.wait(0.3) is False
    finally:
        appended.close()
