"""The retention scheduler on the real broker and database, with an injected clock."""

import json
import threading
from datetime import UTC, datetime, timedelta

import jsonschema_rs
import psycopg
import pytest

import schemas
from consumers.kafka import read_all
from consumers.scheduler import LOCK, Sweeper
from ledger.purges import orders_for
from ledger.retention import policy_document
from ledger.settings import Settings
from ledger.store import Ledger
from ledger.sweeps import SweepSummary
from ledger.times import rfc3339
from projections import queries
from projections.history import history
from projections.projector import Projector
from projections.retention import expired, order_counts, rules_in_force, sweeps
from tests.helpers import T0, cli, collected, fact

pytestmark = pytest.mark.services
CLOSED = T0 + timedelta(days=10)
DUE = CLOSED.replace(year=CLOSED.year + 7)


def _billing(system: str) -> dict[str, object]:
    data = collected("billing", system) | {"legal_basis": "contract"}
    del data["personal_data"]
    return data


@pytest.fixture
def sweeper(settings: Settings, ledger: Ledger) -> Sweeper:
    """A subject whose billing data in two systems expires seven years after the account closed."""
    ledger.append(
        [
            fact(
                "acme",
                "ola",
                "o1",
                "data.collected",
                data=_billing("billing"),
                personal={"personal_data": {"iban": "X"}},
            ),
            fact("acme", "ola", "o2", "data.collected", data=_billing("crm")),
            fact("acme", "ola", "o3", "account.closed", minutes=10 * 24 * 60),
        ]
    )
    Projector(ledger, page=100).run(until_idle=True)
    assert settings.database_url is not None and settings.kafka_bootstrap is not None
    return Sweeper(ledger, settings, settings.database_url, settings.kafka_bootstrap)


def _orders(settings: Settings) -> list[dict[str, object]]:
    assert settings.kafka_bootstrap is not None
    return [
        json.loads(record.value)
        for record in read_all(settings.kafka_bootstrap, settings.purge_topic, settings)
    ]


def test_seven_years_to_the_day_then_orders_once_confirms_and_shreds(
    sweeper: Sweeper, settings: Settings, ledger: Ledger
) -> None:
    """Nothing is due the second before; at expiry one order per system goes out with the right schema;
    a second sweep orders nothing again; confirmations close the orders and shred the key."""
    assert sweeper.sweep(DUE - timedelta(seconds=1)) is not None
    assert _orders(settings) == []
    first = sweeper.sweep(DUE)
    assert first is not None and len(first.ordered) == 2 and len(first.sent) == 2
    again = sweeper.sweep(DUE + timedelta(hours=1))
    assert again is not None and again.ordered == [] and again.sent == []

    orders = _orders(settings)
    validator = jsonschema_rs.validator_for(
        schemas.load(schemas.PURGE_ORDER),
        registry=jsonschema_rs.Registry(
            [(schemas.load(schemas.VOCABULARY)["$id"], schemas.load(schemas.VOCABULARY))]
        ),
    )
    assert all(validator.is_valid(order) for order in orders)
    assert sorted(order["data"]["system"] for order in orders) == ["billing", "crm"]  # type: ignore[index]
    ordered = [e for e in history(ledger, "acme", "ola") if e.type == "retention.expired"]
    assert sorted(str(e.data["system"]) for e in ordered) == ["billing", "crm"]
    assert all(e.occurred_at == DUE and e.data["rule"] == "billing-records" for e in ordered)
    with psycopg.connect(settings.database_url or "") as conn:
        expired_events = conn.execute(
            "SELECT count(*) FROM ledger_events WHERE topic LIKE '%RetentionExpired'"
        ).fetchone()
    assert expired_events == (2,)

    ledger.append(
        [
            fact(
                "acme",
                "ola",
                "d1",
                "deletion.completed",
                minutes=10 * 24 * 60 + 1,
                data={"system": "billing"},
            ),
            fact("acme", "ola", "d2", "deletion.completed", minutes=10 * 24 * 60 + 1, data={"system": "crm"}),
        ]
    )
    Projector(ledger, page=100).run(until_idle=True)
    done = sweeper.sweep(DUE + timedelta(days=1))
    assert done is not None and done.confirmed == [("acme", "ola")] and done.shredded == [("acme", "ola")]
    assert history(ledger, "acme", "ola")[0].personal == "erased"


