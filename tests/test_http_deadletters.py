"""Dead letters over HTTP, through the real server: who sees which, who opens the bytes (logged),
replay and drop, and their metrics."""

from datetime import UTC, datetime

import httpx
import orjson
import pytest

from consumers.deadletter import refusal
from ledger.access import ADMIN, AUDITOR
from tests.helpers import Message, consent, event
from tests.test_http import Api, _problem, api  # noqa: F401 - `api` is the server fixture

pytestmark = pytest.mark.services


GOOD = orjson.dumps(event("acme", "zoe", "consent.given", consent(), event_id="late-1"))


@pytest.fixture(scope="module")
def letters(api: Api) -> dict[str, int]:  # noqa: F811 - the fixture imported above
    """Three dead letters: acme's (a valid event refused by a failure since fixed), globex's, and one
    naming no tenant; their ids by name."""
    ledger = api.services.ledger
    refused = [
        refusal(Message("events", 0, 1, b"acme/zoe", GOOD), "internal: OperationalError", 4096),
        refusal(
            Message("events", 0, 2, None, orjson.dumps({"tenant": "globex"})), "schema violation at x", 4096
        ),
        refusal(Message("events", 0, 3, None, b"\xff garbage"), "not valid JSON: at line 1", 4096),
    ]
    with ledger.writer.datastore.transaction(commit=True) as curs:
        ledger.deadletters.record(curs, refused, datetime.now(UTC), keep=4096)
    with api.client(None, ADMIN) as admin:
        listed = admin.get("/v1/deadletters").json()["letters"]
    return {name: letter["id"] for name, letter in zip(("acme", "globex", "none"), listed, strict=True)}


def test_an_auditor_sees_its_own_tenants_letters_only(api: Api, letters: dict[str, int]) -> None:  # noqa: F811
    """An auditor lists and reads its tenant's letters (counts per class included), never another
    tenant's or one naming no tenant; an admin sees all three."""
    with api.client("acme", AUDITOR) as acme:
        listed = acme.get("/v1/deadletters").json()
        assert [letter["id"] for letter in listed["letters"]] == [letters["acme"]]
        assert listed["counts"] == {"internal": {"open": 1, "replayed": 0, "dropped": 0}}
        assert acme.get(f"/v1/deadletters/{letters['acme']}").json()["reason"] == "internal: OperationalError"
        _problem(acme.get(f"/v1/deadletters/{letters['globex']}"), 404)
        _problem(acme.get(f"/v1/deadletters/{letters['none']}"), 404)
        _problem(acme.get("/v1/deadletters?tenant=globex"), 404)
    with api.client(None, ADMIN) as admin:
        assert len(admin.get("/v1/deadletters").json()["letters"]) == 3
        assert admin.get("/v1/deadletters?reason=json").json()["counts"] == {
            "json": {"open": 1, "replayed": 0, "dropped": 0}
        }
        _problem(admin.get("/v1/deadletters?reason=nonsense"), 422)


def test_only_an_admin_opens_the_original_bytes_and_the_access_log_says_so(
    api: Api,  # noqa: F811
    letters: dict[str, int],
) -> None:
    """`original=true` is refused to an auditor; an admin gets the key and value (base64, and text
    when UTF-8), and the access log records that admin's key opening that letter."""
    path = f"/v1/deadletters/{letters['acme']}?original=true"
    with api.client("acme", AUDITOR) as auditor:
        _problem(auditor.get(path), 403)
        assert "value" not in auditor.get(f"/v1/deadletters/{letters['acme']}").json()
    with api.client(None, ADMIN) as admin:
        opened = admin.get(path).json()
        assert (opened["key"], opened["value"]) == ("acme/zoe", GOOD.decode())
        garbage = admin.get(f"/v1/deadletters/{letters['none']}?original=true").json()
        assert garbage["value"] is None and garbage["value_base64"] == "/yBnYXJiYWdl"
    ledger = api.services.ledger
    with ledger.writer.datastore.transaction() as curs:
        reads = ledger.access_log.read(curs, "acme", f"deadletter/{letters['acme']}")
    assert [(entry.role, entry.endpoint) for entry in reads] == [(ADMIN, "deadletters/original")]


def test_replay_and_drop_over_http_and_their_metrics(api: Api, letters: dict[str, int]) -> None:  # noqa: F811
    """An admin replays acme's letter (stored once: replaying it again is a 409 naming it, as the CLI
    names it, and naming a letter that does not exist is a 404) and drops the globex one (its bytes
    are gone: 410; dropping it again is a 409); /metrics counts letters by class and status, and
    replays."""
    with api.client(None, ADMIN) as admin:
        first = admin.post("/v1/deadletters/replay", json={"ids": [letters["acme"]]}).json()
        assert first["stored"] == [{"id": letters["acme"], "event_id": "late-1"}]
        again = _problem(admin.post("/v1/deadletters/replay", json={"ids": [letters["acme"]]}), 409)
        assert again["detail"] == (
            f"dead letter {letters['acme']} (replayed) is not open: only open letters can be replayed"
        )
        _problem(admin.post("/v1/deadletters/replay", json={"ids": [letters["acme"], 987654]}), 404)
        dropped = admin.post(f"/v1/deadletters/{letters['globex']}/drop", json={"why": "test data"}).json()
        assert (dropped["status"], dropped["dropped_why"]) == ("dropped", "test data")
        _problem(admin.get(f"/v1/deadletters/{letters['globex']}?original=true"), 410)
        dropped_again = admin.post(f"/v1/deadletters/{letters['globex']}/drop", json={"why": "again"})
        assert _problem(dropped_again, 409)["detail"] == (
            f"dead letter {letters['globex']} (dropped) is not open: only open letters can be dropped"
        )
        both = admin.post(
            "/v1/deadletters/replay", json={"ids": [letters["none"], letters["acme"], letters["globex"]]}
        )
        assert _problem(both, 409)["detail"] == (
            f"dead letters {letters['acme']} (replayed), {letters['globex']} (dropped) are not open: "
            "only open letters can be replayed"
        )
        _problem(admin.post("/v1/deadletters/999999/drop", json={"why": "nothing"}), 404)
    with api.client("acme", AUDITOR) as auditor:
        _problem(auditor.post("/v1/deadletters/replay", json={}), 403)
    assert [type(e).__name__ for e in api.services.ledger.subject_events("acme", "zoe")] == [
        "Registered",
        "ConsentGiven",
    ]
    text = httpx.get(f"{api.url}/metrics").text
    assert 'ledger_deadletters{reason="internal",status="replayed"} 1.0' in text
    assert 'ledger_deadletters{reason="schema",status="dropped"} 1.0' in text
    assert "ledger_deadletter_replays 1.0" in text  # those refused with a 409 tried nothing
    assert "ledger_purge_orders_confirmed 0.0" in text
