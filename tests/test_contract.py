"""The wire contract: what is accepted, what is refused, and what a refusal says."""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings

import schemas
from consumers import bounds
from consumers.contract import Contract, Rejected
from consumers.workload import bad_messages, generate
from ledger import times
from ledger.subject import FACT_CLASSES
from tests import hostile
from tests.canary import CANARY, canary_event, leaks, refused_cases
from tests.helpers import collected, consent, event

CONTRACT = Contract(max_message_bytes=256 * 1024)


def _reason_of(contract: Contract, raw: bytes) -> str:
    with pytest.raises(Rejected) as refused:
        contract.parse(raw)
    return refused.value.reason


def _reason(raw: bytes) -> str:
    return _reason_of(CONTRACT, raw)


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
    assert "personal_data.<property 1>" in reason
    assert "5559998888" not in reason


def test_unknown_type_and_missing_attributes_are_refused() -> None:
    """Unknown types, missing tenant and naive timestamps each get their own reason."""
    assert "unknown event type" in _reason(orjson.dumps(event("acme", "s", "consent.forged", {})))
    missing = event("acme", "s", "account.closed", {})
    del missing["tenant"]
    assert "required property 'tenant' is missing" in _reason(orjson.dumps(missing))
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


def _nested(levels: int) -> bytes:
    """A JSON value nested `levels` arrays deep (orjson refuses to encode past 254)."""
    return b"[" * levels + b'"x"' + b"]" * levels


def _with(document: dict[str, Any], placeholder: str, raw: bytes) -> bytes:
    return orjson.dumps(document).replace(orjson.dumps(placeholder), raw)


@pytest.mark.parametrize("levels", [40, 300, 1000])
def test_deeply_nested_personal_data_is_refused_not_raised(levels: int) -> None:
    """personal_data nested hundreds of levels (which crashed the schema validator) is refused by depth."""
    data = collected()
    data["personal_data"] = {"phone": "@nested@"}
    raw = _with(event("acme", "s", "data.collected", data), "@nested@", _nested(levels))
    assert f"nested deeper than {bounds.MAX_DEPTH} levels" in _reason(raw)


@pytest.mark.parametrize("levels", [300, 1000])
def test_deeply_nested_extension_attribute_is_refused_not_raised(levels: int) -> None:
    """An extension attribute nested hundreds of levels deep is refused by depth, with a one-line reason."""
    document = event("acme", "s", "account.closed", {})
    document["traceparent"] = "@nested@"
    reason = _reason(_with(document, "@nested@", _nested(levels)))
    assert "nested deeper than" in reason
    assert "\n" not in reason
    assert len(reason) < 300


@pytest.mark.parametrize(
    ("document_change", "rule"),
    [
        ({"id": "e\x00vil"}, "NUL"),
        ({"source": "x" * (bounds.MAX_STRING + 1)}, f"longer than {bounds.MAX_STRING}"),
        ({"data": {"reason": list(range(bounds.MAX_ITEMS + 1))}}, f"more than {bounds.MAX_ITEMS} elements"),
        ({"data": {f"k{n}": n for n in range(bounds.MAX_PROPERTIES + 1)}}, "properties"),
    ],
)
def test_strings_arrays_and_objects_are_bounded(document_change: dict[str, Any], rule: str) -> None:
    """NUL characters, overlong strings, huge arrays and objects are refused before schema validation."""
    document = {**event("acme", "s", "account.closed", {}), **document_change}
    reason = _reason(orjson.dumps(document))
    assert reason.startswith("bound exceeded at envelope")
    assert rule in reason


@pytest.mark.parametrize(
    "moment",
    [
        "0001-01-01T00:00:00+01:00",  # raised OverflowError
        "9999-12-31T23:59:59-01:00",  # raised OverflowError
        "1969-12-31T23:59:59Z",
        "1970-01-01T00:30:00+01:00",
        "2200-01-01T00:00:00Z",
        "2300-06-01T00:00:00Z",
    ],
)
def test_event_time_outside_the_range_is_refused(moment: str) -> None:
    """Times before 1970 or after 2200 (in UTC) are refused with the range, never an overflow."""
    document = {**event("acme", "s", "account.closed", {}), "time": moment}
    assert "from 1970-01-01T00:00:00Z to before 2200-01-01T00:00:00Z" in _reason(orjson.dumps(document))


