"""Small builders shared by the tests."""

import contextlib
import io
import itertools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from app.cli import main  # the console entry point
from consumers.ingest import consume
from consumers.publisher import Publisher
from ledger.settings import Settings
from ledger.store import Ledger, RecordFact
from projections.projector import Projector

_ids = itertools.count(1)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def event(
    tenant: str,
    subject: str,
    event_type: str,
    data: dict[str, Any],
    *,
    minutes: int = 0,
    event_id: str | None = None,
) -> dict[str, Any]:
    """A valid CloudEvent, `minutes` after T0."""
    return {
        "specversion": "1.0",
        "id": event_id or f"evt-{next(_ids)}",
        "source": "urn:service:test",
        "type": event_type,
        "time": (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z"),
        "subject": subject,
        "tenant": tenant,
        "data": data,
    }


def consent(purpose: str = "marketing", channel: str = "sms") -> dict[str, Any]:
    """Data of a consent.given or consent.withdrawn."""
    return {"purpose": purpose, "channel": channel, "method": "web_form"}


def collected(category: str = "account_contact", system: str = "crm") -> dict[str, Any]:
    """Data of a data.collected carrying personal data."""
    return {
        "category": category,
        "system": system,
        "legal_basis": "contract",
        "purposes": ["service"],
        "personal_data": {"phone": "+15550001111"},
    }


def fact(
    tenant: str,
    subject: str,
    event_id: str,
    kind: str = "consent.given",
    *,
    minutes: int = 0,
    data: dict[str, Any] | None = None,
    personal: dict[str, Any] | None = None,
) -> RecordFact:
    """A validated fact (a marketing-by-SMS consent unless `data` says otherwise), as the consumer
    hands it to the event store."""
    return RecordFact(
        tenant=tenant,
        subject=subject,
        event_id=event_id,
        type=kind,
        source="urn:service:test",
        occurred_at=T0 + timedelta(minutes=minutes),
        schema_version=1,
        data=consent() if data is None else data,
        personal=personal or {},
        origin="events/0/0",
    )


@dataclass(frozen=True)
class Message:
    """A consumed Kafka record as the consumer sees it (`consumers.kafka.Record`), built by hand."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True)
class Outcome:
    """What one command did: its exit code and what it printed."""

    returncode: int
    stdout: str
    stderr: str


def cli(env: dict[str, str], *args: str) -> Outcome:
    """Run `consent-ledger ARGS` in this process, through `main(argv)`, with these LEDGER_* variables."""
    saved = dict(os.environ)
    out, err = io.StringIO(), io.StringIO()
    os.environ.update({**env, "LEDGER_LOG_LEVEL": "warning"})
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return Outcome(code, out.getvalue(), err.getvalue())


def ingest(settings: Settings, ledger: Ledger, *events: dict[str, Any]) -> None:
    """Publish through Kafka, ingest, and project (the projector also erases what is due)."""
    assert settings.kafka_bootstrap is not None
    with Publisher(settings.kafka_bootstrap, settings) as publisher:
        for item in events:
            publisher.publish(item)
    consume(settings, ledger, settings.kafka_bootstrap, until_idle=True)
    Projector(ledger, settings.projection_page, awaits_recipients=settings.awaits_recipients).run(
        until_idle=True
    )


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll until `condition` holds, or fail saying `what` did not happen."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
