"""Dead letters kept in PostgreSQL: recorded with the batch, sealed, replayed, dropped and purged."""

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import orjson
import psycopg
import pytest

import schemas
from app import stack
from consumers.contract import Contract
from consumers.deadletter import DeadLetters, refusal
from consumers.ingest import Ingestor, consume
from consumers.kafka import open_producer, read_all
from consumers.publisher import Publisher
from consumers.replay import replay
from ledger.crypto import MasterKey, Unreadable
from ledger.deadletters import DROPPED, OPEN, REPLAYED, Selection, reason_class
from ledger.settings import Settings
from ledger.store import Ledger
from projections.schema import migrate
from tests.canary import CANARY
from tests.conftest import TEST_HOME, _free_port
from tests.helpers import Message, collected, consent, event, fact

NEW_CATEGORY = "voice_biometrics"


def _ingest(settings: Settings, ledger: Ledger) -> None:
    assert settings.kafka_bootstrap is not None
    consume(settings, ledger, settings.kafka_bootstrap, until_idle=True)


def _publish(settings: Settings, *messages: bytes | dict[str, Any]) -> None:
    assert settings.kafka_bootstrap is not None
    with Publisher(settings.kafka_bootstrap, settings) as publisher:
        for message in messages:
            if isinstance(message, bytes):
                publisher.publish_unchecked(b"acme/someone", message)
            else:
                publisher.publish(message)


def _letters(ledger: Ledger, **selection: Any) -> list[Any]:
    with ledger.writer.datastore.transaction() as curs:
        return ledger.deadletters.select(curs, Selection(**selection))


def _new_category(subject: str, event_id: str) -> bytes:
    """A data.collected of a category the vocabulary does not have (yet)."""
    return orjson.dumps(event("acme", subject, "data.collected", collected(NEW_CATEGORY), event_id=event_id))


def test_reason_classes_name_what_broke() -> None:
    """Reasons are classed by how they begin; a closed-vocabulary miss is `vocabulary`, not `schema`."""
    assert reason_class("not valid JSON: unexpected end at line 1 column 2") == "json"
    assert reason_class("schema violation at data.category: value is not in the closed vocabulary") == (
        "vocabulary"
    )
    assert reason_class("schema violation at envelope: required property 'id' is missing") == "schema"
    assert reason_class("conflicting duplicate: this tenant's event id was stored before") == "conflict"
    assert reason_class("internal: ProgrammingError") == "internal"
    assert reason_class("something new") == "other"


@pytest.mark.services
def test_refused_messages_are_recorded_with_the_batch(settings: Settings, ledger: Ledger) -> None:
    """Malformed JSON, a vocabulary miss and a conflicting duplicate are each recorded once, with
    origin, tenant (when legible) and reason class, and the good events beside them are stored."""
    reused = event("acme", "alice", "consent.given", consent(), event_id="reused")
    _publish(
        settings,
        reused,
        b'{"specversion": "1.0",',
        _new_category("bob", "b1"),
        {**reused, "type": "consent.withdrawn"},
    )
    _ingest(settings, ledger)

    letters = _letters(ledger)
    assert [(letter.reason_class, letter.tenant, letter.status) for letter in letters] == [
        ("json", None, OPEN),
        ("vocabulary", "acme", OPEN),
        ("conflict", "acme", OPEN),
    ]
    assert len({letter.origin for letter in letters}) == 3
    assert {letter.topic for letter in letters} == {settings.events_topic}
    assert ledger.writer.counts() == {"acme": 1}
    with ledger.writer.datastore.transaction() as curs:
        counts = ledger.deadletters.counts(curs, Selection(tenant="acme"))
    assert counts == {
        "conflict": {OPEN: 1, REPLAYED: 0, DROPPED: 0},
        "vocabulary": {OPEN: 1, REPLAYED: 0, DROPPED: 0},
    }


@pytest.mark.services
def test_a_batch_delivered_again_records_its_dead_letters_once(settings: Settings, ledger: Ledger) -> None:
    """After a crash between the store's commit and the offsets' commit the batch comes again: its
    refusals are not recorded twice, while a new message at a reused offset is a new letter."""
    assert settings.kafka_bootstrap is not None
    producer = open_producer(settings.kafka_bootstrap, settings)
    try:
        ingestor = Ingestor(
            ledger, Contract(settings.max_message_bytes), DeadLetters(producer, "dl", "ingest.deadlettered")
        )
        batch = [Message("events", 0, 7, b"acme/x", b"not json"), Message("events", 0, 8, None, b"[]")]
        ingestor.handle(batch)
        ingestor.handle(batch)
        assert len(_letters(ledger)) == 2
        ingestor.handle([Message("events", 0, 7, b"acme/x", b"other bytes")])
    finally:
        producer.close()
    assert [letter.offset for letter in _letters(ledger)] == [7, 8, 7]


