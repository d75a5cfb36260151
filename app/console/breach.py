"""Breach impact: the form, the answer as a chart and deadlines, and the affected subjects as CSV."""

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response, StreamingResponse

from app.console.render import moment, page
from app.console.sessions import Seeing
from app.http.params import TenantPath
from ledger.errors import UsageError
from ledger.store import Ledger
from projections import names
from projections.breach import BreachImpact, breach_impact

router = APIRouter()
Names = Annotated[list[str], Query(max_length=100)]
Time = Annotated[str, Query(alias="from", max_length=40)]


@dataclass(frozen=True)
class Question:
    """What the form asks: breached systems, categories (none: all), the window, when discovered."""

    systems: list[str]
    categories: list[str]
    window_from: datetime
    window_to: datetime
    discovered_at: datetime


def _question(system: list[str], category: list[str], start: str, end: str, discovered: str) -> Question:
    window_from, window_to = moment(start, "from"), moment(end, "to")
    if window_from is None or window_to is None:
        raise UsageError("give the window in which the systems were exposed: from and to")
    if window_from > window_to:
        raise UsageError("from is after to: give the window in order")
    return Question(
        system, category, window_from, window_to, moment(discovered, "discovered at") or datetime.now(UTC)
    )


def _impact(ledger: Ledger, tenant: str, question: Question, *, listed: bool) -> BreachImpact:
    names.require_systems(ledger, tenant, question.systems)
    names.require_vocabulary("category", question.categories)
    return breach_impact(
        ledger,
        tenant,
        question.systems,
        (question.window_from, question.window_to),
        discovered_at=question.discovered_at,
        categories=question.categories or None,
        list_subjects=listed,
    )


@router.get("/t/{tenant}/breach")
def breach(
    request: Request,
    *,
    tenant: TenantPath,
    session: Seeing,
    system: Names = [],  # noqa: B006 - FastAPI copies query defaults
    category: Names = [],  # noqa: B006
    window_from: Time = "",
    window_to: Annotated[str, Query(alias="to", max_length=40)] = "",
    discovered_at: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    """The form; with systems and a window, the impact under it."""
    ledger: Ledger = request.app.state.services.ledger
    impact = None
    if system:
        question = _question(system, category, window_from, window_to, discovered_at)
        impact = _impact(ledger, tenant, question, listed=False)
    return page(
        request,
        "breach.html",
        {
            "tenant": tenant,
            "systems": names.systems(ledger, tenant),
            "categories": names.vocabulary("category"),
            "asked": {
                "system": system,
                "category": category,
                "from": window_from,
                "to": window_to,
                "discovered_at": discovered_at,
            },
            "impact": impact,
            "jurisdictions": []
            if impact is None
            else [(name, entry["subjects"]) for name, entry in sorted(impact.by_jurisdiction.items())],
            "by_category": [] if impact is None else sorted(impact.by_category.items()),
            "query": request.url.query,
        },
    )


@router.get("/t/{tenant}/breach.csv")
def breach_csv(
    request: Request,
    *,
    tenant: TenantPath,
    session: Seeing,
    system: Names = [],  # noqa: B006
    category: Names = [],  # noqa: B006
    window_from: Time = "",
    window_to: Annotated[str, Query(alias="to", max_length=40)] = "",
    discovered_at: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    """Every affected subject, with the categories exposed and the jurisdictions, as CSV."""
    if not system:
        raise UsageError("name at least one breached system")
    question = _question(system, category, window_from, window_to, discovered_at)
    impact = _impact(request.app.state.services.ledger, tenant, question, listed=True)

    def rows() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["subject", "categories", "jurisdictions"])
        for person in impact.affected or []:
            writer.writerow([person.subject, " ".join(person.categories), " ".join(person.jurisdictions)])
            if buffer.tell() > 64 * 1024:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    filename = f"breach-{tenant}-{question.discovered_at:%Y%m%dT%H%M%SZ}.csv"
    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )
