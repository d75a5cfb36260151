"""The projector: follows the event store in pages and keeps the subject read model current.

Each page is applied in one transaction together with the new tracking position, so a crash resumes
where the last committed page ended and a rebuild from zero produces the same tables.
"""

import contextlib
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import structlog
from psycopg.sql import SQL

from ledger.checkpoints import Checkpointer
from ledger.retry import Backoff, Retry, Stopped
from ledger.state import SubjectState, erasure_due
from ledger.store import Ledger
from ledger.subject import Subject, subject_id
from ledger.wakeup import Appended
from projections import tables
from projections.changes import TOPICS, decode_all, fold

log = structlog.get_logger()
NAME = tables.PROJECTION
IDLE_WAIT = 0.2  # seconds between looks at an idle store when no notification wakes the projector


@dataclass
class Progress:
    """Events applied by this run, and the position reached."""

    applied: int = 0
    position: int = 0


class Projector:
    """Applies stored facts to the subject read model, a page per transaction."""

    def __init__(
        self,
        ledger: Ledger,
        page: int,
        checkpointer: Checkpointer | None = None,
        awaits_recipients: Callable[[str], bool] = lambda tenant: True,
    ) -> None:
        self.ledger = ledger
        self.page = page
        self.checkpointer = checkpointer
        self.awaits_recipients = awaits_recipients  # per tenant: Settings.awaits_recipients
        self.datastore = ledger.writer.datastore
        self.committed = threading.Event()  # set after each page commits: the checkpointer's cue

    def position(self) -> int:
        """The notification id of the last event applied."""
        with self.datastore.transaction() as curs:
            return self._position(curs, lock=False)

    def step(self) -> int:
        """Apply the next page, if any; return how many events it held.

        The page is the events the projection applies up to the newest stored one, read first: when
        the page is not full, the position moves to that newest event, past the others (purge orders'
        `RetentionExpired`, policy adoptions), so they are not read again on every later step. Every
        append holds the event table's write lock until it commits, so no event at or before the
        newest can still appear.

        Erasures the page makes due are recorded in its transaction, with the position: a crash
        loses both or neither, so a due erasure is never skipped (the process-application pattern).
        """
        start = self.position()
        newest = self.ledger.writer.max_notification_id() or 0
        if newest <= start:
            return 0
        notifications = self.ledger.recorder.select_notifications(
            start=start, limit=self.page, stop=newest, inclusive_of_start=False, topics=TOPICS
        )
        reached = notifications[-1].id if len(notifications) == self.page else newest
        changes = list(decode_all(self.ledger.mapper, notifications))
        keys = list({(change.tenant, change.subject) for change in changes})
        with self.datastore.transaction(commit=True) as curs:
            if self._position(curs, lock=True) != start:
                return 0  # another projector applied this page first; read on from its position
            erased = []
            if changes:
                states = tables.load(curs, keys)
                before = tables.rows(states.values())
                fold(states, changes)
                tables.save(curs, states.values(), before)
                erased = self._erase_due(curs, states.values())
            curs.execute(
                SQL("UPDATE {} SET position = %s WHERE name = %s").format(tables.POSITIONS), (reached, NAME)
            )
        _logged(erased)
        self.committed.set()
        return len(notifications)

    def erase(self, tenant: str, subject: str, reason: str) -> Subject.Erased | None:
        """Crypto-shred a subject by hand and project up to its erasure, so that every query says so
        as soon as this returns; None when it was erased already."""
        erased = self.ledger.erase(tenant, subject, reason)
        self.catch_up(self.ledger.writer.last_notification(subject_id(tenant, subject), TOPICS))
        return erased

    def catch_up(self, position: int) -> None:
        """Apply pages until the read model has reached `position` (another projector may do it)."""
        while self.position() < position:
            if not self.step():
                time.sleep(0.05)  # another projector holds the page; it moves the position for us

    def erase_missed(self) -> int:
        """Shred the subjects the read model shows due for erasure and not erased; return how many.

        Erasures are recorded with their page, but a projector before that (which recorded them
        after it), or a change of LEDGER_RECIPIENTS_AWAITED, can leave some due: `run` starts here.
        """
        with self.datastore.transaction(commit=True) as curs:
            self._position(curs, lock=True)  # other projectors wait, as for a page
            states = tables.load(curs, tables.erasure_candidates(curs))
            erased = self._erase_due(curs, states.values())
        _logged(erased)
        return len(erased)

    def _erase_due(self, curs: tables.Cursor, states: Iterable[SubjectState]) -> list[Subject.Erased]:
        """Record, in the caller's transaction, the erasures these states make due."""
        due = [
            (state.tenant, state.subject)
            for state in states
            if erasure_due(state, await_recipients=self.awaits_recipients(state.tenant))
        ]
        return self.ledger.erase_due(curs, due, self.awaits_recipients) if due else []

    def run(
        self, *, until_idle: bool, stop: threading.Event | None = None, backoff: Backoff | None = None
    ) -> Progress:
        """Apply pages until stopped or, with `until_idle`, until the store has nothing new.

        With nothing new, it waits for the next append's notification (or IDLE_WAIT at most).

        The checkpointer, if any, extends the Merkle tree in a thread of its own after pages commit,
        so a long append to the tree never holds back the next page (nor an opt-out in it); with
        `until_idle` it catches up once at the end instead, before this returns.

        A page that fails because PostgreSQL is away is applied again after a pause (`backoff`,
        default: the default LEDGER_RETRY_* settings); its position only moves with its rows, so
        nothing is applied twice.
        """
        stop = stop or threading.Event()
        backoff = backoff or Backoff.default(bounded=until_idle)
        retry = Retry(backoff, "projector", stop)
        checkpoints = None
        if self.checkpointer is not None and not until_idle:
            self.committed.set()  # catch up with the log at once, not only after the next page
            checkpoints = Checkpoints(self.checkpointer, self.committed, backoff)
        appended = Appended(self.ledger)
        progress = Progress()
        try:
            with contextlib.suppress(Stopped):
                if not until_idle:
                    appended.wait(0)  # listening before the first read, so no append goes unnoticed
                retry.call(self.erase_missed)
                while not stop.is_set():
                    applied = retry.call(self.step)
                    progress.applied += applied
                    if checkpoints is not None:
                        checkpoints.check()
                    if applied:
                        log.info("projection.page", projection=NAME, events=applied)
                    elif until_idle:
                        break
                    else:
                        appended.wait(IDLE_WAIT)
                if self.checkpointer is not None and until_idle:
                    checkpointer = self.checkpointer
                    retry.call(lambda: checkpointer.step(stop=stop))
                progress.position = retry.call(self.position)
        finally:
            appended.close()
            if checkpoints is not None:
                checkpoints.close()
        if checkpoints is not None:
            checkpoints.check()
        return progress

    def _position(self, curs: tables.Cursor, *, lock: bool) -> int:
        suffix = " FOR UPDATE" if lock else ""
        curs.execute(
            SQL("SELECT position FROM {} WHERE name = %s" + suffix).format(tables.POSITIONS),
            (NAME,),
        )
        row = curs.fetchone()
        assert row is not None
        return int(row["position"])