@pytest.mark.services
def test_personal_bytes_of_a_dead_letter_are_unreadable_in_the_table(
    settings: Settings, ledger: Ledger
) -> None:
    """The canary in a refused event's subject and personal data is in no column of the dead-letter
    table (nor anywhere in the database); with the key, `open` gives the original bytes back."""
    data = {**collected(NEW_CATEGORY), "personal_data": {"phone": f"+1555{CANARY}"}}
    raw = orjson.dumps(event("acme", f"{CANARY}-subject", "data.collected", data, event_id="c1"))
    _publish(settings, raw)
    _ingest(settings, ledger)

    assert settings.database_url is not None
    with psycopg.connect(settings.database_url) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT format('%I.%I', table_schema, table_name) FROM information_schema.tables "
                "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
            )
        ]
        dumped = "".join(str(conn.execute(f"SELECT t::text FROM {table} t").fetchall()) for table in tables)
    assert any(name.endswith("_deadletters") for name in tables)
    assert "acme" in dumped  # the dump does see the table's clear columns
    assert CANARY not in dumped.lower()
    (letter,) = _letters(ledger)
    with ledger.writer.datastore.transaction() as curs:
        (opened,) = ledger.deadletters.open(curs, [letter])
    assert (opened.key, opened.value) == (b"acme/someone", raw)


def _extended_vocabulary(monkeypatch: pytest.MonkeyPatch) -> Contract:
    """The contract after a release that adds a category to the vocabulary."""
    vocabulary = orjson.loads(orjson.dumps(schemas.load(schemas.VOCABULARY)))
    vocabulary["$defs"]["category"]["enum"].append(NEW_CATEGORY)
    released = schemas.load

    def load(name: str, version: int = 1) -> dict[str, Any]:
        return vocabulary if name == schemas.VOCABULARY else released(name, version)

    monkeypatch.setattr(schemas, "load", load)
    return Contract(256 * 1024)


