"""The questions: what the ledger knows about a subject, may it be contacted, its history and export,
counts, and who was exposed in a breach."""

import argparse
import json
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.bootstrap import Services
from app.cli.output import print_horizon, print_json, shown, write_out
from app.cli.parser import Command, known_at, moment, word
from ledger.errors import ServiceUnavailable, UsageError
from ledger.retention import PURGE_ORDERED
from ledger.settings import Settings
from ledger.sweeps import SweepSummary
from ledger.times import rfc3339
from projections import deadletters, names, queries
from projections.timeline import contact_decision, subject_document


def register(command: Command) -> None:
    """subject, check, history, export, stats, breach."""
    subject = command("subject", _subject, "show what the ledger knows about a subject", who=True, json=True)
    subject.add_argument("--as-of", type=moment, help="state at this event time (RFC 3339)")
    known_at(subject)
    check = command(
        "check", _check, "may this subject be contacted for a purpose on a channel now?", who=True, json=True
    )
    check.add_argument("--purpose", required=True, type=word("purpose"))
    check.add_argument(
        "--channel",
        required=True,
        help="a channel of the vocabulary, or one the tenant added (LEDGER_EXTRA_CHANNELS)",
    )
    check.add_argument("--at", type=moment, help="answer for this event time (RFC 3339) instead of now")
    known_at(check)
    command(
        "history",
        _history,
        "every event of a subject, personal values opened unless erased",
        who=True,
        json=True,
    )
    exp = command(
        "export", _export, "write everything known about a subject as JSON (access, portability)", who=True
    )
    exp.add_argument("--out", type=Path, required=True, help="the file to write (mode 0600), or - for stdout")
    exp.add_argument(
        "--answers",
        metavar="REQUEST",
        help="record the export as the answer to this verified access or portability request",
    )
    command("stats", _stats, "count stored events, subjects and dead letters", json=True)
    breach = command("breach", _breach, "whose data was exposed in a breach of these systems", json=True)
    breach.add_argument("tenant")
    breach.add_argument("--system", action="append", required=True, help="a breached system (repeatable)")
    breach.add_argument("--category", action="append", type=word("category"), help="only these (repeatable)")
    breach.add_argument("--from", dest="window_from", type=moment, required=True, help="window start")
    breach.add_argument("--to", dest="window_to", type=moment, required=True, help="window end")
    breach.add_argument("--discovered-at", type=moment, help="when it was discovered (default: now)")
    breach.add_argument("--subjects", action="store_true", help="also list each affected subject")


def _subject(args: argparse.Namespace, settings: Settings) -> int:
    services = Services(settings)
    names.require_tenant(services.ledger, args.tenant)
    document, found = subject_document(
        services.ledger,
        args.tenant,
        args.subject,
        rules=services.rules(),
        confirm_days=settings.purge_confirm_days,
        topic_retention=settings.topic_retention,
        as_of=args.as_of,
        known_at=args.known_at,
    )
    if args.json:
        print_json(document)
        return 0
    print(f"subject {document['subject']} of tenant {document['tenant']}")
    print(f"  erased: {'yes, since ' + shown(document['erased_at']) if document['erased'] else 'no'}")
    if found is not None:
        print_horizon(found)
    print(f"  first seen {shown(document['first_seen'])}, last event {shown(document['last_event_at'])}")
    if document["account_closed_at"]:
        print(f"  account closed {document['account_closed_at']}")
    for holding in document["holdings"]:
        holding["retention"] = _retention(holding)
    _section(
        "holdings",
        document["holdings"],
        "{category} in {system}: {status}, {legal_basis} for {purposes}, "
        "collected {first_collected} .. {last_collected}; retention {retention}",
    )
    _section("consent", document["consent"], "{purpose} on {channel}: {state} since {since} ({event_id})")
    _section(
        "shares",
        document["shares"],
        "{time} to {recipient} ({recipient_type}): {categories} for {purpose}",
    )
    _section("deletion requests", document["deletion_requests"],
             "{request_id}: {status}, categories {categories}, requested {requested_at}")  # fmt: skip
    for request in document["rights_requests"]:
        request["clock"] = _clock(request)
    _section("rights requests", document["rights_requests"],
             "{request_id}: {right} via {channel}, requested {requested_at} ({regime}); {clock}")  # fmt: skip
    if document["recipients_unconfirmed"]:
        print(f"  recipients yet to confirm deletion: {', '.join(document['recipients_unconfirmed'])}")
    _section("legal holds", document["legal_holds"], "{hold_id}: {reason}, since {placed_at}")
    _section("violations", document["violations"], "{time} {category} in {system}: {reason} ({event_id})")
    return 0