class Checkpoints:
    """The checkpointer in a thread of its own, stepping whenever pages were committed since its last
    step. It reads the log itself, in transactions of its own, so its heads cover committed events
    only and a crash loses at most its page under way, whatever the projector is doing."""

    def __init__(self, checkpointer: Checkpointer, committed: threading.Event, backoff: Backoff) -> None:
        self.checkpointer = checkpointer
        self.committed = committed
        self.halt = threading.Event()
        self.retry = Retry(backoff, "checkpointer", self.halt)
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._follow, name="checkpointer", daemon=True)
        self.thread.start()

    def _follow(self) -> None:
        while self.committed.wait() and not self.halt.is_set():
            self.committed.clear()  # pages committed from here on call for another step
            try:
                self.retry.call(lambda: self.checkpointer.step(stop=self.halt))
            except Stopped:
                return
            except Exception as error:  # raised in the projector's thread by `check`
                self.error = error
                return

    def check(self) -> None:
        """Raise what stopped the checkpointer, if something did: the projector fails with it, as it
        did when the checkpointer stepped in its loop."""
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        """Stop once the page under way is committed (the next run goes on from there)."""
        self.halt.set()
        self.committed.set()
        self.thread.join()


def _logged(erased: Iterable[Subject.Erased]) -> None:
    """Log erasures once their transaction has committed."""
    for event in erased:
        log.info("subject.erased", tenant=event.tenant, subject=event.subject, keys=len(event.destroyed_keys))
