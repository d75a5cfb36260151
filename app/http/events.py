"""How services in any language publish: a batch of CloudEvents, validated, then put on the topic."""

from typing import Annotated, Any

import orjson
import structlog
from fastapi import APIRouter, Body, Request
from kafka.errors import KafkaError
from pydantic import BaseModel, Field, WithJsonSchema

import schemas
from app.http import examples
from app.http.auth import Key, gate
from app.http.json import Json
from app.http.problems import Problem
from consumers.contract import CloudEvent, Rejected
from ledger.access import PUBLISHER

router = APIRouter(tags=["events"])
log = structlog.get_logger()
MAX_EVENTS = 1000
EXAMPLE = {
    "specversion": "1.0",
    "id": "evt-1",
    "source": "urn:service:crm",
    "type": "consent.given",
    "time": "2026-01-31T09:30:00Z",
    "subject": "contact-42",
    "tenant": "acme",
    "data": {"purpose": "marketing", "channel": "sms", "method": "web_form"},
}


# The envelope's schema as the OpenAPI document shows it; each type's `data` rules are checked too.
_ENVELOPE = {key: value for key, value in schemas.load(schemas.ENVELOPE).items() if not key.startswith("$")}
Envelope = Annotated[dict[str, Any], WithJsonSchema(_ENVELOPE)]


class Accepted(BaseModel):
    """Every event of the batch is on the events topic."""

    accepted: list[str] = Field(description="the ids of the events, in the order sent")

    model_config = {"json_schema_extra": {"examples": [examples.EVENTS_ACCEPTED]}}


class Refusal(BaseModel):
    """One event of the batch that breaks the contract."""

    index: int
    reason: str


@router.post(
    "/v1/events",
    status_code=202,
    response_model=Accepted,
    summary="publish a batch of CloudEvents (all or none)",
    responses={
        422: {"description": "nothing was published: `refused` names each bad event's index and reason"}
    },
)
def publish(
    request: Request,
    *,
    events: Annotated[
        list[Envelope],
        Body(
            min_length=1,
            max_length=MAX_EVENTS,
            openapi_examples={"consent": {"summary": "one consent", "value": [EXAMPLE]}},
        ),
    ],
    credentials: Key,
) -> Json:
    """Validate every event against the contract and the key's tenant; publish all of them, or none."""
    key = gate(request, credentials, None, PUBLISHER)
    services = request.app.state.services
    checked: list[tuple[CloudEvent, bytes]] = []
    refused = []
    for index, event in enumerate(events):
        try:
            value = _encode(event)
            parsed = services.contract.parse(value)
            if not key.sees(parsed.tenant):
                raise Rejected("tenant is not the tenant of this API key")
        except Rejected as rejected:
            refused.append({"index": index, "reason": rejected.reason})
            continue
        checked.append((parsed, value))
    if refused:
        raise Problem(
            422, f"{len(refused)} of {len(events)} event(s) refused; nothing was published", refused=refused
        )
    topic = services.settings.events_topic
    try:
        sent = [services.producer.send(topic, key=parsed.key, value=value) for parsed, value in checked]
        for future in sent:
            future.get(timeout=10)
    except KafkaError as error:
        log.warning("http.publish_failed", error=type(error).__name__, events=len(checked))
        raise Problem(503, "the broker did not take the events; retry the batch (ids make it safe)") from None
    log.info("http.published", events=len(checked), key_id=key.key_id)
    return Json({"accepted": [parsed.id for parsed, _ in checked]}, 202)


def _encode(event: dict[str, Any]) -> bytes:
    """The event as the bytes a consumer will read."""
    try:
        return orjson.dumps(event)
    except orjson.JSONEncodeError:  # JSON allows integers no consumer can read back (beyond 64 bits)
        raise Rejected("a number in the event is beyond the 64-bit range a consumer can read") from None
