"""Waiting out faults: capped exponential backoff with jitter, shared by the consumer, projector and
scheduler; a supervisor that restarts a component thread that failed; and `Skipped`, which keeps one
subject's failure from stopping a sweep over all the others.

A PostgreSQL or Kafka outage is a pause, not an exit: each failed attempt logs `retry.waiting` (the
component, the attempt, the delay and the error's class, never its message, which may quote data) and
waits `initial * 2**(attempt - 1)` seconds, capped, with jitter so that many clients do not return in
step. A bounded backoff (the `--until-idle` runs) gives up once the failures would have lasted longer
than its patience, with one line saying so, so that scripts never hang.
"""

import random
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import psycopg
import structlog
from eventsourcing.persistence import InterfaceError, OperationalError

from ledger.errors import LedgerError, ServiceUnavailable
from ledger.settings import Settings

T = TypeVar("T")
# The library's translations of psycopg's errors, and psycopg's own (from our raw connections).
POSTGRES_OUTAGES = (OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError)


class GaveUp(LedgerError):
    """A bounded retry ran out of patience; the CLI prints the one line and exits 2."""


class Stopped(Exception):  # control flow, not an error: the component was asked to stop
    """The component was asked to stop while it waited to try again."""


@dataclass(frozen=True)
class Backoff:
    """How long to wait before each retry, and (when bounded) how long to keep failing before giving up."""

    initial: float  # seconds before the first retry
    cap: float  # the longest single wait
    give_up: float | None = None  # seconds of consecutive failure before giving up; None: never

    def delay(self, attempt: int, draw: float) -> float:
        """The wait before retry `attempt` (1, 2, ...), given a `draw` in [0, 1): between half and all
        of the capped exponential step ("equal jitter": never zero, never in step with other clients)."""
        step = min(self.cap, self.initial * 2.0 ** min(attempt - 1, 64))
        return step * (0.5 + draw / 2)

    def exhausted(self, failing_for: float, delay: float) -> bool:
        """True when waiting `delay` more after `failing_for` seconds of failure would exceed the patience."""
        return self.give_up is not None and failing_for + delay > self.give_up

    @classmethod
    def default(cls, *, bounded: bool) -> "Backoff":
        """The backoff of the default settings, for callers that were given none."""
        return cls.from_settings(Settings.from_env({}), bounded=bounded)

    @classmethod
    def from_settings(cls, settings: Settings, *, bounded: bool) -> "Backoff":
        """The configured backoff; `bounded` (an `--until-idle` run) gives up after LEDGER_RETRY_GIVE_UP_S."""
        return cls(
            settings.retry_initial_ms / 1000,
            settings.retry_max_ms / 1000,
            settings.retry_give_up_s if bounded else None,
        )


def transient(error: BaseException) -> bool:
    """True for failures worth waiting out: PostgreSQL or Kafka unreachable, restarting, or dropping
    connections. Anything else is a bug or bad data, and retrying would only repeat it."""
    # kafka-python is looked up, not imported: it costs queries ~90 ms at start, and where it was never
    # imported no Kafka error can have been raised.
    kafka_errors = sys.modules.get("kafka.errors")
    return (
        isinstance(
            error, OperationalError | InterfaceError | psycopg.OperationalError | psycopg.InterfaceError
        )
        # PostgreSQL ended a transaction its client was too slow to continue (a starved machine): the
        # work was fine, and is done again (the library reports it as an InternalError).
        or isinstance(error.__cause__ or error, psycopg.errors.IdleInTransactionSessionTimeout)
        or (kafka_errors is not None and isinstance(error, kafka_errors.KafkaError))
        or (isinstance(error, ServiceUnavailable) and not isinstance(error, GaveUp))
    )


