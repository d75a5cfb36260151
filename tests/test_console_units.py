"""The console's pure pieces: how times, clocks and retention shifts read, without a server."""

from datetime import UTC, datetime, timedelta

import pytest

from app.console.render import left, moment, share, summary, when
from ledger.errors import UsageError
from ledger.retention import EARLIER, END_OF_TIME, LATER, UNCHANGED, Retention, shift

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_time_left_and_overdue_read_in_days_and_hours() -> None:
    """A deadline reads as the time left, or how long it is overdue; none reads as no fixed deadline."""
    assert left(NOW + timedelta(days=2, hours=4, minutes=5), NOW) == "2 d 4 h left"
    assert left(NOW + timedelta(minutes=90), NOW) == "1 h 30 min left"
    assert left(NOW - timedelta(days=3, hours=1), NOW) == "overdue by 3 d 1 h"
    assert left(None, NOW) == "no fixed deadline"


def test_times_read_in_utc_and_the_end_of_time_as_never() -> None:
    """Times show in UTC, seconds only when there are any; the calendar's end reads as never."""
    assert when(datetime(2026, 1, 1, 9, 30, tzinfo=UTC)) == "2026-01-01 09:30 UTC"
    assert when(datetime(2026, 1, 1, 10, 30, 5, tzinfo=UTC)) == "2026-01-01 10:30:05 UTC"
    assert when(END_OF_TIME) == "never (beyond the calendar)"
    assert when(None) == "-"


def test_form_times_are_utc_and_bounded() -> None:
    """A picker's time without an offset is UTC; an offset is honoured; nonsense and times out of the
    ledger's range are refused in one line naming the field."""
    assert moment("2026-01-31T09:30", "from") == datetime(2026, 1, 31, 9, 30, tzinfo=UTC)
    assert moment("2026-01-31T09:30:00+01:00", "from") == datetime(2026, 1, 31, 8, 30, tzinfo=UTC)
    assert moment("", "from") is None
    with pytest.raises(UsageError, match=r"^to: 'soon' is not a time"):
        moment("soon", "to")
    with pytest.raises(UsageError, match="outside the accepted range"):
        moment("2300-01-01T00:00", "to")


def test_bars_and_summaries() -> None:
    """A bar is a bounded percentage; an event's data reads on one line, lists joined."""
    assert share(5, 10) == 50.0
    assert share(20, 10) == 100.0
    assert share(1, 0) == 100.0
    assert summary({"category": "billing", "purposes": ["service", "billing"], "role": None}) == (
        "category: billing; purposes: service, billing; role: -"
    )


def test_a_proposed_retention_shifts_expiry_earlier_or_later() -> None:
    """An expiry moves earlier or later by date; no expiry counts as the end of time."""
    soon = Retention("scheduled", NOW, "a", "")
    late = Retention("scheduled", NOW + timedelta(days=1), "b", "")
    none = Retention("no_rule", None, None, "")
    assert shift(late, soon) == EARLIER
    assert shift(soon, late) == LATER
    assert shift(none, soon) == EARLIER
    assert shift(soon, none) == LATER
    assert shift(none, none) == UNCHANGED