@pytest.mark.parametrize(
    "moment",
    [
        "20260101T000000Z",  # ISO 8601 basic format
        "2026-01-01 00:00:00Z",  # space for T
        "2026-W01-1T00:00:00Z",  # week date
        "2026-001T00:00:00Z",  # ordinal date
        "2026-01-01T00:00Z",  # no seconds
        "2026-01-01T00:00:00+0100",  # offset without colon
        "2026-01-01T00:00:00+24:00",  # no such offset
        "\u0662\u0660\u0662\u0666-01-01T00:00:00Z",  # Arabic-Indic digits
        "2026-01-01T00:00:00Z ",
    ],
)
def test_iso_forms_that_are_not_rfc_3339_are_refused(moment: str) -> None:
    """Only RFC 3339 date-times are accepted, not every form Python's fromisoformat takes."""
    document = {**event("acme", "s", "account.closed", {}), "time": moment}
    assert "not an RFC 3339 timestamp" in _reason(orjson.dumps(document))


@pytest.mark.parametrize(
    ("moment", "utc"),
    [
        ("1970-01-01T00:00:00Z", datetime(1970, 1, 1, tzinfo=UTC)),
        ("2199-12-31T23:59:59.999999Z", datetime(2199, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        ("2200-01-01T00:59:00+01:00", datetime(2199, 12, 31, 23, 59, tzinfo=UTC)),
        ("2026-01-01t00:00:00.123456789-00:00", datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)),
    ],
)
def test_rfc_3339_times_within_the_range_are_accepted(moment: str, utc: datetime) -> None:
    """The first and last instants of the range, offsets, lower case and nanoseconds are accepted, as UTC."""
    document = {**event("acme", "s", "account.closed", {}), "time": moment}
    assert CONTRACT.parse(orjson.dumps(document)).time == utc


def test_impossible_dates_are_refused() -> None:
    """February 30th and a leap second are refused, never raised."""
    for moment in ("2026-02-30T00:00:00Z", "2026-01-01T23:59:60Z"):
        document = {**event("acme", "s", "account.closed", {}), "time": moment}
        assert "not a valid date and time" in _reason(orjson.dumps(document))


class _BrokenValidator:
    def iter_errors(self, instance: object) -> Iterator[object]:
        raise RuntimeError("a bug that quotes +15550000000")


def test_an_unexpected_failure_is_a_refusal_naming_the_exception_class() -> None:
    """Whatever fails inside validation refuses that message as `internal: <class>`, quoting nothing."""
    contract = Contract(max_message_bytes=1024)
    contract.envelope = _BrokenValidator()  # type: ignore[assignment]  # a validator with a bug
    assert (
        _reason_of(contract, orjson.dumps(event("acme", "s", "account.closed", {})))
        == "internal: RuntimeError"
    )


@pytest.mark.parametrize(("case", "raw"), refused_cases().items(), ids=list(refused_cases()))
def test_reasons_never_quote_the_input(case: str, raw: bytes) -> None:
    """Every way of being refused names field and rule only: a canary in every field never shows."""
    reason = _reason(raw)
    assert not leaks(reason), f"{case}: {reason}"
    assert "\n" not in reason


def test_the_canary_messages_are_valid_but_for_the_one_fault() -> None:
    """The canary-filled base event is itself accepted, so each refused case tests the rule it breaks."""
    assert CONTRACT.parse(orjson.dumps(canary_event())).id.startswith(CANARY)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile.message(max_bytes=16 * 1024))
def test_every_generated_message_gets_a_verdict(message: hostile.Message) -> None:
    """Any generated message, valid or hostile, parses to an event within the time range or is refused
    with a one-line reason; nothing else is ever raised."""
    contract = Contract(max_message_bytes=16 * 1024)
    try:
        parsed = contract.parse(message.value)
    except Rejected as rejected:
        assert rejected.reason
        assert "\n" not in rejected.reason
        assert len(rejected.reason) < 600
        assert message.kind != hostile.VALID, rejected.reason
    else:
        assert times.EARLIEST <= parsed.time < times.LATEST