def test_every_sweep_is_recorded_whether_it_orders_or_not(
    sweeper: Sweeper, settings: Settings, ledger: Ledger, env: dict[str, str]
) -> None:
    """A sweep that finds nothing is recorded as the last sweep, apart from the last that ordered;
    a sweep that could not take the lock, and a dry run, record nothing; `stats` tells them apart."""
    assert sweeps(ledger) == SweepSummary(0, None, None)
    assert "last sweep       never  (no sweep recorded: is a scheduler running?)" in cli(env, "stats").stdout

    assert sweeper.sweep(DUE - timedelta(days=1)) is not None  # nothing due yet
    found_nothing = sweeps(ledger)
    assert found_nothing.sweeps == 1 and found_nothing.last_ordered is None
    assert found_nothing.last is not None and found_nothing.last.at == DUE - timedelta(days=1)
    assert found_nothing.last.ordered == 0

    assert sweeper.sweep(DUE) is not None
    assert sweeper.sweep(DUE + timedelta(hours=1)) is not None  # ordered already: nothing new
    with psycopg.connect(settings.database_url or "", autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (LOCK,))
        assert sweeper.sweep(DUE + timedelta(hours=2)) is None
    assert cli(env, "scheduler", "--dry-run").returncode == 0
    recorded = sweeps(ledger)
    assert recorded.sweeps == 3
    assert recorded.last is not None and recorded.last.at == DUE + timedelta(hours=1)
    assert recorded.last.ordered == 0
    assert recorded.last_ordered is not None and recorded.last_ordered.at == DUE
    assert dict(recorded.last_ordered.orders) == {"acme": 2}
    assert sweeps(ledger, "acme").last_ordered == recorded.last_ordered
    assert sweeps(ledger, "globex").last_ordered is None

    stats = json.loads(cli(env, "stats", "--json").stdout)
    assert stats["sweeps"] == 3
    assert stats["last_sweep"]["at"] == rfc3339(DUE + timedelta(hours=1))
    assert (stats["last_sweep"]["ordered"], stats["last_sweep_ordered"]["ordered"]) == (0, 2)
    assert stats["last_sweep_ordered"]["orders"] == {"acme": 2}
    shown = cli(env, "stats").stdout
    assert (
        f"last sweep       {rfc3339(DUE + timedelta(hours=1))}  ordered 0, failed 0 (3 sweeps run)" in shown
    )
    assert f"last ordering    {rfc3339(DUE)}  ordered 2 (the last sweep that ordered a purge)" in shown


def test_recipients_are_ordered_to_purge_and_shredding_waits_for_them(
    sweeper: Sweeper, settings: Settings, ledger: Ledger
) -> None:
    """Billing data shared with a payment processor expires there too: it gets its own order, and the
    key is shredded only once the recipient has confirmed deleting it as well."""
    shared = {"recipient": "stripe", "recipient_type": "subprocessor", "purpose": "billing"}
    ledger.append(
        [fact("acme", "ola", "s1", "data.shared", minutes=5, data=shared | {"categories": ["billing"]})]
    )
    Projector(ledger, page=100).run(until_idle=True)
    first = sweeper.sweep(DUE)
    assert first is not None and sorted(order.system for order in first.ordered) == [
        "billing",
        "crm",
        "stripe",
    ]

    _confirm(ledger, "billing", "crm")
    systems_done = sweeper.sweep(DUE + timedelta(days=1))
    assert systems_done is not None and systems_done.shredded == []
    assert history(ledger, "acme", "ola")[0].personal == {"personal_data": {"iban": "X"}}
    _confirm(ledger, "stripe")
    all_done = sweeper.sweep(DUE + timedelta(days=2))
    assert all_done is not None and all_done.shredded == [("acme", "ola")]


