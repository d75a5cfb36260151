"""Retention: what is due for purge, the sweep on its cron, rights requests near their deadline, and
the record of adopted retention policies."""

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from app.bootstrap import Services
from app.cli.output import print_json, stop_on_signal
from app.cli.parser import Command, days, moment, until_idle
from ledger.errors import UsageError
from ledger.retention import parse_policy, policy_document
from ledger.retry import Backoff, Skipped
from ledger.settings import Settings
from projections import names, queries
from projections.policies import adoptions
from projections.retention import due_for_purge
from projections.rights import left, overdue


def register(command: Command) -> None:
    """purge, scheduler, overdue, adopt-policy, policies."""
    purge = command("purge", _purge, "what the retention sweep would order purged now", json=True)
    purge.add_argument("--dry-run", action="store_true", required=True, help="list, order nothing")
    purge.add_argument("--at", type=moment, help="as if it were this instant (RFC 3339)")
    purge.add_argument("--tenant", help="only this tenant")
    sched = until_idle(
        command("scheduler", _scheduler, "sweep for expired data on a cron (LEDGER_SWEEP_CRON)")
    )
    sched.add_argument(
        "--dry-run",
        action="store_true",
        help="list what a sweep would order (as `purge --dry-run`); order nothing",
    )
    sched.add_argument("--at", type=moment, help="with --dry-run: as if it were this instant")
    late = command(
        "overdue", _overdue, "open rights requests on their clocks, children's data, purge orders", json=True
    )
    late.add_argument("tenant")
    late.add_argument("--within", type=days, default=7, help="flag requests due within this many days (7)")
    late.add_argument("--at", type=moment, help="as if it were this instant (RFC 3339)")
    adopt = command("adopt-policy", _adopt_policy, "record that a retention policy applies from now on")
    adopt.add_argument(
        "--file", type=Path, help="the policy (default: LEDGER_RETENTION_POLICY or the shipped one)"
    )
    adopt.add_argument("--by", required=True, help="who adopts it")
    adopt.add_argument("--reason", required=True, help="why")
    policies = command(
        "policies", _policies, "every retention policy adopted, who, when, what changed", json=True
    )
    policies.add_argument("--at", type=moment, help="only the policy in force at this instant")


def _purge(args: argparse.Namespace, settings: Settings) -> int:
    return _dry_run(Services(settings), args.at, args.tenant, as_json=args.json)


def _dry_run(services: Services, at: datetime | None, tenant: str | None, *, as_json: bool) -> int:
    """What a sweep at `at` (default: now) would order purged, and what is ordered already; orders nothing."""
    ledger = services.ledger
    if tenant is not None:
        names.require_tenant(ledger, tenant)
    now = at or datetime.now(UTC)
    skipped = Skipped()
    confirm_days = services.settings.purge_confirm_days
    due = due_for_purge(ledger, services.rules(now), now, confirm_days, tenant=tenant, skipped=skipped)
    failed = len(skipped.subjects)
    if failed:
        print(
            f"consent-ledger: warning: {failed} subject(s) failed and are not listed "
            "(sweep.subject_failed in the log names them)",
            file=sys.stderr,
        )
    if as_json:
        print_json([item.as_json() for item in due])
        return 0
    for item in due:
        when = queries.plain(item.due.expires_at)
        what = f"{item.due.category} in {item.due.system}"
        ordered = "" if item.order is None else f"; {item.order.note()}"
        print(f"{item.due.tenant}/{item.due.subject}: {what} expired {when} (rule {item.due.rule}){ordered}")
    waiting = sum(item.order is not None for item in due)
    print(f"{len(due)} holding(s) due for purge ({waiting} ordered, awaiting confirmation), failed {failed}")
    return 0


