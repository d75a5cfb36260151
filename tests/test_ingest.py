"""End to end on the real broker and database: publish -> ingest -> project -> query."""

import orjson
import pytest

from consumers.ingest import consume
from consumers.kafka import read_all
from consumers.publisher import Publisher
from ledger.settings import Settings
from ledger.store import Ledger
from projections import queries
from projections.projector import Projector
from tests.helpers import collected, consent, event

pytestmark = pytest.mark.services


def _ingest(settings: Settings, ledger: Ledger) -> None:
    assert settings.kafka_bootstrap is not None
    consume(settings, ledger, settings.kafka_bootstrap, until_idle=True)
    Projector(ledger, settings.projection_page).run(until_idle=True)


def test_published_events_answer_subject_and_check(settings: Settings, ledger: Ledger) -> None:
    """Consent given on SMS and withdrawn on email is what `subject` and `check` report."""
    assert settings.kafka_bootstrap is not None
    with Publisher(settings.kafka_bootstrap, settings) as publisher:
        publisher.publish(event("acme", "alice", "data.collected", collected(), minutes=1))
        publisher.publish(event("acme", "alice", "consent.given", consent("marketing", "sms"), minutes=2))
        publisher.publish(event("acme", "alice", "consent.given", consent("marketing", "email"), minutes=3))
        publisher.publish(
            event("acme", "alice", "consent.withdrawn", consent("marketing", "email"), minutes=4)
        )
    _ingest(settings, ledger)

    document = queries.as_json(queries.subject_state(ledger, "acme", "alice"))
    assert document["erased"] is False
    assert [(h["category"], h["system"], h["status"]) for h in document["holdings"]] == [
        ("account_contact", "crm", "held")
    ]
    states = {(c["purpose"], c["channel"]): c["state"] for c in document["consent"]}
    assert states == {("marketing", "sms"): "granted", ("marketing", "email"): "withdrawn"}
    assert queries.may_contact(ledger, "acme", "alice", "marketing", "sms").allowed
    assert not queries.may_contact(ledger, "acme", "alice", "marketing", "email").allowed
    assert queries.may_contact(ledger, "acme", "alice", "service", "email").allowed


def test_same_event_published_twice_is_stored_once(settings: Settings, ledger: Ledger) -> None:
    """At-least-once delivery: a re-published event id is a no-op."""
    assert settings.kafka_bootstrap is not None
    twice = event("acme", "bob", "consent.given", consent(), event_id="only-once")
    with Publisher(settings.kafka_bootstrap, settings) as publisher:
        publisher.publish(twice)
        publisher.publish(twice)
    _ingest(settings, ledger)
    assert ledger.writer.counts() == {"acme": 1}
    assert ledger.subject("acme", "bob").version == 2


def test_bad_messages_are_deadlettered_between_good_ones(settings: Settings, ledger: Ledger) -> None:
    """Malformed JSON, a schema violation, an unknown type and an oversized message each land in
    the dead-letter topic with reason, origin and original bytes; the good events around them are stored."""
    assert settings.kafka_bootstrap is not None
    schema_violation = orjson.dumps(event("acme", "carol", "consent.given", consent(purpose="spam")))
    unknown_type = orjson.dumps(event("acme", "carol", "consent.forged", {}))
    oversized = orjson.dumps(event("acme", "carol", "account.closed", {"reason": "x" * 300_000}))
    bad = [b'{"specversion": "1.0",', schema_violation, unknown_type, oversized]
    with Publisher(settings.kafka_bootstrap, settings) as publisher:
        for number, raw in enumerate(bad):
            publisher.publish(event("acme", "carol", "consent.given", consent(), event_id=f"good-{number}"))
            publisher.publish_unchecked(b"acme/carol", raw)
        publisher.publish(event("acme", "carol", "account.closed", {}, event_id="good-last"))
    _ingest(settings, ledger)

    assert ledger.writer.counts() == {"acme": 5}
    letters = read_all(settings.kafka_bootstrap, settings.deadletter_topic, settings)
    assert [letter.value for letter in letters] == bad
    reasons = [dict(letter.headers)["reason"].decode() for letter in letters]
    assert "not valid JSON" in reasons[0]
    assert "data.purpose" in reasons[1]
    assert "unknown event type" in reasons[2]
    assert "exceeds the limit" in reasons[3]
    for letter in letters:
        headers = dict(letter.headers)
        assert headers["source.topic"].decode() == settings.events_topic
        assert int(headers["source.offset"]) >= 0


def test_tenants_do_not_see_each_others_subjects(settings: Settings, ledger: Ledger) -> None:
    """A subject id known to one tenant is unknown to another, in every query."""
    assert settings.kafka_bootstrap is not None
    with Publisher(settings.kafka_bootstrap, settings) as publisher:
        publisher.publish(event("acme", "dave", "consent.given", consent()))
        publisher.publish(event("globex", "erin", "consent.given", consent()))
    _ingest(settings, ledger)
    assert queries.subject_state(ledger, "acme", "dave").tenant == "acme"
    with pytest.raises(Exception, match="has no subject"):
        queries.subject_state(ledger, "globex", "dave")
    with pytest.raises(Exception, match="has no subject"):
        queries.may_contact(ledger, "acme", "erin", "service", "sms")
