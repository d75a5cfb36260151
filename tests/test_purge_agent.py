"""The purge agent on the real broker and database: orders made by the scheduler, executed by a
handler, confirmed with deletion.completed, stored by the consumer and closed by the next sweep."""

import subprocess
import sys
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import orjson
import pytest
from psycopg.sql import SQL

from consumers.contract import Contract, Rejected
from consumers.ingest import consume
from consumers.kafka import read_all
from consumers.purge_agent import Orders, PurgeAgent, Refuse, confirmation
from consumers.scheduler import Sweeper
from ledger.deadletters import Selection
from ledger.purges import PurgeOrder
from ledger.settings import Settings
from ledger.store import Ledger
from projections.projector import Projector
from projections.retention import unconfirmed_orders
from tests.conftest import ROOT
from tests.helpers import T0, cli, collected, fact

CLOSED = T0 + timedelta(days=10)
DUE = CLOSED.replace(year=CLOSED.year + 7)


def _order(**changes: Any) -> PurgeOrder:
    base = PurgeOrder(uuid4(), "acme", "ola", "crm", ["billing"], "billing-records", DUE)
    return replace(base, **changes)


def test_a_confirmation_is_the_same_event_for_every_delivery_and_passes_the_contract() -> None:
    """The deletion.completed for an order has an id derived from the order id alone (a re-sent order
    is confirmed by the same event), names the order as its request, and the ledger accepts it."""
    order = _order()
    first, again = confirmation(order, T0), confirmation(_order(order_id=order.order_id, resend=1), T0)
    assert first == again
    parsed = Contract(256 * 1024).parse(orjson.dumps(first))
    assert (parsed.type, parsed.data["request_id"], parsed.data["system"]) == (
        "deletion.completed",
        str(order.order_id),
        "crm",
    )
    assert confirmation(_order(), T0)["id"] != first["id"]


def test_a_message_that_is_no_purge_order_is_refused_without_quoting_it() -> None:
    """Garbage and an order missing a field are refused with a reason that names no value."""
    orders = Orders()
    for value in (b"qzcanaryzq", orjson.dumps({"id": "qzcanaryzq"})):
        with pytest.raises(Rejected) as refused:
            orders.parse(value)
        assert "qzcanaryzq" not in refused.value.reason


def _billing(system: str) -> dict[str, object]:
    data = collected("billing", system) | {"legal_basis": "contract"}
    del data["personal_data"]
    return data


def _ordered(settings: Settings, ledger: Ledger, systems: dict[str, list[str]]) -> Sweeper:
    """Billing data of each subject in its systems, expiring seven years after its account closed;
    the sweep at expiry has ordered and sent every purge."""
    facts = []
    for subject, held in systems.items():
        facts += [fact("acme", subject, f"{subject}-{s}", "data.collected", data=_billing(s)) for s in held]
        facts.append(fact("acme", subject, f"{subject}-closed", "account.closed", minutes=10 * 24 * 60))
    ledger.append(facts)
    Projector(ledger, page=100).run(until_idle=True)
    assert settings.database_url is not None and settings.kafka_bootstrap is not None
    sweeper = Sweeper(ledger, settings, settings.database_url, settings.kafka_bootstrap)
    done = sweeper.sweep(DUE)
    assert done is not None and len(done.sent) == sum(len(held) for held in systems.values())
    return sweeper


def _agent(settings: Settings, system: str, handler: Any, state: Path) -> PurgeAgent:
    return PurgeAgent(system, handler, settings, state=state, bootstrap=settings.kafka_bootstrap)


def _ingest(settings: Settings, ledger: Ledger) -> None:
    assert settings.kafka_bootstrap is not None
    consume(settings, ledger, settings.kafka_bootstrap, until_idle=True)
    Projector(ledger, page=100).run(until_idle=True)


def _confirmed(ledger: Ledger) -> dict[str, bool]:
    """Per system, whether its order is confirmed."""
    with ledger.writer.datastore.transaction() as curs:
        curs.execute(SQL("SELECT system, confirmed_at FROM {}").format(ledger.orders.table))
        return {row["system"]: row["confirmed_at"] is not None for row in curs.fetchall()}


def _completions(ledger: Ledger, subjects: list[str]) -> Counter[str]:
    """How many deletion.completed events are stored per subject."""
    return Counter(
        subject
        for subject in subjects
        for e in ledger.subject_events("acme", subject)
        if type(e).__name__ == "DeletionCompleted"
    )


@pytest.mark.services
def test_an_order_is_executed_confirmed_and_closed_end_to_end(
    settings: Settings, ledger: Ledger, tmp_path: Path
) -> None:
    """The crm agent executes the crm order only; its confirmation, stored and projected, closes that
    order at the next sweep, while the billing order nobody executed stays open; running again (or
    the order coming again) calls the handler no more and stores nothing twice."""
    sweeper = _ordered(settings, ledger, {"ola": ["crm", "billing"]})
    executed: list[PurgeOrder] = []
    totals = _agent(settings, "crm", executed.append, tmp_path / "crm.sqlite").run(until_idle=True)
    assert (totals.received, totals.executed, totals.confirmed) == (2, 1, 1)
    assert [(o.tenant, o.subject, o.system, o.categories) for o in executed] == [
        ("acme", "ola", "crm", ["billing"])
    ]
    _ingest(settings, ledger)
    assert sweeper.sweep(DUE + timedelta(days=1)) is not None
    assert _confirmed(ledger) == {"crm": True, "billing": False}

    again = PurgeAgent(
        "crm", executed.append, settings, state=tmp_path / "crm.sqlite", bootstrap=settings.kafka_bootstrap
    )
    again.group += ".again"  # a new group reads every order again, as after lost offsets
    assert again.run(until_idle=True).confirmed == 1
    _ingest(settings, ledger)
    assert len(executed) == 1
    assert _completions(ledger, ["ola"]) == {"ola": 1}


