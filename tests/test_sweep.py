"""One stored event, or one subject that cannot be read, never stops a retention sweep for the others.

The far-future event is stored straight through the Ledger, as a producer from before the contract's
time bounds (or a hand-made import) could have stored it: retention arithmetic must hold whatever is
stored.
"""

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from consumers.scheduler import Sweeper
from ledger.retention import END_OF_TIME, SCHEDULED, Rule, add_duration, retention
from ledger.rights import clocks, deadline_rules
from ledger.settings import Settings
from ledger.state import Holding, RightsRequest, SubjectState
from ledger.store import Ledger, RecordFact
from projections.projector import Projector
from projections.retention import expired, rules_in_force
from tests.helpers import cli, collected, fact

LAST_INSTANT = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
LONG_AGO = -2 * 365 * 24 * 60  # minutes before T0: cookie data collected then expired long before now
COOKIES = Rule("cookies", "visitor_data", "P13M", "collected")


def _cookies(tenant: str, subject: str, event_id: str, *, minutes: int = LONG_AGO) -> RecordFact:
    return fact(
        tenant, subject, event_id, "data.collected", minutes=minutes, data=collected("visitor_data", "web")
    )


def _far_future(tenant: str, subject: str, event_id: str) -> RecordFact:
    return dataclasses.replace(_cookies(tenant, subject, event_id), occurred_at=LAST_INSTANT)


def test_a_duration_past_the_calendar_ends_at_the_end_of_time() -> None:
    """9999-12-31T23:59:59Z plus 13 months, 7 years or 30 days is the end of time, not `year 10001 is
    out of range`."""
    for duration in ("P13M", "P7Y", "P30D", "P0D"):
        expires = add_duration(LAST_INSTANT, duration)
        assert expires >= LAST_INSTANT
        assert duration == "P0D" or expires == END_OF_TIME
    assert add_duration(datetime(2024, 2, 29, tzinfo=UTC), "P1Y") == datetime(2025, 2, 28, tzinfo=UTC)


def test_an_expiry_past_the_calendar_is_scheduled_never_due() -> None:
    """A holding collected at the last instant is scheduled at the end of time and says it is never due."""
    holding = Holding(
        "visitor_data", "web", "contract", ["service"], None, None, LAST_INSTANT, LAST_INSTANT, "held"
    )
    state = SubjectState("acme", "far", holdings={("visitor_data", "web"): holding})
    kept = retention(holding, state, [COOKIES])
    assert (kept.status, kept.expires_at) == (SCHEDULED, END_OF_TIME)
    assert "never due" in kept.note


def test_a_rights_request_made_at_the_last_instant_has_a_deadline() -> None:
    """The 30-day clock of a request stored at 9999-12-31 neither overflows nor comes due."""
    request = RightsRequest("r1", right="erasure", requested_at=LAST_INSTANT)
    state = SubjectState("acme", "far", rights_requests={"r1": request})
    (far,) = clocks(state, datetime(2030, 1, 1, tzinfo=UTC), deadline_rules())
    assert far.deadline == END_OF_TIME and not far.overdue
    assert not clocks(state, END_OF_TIME, deadline_rules())[0].overdue


@pytest.mark.services
def test_a_far_future_event_stops_no_query_and_no_sweep(
    settings: Settings, ledger: Ledger, env: dict[str, str], tmp_path: Path
) -> None:
    """With a data.collected at 9999-12-31T23:59:59Z stored, subject, export, purge --dry-run (all
    tenants), overdue and a sweep all answer, and the other tenants' expired data is ordered."""
    ledger.append(
        [
            _far_future("acme", "far", "f1"),
            dataclasses.replace(
                fact("acme", "far", "f2", "deletion.requested", data={"request_id": "r1", "verified": True}),
                occurred_at=LAST_INSTANT,
            ),
            _cookies("globex", "g1", "g1"),
            _cookies("initech", "i1", "i1"),
        ]
    )
    Projector(ledger, page=100).run(until_idle=True)

    shown = cli(env, "subject", "acme", "far", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["holdings"][0]["retention_expires_at"].startswith("9999-12-31T23:59:59")
    exported = cli(env, "export", "acme", "far", "--out", str(tmp_path / "far.json"))
    assert exported.returncode == 0, exported.stderr
    assert cli(env, "overdue", "acme").returncode == 0
    listed = cli(env, "purge", "--dry-run", "--json")
    assert listed.returncode == 0, listed.stderr
    assert {(item["tenant"], item["subject"]) for item in json.loads(listed.stdout)} == {
        ("globex", "g1"),
        ("initech", "i1"),
    }

    assert settings.database_url is not None and settings.kafka_bootstrap is not None
    done = Sweeper(ledger, settings, settings.database_url, settings.kafka_bootstrap).sweep(datetime.now(UTC))
    assert done is not None
    assert {(order.tenant, order.subject) for order in done.ordered} == {("globex", "g1"), ("initech", "i1")}
    assert done.skipped.subjects == []


@pytest.mark.services
def test_subjects_that_fail_are_logged_counted_and_skipped(
    settings: Settings, ledger: Ledger, env: dict[str, str]
) -> None:
    """A subject whose read-model row Python cannot hold (a time after 9999 written by hand) and one the
    read model shows but the event store lacks fail alone: every other tenant is listed and ordered,
    and the report says `failed 2`."""
    ledger.append(
        [_cookies(tenant, "s1", f"{tenant}-1") for tenant in ("acme", "broken", "globex", "initech")]
    )
    Projector(ledger, page=100).run(until_idle=True)
    assert settings.database_url is not None
    with psycopg.connect(settings.database_url) as conn:
        conn.execute(
            "UPDATE proj_holdings SET last_collected = '10000-06-01T00:00:00Z' WHERE tenant = 'broken'"
        )
        for table in (
            "proj_subjects",
            "proj_holdings",
        ):  # a subject copied in from elsewhere, no history here
            conn.execute(
                f"INSERT INTO {table} SELECT 'ghost', 'nobody', {', '.join(_columns(conn, table)[2:])} "
                f"FROM {table} WHERE tenant = 'acme'"
            )

    listed = cli(env, "purge", "--dry-run")
    assert listed.returncode == 0, listed.stderr
    assert "acme/s1" in listed.stdout and "globex/s1" in listed.stdout and "initech/s1" in listed.stdout
    assert "broken/s1" not in listed.stdout
    assert "4 holding(s) due for purge (0 ordered, awaiting confirmation), failed 1" in listed.stdout
    assert "1 subject(s) failed" in listed.stderr

    swept = cli(env, "scheduler", "--until-idle")
    assert swept.returncode == 0, swept.stderr
    assert "ordered 3," in swept.stdout and "failed 2" in swept.stdout
    failures = [json.loads(line) for line in swept.stderr.splitlines() if "sweep.subject_failed" in line]
    assert {(entry["tenant"], entry["subject"], entry["step"]) for entry in failures} == {
        ("broken", "s1", "read"),
        ("ghost", "nobody", "order"),
    }
    rules = rules_in_force(ledger, settings.retention_policy, datetime.now(UTC))
    assert [due.tenant for due in expired(ledger, rules, datetime.now(UTC), "initech")] == ["initech"]


def _columns(conn: psycopg.Connection[tuple[object, ...]], table: str) -> list[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position",
        (table,),
    )
    return [str(row[0]) for row in rows]
