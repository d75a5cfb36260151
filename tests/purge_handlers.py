"""Handlers for purge agents run in a process of their own by the tests (PURGE_TEST_CALLS names a
file each call is noted in)."""

import os
import signal
from pathlib import Path

from consumers.purge_agent import Refuse
from ledger.purges import PurgeOrder


def dies_on_third(order: PurgeOrder) -> None:
    """Note the call; on the third call of the first run, kill this process outright (SIGKILL)."""
    calls = Path(os.environ["PURGE_TEST_CALLS"])
    with calls.open("a") as out:
        out.write(f"{order.order_id}\n")
        out.flush()
        os.fsync(out.fileno())
    marker = calls.with_suffix(".killed")
    if len(calls.read_text().splitlines()) == 3 and not marker.exists():
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)


def refuses(order: PurgeOrder) -> None:
    """Refuse every order, as a system would while an investigation holds the data."""
    raise Refuse("an investigation holds it")
