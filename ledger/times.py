"""How the ledger reads and writes a time: RFC 3339 only, within one range, one format everywhere.

Event times, query arguments and API parameters are all read by `parse`, so every time the ledger
holds lies in [EARLIEST, LATEST) and retention arithmetic on it (centuries added) cannot overflow.
"""

import re
from datetime import UTC, datetime

from ledger.errors import UsageError

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
EXAMPLE = "2026-01-31T09:30:00Z"
RANGE = "from 1970-01-01T00:00:00Z to before 2200-01-01T00:00:00Z"
# RFC 3339 section 5.6, ASCII digits only (Python's \d and int() also take other scripts' digits).
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
    r"(?P<offset>[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])?"
)


def parse(text: str) -> datetime:
    """An RFC 3339 timestamp within the accepted range, in UTC.

    Raises ValueError whose message completes "time ..." in one line and never quotes the text.
    """
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError(f"is not an RFC 3339 timestamp such as {EXAMPLE}")
    if match["offset"] is None:
        raise ValueError(f"has no UTC offset: write it as RFC 3339, e.g. {EXAMPLE}")
    # Check the year before any arithmetic: shifting 0001-01-01 or 9999-12-31 by an offset overflows.
    if not EARLIEST.year - 1 <= int(text[:4]) <= LATEST.year:
        raise ValueError(f"is outside the accepted range, {RANGE}")
    try:
        moment = datetime.fromisoformat(text.upper())  # the form is checked: only the date can be wrong
    except ValueError:
        raise ValueError(f"is not a valid date and time of day: write it as e.g. {EXAMPLE}") from None
    return within_range(moment)


def within_range(moment: datetime) -> datetime:
    """`moment` in UTC when it lies in the accepted range; ValueError otherwise."""
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise ValueError(f"is outside the accepted range, {RANGE}")
    return utc


def rfc3339(moment: datetime) -> str:
    """RFC 3339 in UTC with `Z`, as in 2026-01-31T09:30:00Z (fractions of a second kept)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def period(start: datetime | None, end: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    """A report's period, from the beginning to `now` where not given; refused out of order, which
    would report nothing and look like a clean record."""
    start, end = start or EARLIEST, end or now
    if start > end:
        raise UsageError("the period's start (from) is after its end (to): give it in order")
    return start, end
