"""A realistic, reproducible workload of CloudEvents for the demo and the benchmarks.

Tenants run messaging platforms; each subject gets collected data, consents on several channels,
messages sent (some after the subject opted out, some before an opt-out that reached the ledger
late), some withdrawals and STOP opt-outs, shares with sub-processors, deletion requests and holds;
about one in ten exercises a right or texts a keyword afterwards (drawn from a generator of its own,
so the rest of the workload is the same as before rights were added).
"""

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from ledger.times import rfc3339

CATEGORIES = ("account_contact", "usage_metadata", "content", "billing", "visitor_data")
SYSTEMS = ("messaging", "crm", "billing", "analytics", "backups")
CHANNELS = ("sms", "email", "voice", "web_chat")
MARKETING = ("marketing", "analytics", "advertising")
SUBPROCESSORS = ("aws-storage", "stripe-payments", "zendesk-support", "mixpanel-analytics")
JURISDICTIONS = ("EU", "US-CA", "GB", "US-NY")
CAMPAIGNS = ("spring-sale", "winter-news", "renewal")
# A step of a subject's life: its type and data, and, for a fact that reaches the ledger late, how
# long before the previous step it happened.
Step = tuple[str, dict[str, Any]] | tuple[str, dict[str, Any], timedelta]


def generate(tenants: int, subjects: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    """Events for `subjects` subjects in each of `tenants` tenants, in event-time order per subject."""
    rng = random.Random(seed)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for t in range(tenants):
        tenant = f"tenant-{t + 1}"
        for s in range(subjects):
            moment = start + timedelta(minutes=rng.randrange(60 * 24 * 300))
            for step in _life(rng):
                previous = moment
                moment += timedelta(minutes=rng.randrange(1, 60 * 24 * 3))
                at = moment if len(step) == 2 else previous - step[2]
                yield event(tenant, f"contact-{s + 1:06d}", step[0], at, step[1], rng=rng)
            later = random.Random(f"{seed}/{tenant}/{s}")
            for event_type, data in _afterwards(later):
                moment += timedelta(minutes=later.randrange(1, 60 * 24 * 12))
                yield event(tenant, f"contact-{s + 1:06d}", event_type, moment, data, rng=later)


def event(
    tenant: str,
    subject: str,
    event_type: str,
    moment: datetime,
    data: dict[str, Any],
    *,
    rng: random.Random,
) -> dict[str, Any]:
    """One CloudEvents 1.0 envelope around `data`."""
    return {
        "specversion": "1.0",
        "id": f"{rng.getrandbits(64):016x}-{rng.getrandbits(64):016x}",
        "source": f"urn:service:{event_type.split('.', maxsplit=1)[0]}",
        "type": event_type,
        "time": rfc3339(moment),
        "subject": subject,
        "tenant": tenant,
        "datacontenttype": "application/json",
        "data": data,
    }


def _life(rng: random.Random) -> Iterator[Step]:
    jurisdiction = rng.choice(JURISDICTIONS)
    yield (
        "data.collected",
        {
            "category": "account_contact",
            "system": "crm",
            "legal_basis": "contract",
            "purposes": ["service", "support"],
            "role": "processor",
            "jurisdiction": jurisdiction,
            "source": "signup form",
            "personal_data": {"phone": f"+1555{rng.randrange(10**7):07d}", "name": "A. Person"},
        },
    )
    channels = rng.sample(CHANNELS, rng.randint(1, 3))
    for channel in channels:
        yield (
            "consent.given",
            {
                "purpose": "marketing",
                "channel": channel,
                "method": rng.choice(("web_form", "double_opt_in", "sms_keyword")),
                "notice_version": f"2025-{rng.randint(1, 12):02d}",
                "jurisdiction": jurisdiction,
            },
        )
    for _ in range(rng.randint(0, 3)):
        yield (
            "data.collected",
            {
                "category": rng.choice(CATEGORIES),
                "system": rng.choice(SYSTEMS),
                "legal_basis": rng.choice(("contract", "consent", "legitimate_interest")),
                "purposes": rng.sample(["service", "analytics", "marketing", "security"], 2),
                "jurisdiction": jurisdiction,
            },
        )
    yield from _messages(rng, channels)
    roll = rng.random()
    if roll < 0.25:
        yield (
            "consent.withdrawn",
            {"purpose": "marketing", "channel": channels[0], "method": "web_form"},
        )
        if rng.random() < 0.2:  # a sender that did not ask the ledger first
            yield "contact.made", _message(rng, "marketing", channels[0])
    elif roll < 0.4 and "sms" in channels:
        stop = {"channel": "sms", "keyword": rng.choice(("STOP", "UNSUBSCRIBE"))}
        if rng.random() < 0.3:  # the STOP reached the ledger after a message sent an hour after it
            yield "contact.made", _message(rng, "marketing", "sms")
            yield "optout.received", stop, timedelta(hours=1)
        else:
            yield "optout.received", stop
    elif roll < 0.45:
        yield "optout.received", {"channel": "web", "signal": "GPC"}
    if rng.random() < 0.3:
        yield (
            "data.shared",
            {
                "recipient": rng.choice(SUBPROCESSORS),
                "recipient_type": "subprocessor",
                "categories": ["account_contact"],
                "purpose": "service",
                "legal_basis": "contract",
                "country": "US",
                "transfer_mechanism": "scc",
            },
        )
    yield from _endings(rng)


def _messages(rng: random.Random, consented: list[str]) -> Iterator[Step]:
    """Messages sent while the subject's consents stand: marketing where consented, and transactional."""
    for _ in range(rng.randint(0, 2)):
        yield "contact.made", _message(rng, "marketing", rng.choice(consented))
    if rng.random() < 0.5:
        yield "contact.made", _message(rng, "service", rng.choice(CHANNELS))


def _message(rng: random.Random, purpose: str, channel: str) -> dict[str, Any]:
    data = {"purpose": purpose, "channel": channel, "message_id": f"msg-{rng.getrandbits(64):016x}"}
    if purpose != "service":
        data["campaign"] = rng.choice(CAMPAIGNS)
    return data


def _endings(rng: random.Random) -> Iterator[Step]:
    roll = rng.random()
    if roll < 0.03:
        yield (
            "legalhold.placed",
            {"hold_id": f"hold-{rng.randrange(10**6)}", "reason": "litigation"},
        )
    elif roll < 0.06:
        request = f"dsr-{rng.randrange(10**8)}"
        yield "deletion.requested", {"request_id": request, "verified": True}
        yield "deletion.completed", {"system": "crm", "request_id": request}
    elif roll < 0.10:
        yield "account.closed", {"reason": "customer request"}
        hold = f"hold-{rng.randrange(10**6)}"
        yield "legalhold.placed", {"hold_id": hold, "reason": "audit", "categories": ["billing"]}
        yield "legalhold.released", {"hold_id": hold}


RIGHTS = (  # (right, share of subjects asking), from published DSAR mixes: access dominates
    ("access", 0.03),
    ("objection", 0.015),
    ("erasure", 0.012),
    ("rectification", 0.01),
    ("portability", 0.008),
    ("restriction", 0.008),
)


def _afterwards(rng: random.Random) -> Iterator[tuple[str, dict[str, Any]]]:
    """Rights requests, SMS keywords and age signals: what a minority of subjects does later."""
    roll = rng.random()
    for right, share in RIGHTS:
        if roll < share:
            yield from _request(rng, right)
            break
        roll -= share
    roll = rng.random()
    if roll < 0.03:
        yield (
            "keyword.received",
            {"channel": "sms", "keyword": rng.choice(("STOP", "stop", "Quit", "REVOKE"))},
        )
        yield "keyword.received", {"channel": "sms", "keyword": rng.choice(("START", "UNSTOP", "start"))}
    elif roll < 0.05:
        yield "keyword.received", {"channel": "sms", "keyword": "HELP"}
    if rng.random() < 0.004:
        yield "age.signalled", {"age_band": rng.choice(("under_13", "13_to_15")), "method": "self_declared"}


def _request(rng: random.Random, right: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """One rights request through verification, sometimes an extension, and (mostly) an answer."""
    request = f"dsr-{rng.randrange(10**8)}"
    asked: dict[str, Any] = {
        "request_id": request,
        "right": right,
        "channel": rng.choice(("web_form", "email", "in_app")),
    }
    if right == "objection":
        asked["purposes"] = ["marketing"]
    yield "rights.requested", asked
    if rng.random() < 0.1:
        yield "rights.refused", {"request_id": request, "exemption": "identity_not_verified"}
        return
    yield "rights.verified", {"request_id": request, "method": rng.choice(("account_login", "email_link"))}
    if rng.random() < 0.15:
        yield (
            "rights.extended",
            {"request_id": request, "reason": rng.choice(("complexity", "number_of_requests"))},
        )
    roll = rng.random()
    if roll < 0.08:
        return  # still open: the demo's `overdue` has something to show
    if roll < 0.15:
        yield (
            "rights.refused",
            {"request_id": request, "exemption": rng.choice(("legal_obligation", "excessive"))},
        )
    elif right == "erasure":
        yield "deletion.completed", {"system": "crm", "request_id": request}
    else:
        yield "rights.fulfilled", _fulfilment(rng, request, right)
        if right == "restriction" and rng.random() < 0.6:
            yield "rights.lifted", {"request_id": request, "reason": "accuracy_verified"}


OUTCOMES = {
    "access": "copy_provided",
    "portability": "export_provided",
    "rectification": "rectified",
    "restriction": "restricted",
    "objection": "objection_upheld",
}


def _fulfilment(rng: random.Random, request: str, right: str) -> dict[str, Any]:
    answer = {"request_id": request, "right": right, "outcome": OUTCOMES[right]}
    if right in ("access", "portability"):
        answer["export_sha256"] = f"{rng.getrandbits(256):064x}"
    return answer


def bad_messages() -> list[bytes]:
    """One of each kind of message the ledger must dead-letter."""
    good = (
        b'{"specversion":"1.0","id":"bad-%s","source":"urn:service:test","type":"%s",'
        b'"time":"%s","subject":"contact-x","tenant":"tenant-1","data":%s}'
    )
    when = b"2025-06-01T00:00:00Z"
    deep = b"[" * 300 + b"1" + b"]" * 300
    collected = (
        b'{"category":"account_contact","system":"crm","legal_basis":"contract","purposes":["service"],'
    )
    return [
        b'{"specversion": "1.0", "id": ',  # malformed JSON
        good
        % (b"1", b"consent.given", when, b'{"purpose":"marketting","channel":"sms","method":"web_form"}'),
        good % (b"2", b"consent.forged", when, b"{}"),  # unknown type
        good % (b"3", b"account.closed", when, b'{"reason":"' + b"x" * 300_000 + b'"}'),  # oversized
        b"[" * 5000,  # hostile nesting
        good % (b"4", b"data.collected", when, collected + b'"personal_data":{"phone":' + deep + b"}}"),
        good % (b"5", b"account.closed", b"9999-12-31T23:59:59-01:00", b"{}"),  # beyond the time range
    ]