def test_a_sweep_killed_before_shredding_shreds_on_the_next_one(
    sweeper: Sweeper, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweep that dies between seeing the purges confirmed and shredding the key leaves the orders
    open, so the next sweep still shreds (confirming first skipped the shredding for good)."""
    sweeper.sweep(DUE)
    _confirm(ledger, "billing", "crm")

    def killed(*_: object) -> None:
        raise SystemExit("killed")

    with monkeypatch.context() as crash:
        crash.setattr(Ledger, "erase", killed)
        with pytest.raises(SystemExit):
            sweeper.sweep(DUE + timedelta(days=1))
    done = sweeper.sweep(DUE + timedelta(days=2))
    assert done is not None and done.shredded == [("acme", "ola")] and done.confirmed == [("acme", "ola")]
    assert history(ledger, "acme", "ola")[0].personal == "erased"
    assert order_counts(ledger, DUE, 30) == {"open": 0, "confirmed": 2, "overdue": 0}


def test_unconfirmed_order_is_resent_and_flagged_overdue(
    sweeper: Sweeper, settings: Settings, env: dict[str, str], ledger: Ledger
) -> None:
    """An order nobody confirms within the confirmation time goes out again, flagged overdue (and
    counted so, as /metrics reports it)."""
    sweeper.sweep(DUE)
    assert order_counts(ledger, DUE, settings.purge_confirm_days) == {"open": 2, "confirmed": 0, "overdue": 0}
    late = sweeper.sweep(DUE + timedelta(days=settings.purge_confirm_days, seconds=1))
    assert late is not None and len(late.sent) == 2 and all(order.overdue for order in late.sent)
    resent = [o for o in _orders(settings) if o["data"]["resend"] == 1]  # type: ignore[index]
    assert len(resent) == 2 and all(o["data"]["overdue"] for o in resent)  # type: ignore[index]
    at = (DUE + timedelta(days=2 * settings.purge_confirm_days, seconds=2)).isoformat()
    listed = json.loads(cli(env, "overdue", "acme", "--at", at, "--json").stdout)
    assert sorted(o["system"] for o in listed["purge_orders"]) == ["billing", "crm"]
    counted = order_counts(ledger, datetime.fromisoformat(at), settings.purge_confirm_days)
    assert counted == {"open": 2, "confirmed": 0, "overdue": 2}


def test_two_schedulers_never_sweep_at_once(sweeper: Sweeper, settings: Settings) -> None:
    """While another holds the advisory lock, a sweep does nothing."""
    with psycopg.connect(settings.database_url or "", autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (LOCK,))
        assert sweeper.sweep(DUE) is None
    assert _orders(settings) == []
    results = []
    threads = [threading.Thread(target=lambda: results.append(sweeper.sweep(DUE))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(_orders(settings)) == 2  # whichever won, each holding was ordered exactly once


def test_crash_between_recording_and_sending_leaves_one_order(
    sweeper: Sweeper, settings: Settings, ledger: Ledger
) -> None:
    """Orders recorded but never sent (a crash) are sent by the next sweep, once each."""
    rules = rules_in_force(ledger, None, DUE)
    ledger.order_purges(orders_for(expired(ledger, rules, DUE)), DUE)  # recorded, then "crash" before sending
    assert _orders(settings) == []
    rerun = sweeper.sweep(DUE)
    assert rerun is not None and rerun.ordered == [] and len(rerun.sent) == 2
    assert len(_orders(settings)) == 2


def test_scheduler_command_until_idle(sweeper: Sweeper, env: dict[str, str]) -> None:
    """`scheduler --until-idle` runs one sweep now and reports it (nothing of this subject is due yet)."""
    result = cli(env, "scheduler", "--until-idle")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ordered 0, sent 0") and "failed 0" in result.stdout


def test_scheduler_at_is_refused_unless_dry_run_and_has_no_side_effect(
    sweeper: Sweeper, settings: Settings, ledger: Ledger, env: dict[str, str]
) -> None:
    """`scheduler --until-idle --at T` is refused in one line, recording, sending and appending
    nothing; `scheduler --dry-run --at T` prints exactly what `purge --dry-run --at T` prints."""
    refused = cli(env, "scheduler", "--until-idle", "--at", DUE.isoformat())
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "--at only simulates: add --dry-run" in refused.stderr
    assert _orders(settings) == []
    assert [e.type for e in history(ledger, "acme", "ola")].count("retention.expired") == 0
    with psycopg.connect(settings.database_url or "") as conn:
        assert conn.execute("SELECT count(*) FROM ledger_events_purge_orders").fetchone() == (0,)

    simulated = cli(env, "scheduler", "--dry-run", "--at", DUE.isoformat())
    listed = cli(env, "purge", "--dry-run", "--at", DUE.isoformat())
    assert simulated.returncode == listed.returncode == 0, simulated.stderr
    assert simulated.stdout == listed.stdout
    assert "2 holding(s) due for purge (0 ordered, awaiting confirmation), failed 0" in listed.stdout
    assert _orders(settings) == []


def _lengthened(ledger: Ledger) -> None:
    """Adopt the shipped policy with billing records kept eight years instead of seven."""
    document = policy_document(None)
    for rule in document["rule"]:
        if rule["id"] == "billing-records":
            rule["duration"] = "P8Y"
    assert ledger.adopt_policy(document, "dpo", "billing records kept a year longer") is not None


def test_a_policy_change_never_duplicates_an_open_order(
    sweeper: Sweeper, settings: Settings, ledger: Ledger
) -> None:
    """Holdings ordered purged and not yet confirmed are not ordered again after `adopt-policy`
    lengthened their rule, even once they expire under the new rule too."""
    first = sweeper.sweep(DUE)
    assert first is not None and len(first.ordered) == 2
    _lengthened(ledger)
    later = sweeper.sweep(DUE.replace(year=DUE.year + 1) + timedelta(days=1))
    assert later is not None and later.ordered == []
    with psycopg.connect(settings.database_url or "") as conn:
        assert conn.execute("SELECT count(*) FROM ledger_events_purge_orders").fetchone() == (2,)
    assert [e.type for e in history(ledger, "acme", "ola")].count("retention.expired") == 2


def test_subject_and_dry_run_say_purge_ordered_awaiting_confirmation_then_overdue(
    settings: Settings, ledger: Ledger, env: dict[str, str]
) -> None:
    """Once its purge is ordered, a holding reads `purge ordered <date>, awaiting confirmation` in
    subject (text and JSON) and purge --dry-run, and `overdue` once unconfirmed past the confirm days."""
    cookies = collected("visitor_data", "web")
    ledger.append([fact("acme", "vic", "v1", "data.collected", minutes=-2 * 365 * 24 * 60, data=cookies)])
    Projector(ledger, page=100).run(until_idle=True)
    assert settings.database_url is not None and settings.kafka_bootstrap is not None
    sweeper = Sweeper(ledger, settings, settings.database_url, settings.kafka_bootstrap)
    ordered_at = datetime.now(UTC) - timedelta(days=settings.purge_confirm_days + 1)
    done = sweeper.sweep(ordered_at)
    assert done is not None and len(done.ordered) == 1

    holding = json.loads(cli(env, "subject", "acme", "vic", "--json").stdout)["holdings"][0]
    assert holding["retention_status"] == "purge_ordered"
    assert holding["purge_ordered_at"] == queries.plain(ordered_at)
    assert holding["purge_overdue"] is True
    expected = f"purge ordered {queries.plain(ordered_at)}, awaiting confirmation, overdue"
    assert holding["retention_note"] == expected
    assert (
        f"retention expired {holding['retention_expires_at']} (" in cli(env, "subject", "acme", "vic").stdout
    )
    assert expected in cli(env, "subject", "acme", "vic").stdout

    not_yet = ordered_at + timedelta(days=1)
    listed = cli(env, "purge", "--dry-run", "--at", queries.plain(not_yet))
    assert f"purge ordered {queries.plain(ordered_at)}, awaiting confirmation\n" in listed.stdout
    assert "1 holding(s) due for purge (1 ordered, awaiting confirmation)" in listed.stdout
    rows = json.loads(cli(env, "purge", "--dry-run", "--json").stdout)
    assert [(row["subject"], row["purge_ordered_at"], row["purge_overdue"]) for row in rows] == [
        ("vic", queries.plain(ordered_at), True)
    ]


def test_hold_placed_before_expiry_and_released_after(
    sweeper: Sweeper, settings: Settings, ledger: Ledger
) -> None:
    """A hold suspends the purge past expiry; once released, what came due meanwhile is ordered at once."""
    ledger.append(
        [
            fact(
                "acme",
                "ola",
                "h1",
                "legalhold.placed",
                minutes=20 * 24 * 60,
                data={"hold_id": "h", "reason": "x"},
            )
        ]
    )
    Projector(ledger, page=100).run(until_idle=True)
    held = sweeper.sweep(DUE + timedelta(days=30))
    assert held is not None and held.ordered == []
    ledger.append(
        [fact("acme", "ola", "h2", "legalhold.released", minutes=21 * 24 * 60, data={"hold_id": "h"})]
    )
    Projector(ledger, page=100).run(until_idle=True)
    released = sweeper.sweep(DUE + timedelta(days=31))
    assert released is not None and len(released.ordered) == 2
    assert all(order.expired_at == DUE for order in released.ordered)


def _confirm(ledger: Ledger, *systems: str) -> None:
    """Each system confirms it deleted ola's data, ten days in, and the read model takes it in."""
    ledger.append(
        [
            fact(
                "acme",
                "ola",
                f"d-{system}",
                "deletion.completed",
                minutes=10 * 24 * 60 + 1,
                data={"system": system},
            )
            for system in systems
        ]
    )
    Projector(ledger, page=100).run(until_idle=True)
