"""Waking a follower of the event store as soon as events are appended, instead of after a sleep.

Every transaction that stores events sends `NOTIFY` on the event table's channel (the library's
recorder does it in the transaction, so PostgreSQL delivers it at commit and never for a rollback).
A follower LISTENs on its own connection and waits for that, or for its timeout, whichever comes
first: the timeout keeps the old pace when a notification cannot arrive (PostgreSQL away, the
connection lost), so waking early is an optimisation, never what correctness rests on.
"""

import time

import psycopg
import structlog
from psycopg.sql import SQL, Identifier

from ledger.store import Ledger

log = structlog.get_logger()


class Appended:
    """Notifications of appends to one ledger's event table, on a connection of their own."""

    def __init__(self, ledger: Ledger) -> None:
        self.url = ledger.database_url
        self.channel = Identifier(ledger.writer.channel_name)
        self.conn: psycopg.Connection[tuple[object, ...]] | None = None

    def wait(self, timeout: float) -> bool:
        """Block until an append commits or `timeout` seconds pass; True if woken by an append.

        Every notification already received is consumed, so a burst of appends wakes once. A call
        that (re)starts listening returns True at once: what was appended before it was not notified,
        so the caller reads the store now. Listening that fails leaves the caller on its timeout.
        """
        if self.conn is None:
            try:
                self.conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5)
                self.conn.execute(SQL("LISTEN {}").format(self.channel))
            except psycopg.Error as error:
                self._lost(error)
                time.sleep(timeout)
                return False
            return True
        try:
            woken = any(True for _ in self.conn.notifies(timeout=timeout, stop_after=1))
            if woken:
                for _ in self.conn.notifies(timeout=0):  # the rest of a burst
                    pass
        except psycopg.Error as error:
            self._lost(error)
            return True
        return woken

    def _lost(self, error: psycopg.Error) -> None:
        log.warning("wakeup.lost", error=type(error).__name__)
        self.close()

    def close(self) -> None:
        """Stop listening."""
        if self.conn is not None:
            conn, self.conn = self.conn, None
            conn.close()
