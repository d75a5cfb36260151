"""The wire contract: what is accepted, what is refused, and what a refusal says."""

from datetime import UTC

import orjson
import pytest

import schemas
from consumers.contract import Contract, Rejected
from consumers.workload import bad_messages, generate
from ledger.subject import FACT_CLASSES
from tests.helpers import collected, consent, event

CONTRACT = Contract(max_message_bytes=256 * 1024)


def _reason(raw: bytes) -> str:
    with pytest.raises(Rejected) as refused:
        CONTRACT.parse(raw)
    return refused.value.reason


def test_valid_event_parses_to_utc_cloudevent() -> None:
    """A valid envelope yields its attributes, data, UTC time and the tenant/subject key."""
    raw = orjson.dumps(event("acme", "s-1", "consent.given", consent(), event_id="e-1"))
    parsed = CONTRACT.parse(raw)
    assert (parsed.id, parsed.tenant, parsed.subject, parsed.type) == (
        "e-1",
        "acme",
        "s-1",
        "consent.given",
    )
    assert parsed.time.tzinfo is UTC
    assert parsed.key == b"acme/s-1"
    assert parsed.schema_version == 1


def test_every_schema_type_has_a_domain_event_and_back() -> None:
    """Each wire type maps to exactly one stored event class, so nothing validated is unstorable."""
    assert set(schemas.event_types()) == set(FACT_CLASSES)


def test_generated_workload_is_all_valid() -> None:
    """The demo workload covers every event type and passes the contract."""
    seen = set()
    for item in generate(tenants=2, subjects=300):
        seen.add(CONTRACT.parse(orjson.dumps(item)).type)
    assert seen == set(FACT_CLASSES)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b"[" * 5000, "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"x" * (256 * 1024 + 1), "exceeds the limit"),
    ],
)
def test_undecodable_messages_are_refused_with_a_reason(raw: bytes, expected: str) -> None:
    """Malformed, hostile and oversized payloads are refused, never raised as crashes."""
    assert expected in _reason(raw)


def test_every_bad_demo_message_is_refused() -> None:
    """Each kind of bad message the demo publishes is refused by the contract."""
    for raw in bad_messages():
        assert _reason(raw)


def test_vocabulary_typo_is_refused_without_quoting_the_value() -> None:
    """A value outside a closed vocabulary is named by path, not echoed."""
    bad = event("acme", "s-1", "consent.given", consent(purpose="marketting"))
    reason = _reason(orjson.dumps(bad))
    assert "data.purpose" in reason
    assert "marketting" not in reason


def test_personal_values_never_appear_in_reasons() -> None:
    """A schema violation inside personal data does not leak the personal value."""
    data = collected()
    data["personal_data"] = {"phone": ["+15559998888"]}
    reason = _reason(orjson.dumps(event("acme", "s-1", "data.collected", data)))
    assert "personal_data.phone" in reason
    assert "5559998888" not in reason


def test_unknown_type_and_missing_attributes_are_refused() -> None:
    """Unknown types, missing tenant and naive timestamps each get their own reason."""
    assert "unknown event type" in _reason(orjson.dumps(event("acme", "s", "consent.forged", {})))
    missing = event("acme", "s", "account.closed", {})
    del missing["tenant"]
    assert '"tenant" is a required property' in _reason(orjson.dumps(missing))
    naive = event("acme", "s", "account.closed", {})
    naive["time"] = "2026-01-01T00:00:00"
    assert "no UTC offset" in _reason(orjson.dumps(naive))


def test_tenant_with_slash_is_refused() -> None:
    """A tenant id cannot contain '/', which would make the message key ambiguous."""
    assert "tenant" in _reason(orjson.dumps(event("ac/me", "s", "account.closed", {})))


def test_optout_takes_keyword_or_signal_not_both() -> None:
    """An opt-out names a keyword or a signal, never both."""
    data = {"channel": "sms", "keyword": "STOP", "signal": "GPC"}
    assert "optout.received" in _reason(orjson.dumps(event("acme", "s", "optout.received", data)))


def test_dataschema_selects_a_released_version() -> None:
    """`dataschema` may name a released version; an unknown one is refused."""
    item = event("acme", "s", "account.closed", {})
    item["dataschema"] = "urn:consent-ledger:schema:account.closed:v1"
    assert CONTRACT.parse(orjson.dumps(item)).schema_version == 1
    item["dataschema"] = "urn:consent-ledger:schema:account.closed:v9"
    assert "unknown dataschema" in _reason(orjson.dumps(item))
