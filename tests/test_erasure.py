"""Crypto-shredding on real PostgreSQL and Kafka: sealed at rest, erased on request, still verifiable."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from consumers.ingest import consume
from consumers.kafka import read_all
from consumers.publisher import Publisher
from ledger.audit import verify
from ledger.checkpoints import Checkpointer
from ledger.crypto import MasterKey, Unreadable, master_key
from ledger.errors import ErasureRefused, WrongMasterKey
from ledger.keys import wrap_context
from ledger.settings import Settings
from ledger.signing import signing_key
from ledger.store import Ledger
from projections import queries
from projections.breach import breach_impact
from projections.history import ERASED, history
from tests.helpers import T0, cli, collected, consent, event, ingest

pytestmark = pytest.mark.services
PHONE = "+15557654321"
NAME = "Zed Quincy Public"


def _personal() -> dict[str, Any]:
    data = collected()
    data["personal_data"] = {"phone": PHONE, "name": NAME}
    return data


def _everything_stored(settings: Settings) -> bytes:
    """Every byte of every ledger table, as one blob to search for plaintext."""
    with psycopg.connect(settings.database_url or "") as conn:
        tables = [
            row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ]
        dumps = [str(conn.execute(f"SELECT * FROM {table}").fetchall()).encode() for table in tables]
        states = [bytes(row[0]) for row in conn.execute("SELECT state FROM ledger_events")]
    return b"".join(dumps + states)


def test_round_trip_sealed_then_erased_everywhere(
    settings: Settings, ledger: Ledger, env: dict[str, str]
) -> None:
    """Personal data is sealed at rest, readable in history, then unreadable everywhere after erasure;
    verify stays ok; data collected afterwards is stored under a new key and flagged."""
    evidence = consent()
    evidence["evidence"] = f"typed name {NAME}"
    ingest(
        settings,
        ledger,
        event("acme", "zed", "data.collected", _personal(), minutes=1),
        event("acme", "zed", "consent.given", evidence, minutes=2),
    )
    stored = _everything_stored(settings)
    assert PHONE.encode() not in stored and NAME.encode() not in stored
    opened = [entry.personal for entry in history(ledger, "acme", "zed")]
    assert opened == [{"personal_data": {"phone": PHONE, "name": NAME}}, {"evidence": f"typed name {NAME}"}]

    ingest(
        settings,
        ledger,
        event("acme", "zed", "deletion.requested", {"request_id": "dsr-1", "verified": True}, minutes=3),
        event("acme", "zed", "deletion.completed", {"system": "crm", "request_id": "dsr-1"}, minutes=4),
    )
    document = queries.as_json(queries.subject_state(ledger, "acme", "zed"))
    assert document["erased"] is True and document["erased_at"]
    assert [entry.personal for entry in history(ledger, "acme", "zed") if entry.personal] == [ERASED, ERASED]
    assert history(ledger, "acme", "zed")[-1].type == "subject.erased"
    assert PHONE.encode() not in _everything_stored(settings)
    shown = cli(env, "subject", "acme", "zed")
    assert "erased: yes, since" in shown.stdout
    assert NAME not in cli(env, "history", "acme", "zed", "--json").stdout
    assert not queries.may_contact(ledger, "acme", "zed", "service", "sms").allowed

    late = _personal()
    late["personal_data"] = {"phone": "+15550000000"}
    tomorrow = int((datetime.now(UTC) + timedelta(days=1) - T0).total_seconds() // 60)  # after the erasure
    ingest(settings, ledger, event("acme", "zed", "data.collected", late, minutes=tomorrow, event_id="late"))
    entries = history(ledger, "acme", "zed")
    assert entries[-1].personal == {"personal_data": {"phone": "+15550000000"}}
    violations = queries.as_json(queries.subject_state(ledger, "acme", "zed"))["violations"]
    assert [(v["event_id"], v["category"]) for v in violations] == [("late", "account_contact")]
    assert "collected after the subject was erased" in violations[0]["reason"]

    key = signing_key(settings, create=False)
    Checkpointer(ledger, key, every=1000).step(force=True)
    report = verify(ledger, [key.public])
    assert report.ok, [b.line() for b in report.breaks]
    assert report.summary().startswith("ok: ")


def test_legal_hold_blocks_erasure_until_released(
    settings: Settings, ledger: Ledger, env: dict[str, str]
) -> None:
    """A hold stops both automatic and manual erasure; releasing it lets the pending erasure proceed."""
    ingest(
        settings,
        ledger,
        event("acme", "hal", "data.collected", _personal(), minutes=1),
        event("acme", "hal", "legalhold.placed", {"hold_id": "case-7", "reason": "litigation"}, minutes=2),
        event("acme", "hal", "deletion.requested", {"request_id": "r1", "verified": True}, minutes=3),
        event("acme", "hal", "deletion.completed", {"system": "crm"}, minutes=4),
    )
    assert queries.subject_state(ledger, "acme", "hal").erased is False
    with pytest.raises(ErasureRefused, match="case-7"):
        ledger.erase("acme", "hal", "by hand")
    refused = cli(env, "erase", "acme", "hal", "--reason", "by hand")
    assert refused.returncode == 1 and "legal hold 'case-7'" in refused.stdout

    ingest(settings, ledger, event("acme", "hal", "legalhold.released", {"hold_id": "case-7"}, minutes=5))
    assert queries.subject_state(ledger, "acme", "hal").erased is True
    assert history(ledger, "acme", "hal")[0].personal == ERASED


def test_manual_erase_and_partial_deletion(settings: Settings, ledger: Ledger, env: dict[str, str]) -> None:
    """Partial deletion marks holdings deleted and keeps the key; `erase` shreds by hand."""
    usage = collected(category="usage_metadata", system="analytics")
    ingest(
        settings,
        ledger,
        event("acme", "pat", "data.collected", _personal(), minutes=1),
        event("acme", "pat", "data.collected", usage, minutes=1),
        event(
            "acme",
            "pat",
            "deletion.requested",
            {"request_id": "p1", "verified": True, "categories": ["usage_metadata"]},
            minutes=2,
        ),
        event(
            "acme",
            "pat",
            "deletion.completed",
            {"system": "analytics", "categories": ["usage_metadata"]},
            minutes=3,
        ),
    )
    state = queries.subject_state(ledger, "acme", "pat")
    statuses = {(h.category, h.status) for h in state.holdings.values()}
    assert statuses == {("account_contact", "held"), ("usage_metadata", "deleted")}
    assert state.erased is False
    assert history(ledger, "acme", "pat")[0].personal == {"personal_data": {"phone": PHONE, "name": NAME}}

    done = cli(env, "erase", "acme", "pat", "--reason", "ticket 42")
    assert done.returncode == 0 and "1 data key(s) destroyed" in done.stdout
    assert history(ledger, "acme", "pat")[0].personal == ERASED
    again = cli(env, "erase", "acme", "pat", "--reason", "ticket 42")
    assert again.returncode == 0 and "already erased" in again.stdout


def test_erase_is_visible_in_the_read_model_at_once(
    settings: Settings, ledger: Ledger, env: dict[str, str]
) -> None:
    """After `erase` returns, with no projector run since, `subject` says erased and `check` denies even
    transactional messages."""
    ingest(settings, ledger, event("acme", "now", "data.collected", _personal()))
    erased = cli(env, "erase", "acme", "now", "--reason", "ticket 7")
    assert erased.returncode == 0
    assert "in the ledger: unreadable now" in erased.stdout
    assert "unreadable after the next `rotate-key --retire` (epochs 1 still live)" in erased.stdout
    assert queries.subject_state(ledger, "acme", "now").erased
    shown = cli(env, "subject", "acme", "now").stdout
    assert "erased: yes, since" in shown and "on Kafka topics the ledger created: deleted by" in shown
    reach = json.loads(cli(env, "subject", "acme", "now", "--json").stdout)["erasure_horizon"]
    assert reach["epochs_to_retire"] == [1] and not reach["key_copies_unreadable"]
    check = cli(env, "check", "acme", "now", "--purpose", "service", "--channel", "sms")
    assert check.returncode == 1 and "erased" in check.stdout


def test_erasure_waits_for_every_recipient_to_confirm(
    settings: Settings, ledger: Ledger, env: dict[str, str]
) -> None:
    """Shared with aws-storage, a subject is not shredded when crm confirms deletion, and stays exposed
    in a breach of aws-storage, until aws-storage confirms too; a tenant set not to await recipients
    is shredded at once and lists the recipient yet to confirm."""
    informed = Settings.from_env(env | {"LEDGER_RECIPIENTS_AWAITED_EXCEPT": "globex"})
    share = {"recipient": "aws-storage", "recipient_type": "subprocessor", "purpose": "service"}
    for tenant in ("acme", "globex"):
        ingest(
            informed,
            ledger,
            event(tenant, "ria", "data.collected", _personal(), minutes=1),
            event(tenant, "ria", "data.shared", share | {"categories": ["account_contact"]}, minutes=2),
            event(tenant, "ria", "deletion.requested", {"request_id": "r", "verified": True}, minutes=3),
            event(tenant, "ria", "deletion.completed", {"system": "crm"}, minutes=4),
        )
    waiting = queries.as_json(queries.subject_state(ledger, "acme", "ria"))
    assert not waiting["erased"] and waiting["recipients_unconfirmed"] == ["aws-storage"]
    window = (T0 + timedelta(minutes=5), T0 + timedelta(days=1))
    assert breach_impact(ledger, "acme", ["aws-storage"], window, discovered_at=window[1]).subjects == 1
    assert history(ledger, "acme", "ria")[0].personal == {"personal_data": {"phone": PHONE, "name": NAME}}
    informed_only = cli(env, "subject", "globex", "ria")
    assert "erased: yes" in informed_only.stdout
    assert "recipients yet to confirm deletion: aws-storage" in informed_only.stdout

    done = event("acme", "ria", "deletion.completed", {"system": "aws-storage"}, minutes=5)
    ingest(informed, ledger, done)
    assert queries.subject_state(ledger, "acme", "ria").erased
    assert history(ledger, "acme", "ria")[0].personal == ERASED


def test_key_rotation_keeps_every_subject_readable(settings: Settings, ledger: Ledger) -> None:
    """Re-wrapping under a new master key leaves events untouched and every subject readable."""
    ingest(
        settings,
        ledger,
        event("acme", "r1", "data.collected", _personal()),
        event("globex", "r2", "data.collected", _personal()),
    )
    old = master_key(settings, create=False)[0]
    new = MasterKey.generate()
    with psycopg.connect(settings.database_url or "") as conn:
        before = conn.execute("SELECT state FROM ledger_events ORDER BY notification_id").fetchall()
    assert ledger.rotate_keys(new, retire=False).rewrapped == 2
    with psycopg.connect(settings.database_url or "") as conn:
        assert conn.execute("SELECT state FROM ledger_events ORDER BY notification_id").fetchall() == before
    assert settings.database_url is not None
    rotated = Ledger(settings.database_url, new)
    try:
        for tenant, subject in (("acme", "r1"), ("globex", "r2")):
            assert history(rotated, tenant, subject)[0].personal == {
                "personal_data": {"phone": PHONE, "name": NAME}
            }
    finally:
        rotated.close()
    stale = Ledger(settings.database_url, old)
    try:
        with pytest.raises(WrongMasterKey, match=f"wrong master key \\(fingerprint {old.key_id}\\)"):
            history(stale, "acme", "r1")
    finally:
        stale.close()


def test_a_wrong_master_key_is_named_as_such(settings: Settings, ledger: Ledger, env: dict[str, str]) -> None:
    """A query under another master key fails with one line naming both fingerprints, exit 2."""
    ingest(settings, ledger, event("acme", "w1", "data.collected", _personal()))
    wrong = MasterKey.generate()
    result = cli(env | {"LEDGER_MASTER_KEY": wrong.text()}, "history", "acme", "w1")
    assert result.returncode == 2
    assert result.stderr.startswith(f"consent-ledger: error: wrong master key (fingerprint {wrong.key_id})")
    assert len(result.stderr.strip().splitlines()) == 1
    assert master_key(settings, create=False)[0].key_id in result.stderr

    assert settings.kafka_bootstrap is not None and settings.database_url is not None
    with Publisher(settings.kafka_bootstrap, settings) as publisher:
        publisher.publish(event("acme", "w1", "data.collected", _personal()))
    misconfigured = Ledger(settings.database_url, wrong)
    try:  # the consumer stops on it, instead of dead-lettering every message as if each were at fault
        with pytest.raises(WrongMasterKey):
            consume(settings, misconfigured, settings.kafka_bootstrap, until_idle=True)
    finally:
        misconfigured.close()
    assert read_all(settings.kafka_bootstrap, settings.deadletter_topic, settings) == []


def test_a_retired_epoch_leaves_old_copies_of_an_erased_key_unreadable(
    settings: Settings, ledger: Ledger, env: dict[str, str]
) -> None:
    """A copy of a data key taken before erasure (an old page, a backup) opens with nothing the ledger
    has once the key's epoch is retired: not with the master key, not restored into the table."""
    ingest(
        settings,
        ledger,
        event("acme", "gone", "data.collected", _personal()),
        event("acme", "kept", "data.collected", _personal()),
    )
    with psycopg.connect(settings.database_url or "") as conn:
        copy = conn.execute("SELECT * FROM ledger_events_keys WHERE subject = 'gone'").fetchone()
    assert copy is not None
    assert cli(env, "erase", "acme", "gone", "--reason", "ticket 9").returncode == 0
    with psycopg.connect(settings.database_url or "") as conn:
        assert conn.execute("SELECT count(*) FROM ledger_events_keys").fetchone() == (1,)  # shredded row gone

    rotated = cli(env, "rotate-key", "--retire")
    assert rotated.returncode == 0 and "retired epochs: 1" in rotated.stdout
    master = master_key(settings, create=False)[0]
    with pytest.raises(Unreadable):  # the attack that worked before epochs: the copy and master.key
        master.unwrap(bytes(copy[3]), wrap_context("acme", "gone", copy[0]))
    with psycopg.connect(settings.database_url or "") as conn:  # the old copy restored into the table
        placeholders = ", ".join(["%s"] * len(copy))
        conn.execute(f"INSERT INTO ledger_events_keys VALUES ({placeholders})", copy)
    with pytest.raises(Unreadable, match="under epoch 1, which was retired"):
        history(ledger, "acme", "gone")
    assert history(ledger, "acme", "kept")[0].personal == {"personal_data": {"phone": PHONE, "name": NAME}}


def test_verify_cli_reports_ok(env: dict[str, str], settings: Settings, ledger: Ledger) -> None:
    """`checkpoint` then `verify` through the CLI: ok, with the counts."""
    ingest(
        settings,
        ledger,
        event("acme", "v1", "consent.given", consent()),
        event("acme", "v2", "consent.given", consent()),
    )
    assert cli(env, "checkpoint").returncode == 0
    result = cli(env, "verify", "--json")
    assert result.returncode == 0
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["events"] == 4 and report["subjects"] == 2
