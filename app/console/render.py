"""Templates and what they need to show the ledger's answers: times in UTC, time left, bars."""

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from ledger import times
from ledger.errors import UsageError
from ledger.retention import END_OF_TIME

HERE = Path(__file__).resolve().parent
PAGE = 50  # rows of any list on one page
# Pages hold personal data once opened: never cached, never framed, never sending a referrer.
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def when(value: datetime | None) -> str:
    """A time as a person reads it: `2026-01-01 09:30 UTC` (seconds only when there are any)."""
    if value is None:
        return "-"
    if value == END_OF_TIME:
        return "never (beyond the calendar)"
    moment = value.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC" if moment.second else "%Y-%m-%d %H:%M UTC")


def left(deadline: datetime | None, now: datetime) -> str:
    """The time left until `deadline`, or how long it is overdue: `2 d 4 h left`, `overdue by 3 d`."""
    if deadline is None:
        return "no fixed deadline"
    span = deadline - now
    late = span < timedelta(0)
    span = abs(span)
    days, hours, minutes = span.days, span.seconds // 3600, span.seconds // 60 % 60
    text = f"{days} d {hours} h" if days else f"{hours} h {minutes} min"
    return f"overdue by {text}" if late else f"{text} left"


def share(part: float, whole: float) -> float:
    """`part` of `whole` as a percentage for a bar, 0 to 100 (all of it when there is no whole)."""
    return 100.0 if whole <= 0 else max(0.0, min(100.0, 100.0 * part / whole))


def moment(text: str | None, what: str) -> datetime | None:
    """A time from a form: RFC 3339, or a date-time picker's `2026-01-01T09:30` read as UTC."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{what}: {text!r} is not a time; give it as 2026-01-31T09:30 (UTC)") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return times.within_range(value)
    except ValueError as error:
        raise UsageError(f"{what}: {text!r} {error}") from None


def picker(value: datetime | None) -> str:
    """A time as a date-time picker's value (UTC, to the second)."""
    return "" if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def summary(data: Mapping[str, Any] | None) -> str:
    """An event's data on one line: `category: account_contact; purposes: service, billing`."""

    def shown(value: Any) -> str:
        if isinstance(value, list | tuple):
            return ", ".join(shown(item) for item in value)
        if isinstance(value, Mapping):
            return "{" + summary(value) + "}"
        return "-" if value is None else str(value)

    return "; ".join(f"{key}: {shown(value)}" for key, value in (data or {}).items())


def instant(value: str | None) -> datetime | None:
    """A time the read model's JSON gives as RFC 3339 text, back as a time."""
    return None if value is None else datetime.fromisoformat(value)


templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters.update(when=when, picker=picker, summary=summary, instant=instant)
templates.env.globals.update(left=left, share=share, PAGE=PAGE)


def page(
    request: Request,
    name: str,
    context: Mapping[str, Any],
    status: int = 200,
    headers: Mapping[str, str] = {},
) -> Response:
    """The template `name` rendered with `context`, the session's form token and the time it was made."""
    session = getattr(request.state, "session", None)
    values = {"session": session, "now": datetime.now(UTC), **context}
    return templates.TemplateResponse(
        request, name, values, status_code=status, headers={**HEADERS, **headers}
    )
