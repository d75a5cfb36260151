"""Point-in-time answers from the event store, by event time and by what was known when."""

import time
from datetime import UTC, datetime, timedelta

import pytest

from ledger.errors import UnknownSubject
from ledger.store import Ledger
from projections.timeline import state_at
from tests.helpers import T0, cli, fact

pytestmark = pytest.mark.services


def _at(ledger: Ledger, minutes: float, known_at: datetime | None = None, tenant: str = "acme") -> str | None:
    consent = state_at(ledger, tenant, "ann", T0 + timedelta(minutes=minutes), known_at).consent
    record = consent.get(("marketing", "sms"))
    return None if record is None else record.state


def test_consent_story_with_a_late_withdrawal(ledger: Ledger, env: dict[str, str]) -> None:
    """Given, withdrawn, re-given, STOP, START: each instant has its answer; a late event changes the
    past only for those who count what was recorded after it."""
    stop = {"channel": "sms", "keyword": "STOP"}
    start = {"purpose": "marketing", "channel": "sms", "method": "sms_keyword"}
    ledger.append(
        [
            fact("acme", "ann", "given", minutes=10),
            fact("acme", "ann", "withdrawn", "consent.withdrawn", minutes=30),
            fact("acme", "ann", "regiven", minutes=50),
            fact("acme", "ann", "stop", "optout.received", minutes=70, data=stop),
            fact("acme", "ann", "start", minutes=90, data=start),
        ]
    )
    assert [_at(ledger, m) for m in (5, 20, 40, 60, 80, 100)] == [
        None, "granted", "withdrawn", "granted", "opted_out", "granted",
    ]  # fmt: skip
    time.sleep(0.01)
    known = datetime.now(UTC)
    time.sleep(0.01)
    ledger.append([fact("acme", "ann", "late", "consent.withdrawn", minutes=60)])

    assert _at(ledger, 65) == "withdrawn"
    assert _at(ledger, 65, known_at=known) == "granted"
    assert _at(ledger, 55) == "granted"
    assert _at(ledger, 100) == "granted"

    moment = (T0 + timedelta(minutes=65)).isoformat()
    denied = cli(env, "check", "acme", "ann", "--purpose", "marketing", "--channel", "sms", "--at", moment)
    assert denied.returncode == 1 and "withdrawn" in denied.stdout
    then = cli(
        env, "check", "acme", "ann", "--purpose", "marketing", "--channel", "sms",
        "--at", moment, "--known-at", known.isoformat(),
    )  # fmt: skip
    assert then.returncode == 0
    shown = cli(env, "subject", "acme", "ann", "--as-of", moment, "--json")
    assert '"state": "withdrawn"' in shown.stdout


def test_point_in_time_is_tenant_scoped(ledger: Ledger) -> None:
    """Another tenant's subject of the same id is unknown, at any time."""
    ledger.append([fact("acme", "ann", "e1", minutes=1)])
    with pytest.raises(UnknownSubject):
        state_at(ledger, "globex", "ann", T0 + timedelta(minutes=5))


def test_bad_time_argument_is_one_line(env: dict[str, str]) -> None:
    """A malformed --as-of is refused by the parser, exit 2."""
    result = cli(env, "subject", "acme", "ann", "--as-of", "yesterday")
    assert result.returncode == 2 and "not an RFC 3339 time" in result.stderr
