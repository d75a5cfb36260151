"""Refused messages with a canary in every field: a reason, header or log line quoting input shows it."""

from typing import Any

import orjson

from tests.helpers import collected, event

CANARY = "qzcanaryzq"  # lower-case letters only, so it also fits the patterns of ids and names


def canary_event(event_type: str = "data.collected", data: dict[str, Any] | None = None) -> dict[str, Any]:
    """A valid event whose every free field carries the canary."""
    if data is None:
        data = {**collected(system=f"{CANARY}-crm"), "source": CANARY}
        data["personal_data"] = {CANARY: CANARY, "phone": f"+1555{CANARY}"}
    document = event(CANARY, f"{CANARY}-subject", event_type, data, event_id=f"{CANARY}-id")
    return {**document, "source": f"urn:{CANARY}", CANARY[:8]: CANARY}


def _nested(document: dict[str, Any], levels: int) -> bytes:
    """`document` with the canary string placed under `levels` objects keyed by the canary."""
    inner = orjson.dumps(CANARY)
    for _ in range(levels):
        inner = b'{"' + CANARY.encode() + b'":' + inner + b"}"
    return orjson.dumps(document).replace(orjson.dumps(f"{CANARY}-deep"), inner)


def _with(**changes: Any) -> bytes:
    return orjson.dumps({**canary_event(), **changes})


def _data(**changes: Any) -> bytes:
    document = canary_event()
    document["data"] = {**document["data"], **changes}
    return orjson.dumps(document)


def refused_cases() -> dict[str, bytes]:
    """One message per way of being refused, each full of the canary."""
    without_tenant = canary_event()
    del without_tenant["tenant"]
    return {
        "not JSON": f'{{"{CANARY}": {CANARY}}}'.encode(),
        "not UTF-8": b"\xff" + CANARY.encode(),
        "not an object": orjson.dumps([CANARY, canary_event()]),
        "unknown type": _with(type=CANARY),
        "wrong specversion": _with(specversion=CANARY),
        "tenant pattern": _with(tenant=f"{CANARY}/{CANARY}"),
        "subject control character": _with(subject=f"{CANARY}\n"),
        "missing tenant": orjson.dumps(without_tenant),
        "id of the wrong type": _with(id=[CANARY]),
        "empty id": _with(id=""),
        "extension name": _with(**{CANARY.upper(): CANARY}),
        "extension not a scalar": _with(ext={CANARY: CANARY}),
        "extension too long": _with(ext=CANARY * 60),
        "time not RFC 3339": _with(time=CANARY),
        "time with trailing text": _with(time=f"2026-01-01T00:00:00Z{CANARY}"),
        "time out of range": _with(time="0001-01-01T00:00:00+01:00"),
        "unknown dataschema": _with(dataschema=CANARY),
        "data not an object": _with(data=CANARY),
        "vocabulary": _data(purposes=[CANARY]),
        "category": _data(category=CANARY),
        "system pattern": _data(system=CANARY.upper()),
        "unexpected data property": _data(**{CANARY: CANARY}),
        "personal value of the wrong type": _data(personal_data={CANARY: [CANARY]}),
        "personal name pattern": _data(personal_data={CANARY.upper(): CANARY}),
        "personal value too long": _data(personal_data={CANARY: CANARY * 500}),
        "purposes repeated": _data(purposes=["service", "service"]),
        "NUL": _with(source=f"{CANARY}\x00"),
        "string over the bound": _with(source=CANARY * 500),
        "deep nesting": _nested(canary_event(data={**collected(), "personal_data": f"{CANARY}-deep"}), 40),
        "deep extension": _nested({**canary_event(), "ext": f"{CANARY}-deep"}, 300),
        "huge array": _data(purposes=[CANARY] * 300),
        "keyword and signal": orjson.dumps(
            canary_event("optout.received", {"channel": "sms", "keyword": "STOP", "signal": "GPC"})
        ),
        "consent evidence too long": orjson.dumps(
            canary_event(
                "consent.given",
                {"purpose": "marketing", "channel": "sms", "method": "api", "evidence": CANARY * 200},
            )
        ),
    }


def leaks(text: str) -> bool:
    """Whether `text` quotes the canary (in any case)."""
    return CANARY in text.lower()