def _clock(request: dict[str, Any]) -> str:
    """`STATUS`, and when it was due and answered or how long is left; an extension and why."""
    from projections.rights import left

    extended = f", extended ({request['extension_reason']})" if request["extended"] else ""
    when = request["answered_at"]
    said = (
        f"{request['status']} {when}{' LATE' if request['late'] else ''}"
        if when
        else f"open, {left(request['seconds_left'])}"
    )
    note = f"; {request['extension_note']}" if request["extension_note"] else ""
    return f"{said}, due before {request['deadline']}{extended}{note}"


def _section(title: str, rows: list[dict[str, Any]], line: str) -> None:
    print(f"  {title}: {'none' if not rows else ''}")
    for row in rows:
        print("    " + line.format(**{key: shown(value, key) for key, value in row.items()}))


def _retention(holding: dict[str, Any]) -> str:
    """`STATUS [EXPIRES] (RULE: NOTE)`, leaving out what a holding does not have."""
    expires = holding.get("retention_expires_at")
    rule, note = holding.get("retention_rule"), holding.get("retention_note")
    why = f"{rule}: {note}" if rule and note else rule or note
    status = holding.get("retention_status")
    if status == PURGE_ORDERED:  # the note says "purge ordered <when>, awaiting confirmation"
        status = "expired"
    return " ".join(part for part in (status, expires, why and f"({why})") if part) or "unknown"


def _check(args: argparse.Namespace, settings: Settings) -> int:
    ledger = Services(settings).ledger
    names.require_tenant(ledger, args.tenant)
    names.require_channel(args.channel, settings.channels_of(args.tenant))
    decision = contact_decision(
        ledger, args.tenant, args.subject, args.purpose, args.channel, at=args.at, known_at=args.known_at
    )
    if args.json:
        print_json({"allowed": decision.allowed, "reason": decision.reason, "event_id": decision.event_id})
    else:
        deciding = "" if decision.event_id is None else f" (event {decision.event_id})"
        print(f"{'allowed' if decision.allowed else 'denied'}: {decision.reason}{deciding}")
    return 0 if decision.allowed else 1


def _history(args: argparse.Namespace, settings: Settings) -> int:
    from projections.history import history

    ledger = Services(settings).ledger
    names.require_tenant(ledger, args.tenant)
    entries = history(ledger, args.tenant, args.subject)
    if args.json:
        print_json([asdict(entry) for entry in entries])
        return 0
    for entry in entries:
        when = "" if entry.occurred_at is None else f"happened {queries.plain(entry.occurred_at)}, "
        print(f"v{entry.version} {entry.type} ({when}recorded {queries.plain(entry.recorded_at)})")
        print(f"    source {shown(entry.source)}, event {shown(entry.event_id)}, from {shown(entry.origin)}")
        print(f"    data {json.dumps(entry.data, default=str)}")
        if entry.personal is not None:
            personal = entry.personal if isinstance(entry.personal, str) else json.dumps(entry.personal)
            print(f"    personal {personal}")
    return 0


def _export(args: argparse.Namespace, settings: Settings) -> int:
    from projections.export import export_text
    from projections.rights import answerable, export_digest, record_export

    services = Services(settings)
    names.require_tenant(services.ledger, args.tenant)
    if args.answers:  # refused before anything is written
        answerable(services.ledger, args.tenant, args.subject, args.answers)
    text = export_text(services.ledger, args.tenant, args.subject, services.rules())
    to_file = write_out(args.out, text, private=True)
    if to_file:
        print(f"wrote the export of subject {args.subject} of tenant {args.tenant} to {args.out}")
    if args.answers:
        digest = export_digest(text)
        at = datetime.now(UTC)
        event = record_export(services.ledger, args.tenant, args.subject, args.answers, digest=digest, at=at)
        said = f"recorded {event}: request {args.answers} fulfilled by the export with SHA-256 {digest}"
        print(said, file=sys.stdout if to_file else sys.stderr)
    return 0