@pytest.mark.services
def test_a_failing_handler_leaves_its_order_unconfirmed_and_overdue(
    env: dict[str, str], ledger: Ledger, tmp_path: Path
) -> None:
    """A handler that keeps failing is retried, then its order goes to the agent's dead-letter topic
    unconfirmed; a refusal goes there at once; `overdue` shows both orders once the confirmation
    period has passed."""
    settings = Settings.from_env(
        env | {"LEDGER_RETRY_INITIAL_MS": "50", "LEDGER_RETRY_MAX_MS": "100", "LEDGER_RETRY_GIVE_UP_S": "1"}
    )
    sweeper = _ordered(settings, ledger, {"ola": ["billing"], "per": ["crm"]})
    calls: list[str] = []

    def broken(order: PurgeOrder) -> None:
        calls.append(order.subject)
        raise ConnectionError("the billing database is down")

    def unwilling(order: PurgeOrder) -> None:
        raise Refuse("an investigation holds it")

    billing = _agent(settings, "billing", broken, tmp_path / "billing.sqlite").run(until_idle=True)
    crm = _agent(settings, "crm", unwilling, tmp_path / "crm.sqlite").run(until_idle=True)
    assert (billing.confirmed, billing.deadlettered, crm.confirmed, crm.deadlettered) == (0, 1, 0, 1)
    assert len(calls) > 1
    assert settings.kafka_bootstrap is not None
    letters = read_all(settings.kafka_bootstrap, settings.purge_deadletter_topic, settings)
    reasons = sorted(dict(letter.headers)["reason"].decode() for letter in letters)
    assert "failed" in reasons[1] and "ConnectionError" in reasons[1]
    assert reasons[0] == "refused by the handler of system crm: an investigation holds it"

    _ingest(settings, ledger)
    assert sweeper.sweep(DUE + timedelta(days=1)) is not None
    assert _confirmed(ledger) == {"billing": False, "crm": False}
    late = unconfirmed_orders(ledger, "acme", DUE + timedelta(days=8), settings.purge_confirm_days)
    assert sorted(str(order["system"]) for order in late) == ["billing", "crm"]


@pytest.mark.services
def test_the_agents_dead_letters_are_logged_as_its_own(
    env: dict[str, str], settings: Settings, ledger: Ledger, tmp_path: Path
) -> None:
    """An order the handler refuses is logged as `purge_agent.deadlettered`, with where it came from
    and why, never as a dead letter of the ingest consumer (`ingest.deadlettered`)."""
    _ordered(settings, ledger, {"ola": ["crm"]})
    state = str(tmp_path / "crm.sqlite")
    handler = "tests.purge_handlers:refuses"
    run = cli(env, "purge-agent", "--system", "crm", "--handler", handler, "--state", state, "--until-idle")
    assert run.returncode == 0, run.stderr
    lines = [orjson.loads(line) for line in run.stderr.splitlines() if line.startswith("{")]
    letters = [line for line in lines if line["event"].endswith(".deadlettered")]
    assert [(line["event"], line["topic"], line["partition"], line["offset"]) for line in letters] == [
        ("purge_agent.deadlettered", settings.purge_topic, 0, 0)
    ]
    assert letters[0]["reason"] == "refused by the handler of system crm: an investigation holds it"


@pytest.mark.services
def test_an_agent_killed_mid_batch_confirms_no_order_twice(
    env: dict[str, str], settings: Settings, ledger: Ledger, tmp_path: Path
) -> None:
    """Killed (SIGKILL) while executing the third of five orders, then started again: every order is
    confirmed, each subject has exactly one deletion.completed stored, only the interrupted order's
    handler ran twice, and the ledger refused nothing."""
    subjects = [f"s{number}" for number in range(5)]
    sweeper = _ordered(settings, ledger, {subject: ["crm"] for subject in subjects})
    calls = tmp_path / "calls.txt"
    script = (
        "import sys; from pathlib import Path; from consumers.purge_agent import PurgeAgent; "
        "from tests.purge_handlers import dies_on_third; "
        "PurgeAgent('crm', dies_on_third, state=Path(sys.argv[1])).run(until_idle=True)"
    )
    variables = env | {"PURGE_TEST_CALLS": str(calls), "LEDGER_LOG_LEVEL": "warning"}
    run = [sys.executable, "-c", script, str(tmp_path / "crm.sqlite")]
    killed = subprocess.run(run, env=variables, cwd=ROOT, capture_output=True, timeout=120, check=False)
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    finished = subprocess.run(run, env=variables, cwd=ROOT, capture_output=True, timeout=120, check=False)
    assert finished.returncode == 0, finished.stderr.decode()[-2000:]

    _ingest(settings, ledger)
    assert sorted(Counter(calls.read_text().splitlines()).values()) == [1, 1, 1, 1, 2]
    assert _completions(ledger, subjects) == dict.fromkeys(subjects, 1)
    with ledger.writer.datastore.transaction() as curs:
        assert ledger.deadletters.counts(curs, Selection()) == {}
    assert sweeper.sweep(DUE + timedelta(days=1)) is not None
    assert set(_confirmed(ledger).values()) == {True}
