"""Capped exponential backoff: the pure arithmetic and the retry loop, with a fake clock."""

import threading

import pytest
from eventsourcing.persistence import OperationalError
from kafka.errors import KafkaConnectionError
from structlog.testing import capture_logs

from ledger.errors import ConfigError, ServiceUnavailable, UsageError
from ledger.retry import Backoff, GaveUp, Retry, Stopped, Supervised, keep_alive, transient
from ledger.settings import Settings

BACKOFF = Backoff(initial=0.5, cap=30.0)


class FakeStop(threading.Event):
    """A stop event whose waits pass no real time: they advance a fake clock instead."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        """Record the wait and let the fake time pass."""
        self.waits.append(timeout or 0.0)
        self.now += timeout or 0.0
        return self.is_set()


def _retry(backoff: Backoff, stop: FakeStop, draw: float = 0.999999) -> Retry:
    return Retry(backoff, "consumer", stop, draw=lambda: draw, clock=lambda: stop.now)


def _failing(times: int, error: Exception) -> tuple[list[int], object]:
    calls: list[int] = []

    def action() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise error
        return "done"

    return calls, action


def test_delays_double_from_the_first_up_to_the_cap() -> None:
    """At the top of the jitter the waits are 0.5, 1, 2, 4 ... seconds, never above the 30 s cap."""
    delays = [round(BACKOFF.delay(attempt, 0.999999), 2) for attempt in range(1, 10)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert BACKOFF.delay(10_000, 0.999999) <= 30.0  # no overflow however long the outage


def test_jitter_keeps_each_wait_between_half_and_all_of_its_step() -> None:
    """The draw spreads clients over the upper half of the step, so they do not return in step."""
    assert BACKOFF.delay(3, 0.0) == 1.0
    assert BACKOFF.delay(3, 0.5) == 1.5
    assert 1.0 <= BACKOFF.delay(3, 0.7) < 2.0


def test_only_outages_are_waited_out() -> None:
    """PostgreSQL and Kafka connection failures are transient; a bug or bad input is not."""
    assert transient(OperationalError("terminating connection due to administrator command"))
    assert transient(KafkaConnectionError())
    assert transient(ServiceUnavailable("cannot reach Kafka"))
    assert not transient(ValueError("year 10001 is out of range"))
    assert not transient(UsageError("bad"))
    assert not transient(GaveUp("consumer gave up"))


def test_retry_waits_out_an_outage_then_returns_and_logs_each_attempt() -> None:
    """Three failures are three waits of growing length, each logged without the error's message."""
    stop = FakeStop()
    calls, action = _failing(3, OperationalError("connection to server at +15550001111 failed"))
    with capture_logs() as logs:
        assert _retry(BACKOFF, stop).call(action) == "done"  # type: ignore[arg-type]
    assert len(calls) == 4
    assert [round(wait, 2) for wait in stop.waits] == [0.5, 1.0, 2.0]
    waiting = [entry for entry in logs if entry["event"] == "retry.waiting"]
    assert [entry["attempt"] for entry in waiting] == [1, 2, 3]
    assert {entry["error"] for entry in waiting} == {"OperationalError"}
    assert {entry["component"] for entry in waiting} == {"consumer"}
    assert "+15550001111" not in repr(logs)


def test_a_success_starts_the_next_outage_from_the_shortest_wait() -> None:
    """After a success the attempt count is forgotten."""
    stop = FakeStop()
    retry = _retry(BACKOFF, stop)
    for _ in range(2):
        _, action = _failing(2, OperationalError("down"))
        retry.call(action)  # type: ignore[arg-type]
    assert [round(wait, 2) for wait in stop.waits] == [0.5, 1.0, 0.5, 1.0]


def test_an_error_that_is_not_an_outage_is_raised_at_once() -> None:
    """A bug is not retried: it surfaces on the first attempt."""
    stop = FakeStop()
    calls, action = _failing(5, ValueError("bug"))
    with pytest.raises(ValueError, match="bug"):
        _retry(BACKOFF, stop).call(action)  # type: ignore[arg-type]
    assert len(calls) == 1 and stop.waits == []


def test_bounded_retry_gives_up_with_one_line_once_its_patience_is_spent() -> None:
    """With a 10 s patience the waits 0.5+1+2+4 fit and the next (8 s) would not: GaveUp says why."""
    stop = FakeStop()
    _, action = _failing(100, OperationalError("down"))
    with pytest.raises(GaveUp) as gave_up:
        _retry(Backoff(0.5, 30.0, give_up=10), stop).call(action)  # type: ignore[arg-type]
    assert [round(wait, 2) for wait in stop.waits] == [0.5, 1.0, 2.0, 4.0]
    message = str(gave_up.value)
    assert "\n" not in message
    assert "consumer gave up after 5 failed attempt(s)" in message
    assert "OperationalError" in message and "LEDGER_RETRY_GIVE_UP_S" in message


def test_stop_during_a_wait_ends_the_retry() -> None:
    """A component asked to stop while it waits does not try again."""
    stop = FakeStop()
    stop.set()
    calls, action = _failing(100, OperationalError("down"))
    with pytest.raises(Stopped):
        _retry(BACKOFF, stop).call(action)  # type: ignore[arg-type]
    assert len(calls) == 1


def test_settings_give_the_backoff_and_its_patience_only_when_bounded() -> None:
    """LEDGER_RETRY_* are read in milliseconds and seconds; only --until-idle runs give up."""
    settings = Settings.from_env(
        {"LEDGER_RETRY_INITIAL_MS": "200", "LEDGER_RETRY_MAX_MS": "5000", "LEDGER_RETRY_GIVE_UP_S": "60"}
    )
    assert Backoff.from_settings(settings, bounded=True) == Backoff(0.2, 5.0, 60)
    assert Backoff.from_settings(settings, bounded=False) == Backoff(0.2, 5.0, None)
    assert Backoff.default(bounded=False) == Backoff(0.5, 30.0, None)


def test_keep_alive_restarts_a_component_whatever_it_raised() -> None:
    """A component thread of `run` that fails is logged and started again, not left dead."""
    stop = FakeStop()
    calls, action = _failing(2, RuntimeError("bug in a component"))
    with capture_logs() as logs:
        assert keep_alive("projector", action, stop, BACKOFF) == "done"  # type: ignore[arg-type]
    assert len(calls) == 3
    failed = [entry for entry in logs if entry["event"] == "component.failed"]
    assert [(entry["component"], entry["error"]) for entry in failed] == [("projector", "RuntimeError")] * 2


def test_keep_alive_stops_everything_on_a_configuration_error() -> None:
    """A wrong setting would fail every restart the same way: it stops all components and is raised."""
    stop = FakeStop()
    calls, action = _failing(1, ConfigError("LEDGER_SWEEP_CRON='x' is not a crontab line"))
    with pytest.raises(ConfigError, match="crontab"):
        keep_alive("scheduler", action, stop, BACKOFF)  # type: ignore[arg-type]
    assert len(calls) == 1 and stop.is_set()


def test_a_supervised_thread_hands_its_configuration_error_to_the_caller() -> None:
    """`run` reports a component thread's configuration error in its own thread, not in a traceback."""
    stop = threading.Event()
    _, action = _failing(1, ConfigError("bad setting"))
    worker = Supervised("projector", action, stop, BACKOFF)  # type: ignore[arg-type]
    worker.start()
    with pytest.raises(ConfigError, match="bad setting"):
        worker.finish()
    assert stop.is_set()