def _stats(args: argparse.Namespace, settings: Settings) -> int:
    from projections.retention import sweeps

    services = Services(settings)
    tenants = queries.counts(services.ledger)
    projection_lag = queries.progress(services.ledger).lag
    kept = deadletters.figures(services.ledger)[0].values()
    deadlettered = sum(sum(statuses.values()) for statuses in kept)
    still_open = sum(statuses["open"] for statuses in kept)
    swept = sweeps(services.ledger)
    consumer_lag, note = _from_broker(services)
    if args.json:
        print_json(
            {
                "tenants": tenants,
                "deadlettered": deadlettered,
                "deadletters_open": still_open,
                "consumer_lag": consumer_lag,
                "projection_lag": projection_lag,
                **swept.as_json(),
                "note": note,
            }
        )
        return 0
    for tenant, numbers in tenants.items():
        print(f"{tenant:<16} events {numbers['events']:>8}  subjects {numbers['subjects']:>7}")
    print(f"dead-lettered    {deadlettered:>8}  kept in PostgreSQL, {still_open} open (`deadletters list`)")
    print(
        f"consumer lag     {'unknown' if consumer_lag is None else consumer_lag:>8}  messages not yet stored"
    )
    print(f"projection lag   {projection_lag:>8}  stored events not yet projected")
    _print_sweeps(swept)
    if note:
        print(f"note: {note}")
    return 0


def _print_sweeps(swept: SweepSummary) -> None:
    """When the last sweep ran, and the last that ordered a purge: a scheduler that stopped shows as
    an old (or no) last sweep, one that finds nothing as a recent one that ordered 0."""
    last, ordering = swept.last, swept.last_ordered
    if last is None:
        print("last sweep       never  (no sweep recorded: is a scheduler running?)")
    else:
        what = f"ordered {last.ordered}, failed {last.failed} ({swept.sweeps} sweeps run)"
        print(f"last sweep       {rfc3339(last.at)}  {what}")
    when = "never" if ordering is None else rfc3339(ordering.at)
    ordered = "" if ordering is None else f"  ordered {ordering.ordered}"
    print(f"last ordering    {when}{ordered} (the last sweep that ordered a purge)")


def _from_broker(services: Services) -> tuple[int | None, str | None]:
    """The consumer group's lag; None, and why, when the broker cannot say (the rest of `stats` comes
    from PostgreSQL and needs no broker)."""
    from consumers import kafka

    settings = services.settings
    try:
        bootstrap = services.kafka_bootstrap
    except ServiceUnavailable as error:
        return None, f"consumer lag not counted: {error}"
    return kafka.consumer_lag(bootstrap, settings), None


def _breach(args: argparse.Namespace, settings: Settings) -> int:
    from projections.breach import breach_impact

    if args.window_from > args.window_to:
        raise UsageError("--from is after --to: give the window in order")
    ledger = Services(settings).ledger
    names.require_tenant(ledger, args.tenant)
    names.require_systems(ledger, args.tenant, args.system)
    impact = breach_impact(
        ledger,
        args.tenant,
        args.system,
        (args.window_from, args.window_to),
        discovered_at=args.discovered_at or datetime.now(UTC),
        categories=args.category,
        list_subjects=args.subjects,
    )
    if args.json:
        print_json(asdict(impact))
        return 0
    print(f"{impact.subjects} subject(s) of tenant {impact.tenant} exposed in {', '.join(impact.systems)}")
    for category, count in sorted(impact.by_category.items()):
        print(f"  {category:<24} {count:>8} subjects")
    for deadline in impact.deadlines:
        due = "no fixed deadline" if deadline.deadline is None else f"by {queries.plain(deadline.deadline)}"
        where = f"  {deadline.jurisdiction:<8} {deadline.subjects:>8} subjects"
        print(f"{where}: {deadline.regime}, notify {deadline.notify}, {due}")
    for person in impact.affected or []:
        print(f"  {person.subject}: {', '.join(person.categories)} ({', '.join(person.jurisdictions)})")
    return 0