def _scheduler(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.scheduler import cron_trigger, sweep_once
    from consumers.scheduler import run as run_scheduler

    services = Services(settings)
    if args.dry_run:
        return _dry_run(services, args.at, None, as_json=False)
    if args.at:  # a sweep records orders, sends them and appends to subjects' histories: only for real
        raise UsageError("--at only simulates: add --dry-run to see what a sweep at that instant would order")
    sweeper = services.sweeper  # a broker and a database that answer, before any table is touched
    services.migrate()
    stop = stop_on_signal()
    if not args.until_idle:
        backoff = Backoff.from_settings(settings, bounded=False)
        run_scheduler(sweeper, cron_trigger(settings.sweep_cron), stop, backoff)
        return 0
    done = sweep_once(sweeper, datetime.now(UTC), Backoff.from_settings(settings, bounded=True), stop)
    if done is None:
        print("another scheduler is sweeping; nothing done")
        return 0
    resent = sum(order.overdue for order in done.sent)
    print(
        f"ordered {len(done.ordered)}, sent {len(done.sent)} ({resent} overdue re-sends), "
        f"confirmed {len(done.confirmed)}, shredded {len(done.shredded)}, failed {len(done.skipped.subjects)}"
    )
    return 0


def _overdue(args: argparse.Namespace, settings: Settings) -> int:
    ledger = Services(settings).ledger
    names.require_tenant(ledger, args.tenant)
    now = args.at or datetime.now(UTC)
    found = overdue(
        ledger,
        args.tenant,
        now,
        warn=timedelta(days=args.within),
        confirm_days=settings.purge_confirm_days,
        child_within=settings.child_erasure_within(args.tenant),
    )
    if args.json:
        print_json(found.as_json())
        return 0
    for clock in found.requests:
        extended = f", extended ({clock.extension_reason})" if clock.extended else ""
        note = f"; {clock.extension_note}" if clock.extension_note else ""
        soon = " SOON" if clock.request_id in found.due_soon else ""
        assert clock.seconds_left is not None  # open requests have time left (or past)
        print(
            f"{clock.subject}: {clock.right} request {clock.request_id} ({clock.regime}{extended}) due "
            f"before {queries.plain(clock.deadline)}, {left(clock.seconds_left)}{soon}{note}"
        )
    for child in found.children:
        what = "all data" if child.categories is None else ", ".join(child.categories)
        print(
            f"{child.subject}: a child's data ({what}, held in {', '.join(child.systems)}) to erase before "
            f"{queries.plain(child.deadline)}, {left(child.seconds_left)}"
        )
    for order in found.purge_orders:
        what = f"purge order {order['order_id']} to {order['system']}"
        print(f"{order['subject']}: {what} unconfirmed since {queries.plain(order['sent_at'])}")
    late = sum(clock.overdue for clock in found.requests)
    print(
        f"{len(found.requests)} open request(s), {late} overdue, {len(found.due_soon)} due within "
        f"{args.within} days; {found.answered_late} answered late; {len(found.children)} child data "
        f"clock(s); {len(found.purge_orders)} purge order(s) unconfirmed"
    )
    return 0


def _adopt_policy(args: argparse.Namespace, settings: Settings) -> int:
    path = args.file or settings.retention_policy
    document = policy_document(path)
    parse_policy(
        document, str(path or "retention_policy.toml")
    )  # refuse an invalid policy before recording it
    adopted = Services(settings).ledger.adopt_policy(document, args.by, args.reason)
    if adopted is None:
        print("that policy is already in force; nothing recorded")
    else:
        print(f"adopted retention policy {adopted.digest[:16]} at {queries.plain(adopted.timestamp)}")
    return 0


def _policies(args: argparse.Namespace, settings: Settings) -> int:
    rows = adoptions(Services(settings).ledger, args.at)
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("no retention policy adopted" + (" by then" if args.at else ""))
    for row in rows:
        print(f"{row['adopted_at']} by {row['adopted_by']} ({row['reason']}): policy {row['digest'][:16]}")
        for kind, ids in row["changes"].items():
            if ids:
                print(f"    {kind}: {', '.join(ids)}")
    return 0