@pytest.mark.services
def test_replay_after_a_vocabulary_change_stores_the_refused_events_once(
    settings: Settings, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events refused for a category the vocabulary lacked stay refused on replay until the
    vocabulary has it; then they are stored exactly once (replaying twice, or two letters of the same
    event, stores nothing more), with their original Kafka origin and the replay that stored them."""
    same = _new_category("carol", "c1")
    _publish(settings, same, _new_category("dave", "d1"), same, b"not json")
    _ingest(settings, ledger)
    now = datetime.now(UTC)
    before = replay(ledger, Contract(settings.max_message_bytes), Selection(), now)
    assert (len(before.stored), len(before.refused)) == (0, 4)

    contract = _extended_vocabulary(monkeypatch)
    first = replay(ledger, contract, Selection(reason_class="vocabulary"), now)
    second = replay(ledger, contract, Selection(), now)

    assert sorted(event_id for _, event_id in first.stored) == ["c1", "c1", "d1"]
    assert first.replay is not None and first.refused == []
    (garbage,) = _letters(ledger, reason_class="json")
    assert [letter_id for letter_id, _ in second.refused] == [garbage.id] and second.stored == []
    assert ledger.writer.counts() == {"acme": 2}
    replayed = _letters(ledger, status=REPLAYED)
    assert sorted((letter.replay, letter.event_id) for letter in replayed) == [
        (first.replay, "c1"),
        (first.replay, "c1"),
        (first.replay, "d1"),
    ]
    earliest = next(letter for letter in replayed if letter.event_id == "c1")
    stored = [e for e in ledger.subject_events("acme", "carol") if type(e).__name__ == "DataCollected"]
    assert [(e.event_id, e.origin) for e in stored] == [("c1", earliest.origin)]  # type: ignore[attr-defined]


@pytest.mark.services
def test_drop_records_the_decision_and_discards_the_bytes(settings: Settings, ledger: Ledger) -> None:
    """A dropped letter keeps its reason and the decision, no longer its bytes, and is not replayed."""
    _publish(settings, b"not json")
    _ingest(settings, ledger)
    (letter,) = _letters(ledger)
    with ledger.writer.datastore.transaction(commit=True) as curs:
        dropped = ledger.deadletters.drop(curs, letter.id, "test garbage", datetime.now(UTC))
    assert (dropped.status, dropped.dropped_why, dropped.sealed) == (DROPPED, "test garbage", False)
    with ledger.writer.datastore.transaction() as curs, pytest.raises(Unreadable):
        ledger.deadletters.open(curs, [dropped])
    assert replay(ledger, Contract(settings.max_message_bytes), Selection(), datetime.now(UTC)).tried == 0


@pytest.mark.services
def test_retention_deletes_old_letters_and_destroys_their_days_key(
    settings: Settings, ledger: Ledger
) -> None:
    """Letters older than the retention period are deleted, and the key of their day is destroyed,
    so a copy of their row (a backup) no longer opens; today's letters stay readable."""
    now = datetime.now(UTC)
    old = refusal(Message("events", 0, 1, None, b"old"), "not valid JSON: old", 1024)
    new = refusal(Message("events", 0, 2, None, b"new"), "not valid JSON: new", 1024)
    with ledger.writer.datastore.transaction(commit=True) as curs:
        ledger.deadletters.record(curs, [old], now - timedelta(days=31), keep=1024)
        ledger.deadletters.record(curs, [new], now, keep=1024)
    stale = _letters(ledger)[0]
    with ledger.writer.datastore.transaction(commit=True) as curs:
        assert ledger.deadletters.purge(curs, now, 30) == 1
    assert [letter.offset for letter in _letters(ledger)] == [2]
    with ledger.writer.datastore.transaction() as curs:
        assert ledger.keys is not None
        assert ledger.keys.subjects(curs, "_deadletters") == [now.date().isoformat()]
        assert ledger.deadletters.open(curs, _letters(ledger))[0].value == b"new"
    assert stale.offset == 1


@pytest.fixture
def own_broker(env: dict[str, str]) -> Iterator[Settings]:
    """Settings whose broker is an embedded one of this test's own, to restart at will."""
    home = TEST_HOME / f"broker-{uuid4().hex[:8]}"
    variables = {**env, "LEDGER_HOME": str(home), "LEDGER_BROKER_PORT": str(_free_port())}
    del variables["LEDGER_KAFKA_BOOTSTRAP"]
    settings = Settings.from_env(variables)
    yield settings
    stack.down(settings)
    shutil.rmtree(home, ignore_errors=True)


@pytest.mark.services
def test_dead_letters_survive_a_broker_restart(own_broker: Settings) -> None:
    """The embedded broker forgets its topics when it restarts; the dead letters are still listed
    (and readable) from PostgreSQL, and a new refusal at a reused offset is recorded beside them."""
    endpoints = stack.up(own_broker)
    settings = Settings.from_env(
        {
            "LEDGER_DATABASE_URL": endpoints.database_url,
            "LEDGER_KAFKA_BOOTSTRAP": endpoints.kafka_bootstrap,
            "LEDGER_MASTER_KEY": own_broker.master_key or "",
            "LEDGER_EVENTS_TOPIC": own_broker.events_topic,
            "LEDGER_DEADLETTER_TOPIC": own_broker.deadletter_topic,
            "LEDGER_CONSUMER_GROUP": own_broker.consumer_group,
        }
    )
    ledger = Ledger(endpoints.database_url, MasterKey.parse(settings.master_key or "", "the test's key"))
    migrate(ledger)
    try:
        _publish(settings, b"first", b"second")
        _ingest(settings, ledger)
        stack.down(own_broker)
        stack.up(own_broker)
        assert read_all(endpoints.kafka_bootstrap, settings.deadletter_topic, settings) == []
        _publish(settings, b"third")
        _ingest(settings, ledger)
        letters = _letters(ledger)
        with ledger.writer.datastore.transaction() as curs:
            values = [opened.value for opened in ledger.deadletters.open(curs, letters)]
    finally:
        ledger.close()
    assert values == [b"first", b"second", b"third"]
    assert [letter.offset for letter in letters] == [0, 1, 0]


@pytest.mark.services
def test_erasing_a_subject_discards_its_dead_letters_bytes(settings: Settings, ledger: Ledger) -> None:
    """A letter naming an erased subject is dropped as `subject erased` and its bytes no longer open;
    another subject's letter, and one naming no legible subject, keep theirs."""
    ledger.append([fact("acme", "eve", "e1")])
    refused = [
        refusal(Message("events", 0, 1, None, _new_category("eve", "e2")), "schema violation: e", 4096),
        refusal(Message("events", 0, 2, None, _new_category("fay", "f1")), "schema violation: f", 4096),
        refusal(Message("events", 0, 3, None, b'{"tenant": "acme"}'), "schema violation: none", 4096),
    ]
    with ledger.writer.datastore.transaction(commit=True) as curs:
        ledger.deadletters.record(curs, refused, datetime.now(UTC), keep=4096)
    assert ledger.erase("acme", "eve", "test") is not None

    letters = {letter.offset: letter for letter in _letters(ledger)}
    assert (letters[1].status, letters[1].dropped_why, letters[1].sealed) == (
        DROPPED,
        "subject erased",
        False,
    )
    assert [letter.status for letter in (letters[2], letters[3])] == [OPEN, OPEN]
    with ledger.writer.datastore.transaction() as curs:
        assert [o.value for o in ledger.deadletters.open(curs, [letters[2], letters[3]])] == [
            refused[1].value,
            refused[2].value,
        ]
