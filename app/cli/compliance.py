"""Compliance: the violations report, the derived record of processing (Art. 30), the tenant's
declared processing and the drift of the facts from it."""

import argparse
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.bootstrap import Services
from app.cli.output import print_json, read_text, shown, write_out
from app.cli.parser import Command, moment
from ledger.declaration import parse_declaration
from ledger.settings import Settings
from ledger.times import period
from projections import names
from projections.drift import drift
from projections.queries import plain
from projections.ropa import counted, record_of_processing
from projections.violations import Period, violations


def register(command: Command) -> None:
    """violations, ropa, declare, drift."""
    report = command(
        "violations",
        _violations,
        "every violation the facts show, counted per kind (exit 1 if any)",
        json=True,
    )
    report.add_argument("tenant")
    _period(report)
    ropa = command("ropa", _ropa, "the Art. 30 record of processing, derived from the facts, with counts")
    ropa.add_argument("tenant")
    _period(ropa)
    form = ropa.add_mutually_exclusive_group()
    form.add_argument("--json", dest="format", action="store_const", const="json", help="print JSON")
    form.add_argument("--csv", dest="format", action="store_const", const="csv", help="print CSV")
    form.add_argument("--format", choices=("text", "json", "csv", "fides"), help="fides: a Fides manifest")
    ropa.add_argument("--out", type=Path, help="write it to this file instead")
    declare = command("declare", _declare, "record what a tenant declares (its notice, as TOML) from now on")
    declare.add_argument("tenant")
    declare.add_argument("file", type=Path, help="the declaration (schemas/declaration.v1.json)")
    declare.add_argument("--by", required=True, help="who declares it")
    declare.add_argument("--reason", required=True, help="why")
    found = command(
        "drift", _drift, "what the facts show and the declaration does not (exit 1 if any)", json=True
    )
    found.add_argument("tenant")


def _period(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--from", dest="start", type=moment, help="start of the period (default: the beginning)")
    cmd.add_argument("--to", dest="end", type=moment, help="end of the period, excluded (default: now)")


def _violations(args: argparse.Namespace, settings: Settings) -> int:
    services = Services(settings)
    names.require_tenant(services.ledger, args.tenant)
    now = datetime.now(UTC)
    within = Period(*period(args.start, args.end, now), now)
    report = violations(
        services.ledger, args.tenant, within, services.rules(now), settings.purge_confirm_days
    )
    if args.json:
        print_json(report.as_json())
        return 1 if report.entries else 0
    for entry in report.entries:
        print(f"{plain(entry.time)} {entry.kind} {entry.subject}: {entry.reason} ({shown(entry.event_ids)})")
    for note in report.notes:
        print(f"note: {note}")
    counts = ", ".join(f"{kind} {count}" for kind, count in report.counts().items())
    print(f"{len(report.entries)} violation(s): {counts}")
    return 1 if report.entries else 0


def _ropa(args: argparse.Namespace, settings: Settings) -> int:
    services = Services(settings)
    names.require_tenant(services.ledger, args.tenant)
    start, end = period(args.start, args.end, datetime.now(UTC))
    record = record_of_processing(services.ledger, args.tenant, start, end, services.rules(end))
    texts: dict[str, Callable[[], str]] = {
        "csv": record.as_csv,
        "json": lambda: _json(record.as_json()),
        "fides": lambda: _json(record.as_fides()),
        "text": lambda: _text(record.as_json()),
    }
    write_out(args.out, texts[args.format or "text"]())
    return 0


def _json(document: object) -> str:
    return json.dumps(plain(document), indent=2) + "\n"


def _text(record: dict[str, Any]) -> str:
    lines = [f"record of processing of {record['tenant']}, observed {record['from']} to {record['to']}"]
    for entry in record["purposes"]:
        lines.append(
            f"{entry['purpose']} ({entry['dpv']}): {entry['subjects']} subjects, {entry['holdings']} holdings"
        )
        lines.append("  categories: " + (counted(entry["categories"], "category") or "-"))
        lines.append("  data subjects: " + (counted(entry["data_subjects"], "kind") or "-"))
        lines.append("  legal bases: " + (counted(entry["legal_bases"], "legal_basis") or "-"))
        lines.append("  systems: " + (counted(entry["systems"], "system") or "-"))
        shared = [
            f"{r['recipient']} ({r['type']}, {shown(r['country'])}, {shown(r['transfer_mechanism'])}): "
            f"{r['shares']} shares, {r['subjects']} subjects"
            for r in entry["recipients"]
        ]
        lines.append("  recipients: " + ("; ".join(shared) or "-"))
        kept = [
            f"{r['category']} {r['duration']} from {r['trigger']} ({r['rule']})" for r in entry["retention"]
        ]
        lines.append("  retention: " + ("; ".join(kept) or "-"))
        sent = [f"{c['channel']} {c['contacts']}" for c in entry["contacts"]]
        lines.append("  messages sent: " + (", ".join(sent) or "-"))
    return "\n".join(lines) + "\n"


def _declare(args: argparse.Namespace, settings: Settings) -> int:
    document = parse_declaration(read_text(args.file), str(args.file))
    declared = Services(settings).ledger.declare(args.tenant, document, args.by, args.reason)
    if declared is None:
        print(f"{args.file} is what {args.tenant} declares already; nothing recorded")
    else:
        print(f"recorded declaration {declared.digest[:16]} for {args.tenant} at {plain(declared.timestamp)}")
    return 0


def _drift(args: argparse.Namespace, settings: Settings) -> int:
    found = drift(Services(settings).ledger, args.tenant, datetime.now(UTC))
    if args.json:
        print_json(found.as_json())
        return 1 if found.findings else 0
    declared = found.declared
    when = plain(declared.timestamp)
    print(f"against the declaration {declared.digest[:16]} of {when} by {declared.declared_by}")
    for finding in found.findings:
        counted = f"{finding.facts} fact(s)" + (
            "" if finding.subjects is None else f", {finding.subjects} subject(s)"
        )
        example = "" if finding.example_event is None else f", e.g. {finding.example_event}"
        print(f"{finding.kind} {finding.what}: {finding.detail} ({counted}{example})")
    print(f"{len(found.findings)} finding(s)")
    return 1 if found.findings else 0