class Retry:
    """Consecutive failures of one component: waits between attempts, forgets them after a success."""

    def __init__(
        self,
        backoff: Backoff,
        component: str,
        stop: threading.Event,
        *,
        retry_on: Callable[[BaseException], bool] = transient,
        draw: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backoff = backoff
        self.component = component
        self.stop = stop
        self.retry_on = retry_on
        self.draw = draw
        self.clock = clock
        self.attempt = 0
        self.failing_since: float | None = None

    def call(self, action: Callable[[], T]) -> T:
        """`action()`, tried again after a pause for as long as it fails in a way worth waiting out."""
        while True:
            try:
                result = action()
            except Exception as error:
                self.failed(error)
                continue
            self.succeeded()
            return result

    def succeeded(self) -> None:
        """The component made progress: the next failure starts from the first, shortest wait."""
        self.attempt = 0
        self.failing_since = None

    def failed(self, error: Exception) -> None:
        """Wait before the next attempt after `error`.

        Re-raises `error` when it is not worth waiting out; raises `GaveUp` when a bounded backoff's
        patience is spent, and `Stopped` when the component is asked to stop during the wait.
        """
        if not self.retry_on(error):
            raise error
        now = self.clock()
        if self.failing_since is None:
            self.failing_since = now
        self.attempt += 1
        delay = self.backoff.delay(self.attempt, self.draw())
        failing_for = now - self.failing_since
        if self.backoff.exhausted(failing_for, delay):
            raise GaveUp(
                f"{self.component} gave up after {self.attempt} failed attempt(s) in {failing_for:.0f} s "
                f"(last: {type(error).__name__}): check that PostgreSQL and Kafka are up "
                "(LEDGER_RETRY_GIVE_UP_S sets how long --until-idle waits)"
            ) from None
        _log().warning(
            "retry.waiting",
            component=self.component,
            attempt=self.attempt,
            delay=round(delay, 3),
            error=type(error).__name__,
        )
        if self.stop.wait(delay):
            raise Stopped


@dataclass
class Skipped:
    """The subjects a sweep could not handle: each logged (`sweep.subject_failed`), counted, skipped."""

    subjects: list[tuple[str, str]] = field(default_factory=list)

    def guard(self, step: str, tenant: str, subject: str, action: Callable[[], T]) -> T | None:
        """`action()` for one subject, or None when it failed for that subject alone. An outage is
        not the subject's fault: it propagates, and the whole sweep waits it out."""
        try:
            return action()
        except Exception as error:
            if transient(error):
                raise
            _log().error(
                "sweep.subject_failed", step=step, tenant=tenant, subject=subject, error=type(error).__name__
            )
            self.subjects.append((tenant, subject))
            return None

    def together(
        self,
        step: str,
        keys: Sequence[tuple[str, str]],
        action: Callable[[Sequence[tuple[str, str]]], list[T]],
    ) -> list[T]:
        """`action(keys)` for many (tenant, subject) keys at once; should that fail for anything but an
        outage, `action([key])` for each key on its own, so that one subject's failure costs only it."""
        if len(keys) > 1:
            try:
                return action(keys)
            except Exception as error:
                if transient(error):
                    raise
        done: list[T] = []
        for key in keys:
            done.extend(self.guard(step, *key, lambda: action([key])) or [])  # noqa: B023 - called at once
        return done


def keep_alive(component: str, start: Callable[[], T], stop: threading.Event, backoff: Backoff) -> T | None:
    """Run `start()` until it returns; whatever it raises is logged and it is started again after a
    pause, so a component of `run` never dies silently. None when stopped before it returned.

    A configuration error (a `LedgerError` that is no outage, such as a wrong master key) would fail
    the same way at every start: it stops every component and is raised, to be reported in one line.
    """
    retry = Retry(backoff, component, stop, retry_on=lambda _: True)
    while not stop.is_set():
        started = time.monotonic()
        try:
            return start()
        except Stopped:
            break
        except Exception as error:
            if isinstance(error, LedgerError) and not transient(error):
                stop.set()
                raise
            _log().error("component.failed", component=component, error=type(error).__name__)
            if time.monotonic() - started > backoff.cap:  # it ran healthy for a while: start over
                retry.succeeded()
            try:
                retry.failed(error)
            except Stopped:
                break
    return None


class Supervised(threading.Thread):
    """A component of `run` in a thread of its own, kept alive by `keep_alive`."""

    def __init__(self, component: str, start: Callable[[], object], stop: threading.Event, backoff: Backoff):
        super().__init__(name=component, daemon=True)
        self.component, self.start_component, self.stop, self.backoff = component, start, stop, backoff
        self.error: Exception | None = None

    def run(self) -> None:
        """Keep the component alive; keep what stopped it for `finish`."""
        try:
            keep_alive(self.component, self.start_component, self.stop, self.backoff)
        except Exception as error:  # raised again in the caller's thread by `finish`
            self.error = error

    def finish(self) -> None:
        """Wait for the component to stop; raise the error that stopped it, if one did."""
        self.join()
        if self.error is not None:
            raise self.error


def _log() -> structlog.typing.FilteringBoundLogger:
    # Looked up per line, not once per module: the CLI caches loggers on first use, and a logger
    # cached before a test captured the logs would write past the capture.
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger()
    return logger
